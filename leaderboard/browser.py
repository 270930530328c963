"""Headless Chromium, for screenshots of the leaderboard and for testing it in a real browser.

Uses Debian's `chromium` (or `$RZOO_CHROMIUM`, or chromium-browser / google-chrome on PATH); `make
test` installs Debian's package when it is missing. Each call is one short-lived browser process
with a throwaway profile; `--virtual-time-budget` lets the page's scripts finish before the DOM is
dumped or the screenshot taken.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    explicit = os.environ.get("RZOO_CHROMIUM")
    if explicit:
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(url: str, *flags: str, timeout: float = 60) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise BrowserError("no Chromium found: install Debian's `chromium` (apt-get install chromium) or set "
                           "$RZOO_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="rzoo-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
               "--virtual-time-budget=3000", *flags, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise BrowserError(f"chromium exited {out.returncode}: {out.stderr.strip()[-500:]}")
    return out


def url_of(path: Path | str) -> str:
    return Path(path).resolve().as_uri()


def dump_dom(path: Path | str) -> str:
    """The page's DOM after its scripts ran, serialised as HTML."""
    return _run(url_of(path), "--dump-dom").stdout


def screenshot(path: Path | str, png: Path | str, width: int = 1400, height: int = 1000) -> Path:
    """Save a PNG of the page as a `width` x `height` window shows it."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(url_of(path), f"--screenshot={png}", f"--window-size={width},{height}")
    if not png.is_file() or png.stat().st_size == 0:
        raise BrowserError(f"chromium wrote no screenshot to {png}")
    return png


def console_errors(path: Path | str) -> list[str]:
    """The console errors (uncaught exceptions, console.error, failed loads) the page raised while loading, from
    Chromium's log."""
    out = _run(url_of(path), "--enable-logging=stderr", "--v=0", "--dump-dom")
    return [line for line in out.stderr.splitlines()
            if ("CONSOLE" in line and ("Uncaught" in line or ":ERROR:" in line or "error" in line.lower()))
            or "Failed to load resource" in line]

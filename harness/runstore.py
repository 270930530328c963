"""The run store: one folder per run, every file written atomically.

Layout (root from `$RZOO_RUNS`, default `./runs`):

    runs/<method>/<utc-time>-<short-hash>/
        config.json            resolved config, as run
        status.json            {"state": "running" | "done" | "failed", ...}
        train.jsonl            one line per optimiser step
        checkpoint/            save_pretrained + tokenizer + method.json
        eval/<task>/samples.jsonl, eval/<task>/results.json

Atomic means temp file in the same folder + `os.replace`, so a reader (the leaderboard, pandas)
never sees half a file, and a crash leaves the previous version in place. A folder (a checkpoint, a
converted model, the leaderboard) is built beside its place and swapped in by renames (`atomic_folder`).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

RUNS_ENV = "RZOO_RUNS"


def runs_root() -> Path:
    return Path(os.environ.get(RUNS_ENV, "runs")).resolve()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (`os.umask` sets it, and another
    thread creating a file meanwhile would get the temporary value)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open() would honour the umask
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    text = "".join(json.dumps(row, default=_json_default) + "\n" for row in rows)
    atomic_write_text(path, text)


def swap_folder(tmp: Path, out: Path, old: Path | None = None) -> None:
    """Replace folder `out` with the finished folder `tmp` by two renames (`out` moves aside to `old`, then
    is deleted), so `out` is at every moment either the previous folder or the new one, never a mixture."""
    old = old or out.with_name(out.name + ".old")
    if out.exists():
        # a process killed after the last swap but before its clean-up leaves a stale `old` beside a complete
        # `out`: drop it, or the rename below fails ("Directory not empty")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(out: Path, fsync: bool = False):
    """Build the folder `out` atomically: the block writes into the yielded temp folder beside it, which then
    replaces `out` (`swap_folder`); if the block raises, the temp folder is removed and `out` is untouched.
    `fsync`: every file is on disk before the swap commits it (checkpoints: a SIGKILL right after must leave
    a complete folder). A temp folder left by a killed process is cleared on the next build."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if fsync:
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
        swap_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def git_sha() -> str | None:
    """The project's git commit, or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def task_folder(task: str) -> str:
    """A task's folder name under an evaluation folder (`jsonl:/a/b.jsonl` must not become a path)."""
    return task.replace(":", "_").replace("/", "_")


class Run:
    """A run folder. Create it only after the config, model and data have been validated."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, kind: str, config: dict, short_hash: str, root: Path | None = None) -> "Run":
        root = Path(root) if root else runs_root()
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = root / kind / f"{stamp}-{short_hash}"
        suffix = 1
        while path.exists():  # two runs of one config within a second
            suffix += 1
            path = root / kind / f"{stamp}-{short_hash}-{suffix}"
        path.mkdir(parents=True)
        run = cls(path)
        atomic_write_json(path / "config.json", config)
        run.set_status("running")
        return run

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoint"

    def eval_dir(self, task: str) -> Path:
        return self.path / "eval" / task_folder(task)

    def set_status(self, state: str, **extra: Any) -> None:
        atomic_write_json(self.path / "status.json", {"state": state, **extra})

    def write_train_log(self, rows: list[dict]) -> None:
        atomic_write_jsonl(self.path / "train.jsonl", rows)

    def train_log(self) -> list[dict]:
        path = self.path / "train.jsonl"
        return read_jsonl(path) if path.exists() else []


def weights_sha256(model) -> str:
    """A hash of every parameter's bytes, in name order."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

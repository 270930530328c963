"""The static leaderboard, imported as `rzoo.leaderboard`: run files read without trusting them
(`runfiles.py`), every evaluation as one pandas table (`collect.py`), the figures (`plot.py`), the site
(`site.py`, `harness leaderboard`) with its markup helpers, run pages and s1 controls table (`markup.py`,
`run_page.py`, `controls_table.py`), the zoo's page and figures (`zoo_page.py`, `zoo_figures.py`, `frontier.py`)
and headless-Chromium screenshots (`browser.py`)."""
from __future__ import annotations

import sys
import types


class _CallablePackage(types.ModuleType):
    """`rzoo.leaderboard(runs_root=None, out=None) -> Path`: the Python API's call on the package itself, so the
    API's name and the package's stay one (`import rzoo.leaderboard.site` works as before): builds the static site
    of every run under `runs_root` (default $RZOO_RUNS or ./runs) and returns its index.html."""

    def __call__(self, runs_root=None, out=None):
        from pathlib import Path

        from rzoo.harness.runstore import runs_root as default_root

        from .site import build

        return build(Path(runs_root) if runs_root is not None else default_root(), out)


sys.modules[__name__].__class__ = _CallablePackage

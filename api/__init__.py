"""rzoo: a method zoo and evaluation harness for reasoning language models, from Python.

    import rzoo
    r = rzoo.evaluate("testbed", "runsum", budgets=[2, 8], limit=20)
    r.results                                        # a pandas DataFrame, one row per task x setting
    run = rzoo.train_eval("grpo", steps=2, limit=8)  # a Run: .log, .checkpoint, .evaluations, .config
    rzoo.leaderboard()                               # the static site of every run

The command line (`harness ...`) is a thin layer over the same jobs; see `rzoo.harness.api` for what each
function takes and returns. Importing this package loads nothing heavy (no torch): each function imports what
it needs when called.
"""
from __future__ import annotations

from rzoo import leaderboard  # the subpackage, callable: rzoo.leaderboard(runs_root=None) builds the site
from rzoo.harness.api import Results, Run, evaluate, load_run, plot, train, train_eval
from rzoo.harness.config import ConfigError
from rzoo.harness.models import ModelError
from rzoo.harness.registry import UnknownName


# `rzoo.methods`, `rzoo.tasks`, `rzoo.harness` and `rzoo.leaderboard` are the subpackages (registries, the core)
__all__ = ["ConfigError", "ModelError", "Results", "Run", "UnknownName", "evaluate", "leaderboard", "load_run",
           "plot", "train", "train_eval"]

"""Contamination check: no training problem may also be an evaluation problem.

A train split's problems are compared with the evaluation sets (MATH-500, AIME 2024, AIME 2025), read from where
evaluation reads them (`Task.rows`: a configured data folder, else the hub when it answers, else a data folder found
beside the project), by normalised question text (case, whitespace, LaTeX spacing and `$` dropped) and by id;
matches are dropped from the train split and reported (`[data] ... removed N`), and the count is recorded in the
train data's source description. What was checked is recorded with the data (`Source.decontamination`: whether
every evaluation set was read, and why one was not), written to the run's config and checkpoint and shown on the
leaderboard; a set that cannot be read is said in one line (`[data] ... NOT decontaminated ...`), never skipped
silently.
"""
from __future__ import annotations

import re
from functools import lru_cache

EVAL_SETS = ("math500", "aime24", "aime25")
_SPACE = re.compile(r"\s+")
_LATEX_SPACING = re.compile(r"\\[,;:!]|\\quad|\\qquad|\\ ")


def normalise(text: str) -> str:
    text = _LATEX_SPACING.sub("", str(text)).replace("$", "").replace("\\left", "").replace("\\right", "")
    return _SPACE.sub(" ", text).strip().lower()


@lru_cache(maxsize=None)
def _eval_keys(data_dir) -> tuple[frozenset[str], frozenset[str], tuple[tuple[str, str], ...]]:
    """(normalised questions, ids, unreadable sets as (name, reason)) of the evaluation sets, each read as
    evaluation reads it from `data_dir` (a `DataDir` or None)."""
    from . import get
    from .base import TaskError

    texts, ids, unreadable = set(), set(), []
    for name in EVAL_SETS:
        try:
            problems, _ = get(name).load(data_dir)
        except (TaskError, OSError, ValueError) as e:
            unreadable.append((name, str(e).splitlines()[0] if str(e) else type(e).__name__))
            continue
        texts |= {normalise(p.question) for p in problems}
        ids |= {p.id for p in problems}
    return frozenset(texts), frozenset(ids), tuple(unreadable)


def remove_overlaps(problems: list, data_dir, name: str) -> tuple[list, list, dict]:
    """(kept, removed, record): `problems` without those whose text or id is in an evaluation set, and what was
    checked: {"decontaminated": every evaluation set was read, "checked": [sets read], "unreadable": {set: reason},
    "removed": count}."""
    texts, ids, unreadable = _eval_keys(data_dir)
    kept, removed = [], []
    for p in problems:
        (removed if normalise(p.question) in texts or p.id in ids else kept).append(p)
    if removed:
        print(f"[data] {name}: removed {len(removed)} training problems that are also evaluation problems "
              f"({', '.join(p.id for p in removed[:5])}{', ...' if len(removed) > 5 else ''})", flush=True)
    missing = dict(unreadable)
    if missing:
        reasons = "; ".join(f"{k}: {v}" for k, v in missing.items())
        print(f"[data] {name}: NOT decontaminated against {', '.join(missing)} (cannot be read: {reasons}); "
              "recorded as decontaminated: false", flush=True)
    record = {"decontaminated": not missing, "checked": [n for n in EVAL_SETS if n not in missing],
              "unreadable": missing, "removed": len(removed)}
    return kept, removed, record

"""Contamination check: no training problem may also be an evaluation problem.

A train split's problems are compared with every evaluation set available locally (MATH-500, AIME 2024,
AIME 2025) by normalised question text (case, whitespace, LaTeX spacing and `$` dropped) and by id;
matches are dropped from the train split and reported (`[data] ... removed N`), and the count is
recorded in the train data's source description.
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
def _eval_keys(data_dir_path: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """(normalised questions, ids) of the evaluation sets readable from `data_dir_path` (local only: a
    contamination check must not depend on a hub being reachable)."""
    from pathlib import Path

    from . import get
    from .base import DataDir, TaskError

    if data_dir_path is None:
        return frozenset(), frozenset()
    texts, ids = set(), set()
    for name in EVAL_SETS:
        try:
            problems, _ = get(name).load(DataDir(Path(data_dir_path), explicit=True))
        except TaskError:
            continue  # not available locally
        texts |= {normalise(p.question) for p in problems}
        ids |= {p.id for p in problems}
    return frozenset(texts), frozenset(ids)


def remove_overlaps(problems: list, data_dir, name: str) -> tuple[list, list]:
    """(kept, removed): `problems` without those whose text or id is in an evaluation set."""
    texts, ids = _eval_keys(str(data_dir.path) if data_dir is not None else None)
    kept, removed = [], []
    for p in problems:
        (removed if normalise(p.question) in texts or p.id in ids else kept).append(p)
    if removed:
        print(f"[data] {name}: removed {len(removed)} training problems that are also evaluation problems "
              f"({', '.join(p.id for p in removed[:5])}{', ...' if len(removed) > 5 else ''})", flush=True)
    return kept, removed

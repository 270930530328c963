"""Gold answers given as a list (Minerva Math, OlympiadBench in rllm's files): a reply is right when it matches
any of them, as rllm's reward reads a list of ground truths. `Problem.answer` holds them joined by " || " (one
string for sample rows and maj@k), `Problem.meta["answers"]` the list the graders read."""
from __future__ import annotations

from .base import TaskError

JOIN = " || "


def answer_list(value, where: str, index: int) -> list[str]:
    """The row's answers as a list of stripped strings (a string alone is a one-item list)."""
    items = value if isinstance(value, list) else [value]
    out = [str(a).strip() for a in items if a is not None and str(a).strip()]
    if not out:
        raise TaskError(f"{where}: row {index} has no answer")
    return out

"""`aime25`: AIME 2025, parts I and II (30 problems, integer answers 0-999).

Local `<data>/aime25/aime25_matharena.jsonl` (id, problem, answer, ...), else the hub dataset
`MathArena/aime_2025`. Four problems carry TikZ figure code in their text; it is kept as is.
"""
from __future__ import annotations

from .aime24 import aime_answer
from .base import Problem, Task, require


class Aime25(Task):
    name = "aime25"
    family = "integer"
    description = "AIME 2025 I+II: 30 problems, integer answers"
    local_file = "aime25/aime25_matharena.jsonl"
    hub_id = "MathArena/aime_2025"
    hub_split = "train"
    expected_size = 30

    def problem(self, row: dict, index: int, where: str) -> Problem:
        pid = str(row.get("id") or f"2025-{row.get('problem_idx', index)}")
        return Problem(pid, require(row, "problem", where, index),
                       aime_answer(require(row, "answer", where, index), where, index))


TASK = Aime25()

"""`math500`: MATH-500 (Lightman et al. 2023, the PRM800K test subset of Hendrycks' MATH).

Local file `<data>/math500/math500.jsonl` (fields problem, answer, subject, level, unique_id), else
the hub dataset `HuggingFaceH4/MATH-500` (test split).
"""
from __future__ import annotations

from .base import Problem, Task, require


class Math500(Task):
    name = "math500"
    description = "MATH-500: 500 competition problems, levels 1-5"
    local_file = "math500/math500.jsonl"
    hub_id = "HuggingFaceH4/MATH-500"
    expected_size = 500

    def problem(self, row: dict, index: int, where: str) -> Problem:
        return Problem(
            id=str(row.get("unique_id") or f"math500-{index}"),
            question=require(row, "problem", where, index),
            answer=str(require(row, "answer", where, index)),
            meta={"subject": row.get("subject"), "level": row.get("level")},
        )


TASK = Math500()

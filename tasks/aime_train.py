"""`aime_train`: AIME 1983-2023 (975 problems, integer answers), for training and curricula.

Local `<data>/train/aime_1983_2023_rllm.json` (problem, answer, year, aime_number, problem_number,
difficulty). A training set only; it shares no problem with AIME 2024/2025 (checked at load,
tasks/overlap.py).
"""
from __future__ import annotations

from .aime24 import aime_answer
from .base import Problem, Task, require


class AimeTrain(Task):
    name = "aime_train"
    description = "AIME 1983-2023: 975 problems, integer answers (training only)"
    local_file = "train/aime_1983_2023_rllm.json"
    splits = ("train",)

    def problem(self, row: dict, index: int, where: str) -> Problem:
        try:
            level = float(row.get("difficulty"))
        except (TypeError, ValueError):
            level = None
        pid = f"aime-{row.get('year')}-{row.get('aime_number')}-{row.get('problem_number')}"
        return Problem(pid if all(row.get(k) for k in ("year", "problem_number")) else f"aime-train-{index}",
                       require(row, "problem", where, index),
                       aime_answer(require(row, "answer", where, index), where, index), meta={"difficulty": level})


TASK = AimeTrain()

"""`math_train`: the MATH training set (Hendrycks et al. 2021), 7,474 problems with answers and levels.

Local `<data>/train/math_train_rllm.json` (problem, answer, difficulty 1-5 = the MATH level, type), else
the hub dataset `EleutherAI/hendrycks_math` is not used (it is split by subject and has no answer
field): offline or on GPUs, point `$RZOO_DATA` at a folder with this file. A training set only: rows
with an empty answer are skipped, duplicates of a question kept once, and any problem that is also in
MATH-500 or AIME 2024/2025 is dropped (tasks/overlap.py). `difficulty` feeds the curriculum sampler.
"""
from __future__ import annotations

from .base import Problem, Task, TaskError


class MathTrain(Task):
    name = "math_train"
    description = "MATH train: 7,474 competition problems with levels 1-5 (training only)"
    local_file = "train/math_train_rllm.json"
    splits = ("train",)

    def rows(self, data_dir):
        rows, source = super().rows(data_dir)
        seen, kept = set(), []
        for row in rows:
            if not isinstance(row, dict):
                raise TaskError(f"{source.location}: a row is not a JSON object")
            question, answer = str(row.get("problem") or "").strip(), str(row.get("answer") or "").strip()
            if not question or not answer or question in seen:
                continue  # 2 rows without an answer and 1 duplicate in the shipped file
            seen.add(question)
            kept.append(row)
        return kept, source

    def problem(self, row: dict, index: int, where: str) -> Problem:
        try:
            level = float(row.get("difficulty"))
        except (TypeError, ValueError):
            level = None
        return Problem(f"math-train-{index}", row["problem"].strip(), str(row["answer"]).strip(),
                       meta={"difficulty": level, "subject": row.get("type")})


TASK = MathTrain()

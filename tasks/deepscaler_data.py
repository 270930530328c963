"""`deepscaler_data`: the DeepScaleR-Preview training mix (~40K problems: AIME 1984-2023, AMC before
2023, Omni-MATH, Still), for GPU users.

From the hub (`agentica-org/DeepScaleR-Preview-Dataset`, fields problem / answer / solution) when it is
reachable, or from `<data>/deepscaler/deepscaler.json` (the same records) under `$RZOO_DATA`. A training
set only; problems also in MATH-500 or AIME 2024/2025 are dropped (tasks/overlap.py).
"""
from __future__ import annotations

from .base import Problem, Task, require


class DeepScaleRData(Task):
    name = "deepscaler_data"
    description = "DeepScaleR-Preview-Dataset (~40K problems; hub or $RZOO_DATA/deepscaler; training only)"
    local_file = "deepscaler/deepscaler.json"
    hub_id = "agentica-org/DeepScaleR-Preview-Dataset"
    hub_split = "train"
    splits = ("train",)

    def problem(self, row: dict, index: int, where: str) -> Problem:
        return Problem(f"deepscaler-{index}", require(row, "problem", where, index),
                       str(require(row, "answer", where, index)))


TASK = DeepScaleRData()

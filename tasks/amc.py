"""`amc`: AMC 12 2022-2023 (A and B), 83 open-answer problems: the set DeepScaleR reports as "AMC 2023"
(agentica-project/rllm `data/test/math/amc.json`; the same 83 problems are the hub dataset
`AI-MO/aimo-validation-amc`). Not the 40-problem `amc23` set.

Local `<data>/amc/amc_2022_2023_rllm.json` (problem, answer, url, difficulty), else the hub dataset. Quirks:
answers are floats ('142.0'), stored here as integers where integral (`amc23.float_answer`); ids come from
the url, which names the contest and problem ("2022_AMC_12A-1"), else the row number.
"""
from __future__ import annotations

import re

from .amc23 import float_answer
from .base import Problem, Task, require

_URL = re.compile(r"/(\d{4}_AMC_\d+[AB])_Problems/Problem_(\d+)")


class Amc(Task):
    name = "amc"
    description = "AMC 12 2022-2023: 83 problems (DeepScaleR's 'AMC 2023'), numeric answers"
    local_file = "amc/amc_2022_2023_rllm.json"
    hub_id = "AI-MO/aimo-validation-amc"
    hub_split = "train"
    expected_size = 83

    def problem(self, row: dict, index: int, where: str) -> Problem:
        m = _URL.search(str(row.get("url") or ""))
        pid = f"{m.group(1)}-{m.group(2)}" if m else f"amc-{row.get('id', index)}"
        return Problem(pid, require(row, "problem", where, index),
                       float_answer(require(row, "answer", where, index), where, index))


TASK = Amc()

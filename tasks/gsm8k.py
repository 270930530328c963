"""`gsm8k`: GSM8K test (Cobbe et al. 2021), 1,319 grade-school word problems.

Local `<data>/gsm8k/gsm8k_test.jsonl` (question, answer, idx), else the hub dataset `openai/gsm8k`
(config main, test split). Quirk: `answer` is a rationale ending in `#### N`; the gold is N without
thousands separators.
"""
from __future__ import annotations

from .base import Problem, Task, TaskError, require


def final_number(rationale: str, where: str, index: int) -> str:
    if "####" not in rationale:
        raise TaskError(f"{where}: row {index} answer has no '#### N' line")
    gold = rationale.rsplit("####", 1)[1].strip().replace(",", "")
    if not gold:
        raise TaskError(f"{where}: row {index} has an empty '####' answer")
    return gold


class Gsm8k(Task):
    name = "gsm8k"
    family = "integer"
    description = "GSM8K test: 1,319 grade-school math word problems"
    local_file = "gsm8k/gsm8k_test.jsonl"
    hub_id = "openai/gsm8k"
    hub_config = "main"
    expected_size = 1319

    def problem(self, row: dict, index: int, where: str) -> Problem:
        return Problem(f"gsm8k-{row.get('idx', index)}", require(row, "question", where, index),
                       final_number(require(row, "answer", where, index), where, index))


TASK = Gsm8k()

"""`amc23`: AMC 2023, the 40-problem open-answer rewrite used by Qwen2.5-Math's evaluation. DeepScaleR's
"AMC 2023" is another set, rllm's 83 AMC 12 2022-2023 problems: the task `amc`.

Local `<data>/amc23/amc23_qwen25math.jsonl` (id, problem, answer), else the hub dataset
`math-ai/amc23`. Quirk: answers are floats ('27.0'); integral ones are stored as integers.
"""
from __future__ import annotations

from .base import Problem, Task, TaskError, require


def float_answer(value, where: str, index: int) -> str:
    try:
        number = float(str(value))
    except ValueError:
        raise TaskError(f"{where}: row {index} has a non-numeric answer {value!r}") from None
    return str(int(number)) if number.is_integer() else repr(number)


class Amc23(Task):
    name = "amc23"
    description = "AMC 2023: 40 problems, numeric answers"
    local_file = "amc23/amc23_qwen25math.jsonl"
    hub_id = "math-ai/amc23"
    expected_size = 40

    def problem(self, row: dict, index: int, where: str) -> Problem:
        question = row.get("problem") or row.get("question")
        if not question:
            raise TaskError(f"{where}: row {index} has no 'problem' or 'question'")
        return Problem(f"amc23-{row.get('id', index)}", question,
                       float_answer(require(row, "answer", where, index), where, index))


TASK = Amc23()

"""`aime24`: AIME 2024, parts I and II (30 problems, integer answers 0-999).

Local `<data>/aime24/aime24_rllm.json` (problem, answer, year, aime_number, problem_number), else the
hub dataset `HuggingFaceH4/aime_2024`. Quirks: answers are zero-padded strings ('025'), compared as
integers; problem 15 is labelled problem_number 0 in the local file.
"""
from __future__ import annotations

from .base import Problem, Task, TaskError, require


def aime_answer(value, where: str, index: int) -> str:
    """'025' -> '25'; anything that is not an integer in 0..999 is an error naming the row."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise TaskError(f"{where}: row {index} has a non-integer AIME answer {value!r}") from None
    if not 0 <= number <= 999:
        raise TaskError(f"{where}: row {index} has an AIME answer outside 0-999: {value!r}")
    return str(number)


class Aime24(Task):
    name = "aime24"
    family = "integer"
    description = "AIME 2024 I+II: 30 problems, integer answers"
    local_file = "aime24/aime24_rllm.json"
    hub_id = "HuggingFaceH4/aime_2024"
    hub_split = "train"
    expected_size = 30

    def problem(self, row: dict, index: int, where: str) -> Problem:
        if "aime_number" in row:  # the local (rllm) schema
            part = {"1": "I", "2": "II"}.get(str(row["aime_number"]), str(row["aime_number"]))
            number = int(row["problem_number"]) or 15  # problem 15 is labelled 0
            pid = f"2024-{part}-{number}"
        else:  # hub schema: id, problem, answer
            pid = f"2024-{row.get('id', index)}"
        return Problem(pid, require(row, "problem", where, index),
                       aime_answer(require(row, "answer", where, index), where, index))


TASK = Aime24()

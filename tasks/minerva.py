"""`minerva`: Minerva Math (Lewkowycz et al. 2022), 272 problems from MIT OpenCourseWare science courses, as
DeepScaleR evaluates it (agentica-project/rllm `data/test/math/minerva.json`).

Local `<data>/minerva/minerva_math_rllm.json` (problem, solution, type, idx, answer), else the hub dataset
`math-ai/minervamath` (question, answer). Quirks: the answer is a list of strings (usually one; 75 rows give
two or three forms, e.g. '0.01' and '0.02'), with trailing newlines: a reply matching any of them is right
(`answer_lists.py`), as rllm grades a list of ground truths.
"""
from __future__ import annotations

from .answer_lists import JOIN, answer_list
from .base import Problem, Task, TaskError


class Minerva(Task):
    name = "minerva"
    description = "Minerva Math: 272 OCW science problems (answers: any of a list)"
    local_file = "minerva/minerva_math_rllm.json"
    hub_id = "math-ai/minervamath"
    expected_size = 272

    def problem(self, row: dict, index: int, where: str) -> Problem:
        question = row.get("problem") or row.get("question")
        if not question:
            raise TaskError(f"{where}: row {index} has no 'problem' or 'question'")
        answers = answer_list(row.get("answer"), where, index)
        return Problem(f"minerva-{row.get('idx', index)}", question, JOIN.join(answers),
                       meta={"answers": answers, "type": row.get("type")})


TASK = Minerva()

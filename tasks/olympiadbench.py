"""`olympiadbench`: OlympiadBench (He et al. 2024), its 675 English, text-only, open-answer math problems, as
DeepScaleR evaluates it (agentica-project/rllm `data/test/math/olympiad_bench.json`).

Local `<data>/olympiadbench/olympiadbench_rllm.json` (id, problem, answer, unit, answer_type,
is_multiple_answer, ...), else the hub dataset `Hothan/OlympiadBench` (config `OE_TO_maths_en_COMP`: id,
question, final_answer). Quirks: the answer is a list of LaTeX strings (one per row here; 94 rows mark
`is_multiple_answer`, their one string naming several values, e.g. '$69$,$84$'); a reply matching any item of
the list is right (`answer_lists.py`), as rllm grades a list of ground truths.
"""
from __future__ import annotations

from .answer_lists import JOIN, answer_list
from .base import Problem, Task, TaskError


class OlympiadBench(Task):
    name = "olympiadbench"
    description = "OlympiadBench: 675 English text-only math problems (answers: any of a list)"
    local_file = "olympiadbench/olympiadbench_rllm.json"
    hub_id = "Hothan/OlympiadBench"
    hub_config = "OE_TO_maths_en_COMP"
    hub_split = "train"
    expected_size = 675

    def problem(self, row: dict, index: int, where: str) -> Problem:
        question = row.get("problem") or row.get("question")
        if not question:
            raise TaskError(f"{where}: row {index} has no 'problem' or 'question'")
        answers = answer_list(row.get("answer", row.get("final_answer")), where, index)
        return Problem(f"olympiadbench-{row.get('id', index)}", question, JOIN.join(answers),
                       meta={"answers": answers, "multiple": bool(row.get("is_multiple_answer"))})


TASK = OlympiadBench()

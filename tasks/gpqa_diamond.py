"""`gpqa_diamond`: GPQA-Diamond (Rein et al. 2023), 198 graduate-level multiple-choice questions.

Local `<data>/gpqa_diamond/gpqa_diamond.csv.gz` (the official CSV), else the gated hub dataset
`Idavidrein/gpqa` (config gpqa_diamond). The four options are shuffled with a permutation seeded by
the question's Record ID (reproducible, recorded in `Problem.meta["order"]`); the gold is a letter.

The authors ask that questions are never published in plain text: problem ids are Record IDs, and
no question text goes to a log, an error message, a sample file or a test assertion. Errors name
the file, row and field only.
"""
from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

from .base import OWN_GRADER, Grade, Problem, Reply, Task, TaskError

LETTERS = "ABCD"
OPTION_FIELDS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")

MC_SYSTEM = (
    "Answer the multiple-choice question. Reply in this format:\n<think>\nstep-by-step reasoning\n</think>\n"
    "The answer is \\boxed{}, with the letter of the correct option (A, B, C or D) inside the braces."
)


class GpqaDiamond(Task):
    name = "gpqa_diamond"
    family = "choice"
    description = "GPQA-Diamond: 198 four-option science questions (letters A-D)"
    local_file = "gpqa_diamond/gpqa_diamond.csv.gz"
    hub_id = "Idavidrein/gpqa"
    hub_config = "gpqa_diamond"
    hub_split = "train"
    expected_size = 198
    publish_model_text = False  # a model's thinking often restates the question
    letters = LETTERS  # the option letters sample rows record, for `harness grade`

    def read_local(self, path: Path) -> list[dict]:
        rows: list[dict] = []
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    rows.append(row)
        except UnicodeDecodeError:
            raise TaskError(f"{path}: row {len(rows)} is not UTF-8 text; expected the official UTF-8 CSV") from None
        except (OSError, EOFError, csv.Error) as e:  # not gzip, truncated, or not CSV; the text is never echoed
            raise TaskError(f"{path}: not a gzip-compressed CSV ({type(e).__name__})") from None
        return rows

    def problem(self, row: dict, index: int, where: str) -> Problem:
        for key in ("Question", "Record ID", *OPTION_FIELDS):
            if not str(row.get(key) or "").strip():
                raise TaskError(f"{where}: row {index} has no {key!r}")  # never echo the text
        record = row["Record ID"].strip()
        # the fields as the CSV holds them, trailing whitespace included: simple-evals, lighteval and s1 send them
        # raw (47 of the 198 prompts differed in whitespace while they were stripped here)
        options = [row[k] for k in OPTION_FIELDS]
        order = list(range(4))
        random.Random(f"gpqa-{record}").shuffle(order)  # order[j] = which option is shown as letter j
        shown = [options[i] for i in order]
        gold = LETTERS[order.index(0)]
        body = row["Question"] + "\n\n" + "\n".join(f"{LETTERS[j]}) {text}" for j, text in enumerate(shown))
        return Problem(record, body, gold, meta={"order": order, "domain": row.get("High-level domain")})

    def messages(self, problem: Problem) -> list[dict]:
        return [{"role": "system", "content": MC_SYSTEM}, {"role": "user", "content": problem.question}]

    def score(self, problem: Problem, answer_text: str) -> float:
        return 1.0 if self.grade(problem, answer_text).correct else 0.0

    def grade(self, problem: Problem, answer_text: str) -> Grade:
        from .grading.choice import choice_letter

        letter = choice_letter(answer_text, LETTERS)  # "E" and beyond are no answer here
        return Grade(letter == problem.answer, letter)

    def grade_with(self, grader: str, problem: Problem, reply: Reply) -> Grade:
        """A registered grader's letter (`grading/graders.py`); `rzoo` is `grade` on the text after the block."""
        if grader == OWN_GRADER:
            return self.grade(problem, reply.answer) if reply.closed else Grade(False, None)
        from .grading import graders

        v = graders.get(grader).choice(reply, problem.answer, LETTERS)
        return Grade(v.correct, v.extracted, None, v.timed_out)


TASK = GpqaDiamond()

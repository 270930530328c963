"""`jsonl:<path>`: any user JSONL (or JSON list) file of math problems, graded with math-verify.

    harness eval model=... task=jsonl:/data/my.jsonl eval.question_field=prompt eval.answer_field=target

Ids come from an `id` field when present, else the row number.
"""
from __future__ import annotations

from pathlib import Path

from .base import Problem, Source, Task, read_records, require, sha256_file


class JsonlTask(Task):
    description = "any JSONL/JSON file: jsonl:<path> (question_field / answer_field choose the fields)"
    splits = ("test", "train")  # a user file is whichever split it is used as

    def __init__(self, path: str, question_field: str = "question", answer_field: str = "answer"):
        self.path = Path(path).expanduser()
        self.name = f"jsonl:{path}"
        self.question_field = question_field
        self.answer_field = answer_field

    def rows(self, data_dir: Path | None):
        return read_records(self.path), Source("local", str(self.path.resolve()), sha256_file(self.path))

    def problem(self, row: dict, index: int, where: str) -> Problem:
        meta = {"difficulty": row["difficulty"]} if isinstance(row.get("difficulty"), (int, float)) else {}
        return Problem(str(row.get("id", index)), str(require(row, self.question_field, where, index)),
                       str(require(row, self.answer_field, where, index)), meta=meta)

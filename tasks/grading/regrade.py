"""`harness grade FILE.jsonl [--grader NAME]`: grade answers that other tools generated, or re-grade an
evaluation's `samples.jsonl`, with any registered grader (`graders.py`; default `rzoo`, this project's own).

Each input line is a JSON object:

    {"answer": "... \\boxed{12}", "gold": "12"}                               math (the default kind)
    {"id": "q7", "answer": "The answer is (C).", "gold": "C", "kind": "choice", "options": 4}

- `answer` (string): the model's text after its thinking block (an unclosed thinking block is no
  answer; strip the block before grading).
- `gold` (string, or a number for math): the reference answer; for `choice`, one letter A-J (`(C)`
  and `c` are read as C).
- `kind`: `math` (math-verify plus this project's rules, `grading.py`) or `choice` (`choice.py`).
- `options` (choice only): how many options the question has (2-10, default 10, A-J), or the
  letters themselves ("ABCD"); a letter beyond them is no answer.
- `id`: any JSON value, echoed back.

A line of an evaluation's `samples.jsonl` (it has `thinking` and `thinking_end`) is re-graded as the evaluation
graded it: the whole reply (thinking, whether the block closed, the text after it; `grade_unclosed` rows as
one text), its golds (`golds`, else `gold`), its `kind` and `options`; its id is `problem_id#sample_index`.
Re-graded with the grader the evaluation used (its `grader` field), the verdicts are the evaluation's. A
sample of a task graded by its own scorer (`kind` null, the testbed) is a bad line.

Each good line gives one JSON line on stdout, in input order: `line` (its number in the file), `id`
when given, `kind`, `correct`, `extracted` (what was read from the answer) and, for math,
`timed_out`. A bad line (not UTF-8, not JSON, not an object, a missing or mistyped field) gives
nothing on stdout and one message on stderr naming the file and line; grading goes on with the next
line, so one bad line does not cost the rest, and the exit status is 2 when any line was bad.
Blank lines are skipped. `-` reads standard input.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from rzoo.harness.data import OWN_GRADER, Reply

from .choice import LETTERS
from .choice import gold_letter as read_gold_letter

KINDS = ("math", "choice")


class GradeInputError(ValueError):
    """The input file itself cannot be read (missing, a directory); bad lines are reported, not raised."""


@dataclass(frozen=True)
class BadLine:
    line: int
    message: str


def _raw_lines(path: str) -> Iterator[bytes]:
    if path == "-":
        yield from sys.stdin.buffer
        return
    file = Path(path)
    if file.is_dir():
        raise GradeInputError(f"{path}: is a directory, not a JSONL file")
    if not file.is_file():
        raise GradeInputError(f"{path}: not found")
    with open(file, "rb") as fh:
        yield from fh


def _options(value, where: str) -> str:
    if value is None:
        return LETTERS
    if isinstance(value, int) and not isinstance(value, bool) and 2 <= value <= len(LETTERS):
        return LETTERS[:value]
    if isinstance(value, str) and value and all(ch in LETTERS for ch in value.upper()) \
            and len(set(value.upper())) == len(value):
        return value.upper()
    raise ValueError(f"{where}: 'options' must be a number from 2 to {len(LETTERS)} or letters such as \"ABCD\"")


def _text(row: dict, key: str, where: str, numbers: bool = False) -> str:
    value = row.get(key)
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if key not in row:
        raise ValueError(f"{where}: no {key!r} field")
    raise ValueError(f"{where}: {key!r} must be a string" + (" or a number" if numbers else "")
                     + f", not {type(value).__name__ if value is not None else 'null'}")


def _reply(row: dict, where: str) -> tuple[Reply, tuple[str, ...], str]:
    """(the reply, its golds, its kind) of an input line: a samples.jsonl row, or a plain answer line."""
    kind = row.get("kind", "math")
    if "thinking_end" in row:  # a samples.jsonl row
        if kind is None:
            raise ValueError(f"{where}: this sample's task grades with its own scorer (kind null); re-grade it "
                             "with harness eval")
        thinking, answer = _text(row, "thinking", where), _text(row, "answer", where)
        closed = row["thinking_end"] != "incomplete"
        reply = Reply("", thinking + answer, True) if not closed and row.get("grade_unclosed") else \
            Reply(thinking, answer, closed)
    else:
        reply = Reply("", _text(row, "answer", where), True)
    golds = row.get("golds")
    if isinstance(golds, list) and golds and all(isinstance(g, str) for g in golds):
        return reply, tuple(golds), kind
    return reply, (_text(row, "gold", where, numbers=kind == "math"),), kind


def grade_row(row: dict, where: str, grader: str = OWN_GRADER) -> dict:
    """One graded output row for one parsed input row; ValueError (naming `where`) when it is malformed."""
    from . import graders

    kind = row.get("kind", "math")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    reply, golds, kind = _reply(row, where)
    out: dict = {}
    if "id" in row:
        out["id"] = row["id"]
    elif "problem_id" in row:
        out["id"] = f"{row['problem_id']}#{row.get('sample_index', 0)}"
    out["kind"] = kind
    g = graders.get(grader)
    if kind == "choice":
        letters = _options(row.get("options"), where)
        gold_letter = read_gold_letter(golds[0], LETTERS)
        if gold_letter is None:
            raise ValueError(f"{where}: a choice gold must name one letter A-J (as `C`, `(C)` or `$\\text{{C}}$`), "
                             f"not {golds[0]!r}")
        # a gold beyond `options` is graded, not refused: no reply can then be correct
        verdict = g.choice(reply, gold_letter, letters)
        out.update(correct=verdict.correct, extracted=verdict.extracted)
    else:
        if "options" in row:
            raise ValueError(f"{where}: 'options' belongs to kind 'choice'")
        try:
            verdict = g.math(reply, golds)
        except ValueError as e:  # a grader with no math rule (simple_evals)
            raise ValueError(f"{where}: {e}") from None
        out.update(correct=verdict.correct, extracted=verdict.extracted, timed_out=verdict.timed_out)
    return out


def grade_file(path: str, grader: str = OWN_GRADER) -> Iterator[dict | BadLine]:
    """Graded rows (with `line`) and BadLines, in input order. Raises GradeInputError when the file
    itself cannot be read."""
    for number, raw in enumerate(_raw_lines(path), 1):
        where = f"{path}:{number}"
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            yield BadLine(number, f"{where}: not UTF-8 (byte {e.start + 1} of the line)")
            continue
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            yield BadLine(number, f"{where}: not valid JSON ({e.msg}, column {e.colno})")
            continue
        if not isinstance(row, dict):
            yield BadLine(number, f"{where}: expected a JSON object, found {type(row).__name__}")
            continue
        try:
            yield {"line": number, **grade_row(row, where, grader)}
        except ValueError as e:
            yield BadLine(number, str(e))


def run(path: str, out: IO[str], err: IO[str], grader: str = OWN_GRADER) -> int:
    """Grade `path` with `grader`, one JSON line per good input line on `out`; 2 when any line was bad, else 0."""
    from . import graders

    if grader not in graders.names():
        raise GradeInputError(f"unknown grader {grader!r}; registered: {', '.join(graders.names())}")
    bad = 0
    for item in grade_file(path, grader):
        if isinstance(item, BadLine):
            bad += 1
            print(f"harness: error: {item.message}", file=err, flush=True)
            continue
        out.write(json.dumps(item, ensure_ascii=False) + "\n")  # one write: never half a line
        out.flush()
    if bad:
        print(f"harness: {bad} bad line{'s' if bad != 1 else ''} in {path} (not graded)", file=err, flush=True)
    return 2 if bad else 0


def usage() -> str:
    """`harness grade --help`: the command, its input, and every registered grader by name."""
    from . import graders

    lines = ["usage: harness grade FILE.jsonl [--grader NAME]   (FILE: a JSONL file, an evaluation's samples.jsonl, "
             "or - for standard input)", "", "Each line {\"answer\": ..., \"gold\": ..., \"kind\": \"math\"|\"choice\", "
             "\"id\": ...} or a samples.jsonl row; one JSON verdict line each (tasks/grading/regrade.py).", "",
             f"graders (--grader, default {OWN_GRADER}):"]
    for name in graders.names():
        g = graders.get(name)
        lines.append(f"  {name:<13} {g.description}")
        lines.append(f"  {'':<13} source: {g.source}" + (f"; {g.choice_note}" if g.choice_note else ""))
    return "\n".join(lines)

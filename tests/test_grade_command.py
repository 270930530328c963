"""`harness grade FILE.jsonl`: other tools' answers graded line by line; bad lines named, skipped, exit 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rzoo.harness.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, lines: list) -> Path:
    chunks = [line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()
              for line in lines]
    path.write_bytes(b"\n".join(chunks) + b"\n")
    return path


def _graded(capsys) -> tuple[list[dict], str]:
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_grades_math_and_choice_lines(tmp_path, capsys):
    path = _write(tmp_path / "answers.jsonl", [
        {"id": "a", "answer": r"so the answer is \boxed{\frac{1}{2}}", "gold": "0.5"},
        {"id": 2, "answer": r"\boxed{1}, \boxed{2}", "gold": r"\{1, 2\}", "kind": "math"},
        {"answer": r"\boxed{13}", "gold": 12},
        "",
        {"id": "mc", "answer": "La respuesta es (B)", "gold": "B", "kind": "choice"},
        {"id": "mc4", "answer": "The answer is (E).", "gold": "A", "kind": "choice", "options": 4},
        {"id": "mc-j", "answer": "The answer is (J).", "gold": "j", "kind": "choice"},
    ])
    assert main(["grade", str(path)]) == 0
    rows, err = _graded(capsys)
    assert err == ""
    assert [r.get("id") for r in rows] == ["a", 2, None, "mc", "mc4", "mc-j"]
    assert [r["line"] for r in rows] == [1, 2, 3, 5, 6, 7]  # blank line 4 skipped
    assert [r["correct"] for r in rows] == [True, True, False, True, False, True]
    assert rows[0]["extracted"] and rows[0]["kind"] == "math" and rows[0]["timed_out"] is False
    assert rows[4]["extracted"] is None  # E is not an option of a four-option question


def test_bad_lines_are_named_skipped_and_exit_2(tmp_path, capsys):
    path = _write(tmp_path / "mixed.jsonl", [
        {"id": 1, "answer": r"\boxed{4}", "gold": "4"},
        "{not json",
        b'{"answer": "caf\xe9", "gold": "1"}',  # Latin-1, not UTF-8
        "[1, 2]",
        {"answer": None, "gold": "3"},
        {"gold": "3"},
        {"answer": "x", "gold": "3", "kind": "essay"},
        {"answer": "(C)", "gold": "CD", "kind": "choice"},
        {"answer": "(C)", "gold": "C", "kind": "choice", "options": 11},
        {"answer": "4", "gold": True},
        {"id": 11, "answer": r"\boxed{5}", "gold": "5"},
    ])
    assert main(["grade", str(path)]) == 2
    rows, err = _graded(capsys)
    assert [(r["id"], r["correct"]) for r in rows] == [(1, True), (11, True)]  # the good lines, all of them
    messages = [line for line in err.splitlines() if line.startswith("harness: error: ")]
    assert len(messages) == 9
    for number, fragment in zip(range(2, 11), ["not valid JSON", "not UTF-8", "expected a JSON object",
                                                "'answer' must be a string, not null", "no 'answer' field",
                                                "'kind' must be one of math, choice", "a choice gold must name one letter A-J",
                                                "'options' must be a number from 2 to 10",
                                                "'gold' must be a string or a number, not bool"]):
        assert any(m.startswith(f"harness: error: {path}:{number}: ") and fragment in m for m in messages), fragment
    assert "9 bad lines" in err


def test_missing_file_directory_and_usage(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: not found" in capsys.readouterr().err
    assert main(["grade", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["grade"]) == 2
    assert "usage: harness grade FILE.jsonl" in capsys.readouterr().err


def test_reads_standard_input_in_a_real_process():
    """The installed entry point, end to end: `-` reads stdin; a UTF-8 BOM is tolerated; stdout is JSONL."""
    lines = "\ufeff" + json.dumps({"id": "x", "answer": "ANSWER: C", "gold": "C", "kind": "choice"}) + "\n"
    out = subprocess.run([sys.executable, "-m", "rzoo.harness.cli", "grade", "-"], input=lines.encode(),
                         capture_output=True, timeout=120, env={**_env(), "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout) == {"line": 1, "id": "x", "kind": "choice", "correct": True, "extracted": "C"}


def _env() -> dict:
    import os

    return dict(os.environ)

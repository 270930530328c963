"""Reading run files for the leaderboard without trusting them.

A run folder is written by this project, but it may be from an older version, edited by hand,
truncated by a crash or a full disk, or copied from someone else. The leaderboard (rebuilt by every
`harness eval`) must build from the good files whatever the bad ones hold, so each file is read
here, checked, and either returned whole or skipped with one warning naming it:

- bytes that are not UTF-8, JSON that does not parse, `NaN` / `Infinity` (not JSON, though Python
  writes and reads them), a bad line anywhere in a `.jsonl` file: the file is skipped;
- wrong shapes: `results.json` needs a `task` string and a `results` list of objects whose
  accuracy is a number in [0, 1], whose knobs are null or of their declared type (a finite number, a
  bool, a string) and whose statistics are finite numbers or null; `model` and `data` are objects (or
  absent); `curves`, when present, a list of objects with finite numbers or null; `config.json` and `status.json` are objects with a string `method` / `state` when present;
  `samples.jsonl` rows are objects with knobs of their types;
  `train.jsonl` rows are objects with a finite `step` and finite plotted values.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

# results.json entries: the statistics the index, the plots and the run pages compute with
RESULT_NUMBERS = ("thinking_tokens_mean", "thinking_tokens_median", "flops_mean", "n_problems", "closed_rate",
                  "forced_rate", "truncation_rate", "seconds", "tokens_per_second", "grader_disagreements",
                  "reflections_mean")
# train.jsonl values the training figure plots
TRAIN_NUMBERS = ("reward_mean", "accuracy_mean", "format_mean", "loss", "completion_tokens_mean",
                 "thinking_tokens_mean", "completion_tokens", "reflection_words_mean")


def _knob_names() -> tuple[str, ...]:
    """The registered test-time knobs' names: the columns a row may hold as knobs."""
    from rzoo.harness.generation import knobs

    return tuple(knobs.names())


def _check_knobs(row: dict, where: str) -> None:
    """Each knob's value is null or of its declared type: a finite number, a bool, a string."""
    from rzoo.harness.generation import knobs

    for knob in knobs.all_knobs():
        value = row.get(knob.name)
        if value is None:
            continue
        if knob.type is bool and not isinstance(value, bool):
            raise BadFile(f"{where}: {knob.name!r} is not true, false or null")
        if knob.type is str and not isinstance(value, str):
            raise BadFile(f"{where}: {knob.name!r} is not a string or null")
        if knob.type not in (bool, str) and not finite(value):
            raise BadFile(f"{where}: {knob.name!r} is not a finite number or null")


class BadFile(ValueError):
    """A run file that is not what it should be; the message says why (never its content)."""


def warn(message: str) -> None:
    print(f"[leaderboard] warning: {message}", file=sys.stderr)


def _no_constant(name: str):
    raise BadFile(f"{name} is not a JSON number")


def parse_json(text: str) -> Any:
    """Strict JSON: `NaN` and `Infinity` are errors (BadFile), as in the JSON standard."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise BadFile(f"not valid JSON ({e.msg}, line {e.lineno})") from None
    except RecursionError:
        raise BadFile("JSON nested too deeply") from None


def read_text(path: Path) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise BadFile(f"cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise BadFile(f"not UTF-8 (line {line})") from None


def finite(value: Any) -> bool:
    """A real number that is finite (bool is not a number here; huge ints that overflow are not finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _optional_number(row: dict, key: str, where: str) -> None:
    if row.get(key) is not None and not finite(row[key]):
        raise BadFile(f"{where}: {key!r} is not a finite number or null")


def _optional_text(row: dict, key: str, where: str) -> None:
    if row.get(key) is not None and not isinstance(row[key], str):
        raise BadFile(f"{where}: {key!r} is not a string or null")


def check_results(data: Any) -> dict:
    """A results.json's content, checked (BadFile says what is wrong)."""
    if not isinstance(data, dict):
        raise BadFile("not a JSON object")
    if not isinstance(data.get("task"), str) or not data["task"].strip():
        raise BadFile("no 'task' string")
    if not isinstance(data.get("results"), list):
        raise BadFile("no 'results' list")
    for key in ("model", "data"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise BadFile(f"{key!r} is a {type(data[key]).__name__}, not an object")
    for key in ("spec", "source", "base_model"):
        _optional_text(data.get("model") or {}, key, "model")
    for key in ("kind", "location", "sha256"):
        _optional_text(data.get("data") or {}, key, "data")
    for key in ("n_problems", "n_problems_total", "k", "seed"):
        _optional_number(data, key, "results.json")
    _optional_text(data, "git_sha", "results.json")
    for i, r in enumerate(data["results"]):
        where = f"results[{i}]"
        if not isinstance(r, dict):
            raise BadFile(f"{where} is not an object")
        if "budget" not in r or "accuracy" not in r:
            raise BadFile(f"{where} has no 'budget' / 'accuracy'")
        if not finite(r["accuracy"]) or not 0 <= r["accuracy"] <= 1:
            raise BadFile(f"{where}: 'accuracy' is not a number in [0, 1]")
        names = _knob_names()
        _check_knobs(r, where)
        for key in RESULT_NUMBERS:
            _optional_number(r, key, where)
        if r.get("knob") is not None and r["knob"] not in names:
            raise BadFile(f"{where}: 'knob' is not one of {', '.join(names)}")
        ci = r.get("accuracy_ci95")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(finite(x) for x in ci)):
            raise BadFile(f"{where}: 'accuracy_ci95' is not two finite numbers")
    curves = data.get("curves")
    if curves is not None and not isinstance(curves, list):
        raise BadFile("'curves' is not a list")
    for i, c in enumerate(curves or []):
        if not isinstance(c, dict):
            raise BadFile(f"curves[{i}] is not an object")
        for key in ("control", "scaling", "performance", "settings"):
            _optional_number(c, key, f"curves[{i}]")
        for key in ("knob", "title", "series"):
            _optional_text(c, key, f"curves[{i}]")
    return data


def check_config(data: Any) -> dict:
    if not isinstance(data, dict):
        raise BadFile("not a JSON object")
    if data.get("method") is not None and (not isinstance(data["method"], str) or not data["method"].strip()):
        raise BadFile("'method' is not a string")
    return data


def check_status(data: Any) -> dict:
    if not isinstance(data, dict):
        raise BadFile("not a JSON object")
    _optional_text(data, "state", "status.json")
    return data


def check_sample(row: Any, where: str) -> dict:
    if not isinstance(row, dict):
        raise BadFile(f"{where} is not an object")
    _check_knobs(row, where)
    for key in ("thinking_tokens", "answer_tokens", "sample_index"):
        _optional_number(row, key, where)
    return row


def check_train_row(row: Any, where: str) -> dict:
    if not isinstance(row, dict):
        raise BadFile(f"{where} is not an object")
    if not finite(row.get("step")):
        raise BadFile(f"{where}: 'step' is not a finite number")
    for key in TRAIN_NUMBERS:
        _optional_number(row, key, where)
    return row


def read_json(path: Path, check=lambda data: data) -> dict | None:
    """A checked JSON object from `path`, or None with one warning naming the file."""
    try:
        return check(parse_json(read_text(path)))
    except BadFile as e:
        warn(f"skipping {path}: {e}")
        return None


def read_jsonl(path: Path, check) -> list[dict] | None:
    """Checked rows of a JSONL file, or None with one warning naming the file (and the bad line)."""
    try:
        text = read_text(path)
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(check(parse_json(line), f"line {number}"))
                except BadFile as e:
                    message = str(e)
                    raise BadFile(message if message.startswith("line ") else f"line {number}: {message}") from None
        return rows
    except BadFile as e:
        warn(f"skipping {path}: {e}")
        return None

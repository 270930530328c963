"""What a task is: problems, a prompt, and a scorer shared by evaluation and RL reward.

A task module defines one `Task` subclass instance named `TASK`. `load()` returns `Problem`s and a
`Source` (where the data came from and the sha256 of the file read). Data comes from a local data
directory when one is configured (`$RZOO_DATA`, or `eval.data_dir`); else from the task's hub
dataset when the hub answers; else from `../shared/data` next to the project when it exists.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rzoo.harness.data import OWN_GRADER, Grade, Problem, Reply, Source  # noqa: F401 - re-exported for task modules
from rzoo.harness.generation.steps import MATH_STEPS, StepRule

DATA_ENV = "RZOO_DATA"


class TaskError(ValueError):
    """Missing or malformed task data; the message names the file and row."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_problems(problems: list[Problem]) -> str:
    blob = json.dumps([[p.id, p.question, p.answer] for p in problems]).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class DataDir:
    path: Path
    explicit: bool  # configured by the user: wins over the hub. Found beside the project: hub first.


def find_data_dir(configured: str | None = None) -> DataDir | None:
    """The local data directory: configured (`eval.data_dir`, `$RZOO_DATA`), or `../shared/data`
    beside the project (or the working directory's parent) when it exists."""
    for candidate in (configured, os.environ.get(DATA_ENV)):
        if candidate:
            path = Path(candidate).expanduser()
            if path.exists() and not path.is_dir():
                raise TaskError(f"data directory {str(path)!r} is a file, not a directory")
            if not path.is_dir():
                raise TaskError(f"data directory {str(path)!r} does not exist")
            return DataDir(path.resolve(), explicit=True)
    project_root = Path(__file__).resolve().parent.parent
    for guess in (project_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if guess.is_dir():
            return DataDir(guess.resolve(), explicit=False)
    return None


@lru_cache(maxsize=None)
def hub_reachable(hub_id: str) -> bool:
    """One quick metadata request (~0.4 s to fail offline; `datasets` itself retries for ~25 s)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    from huggingface_hub import HfApi

    try:
        HfApi().dataset_info(hub_id, timeout=5)
    except Exception:  # noqa: BLE001 - any failure of this probe (DNS, HTTP, auth; requests or httpx
        return False  # depending on the huggingface_hub version) means "use the local copy"
    return True


def check_data_file(path: Path) -> None:
    """A one-line TaskError unless `path` is a readable file: missing, a directory and unreadable are
    told apart (a directory was once reported as "not found")."""
    path = Path(path)
    if path.is_dir():
        raise TaskError(f"data file {str(path)!r} is a directory, not a file")
    if not path.is_file():
        raise TaskError(f"data file {str(path)!r} not found")
    if not os.access(path, os.R_OK):
        raise TaskError(f"data file {str(path)!r} cannot be read (permission denied)")


def decode_utf8(raw: bytes, path: Path | str) -> str:
    """`raw` as UTF-8 text (a byte-order mark allowed), or a TaskError naming the file and line of
    the first byte that is not UTF-8 (the text itself is never echoed: it may be a withheld question)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise TaskError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8") \
            from None


def read_records(path: Path) -> list[dict]:
    """Rows of a .json (list) or .jsonl file; a malformed row is an error naming file and line."""
    check_data_file(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise TaskError(f"data file {str(path)!r} cannot be read ({e.strerror or type(e).__name__})") from None
    text = decode_utf8(raw, path)
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise TaskError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(rows, list):
            raise TaskError(f"{path}: expected a JSON list of records")
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise TaskError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TaskError(f"{path}: row {index} is a {type(row).__name__}, not an object with fields")
    return rows


def require(row: dict, key: str, path: Path | str, index: int) -> Any:
    if key not in row or row[key] is None or (isinstance(row[key], str) and not row[key].strip()):
        raise TaskError(f"{path}: row {index} has no {key!r} (fields: {', '.join(sorted(row))})")
    return row[key]


def hub_rows(hub_id: str, split: str, name: str | None = None) -> list[dict]:
    """Rows of a hub dataset; a clear error when no hub is reachable and no data dir was found."""
    try:
        from datasets import load_dataset

        return list(load_dataset(hub_id, name, split=split))
    except (ConnectionError, OSError, ValueError) as e:
        raise TaskError(
            f"no local data directory (set $RZOO_DATA or eval.data_dir) and hub dataset {hub_id!r} "
            f"could not be loaded: {type(e).__name__}"
        ) from None


class Task:
    """Base class. A benchmark subclass sets `name`, `description`, `local_file`, `hub_id` (and
    `hub_split` / `hub_config`) and implements `problem(row, index, where)`; a non-math task also
    overrides `messages` and `score`."""

    name: str = ""
    description: str = ""
    local_file: str = ""  # relative to the data directory
    hub_id: str | None = None
    hub_split: str = "test"
    hub_config: str | None = None
    expected_size: int | None = None  # a loaded file of another size is an error
    splits: tuple[str, ...] = ("test",)  # an evaluation set; a training set has ("train",)
    # which user template an evaluation protocol gives it (harness/evaluation/protocol.py): "math" (an open
    # answer), "integer" (AIME), "choice" (lettered options in the question); None: the task's own prompt
    # under every protocol (a format of its own, e.g. the testbed)
    family: str | None = "math"
    # False where the model's text may quote a question whose text must not be published (GPQA's
    # terms): the leaderboard then shows verdicts, letters and token counts but not the text. Pages
    # decide by the data's identity, not this name alone (`withheld.py`).
    publish_model_text: bool = True
    # how a chain splits into steps, for a process reward model and a step-level search (`generation/steps.py`):
    # a blank line ends a math step (Math-Shepherd's and Qwen2.5-Math-PRM's data, search-and-learn)
    steps: StepRule = MATH_STEPS

    def rows(self, data_dir: DataDir | Path | None) -> tuple[list[dict], Source]:
        """Raw records: from a configured data directory; else from the hub when it answers; else
        from a data directory found beside the project. A bare Path counts as configured."""
        if isinstance(data_dir, Path):
            data_dir = DataDir(data_dir, explicit=True)
        use_local = data_dir is not None and (
            data_dir.explicit or self.hub_id is None or not hub_reachable(self.hub_id))
        if use_local:
            path = data_dir.path / self.local_file
            check_data_file(path)
            return self.read_local(path), Source("local", str(path), sha256_file(path))
        if self.hub_id is None:
            raise TaskError(f"task {self.name!r} has no hub dataset; set $RZOO_DATA or eval.data_dir")
        rows = hub_rows(self.hub_id, self.hub_split, self.hub_config)
        blob = json.dumps(rows, sort_keys=True, default=str).encode()
        return rows, Source("hub", self.hub_id, hashlib.sha256(blob).hexdigest())

    def read_local(self, path: Path) -> list[dict]:
        return read_records(path)

    def problem(self, row: dict, index: int, where: str) -> Problem:
        raise NotImplementedError

    def load(self, data_dir: Path | None, split: str = "test") -> tuple[list[Problem], Source]:
        if split not in self.splits:
            kind = "an evaluation set" if self.splits == ("test",) else "a training set"
            raise TaskError(f"{self.name} is {kind} with split(s) {', '.join(self.splits)}, not {split!r}"
                            + ("; train on math_train, aime_train or runsum" if kind == "an evaluation set" else ""))
        rows, source = self.rows(data_dir)
        problems = [self.problem(row, i, source.location) for i, row in enumerate(rows)]
        if not problems:
            raise TaskError(f"{source.location}: no problems in the file")
        if self.expected_size is not None and len(problems) != self.expected_size:
            raise TaskError(f"{source.location}: expected {self.expected_size} problems, found {len(problems)}")
        ids = [p.id for p in problems]
        if len(set(ids)) != len(ids):
            raise TaskError(f"{source.location}: problem ids are not unique")
        if split == "train":  # never train on an evaluation problem
            from .overlap import remove_overlaps

            if isinstance(data_dir, Path):
                data_dir = DataDir(data_dir, explicit=True)
            problems, removed, record = remove_overlaps(problems, data_dir, self.name)
            location = f"{source.location} (minus {len(removed)} evaluation problems)" if removed else source.location
            source = Source(source.kind, location, source.sha256, decontamination=record)
        return problems, source

    def messages(self, problem: Problem) -> list[dict]:
        """The math prompt (reason in the thinking block, answer in `\\boxed{}`); GPQA overrides."""
        return math_messages(problem.question)

    def instruct(self, messages: list[dict], control: str, value, text: str) -> list[dict]:
        """`messages` with a test-time control's instruction (`text`, e.g. "Think for up to 512 tokens.")
        placed as s1's evaluation places it: after the question, past a blank line. `control` and `value`
        (the knob and its setting) are for a task that words its instructions its own way (the testbed)."""
        out = [dict(m) for m in messages]
        users = [i for i, m in enumerate(out) if m["role"] == "user"]
        if not users:
            raise TaskError(f"task {self.name!r}: no user message to place the {control} instruction in")
        out[users[-1]]["content"] = f"{out[users[-1]]['content']}\n\n{text}"
        return out

    def golds(self, problem: Problem) -> tuple[str, ...]:
        """The gold answers a reply may match: a list task's (`meta["answers"]`, any of them), else the one."""
        answers = problem.meta.get("answers") if problem.meta else None
        return tuple(answers) if answers else (problem.answer,)

    def step_labels(self, problem: Problem, steps: list[str]) -> list[bool] | None:
        """Exact labels of a chain's thinking steps (is the chain still right after each one?), where the task can
        check a step; None where it cannot (a PRM's labels then come from Monte-Carlo rollouts, `methods/prm.py`)."""
        return None

    def countdown_zero(self, thinking: str) -> int | None:
        """Where a step-conditional trace's countdown reaches 0 (s1's "0 steps left", its conditional models
        writing "<k> steps left" before each step): the character index, or None (`generation/countdown.py`)."""
        m = _COUNTDOWN_ZERO.search(thinking)
        return m.start() if m else None

    def score(self, problem: Problem, answer_text: str) -> float:
        """1.0 if the answer text (after the thinking block) is correct, else 0.0. The RL accuracy
        reward calls this same function. Default: math-verify against the gold answer (any of a list)."""
        from .grading.verdict import math_score

        return 1.0 if any(math_score(answer_text, g) == 1.0 for g in self.golds(problem)) else 0.0

    def grade(self, problem: Problem, answer_text: str) -> Grade:
        """`score`'s verdict with what evaluation records for audit: the extracted answer, the sympy
        second opinion, and whether the time limit was hit."""
        from .grading.verdict import math_verdict
        from .grading.sympy_check import sympy_verdict

        golds = self.golds(problem)
        verdicts = [math_verdict(answer_text, g) for g in golds]
        verdict = next((v for v in verdicts if v.correct), verdicts[0])
        return Grade(verdict.correct, verdict.extracted, any(sympy_verdict(answer_text, g) for g in golds),
                     any(v.timed_out for v in verdicts))

    def grade_with(self, grader: str, problem: Problem, reply: Reply) -> Grade:
        """The verdict of the registered grader `grader` (`grading/graders.py`) on a whole reply; `rzoo` is this
        project's own (`grade` on the text after the block, with its second opinion; no answer when unclosed)."""
        if grader == OWN_GRADER:
            return self.grade(problem, reply.answer) if reply.closed else Grade(False, None)
        from .grading import graders

        v = graders.get(grader).math(reply, self.golds(problem))
        return Grade(v.correct, v.extracted, None, v.timed_out)


_COUNTDOWN_ZERO = re.compile(r"(?<![\d.])0 steps? left")

# One prompt for the math family: the format goes in the system message (it replaces a chat template's
# default system prompt, e.g. SmolLM2's), the problem is the user message. Measured on SmolLM2-135M: the
# format in the system message takes self-closed thinking blocks from ~0% to ~40%. The box is shown
# empty on purpose: a placeholder inside it (`\\boxed{answer}`) was copied verbatim under GRPO.
MATH_SYSTEM = (
    "Solve the problem. Reply in this format:\n<think>\nstep-by-step reasoning\n</think>\n"
    "The answer is \\boxed{}, with the final answer inside the braces."
)


def math_messages(question: str) -> list[dict]:
    return [{"role": "system", "content": MATH_SYSTEM}, {"role": "user", "content": question}]

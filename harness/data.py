"""What the core knows of tasks and training data: plain records and one protocol.

The core (training loops, generation, evaluation) never imports `rzoo.tasks`: the command line
resolves a task name to an object that has `messages`, `score` and `grade` (the `TaskLike` protocol
below) and hands it over, with the problems it loaded. Tasks build these records; they live here so
that both sides share one definition.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. level, subject, the testbed's n


@dataclass(frozen=True)
class Grade:
    correct: bool  # the verdict (the same function as the RL reward)
    extracted: str | None  # the answer as read, for maj@k and audit
    second_opinion: bool | None = None  # an independent grader's verdict; None where there is none
    timed_out: bool = False


OWN_GRADER = "rzoo"  # this project's own graders (a task's `grade`); every sample keeps their verdict


@dataclass(frozen=True)
class Reply:
    """A reply as graders read it (`rzoo.tasks.grading.graders`): the thinking, the text after the block, and
    whether the block was closed (by the model, by budget forcing, or by the harness at an end of turn)."""
    thinking: str
    answer: str
    closed: bool
    close: str = "</think>"  # the end-of-thinking delimiter, for graders that read the whole output

    def whole(self) -> str:
        """The whole output as a grader that reads everything sees it (a cut-off reply is its thinking alone)."""
        if not self.closed:
            return self.thinking
        return f"{self.thinking}\n{self.close}\n\n{self.answer}" if self.thinking else self.answer


@dataclass(frozen=True)
class Source:
    kind: str  # "local", "hub", "generated"
    location: str  # file path, hub id, or generator description
    sha256: str | None = None  # of the file read (local) or of the problems' canonical JSON
    # training data: what the contamination check read and found (`tasks/overlap.py`); None where none ran
    decontamination: dict | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Example:
    """One supervised example: a chat prompt and the assistant's thinking and answer (SFT data)."""
    id: str
    messages: list[dict]
    thinking: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


class TaskLike(Protocol):
    """What training and evaluation call on a task (implemented by `rzoo.tasks.base.Task`)."""
    name: str

    def messages(self, problem: Problem) -> list[dict]: ...

    def score(self, problem: Problem, answer_text: str) -> float: ...

    def grade(self, problem: Problem, answer_text: str) -> Grade: ...

    def grade_with(self, grader: str, problem: Problem, reply: Reply) -> Grade: ...


@dataclass
class TaskData:
    """A loaded task: the object, the problems chosen (a subset for evaluation), and provenance."""
    name: str
    task: TaskLike
    problems: list[Problem]
    source: Source
    total: int  # problems in the split before any subset


@dataclass
class SFTData:
    """Loaded supervised examples and where they came from."""
    name: str
    examples: list[Example]
    source: Source
    task: TaskLike | None = None  # the task that wrote them, where one did (its own hooks, e.g. `state_targets`)

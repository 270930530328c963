"""Evaluation protocols: how a paper's authors evaluate, as presets kept in data files that cite their
sources (`protocols/<name>.json`). `eval.protocol=NAME` applies one:

- the prompt: a system prompt or none (`system`: text, null, or "task" for the task's own prompt) and a
  user template per task family (`user`: math / integer / choice; "task": the task's own), `{question}`
  standing for the problem (a multiple-choice problem's text holds its options); a task with a format of
  its own (`family = None`, the testbed) keeps its prompt under every protocol;
- whether the reply opens a thinking block (`open_thinking`: once, as the model's template does it or
  pre-filled where it does not; false for models that do not think), or the delimiters the paper's harness
  appends itself whatever the template holds (`delimiters`: open, close, forced_close, ended_close; s1's
  `<|im_start|>think` with no newline after it);
- the sets it stands in for where the paper's own cannot be read offline (`substitutes`: task -> a note the
  run prints and results.json records);
- the evaluation settings it decides (`settings`: sampling, samples per problem, overall and per task,
  budgets, what happens at the cap and when the turn ends inside the thinking block), applied as a
  preset: `key=value` overrides still win, and results record the protocol, what it set and what was
  overridden;
- the grader its paper used, per task family (`graders`: `math` / `choice` -> a registered grader name,
  `rzoo.tasks.grading.graders`); every sample also keeps this project's own verdict (`correct_rzoo`), and
  results report accuracy under both and how many samples the two disagree on. A task with a format of its own
  (`family = None`) is graded by its own scorer under every protocol;
- the tasks its paper reports (`tasks`: what `harness tasks` lists beside each set);
- the headline metric and the departures from the source (`headline`, `notes`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..config import ConfigError
from ..data import OWN_GRADER

FOLDER = Path(__file__).resolve().parent / "protocols"
TASK_OWN = "task"
DEFAULT = "rzoo"  # the project's own protocol (EvalConfig.protocol's default): the others are papers' evaluations


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    sources: tuple[str, ...]
    system: str | None
    user: object  # {family: template} or "task"
    open_thinking: bool = True
    settings: dict = field(default_factory=dict)
    headline: str = ""
    notes: tuple[str, ...] = ()
    graders: dict = field(default_factory=dict)  # {family: grader name}; a family not named: OWN_GRADER
    tasks: tuple[str, ...] = ()  # the sets its paper reports
    delimiters: dict = field(default_factory=dict)  # the thinking format the paper's harness writes, if its own
    substitutes: dict = field(default_factory=dict)  # task -> what it stands in for, said by every run

    def grader_for(self, task) -> str:
        """The grader this protocol names for `task`'s family (this project's own for a format of its own)."""
        family = getattr(task, "family", "math")
        if family is None:
            return OWN_GRADER
        return self.graders.get(family) or self.graders.get("math") or OWN_GRADER

    def messages(self, task, problem) -> list[dict]:
        """The chat messages for `problem` of `task` under this protocol."""
        family = getattr(task, "family", "math")
        if self.user == TASK_OWN or family is None:
            return task.messages(problem)
        template = self.user.get(family) or self.user["math"]
        out = [] if self.system in (None, "") else [{"role": "system", "content": self.system}]
        return out + [{"role": "user", "content": template.replace("{question}", problem.question)}]

    def thinking_format(self, fmt):
        """The thinking format under this protocol: the delimiters it writes itself (whatever the model's template
        holds), else the model's (no opening where the protocol opens no block)."""
        import dataclasses

        if self.delimiters:
            return dataclasses.replace(fmt, **self.delimiters)
        return fmt if self.open_thinking else dataclasses.replace(fmt, open="")


def names() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.json"))


@lru_cache(maxsize=None)
def load(name: str) -> Protocol:
    """The protocol `name` (ConfigError naming the valid ones for an unknown name)."""
    path = FOLDER / f"{name}.json"
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(name, names(), n=2, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown eval.protocol {name!r}.{hint} Valid: {', '.join(names())}")
    data = json.loads(path.read_text(encoding="utf-8"))
    return Protocol(data["name"], data["title"], tuple(data["sources"]), data["system"], data["user"],
                    data.get("open_thinking", True), dict(data.get("settings", {})), data.get("headline", ""),
                    tuple(data.get("notes", ())), dict(data.get("graders", {})), tuple(data.get("tasks", ())),
                    dict(data.get("delimiters", {})), dict(data.get("substitutes", {})))

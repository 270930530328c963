"""Reasoning steps: how a task splits a chain into the steps a process reward model (PRM) scores and a search
extends one at a time.

A task declares its rule (`Task.steps`, a `StepRule`): math ends a step at a blank line (the convention of
Math-Shepherd's and Qwen2.5-Math-PRM's data, and of search-and-learn's beam search), capped at `max_tokens`; the
testbed's step is one running sum, one token (`StepRule(None, 1)`). A chain's steps are cut from its token ids as
generated (never re-tokenised), so the PRM scores exactly the tokens the policy wrote; the close of the thinking
block and the answer after it are one last step (`path_steps`), so a PRM's score of a finished chain covers its
answer (search-and-learn scores the final step with its answer in it).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepRule:
    stop: str | None = "\n\n"  # a step ends once its text contains this (None: by length alone)
    max_tokens: int = 256  # ... or at this many tokens

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"a step has at least one token, not max_tokens={self.max_tokens}")
        if self.stop == "":
            raise ValueError("a step rule's stop text is None (by length) or a non-empty string")


MATH_STEPS = StepRule("\n\n", 256)


def split_ids(tokenizer, ids: list[int], rule: StepRule) -> list[list[int]]:
    """`ids` cut into steps: each ends at the token that completes `rule.stop` in its text, or at `max_tokens`."""
    steps, current = [], []
    for token in ids:
        current.append(token)
        ended = len(current) >= rule.max_tokens or (
            rule.stop is not None and rule.stop in tokenizer.decode(current[-len(rule.stop) - 8:]))
        if ended:
            steps.append(current)
            current = []
    if current:
        steps.append(current)
    return steps


def path_steps(tokenizer, completion, rule: StepRule) -> list[list[int]]:
    """A completion's steps: its thinking cut by `rule`, then (when the block was closed, by the model or by
    budget forcing) the close and the answer as one last step. An unclosed chain has no last step."""
    from . import thinking as T

    steps = split_ids(tokenizer, list(completion.thinking_ids), rule)
    if completion.thinking_end != T.INCOMPLETE:
        steps.append(list(completion.close_ids) + list(completion.answer_ids))
    return steps

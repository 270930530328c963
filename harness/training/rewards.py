"""Reward functions, registered by name (`RLConfig.reward`). Rule rewards only: no reward model.

A reward function sees one prompt's whole group of completions (Kimi's length penalty compares
lengths within the group) and returns one dict of named terms per completion, including "total":

    fn(task, problem, group: list[Completion], *, step: int, <config settings>) -> list[dict[str, float]]

Keyword-only parameters other than `step` are read from the method's config by name. Accuracy is the
task's own scorer (the same function evaluation grades with); a block that never closed has no answer
and scores 0. Methods register their own rewards in their module (R1-Zero's format reward lives in
`methods/grpo.py`).
"""
from __future__ import annotations

from ..generation import thinking as T
from ..registry import Registry

REWARDS = Registry("reward")


def accuracy(task, problem, completion) -> float:
    """The task's scorer on the answer; an unclosed thinking block has no answer (0)."""
    if completion.thinking_end == T.INCOMPLETE:
        return 0.0
    return float(task.score(problem, completion.answer_text))


@REWARDS.register("accuracy")
def accuracy_reward(task, problem, group, *, step: int) -> list[dict[str, float]]:
    """1 for a correct answer, else 0 (a forced answer counts when rollouts force-close)."""
    out = []
    for c in group:
        acc = accuracy(task, problem, c)
        out.append({"accuracy": acc, "total": acc})
    return out


@REWARDS.register("correct_and_closed")
def correct_and_closed_reward(task, problem, group, *, step: int) -> list[dict[str, float]]:
    """DeepScaleR's reward (rllm's `RewardMathFn`): 1 when the model closed its thinking itself and the
    answer is correct, else 0. A forced close earns nothing, so with `force_close=false` in rollouts a
    truncated response scores 0, as in the recipe."""
    out = []
    for c in group:
        closed = c.thinking_end == T.CLOSED
        acc = accuracy(task, problem, c)
        out.append({"accuracy": acc, "closed": float(closed), "total": float(closed and acc == 1.0)})
    return out


def soft_overlong_punishment(length: int, max_length: int, buffer: int) -> float:
    """DAPO's soft over-long punishment (Yu et al. 2025, eq. 13; TRL `get_soft_overlong_punishment`):

        0                                  if |y| <= L_max - L_cache
        ((L_max - L_cache) - |y|) / L_cache  if L_max - L_cache < |y| <= L_max
        -1                                 if |y| > L_max

    added to the rule reward, so a response is punished the more the further it runs into the buffer."""
    if buffer < 0 or buffer > max_length:
        raise ValueError(f"overlong buffer must be in [0, max_length={max_length}], got {buffer}")
    if length <= max_length - buffer:
        return 0.0
    if length <= max_length:
        return (max_length - buffer - length) / buffer
    return -1.0


@REWARDS.register("accuracy_overlong")
def accuracy_overlong_reward(task, problem, group, *, step: int, max_thinking_tokens: int, answer_tokens: int,
                             overlong_buffer: int) -> list[dict[str, float]]:
    """DAPO's reward (§3.4, eq. 13): +1 correct / -1 wrong (DAPO's rule reward), plus the soft over-long
    punishment on the completion's length, L_max = the completion cap (thinking budget + answer budget), L_cache =
    `overlong_buffer` (paper: 20,480 and 4,096)."""
    out = []
    cap = max_thinking_tokens + answer_tokens
    for c in group:
        acc = accuracy(task, problem, c)
        penalty = soft_overlong_punishment(len(c.completion_ids), cap, overlong_buffer)
        out.append({"accuracy": acc, "overlong": penalty, "total": (2.0 * acc - 1.0) + penalty})
    return out

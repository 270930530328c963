"""What a step of the RL loop trains on, when a recipe filters its rollouts (DAPO, Yu et al. 2025):

- dynamic sampling with refill (§3.2): `refill` draws rollouts until `prompts_per_step` groups whose rewards
  differ are in hand (or `dynamic_sampling_max_draws` rollouts were drawn), keeps the first of them and logs how
  many were drawn and dropped; the filter and the loop are `samplers.informative_groups` / `fill_informative`;
- overlong filtering (§3.4): `mask_truncated` leaves completions cut off by a length cap out of the loss.

Both are switched on by config fields (`dynamic_sampling`, `mask_truncated`), read by `rl.RLTrainer`.
"""
from __future__ import annotations

import dataclasses

import torch

from ..generation import forcing as G
from ..generation import thinking as T
from .samplers import fill_informative


def refill(trainer, step: int, cfg, first, first_rewards: torch.Tensor):
    """Dynamic sampling with refill (DAPO §3.2, verl's `max_num_gen_batches`): rollouts are drawn until
    `prompts_per_step` groups with unequal rewards are in hand or `dynamic_sampling_max_draws` rollouts were
    drawn; the batch is the first `prompts_per_step` of them (fewer at the cap)."""
    drawn = [(first, first_rewards)]

    def draw(k: int) -> torch.Tensor:
        if k >= len(drawn):
            ro = trainer.rollout(step, cfg, draw=k)
            drawn.append((ro, trainer.score(ro, step, cfg)[0]))
        return drawn[k][1]

    kept, n_draws = fill_informative(draw, cfg.prompts_per_step, cfg.dynamic_sampling_max_draws)
    batch = select_groups([ro for ro, _ in drawn], kept, cfg.samples_per_prompt)
    rewards = (torch.stack([drawn[k][1][p] for k, p in kept]) if kept
               else torch.zeros(0, cfg.samples_per_prompt))
    n_groups = sum(len(ro.problems) for ro, _ in drawn)
    informative = sum(int((r.max(1).values > r.min(1).values).sum()) for _, r in drawn)
    first_informative = int((first_rewards.max(1).values > first_rewards.min(1).values).sum())
    return batch, rewards, {"rollouts_drawn": n_draws, "groups_drawn": n_groups, "groups_kept": len(kept),
                            "dropped_frac": 1.0 - informative / max(1, n_groups),
                            "first_draw_dropped_frac": 1.0 - first_informative / max(1, len(first.problems))}


def truncated(c: G.Completion) -> bool:
    """Cut off by a length cap: the answer hit its budget, or the thinking hit its budget (force-closed there, or
    left unclosed with no end-of-turn after it). A model that closed its thinking, or ended its turn inside it, was
    not cut. TRL's rule, "the last token is not end-of-sequence", agrees except on force-closed rows (s1's forcing,
    not in TRL), whose answer ends the turn (tests/test_r1_successors.py)."""
    if c.answer_truncated:
        return True
    if c.thinking_end == T.CLOSED or c.turn_ended:
        return False
    if c.thinking_end == T.INCOMPLETE:  # an end-of-turn token follows the thinking when the model ended it
        return len(c.completion_ids) <= c.thinking_tokens
    return True  # forced closed at the budget


def mask_truncated(mask: torch.Tensor, is_truncated: torch.Tensor) -> torch.Tensor:
    """DAPO's overlong filtering (§3.4; TRL `mask_truncated_completions`): the loss mask (B, T) zeroed on the rows
    of truncated completions (B,) bool."""
    return mask * (~is_truncated.bool()).to(mask.dtype).unsqueeze(1)


def select_groups(rollouts: list, kept: list[tuple[int, int]], group: int):
    """One rollout made of the groups `kept` ((rollout, prompt) pairs) of several, prompts renumbered."""
    from .rl import Rollout

    out = Rollout([], [], [], [], sum(ro.seconds for ro in rollouts))
    for new, (k, p) in enumerate(kept):
        ro = rollouts[k]
        out.indices.append(ro.indices[p])
        out.problems.append(ro.problems[p])
        out.prompts.append(ro.prompts[p])
        out.completions += [dataclasses.replace(c, prompt_index=new) for c in ro.completions[p * group:(p + 1) * group]]
    return out

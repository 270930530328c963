"""Policy losses and advantage estimators: small pure functions, registered by name (verl style).

Shapes: B completions, T completion tokens (right-padded). `mask` (B, T) is 1 on tokens the policy
sampled (padding and injected budget-forcing tokens are 0).
"""
from __future__ import annotations

import torch

from dataclasses import dataclass
from typing import Callable

from ..registry import Registry

POLICY_LOSSES = Registry("policy loss")
ADVANTAGES = Registry("advantage estimator")
AGGREGATIONS = Registry("loss aggregation")


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi_theta || pi_ref) (Schulman 2020), as in DeepSeekMath/R1:
    pi_ref/pi_theta - log(pi_ref/pi_theta) - 1.  (B, T) -> (B, T), always >= 0."""
    log_ratio = ref_logps - logps
    return torch.exp(log_ratio) - log_ratio - 1


def masked_sequence_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each sequence's own tokens, then over sequences: (1/G) sum_i (1/|o_i|) sum_t."""
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


def masked_token_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over every token of the batch: sum_i sum_t / sum_i |o_i| (DAPO; DeepScaleR/verl "token-mean")."""
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


@dataclass(frozen=True)
class Aggregation:
    """How per-token losses (B, T) become one number, and how much a micro-batch weighs when a batch is
    split for memory (its share of the units the mean divides by: sequences or tokens), so that the
    accumulated gradient equals the whole batch's. `total` is the numerator of the mean (the sum over units
    of each unit's value): the batch's mean is the sum of its micro-batches' totals over its units."""
    reduce: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    units: Callable[[torch.Tensor], float]
    total: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __call__(self, per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.reduce(per_token, mask)


AGGREGATIONS.register("seq_mean")(Aggregation(
    masked_sequence_mean, lambda mask: float(mask.shape[0]),
    lambda x, mask: ((x * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).sum()))
AGGREGATIONS.register("token_mean")(Aggregation(
    masked_token_mean, lambda mask: float(mask.sum()), lambda x, mask: (x * mask).sum()))


@POLICY_LOSSES.register("grpo")
def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, *, clip_eps: float, beta: float,
              aggregation: str = "seq_mean") -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO (Shao et al. 2024, eq. 3; DeepSeek-R1 eq. 1), negated for minimisation:

        L = -(1/G) sum_i (1/|o_i|) sum_t [ min(rho A_i, clip(rho, 1-eps, 1+eps) A_i) - beta * KL_k3 ]
        rho = pi_theta(o_it) / pi_old(o_it)

    logps, old_logps, ref_logps, mask: (B, T); advantages: (B,), or (B, T) per token (vLLM rollouts' truncated
    importance weight folded in: `training/vllm_rollouts.py`). `old_logps` is `logps.detach()` when
    the rollout is used for a single update (then rho = 1 and only its gradient matters).
    `aggregation` (AGGREGATIONS): seq_mean is the paper's (1/G) sum_i (1/|o_i|) sum_t; token_mean
    divides by all tokens of the batch instead.
    """
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # (B, 1) or (B, T)
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    per_token = -torch.min(ratio * adv, clipped * adv)
    stats: dict[str, float] = {}
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("grpo_loss: beta != 0 needs ref_logps")
        kl = k3_kl(logps, ref_logps)
        per_token = per_token + beta * kl
        stats["kl"] = float(((kl * mask).sum() / mask.sum().clamp(min=1.0)).detach())
    with torch.no_grad():
        clipped_frac = ((ratio - clipped).abs() > 0).float()
        stats["clip_fraction"] = float((clipped_frac * mask).sum() / mask.sum().clamp(min=1.0))
    return AGGREGATIONS.get(aggregation)(per_token, mask), stats


@ADVANTAGES.register("group_normalized")
def group_normalized_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """GRPO's outcome advantage: A_i = (r_i - mean(r)) / std(r) within each prompt's group.

    rewards: (P, G) -> advantages (P*G,). std is the unbiased sample std, as in TRL; eps keeps a group
    whose rewards are all equal at advantage 0 instead of 0/0.
    """
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True) if rewards.shape[1] > 1 else torch.zeros_like(mean)
    return ((rewards - mean) / (std + eps)).reshape(-1)


def sequence_log_ratio(logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log pi_theta(y|x) - log pi_old(y|x) over each completion's sampled tokens: (B, T) -> (B,)."""
    return ((logps - old_logps) * mask).sum(-1)


@POLICY_LOSSES.register("kimi")
def kimi_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, *, tau: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Kimi k1.5's policy-mirror-descent surrogate (arXiv 2501.12599 §2.3.2, eq. 3), for minimisation:

        L = (1/k) sum_j ( r_j - tau log Z - tau log(pi_theta(y_j|x) / pi_theta_i(y_j|x)) )^2

    with sequence-level log-ratios against the iteration's policy pi_theta_i (the rollout policy:
    `old_logps`). `advantages` (B,) hold r_j - tau log Z (the `kimi_mean_baseline` or
    `kimi_logmeanexp_baseline` estimators). Averaged over all B rows (equal groups: the mean over prompts
    of each prompt's (1/k) sum). `ref_logps` is unused: the reference is the previous iterate.
    """
    ratio = sequence_log_ratio(logps, old_logps, mask)  # (B,)
    residual = advantages - tau * ratio
    stats = {"log_ratio_abs": float(ratio.detach().abs().mean())}
    return (residual ** 2).mean(), stats


@ADVANTAGES.register("kimi_mean_baseline")
def kimi_mean_baseline(rewards: torch.Tensor) -> torch.Tensor:
    """r_j - r_bar: tau log Z estimated by the group's mean reward, as the paper does in practice. (P, G) -> (P*G,)."""
    return (rewards - rewards.mean(dim=1, keepdim=True)).reshape(-1)


@ADVANTAGES.register("kimi_logmeanexp_baseline")
def kimi_logmeanexp_baseline(rewards: torch.Tensor, *, tau: float) -> torch.Tensor:
    """r_j - tau log (1/k) sum_j exp(r_j / tau): the closed-form estimate of tau log Z. (P, G) -> (P*G,)."""
    k = rewards.shape[1]
    log_z = torch.logsumexp(rewards / tau, dim=1, keepdim=True) - torch.log(torch.tensor(float(k)))
    return (rewards - tau * log_z).reshape(-1)

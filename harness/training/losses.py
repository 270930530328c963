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


def aggregation_of(aggregation) -> Aggregation:
    """An Aggregation from its registered name (or itself). A registered factory (an aggregation with
    settings, e.g. Dr. GRPO's constant) must be bound to a config first: `aggregation_for`."""
    agg = AGGREGATIONS.get(aggregation) if isinstance(aggregation, str) else aggregation
    if not isinstance(agg, Aggregation):
        raise ValueError(f"aggregation {aggregation!r} has settings: build it with losses.aggregation_for(name, cfg)")
    return agg


def aggregation_for(name: str, cfg) -> Aggregation:
    """The aggregation `name` for a config: a plain one as registered, a factory called with its settings
    read from `cfg` (Dr. GRPO's `constant_norm` reads the completion-length cap)."""
    agg = AGGREGATIONS.get(name)
    return agg if isinstance(agg, Aggregation) else AGGREGATIONS.bind(name, cfg)()


@AGGREGATIONS.register("constant_norm")
def constant_norm(*, max_thinking_tokens: int, answer_tokens: int) -> Aggregation:
    """Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training", §3.1 eq. 3): the 1/|o_i| of GRPO
    replaced by one constant, the generation budget MAX_TOKENS (here the completion cap, thinking budget +
    answer budget; TRL: `max_completion_length`):  (1/G) sum_i (1/MAX_TOKENS) sum_t.  A micro-batch weighs
    its share of the rows, like seq_mean."""
    c = float(max_thinking_tokens + answer_tokens)
    return Aggregation(lambda x, mask: (x * mask).sum() / (x.shape[0] * c), lambda mask: float(mask.shape[0]),
                       lambda x, mask: (x * mask).sum() / c)


AGGREGATIONS.register("seq_sum")(Aggregation(
    # LUSPO (TRL loss_type="luspo"): each completion's token sum, then the mean over completions, so a sequence-level
    # term (GSPO's, broadcast over tokens) weighs by its length
    lambda x, mask: (x * mask).sum(-1).mean(), lambda mask: float(mask.shape[0]), lambda x, mask: (x * mask).sum()))


def token_log_ratio(logps: torch.Tensor, old_logps: torch.Tensor) -> torch.Tensor:
    """log rho_t = log pi_theta(o_t) - log pi_old(o_t), per token: (B, T) -> (B, T) (PPO, GRPO, DAPO)."""
    return logps - old_logps


def sequence_mean_log_ratio(logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """GSPO's (Zheng et al. 2025, eq. 7) length-normalised sequence ratio, in logs:
    log s_i = (1/|y_i|) sum_t log(pi_theta(y_it) / pi_old(y_it)).  (B, T) -> (B, 1), broadcast over tokens;
    its gradient reaches every token through the mean (GSPO's eq. 10 / TRL importance_sampling_level="sequence")."""
    return (((logps - old_logps) * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, eps_low: float, eps_high: float) -> torch.Tensor:
    """PPO's clipped objective, negated, with separate bounds (DAPO's clip-higher, eq. 10):
    -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A). ratio (B, T) or (B, 1); adv (B, 1) or (B, T)."""
    return -torch.min(ratio * adv, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv)


def _advantage_2d(advantages: torch.Tensor) -> torch.Tensor:
    return advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # (B, 1) or (B, T)


def _with_kl(per_token, logps, ref_logps, mask, beta: float, stats: dict, name: str) -> torch.Tensor:
    """per_token + beta * k3 KL against the reference (DeepSeekMath's term), its mean logged as `kl`."""
    if beta == 0.0:
        return per_token
    if ref_logps is None:
        raise ValueError(f"{name}: beta != 0 needs ref_logps")
    kl = k3_kl(logps, ref_logps)
    stats["kl"] = float(((kl * mask).sum() / mask.sum().clamp(min=1.0)).detach())
    return per_token + beta * kl


def _clip_stats(ratio, low: float, high: float, mask, stats: dict) -> dict:
    with torch.no_grad():
        clipped = ((ratio < low) | (ratio > high)).float().expand_as(mask)
        stats["clip_fraction"] = float((clipped * mask).sum() / mask.sum().clamp(min=1.0))
    return stats


@POLICY_LOSSES.register("grpo")
def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, *, clip_eps: float, beta: float,
              aggregation: str | Aggregation = "seq_mean") -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO (Shao et al. 2024, eq. 3; DeepSeek-R1 eq. 1), negated for minimisation:

        L = -(1/G) sum_i (1/|o_i|) sum_t [ min(rho A_i, clip(rho, 1-eps, 1+eps) A_i) - beta * KL_k3 ]
        rho = pi_theta(o_it) / pi_old(o_it)

    logps, old_logps, ref_logps, mask: (B, T); advantages: (B,), or (B, T) per token (vLLM rollouts' truncated
    importance weight folded in: `training/vllm_rollouts.py`). `old_logps` is `logps.detach()` when
    the rollout is used for a single update (then rho = 1 and only its gradient matters).
    `aggregation` (AGGREGATIONS): seq_mean is the paper's (1/G) sum_i (1/|o_i|) sum_t; token_mean
    divides by all tokens of the batch instead; constant_norm by G x the completion cap (Dr. GRPO).
    """
    return clip_higher_loss(logps, old_logps, ref_logps, advantages, mask, clip_eps=clip_eps, clip_eps_high=clip_eps,
                            beta=beta, aggregation=aggregation)


@POLICY_LOSSES.register("clip_higher")
def clip_higher_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
                     advantages: torch.Tensor, mask: torch.Tensor, *, clip_eps: float, clip_eps_high: float,
                     beta: float, aggregation: str | Aggregation = "token_mean") -> tuple[torch.Tensor, dict]:
    """DAPO's clip-higher (Yu et al. 2025, eq. 8 and 10): GRPO's token ratio clipped to [1 - eps_low, 1 + eps_high]
    with eps_low = `clip_eps`, eps_high = `clip_eps_high` (paper: 0.2 / 0.28; TRL `epsilon` / `epsilon_high`), so
    a low-probability token with positive advantage may grow further before the clip stops it. DAPO aggregates
    over all tokens (`token_mean`, eq. 8's 1 / sum_i |o_i|) and drops the KL (beta = 0); both stay settings."""
    ratio = torch.exp(token_log_ratio(logps, old_logps))  # (B, T)
    per_token = clipped_surrogate(ratio, _advantage_2d(advantages), clip_eps, clip_eps_high)
    stats = _clip_stats(ratio, 1 - clip_eps, 1 + clip_eps_high, mask, {})
    per_token = _with_kl(per_token, logps, ref_logps, mask, beta, stats, "clip_higher_loss")
    return aggregation_of(aggregation)(per_token, mask), stats


@POLICY_LOSSES.register("gspo")
def gspo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, *, clip_eps: float, clip_eps_high: float,
              beta: float, aggregation: str | Aggregation = "seq_mean") -> tuple[torch.Tensor, dict]:
    """GSPO (Zheng et al. 2025, "Group Sequence Policy Optimization", eq. 5 and 7), negated:

        L = -(1/G) sum_i min(s_i A_i, clip(s_i, 1 - eps_low, 1 + eps_high) A_i),
        s_i = (pi_theta(y_i|x) / pi_old(y_i|x))^(1/|y_i|)

    the clip acts on whole responses (paper: eps 3e-4 / 4e-4). The sequence term is broadcast over the
    response's tokens, so seq_mean gives eq. 5 exactly (TRL: importance_sampling_level="sequence",
    loss_type="grpo"); seq_sum weighs each response by its length (TRL's "luspo")."""
    ratio = torch.exp(sequence_mean_log_ratio(logps, old_logps, mask))  # (B, 1)
    per_token = clipped_surrogate(ratio, _advantage_2d(advantages), clip_eps, clip_eps_high).expand_as(logps)
    stats = _clip_stats(ratio, 1 - clip_eps, 1 + clip_eps_high, mask, {})
    per_token = _with_kl(per_token, logps, ref_logps, mask, beta, stats, "gspo_loss")
    return aggregation_of(aggregation)(per_token, mask), stats


def clipped_is_weight(ratio: torch.Tensor, eps_low: float | None, eps_high: float) -> torch.Tensor:
    """CISPO's weight: sg(clip(rho, 1 - eps_low, 1 + eps_high)); no lower bound when eps_low is None
    (MiniMax-M1 sets eps_low^IS large: only the upper bound acts)."""
    low = None if eps_low is None else 1 - eps_low
    return torch.clamp(ratio, min=low, max=1 + eps_high).detach()


@POLICY_LOSSES.register("cispo")
def cispo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
               advantages: torch.Tensor, mask: torch.Tensor, *, cispo_eps_high: float, beta: float,
               cispo_eps_low: float | None = None,
               aggregation: str | Aggregation = "token_mean") -> tuple[torch.Tensor, dict]:
    """CISPO (MiniMax-M1, arXiv 2506.13585, eq. 4-5), negated:

        L = -(1 / sum_i |o_i|) sum_i sum_t sg(r_hat_it) A_it log pi_theta(o_it),
        r_hat = clip(rho, 1 - eps_low^IS, 1 + eps_high^IS)

    The weight is clipped, not the objective: every token keeps its gradient (PPO's clip zeroes it), only
    scaled by at most 1 + eps_high. TRL's `loss_type="cispo"` caps at `epsilon_high` itself (= 1 + our
    `cispo_eps_high`) and has no lower bound (our `cispo_eps_low=None`)."""
    ratio = torch.exp(token_log_ratio(logps, old_logps))
    weight = clipped_is_weight(ratio, cispo_eps_low, cispo_eps_high)
    per_token = -weight * _advantage_2d(advantages) * logps
    low = -float("inf") if cispo_eps_low is None else 1 - cispo_eps_low
    stats = _clip_stats(ratio, low, 1 + cispo_eps_high, mask, {})
    per_token = _with_kl(per_token, logps, ref_logps, mask, beta, stats, "cispo_loss")
    return aggregation_of(aggregation)(per_token, mask), stats


@POLICY_LOSSES.register("sapo")
def sapo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, *, sapo_tau_pos: float = 1.0, sapo_tau_neg: float = 1.05,
              beta: float, aggregation: str | Aggregation = "seq_mean") -> tuple[torch.Tensor, dict]:
    """SAPO (Soft Adaptive Policy Optimization, arXiv 2511.20347), negated: the hard clip replaced by a soft gate,
        L = -(1/G) sum_i (1/|o_i|) sum_t (4 / tau) sigmoid(tau (rho_t - 1)) A_i,
    tau = tau_pos where A > 0, tau_neg elsewhere (TRL's defaults 1.0 / 1.05). At rho = 1 its gradient is
    GRPO's; far off-policy tokens fade instead of being cut."""
    adv = _advantage_2d(advantages)
    ratio = torch.exp(token_log_ratio(logps, old_logps))
    tau = torch.where(adv > 0, torch.as_tensor(sapo_tau_pos, dtype=ratio.dtype),
                      torch.as_tensor(sapo_tau_neg, dtype=ratio.dtype))
    per_token = -torch.sigmoid(tau * (ratio - 1)) * 4 / tau * adv
    stats: dict[str, float] = {}
    per_token = _with_kl(per_token, logps, ref_logps, mask, beta, stats, "sapo_loss")
    return aggregation_of(aggregation)(per_token, mask), stats


@ADVANTAGES.register("group_normalized")
def group_normalized_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """GRPO's outcome advantage: A_i = (r_i - mean(r)) / std(r) within each prompt's group.

    rewards: (P, G) -> advantages (P*G,). std is the unbiased sample std, as in TRL; eps keeps a group
    whose rewards are all equal at advantage 0 instead of 0/0.
    """
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True) if rewards.shape[1] > 1 else torch.zeros_like(mean)
    return ((rewards - mean) / (std + eps)).reshape(-1)


@ADVANTAGES.register("group_centered")
def group_centered_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Dr. GRPO's advantage (Liu et al. 2025, §3.1): A_i = r_i - mean(r), the group's std division removed (it
    weights too easy and too hard questions up). (P, G) -> (P*G,). TRL: scale_rewards="none"."""
    return (rewards - rewards.mean(dim=1, keepdim=True)).reshape(-1)


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

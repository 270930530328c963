"""RL rollouts on a colocated vLLM engine (`rollout_backend=vllm`, `engines/vllm_policy.py`): which engine a
rollout uses, when its weights are synced, and what the engine's own log-probs are used for.

- `Rollouts.engine`: the transformers engine over the policy (`rollout_backend=hf`, each rollout), or the
  process's one vLLM engine, created on the first rollout from the model's folder and synced whenever an
  optimiser update changed the policy since the last sync (always before the first rollout, so a resumed
  run samples from its restored weights). vLLM rows draw from per-request seeds (`mix_seed(seed, rank,
  step, row)`), so a rollout depends on the weights and the step alone, not on what the engine ran before
  (a run killed and resumed samples what an uninterrupted one did).
- `mismatch`: the engine samples with its own kernels, so its log-prob of a sampled token differs from the
  policy's as the loss recomputes it; logged each step as the mean |delta log p| and the k3 estimate of
  KL(engine || policy) over the sampled tokens.
- `is_weights`: the truncated importance weight min(pi_policy / pi_engine, cap) per sampled token (TRL's
  `vllm_importance_sampling_cap`, verl's TIS), applied to the policy-gradient term as a per-token factor on the
  advantage (`rollout_is_cap`; off by default). The loss keeps the policy's recomputed log-probs either way.
"""
from __future__ import annotations

import math

import torch


def engine_logps(completions, n_completion: int) -> torch.Tensor | None:
    """(B, Tc) the engine's log-probs of each completion's tokens (NaN where none: injected tokens, padding);
    None when the engine reported none."""
    if not any(any(not math.isnan(x) for x in c.engine_logps) for c in completions):
        return None
    out = torch.full((len(completions), n_completion), math.nan)
    for r, c in enumerate(completions):
        if c.engine_logps:
            out[r, :len(c.engine_logps)] = torch.tensor(c.engine_logps, dtype=torch.float32)
    return out


def mismatch(policy: torch.Tensor, engine: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Mean |log pi_policy - log pi_engine| and the k3 estimate of KL(engine || policy) (r - 1 - log r with
    r = pi_policy / pi_engine, >= 0; unbiased under the engine's samples) over sampled tokens with an engine
    log-prob. policy, engine, mask: (B, T)."""
    use = mask.bool() & ~torch.isnan(engine)
    if not use.any():
        return {}
    delta = (policy - torch.nan_to_num(engine))[use]
    return {"rollout_logp_abs_diff": float(delta.abs().mean()),
            "rollout_kl": float((torch.exp(delta) - 1 - delta).mean())}


def is_weights(policy: torch.Tensor, engine: torch.Tensor, mask: torch.Tensor, cap: float) -> torch.Tensor:
    """(B, T) min(pi_policy / pi_engine, cap) on sampled tokens with an engine log-prob; 1 elsewhere."""
    use = mask.bool() & ~torch.isnan(engine)
    ratio = torch.exp(policy - torch.nan_to_num(engine)).clamp(max=cap)
    return torch.where(use, ratio, torch.ones_like(ratio))


class Rollouts:
    """The rollout engine of one training process."""

    def __init__(self, cfg):
        self.backend = cfg.rollout_backend
        self.vllm = None
        self.sync_seconds = 0.0

    def engine(self, trainer, cfg, policy):
        """The engine for this rollout (call inside the trainer's `full_params`)."""
        from .. import engines

        if self.backend == "hf":
            return engines.for_policy(policy, trainer.tokenizer)
        if self.vllm is None:
            from ..engines.vllm_policy import PolicyEngine

            dtype = "float32" if trainer.dtype in ("float32", torch.float32) else "bfloat16"
            self.vllm = PolicyEngine(trainer.ctx.model.path, trainer.tokenizer, dtype, seed=cfg.seed,
                                     gpu_memory=cfg.vllm_gpu_memory)
            # once, at start: one sync and the engine's log-probs against the policy's (a one-line stop if wrong)
            delta = self.vllm.check(policy, trainer.tokenizer, trainer.updates)
            if trainer.rank == 0:
                print(f"[rollouts] vLLM engine ({dtype}) checked: after a weight sync its log-probs of a probe "
                      f"text are the policy's within {delta:.2g} nats per token", flush=True)
        if self.vllm.synced_at != trainer.updates:
            self.sync_seconds = self.vllm.sync(policy, trainer.updates)
        return self.vllm

    def row_seeds(self, trainer, step: int, n_rows: int) -> list[int] | None:
        """vLLM: one seed per (prompt, sample) row of this step and process; HF: None (one seeded stream)."""
        if self.backend == "hf":
            return None
        from ..generation.engine import mix_seed

        return [mix_seed(trainer.cfg.seed, trainer.rank, step, row) for row in range(n_rows)]

    def after_rollout(self) -> None:
        if self.vllm is not None:
            self.vllm.sleep()  # CUDA: free its memory for the update

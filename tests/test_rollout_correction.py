"""The pure parts of vLLM rollouts (`training/vllm_rollouts.py`), on CPU without vLLM: the engine's log-probs
carried through budget forcing, the mismatch statistics, and the truncated importance weight checked against
TRL's formula (per-token loss x min(exp(old - sampling), cap), the KL term unweighted)."""
from __future__ import annotations

import math

import pytest
import torch


def test_truncated_importance_weight_equals_trls_formula():
    from rzoo.harness.training.losses import grpo_loss, k3_kl
    from rzoo.harness.training.vllm_rollouts import is_weights

    torch.manual_seed(0)
    B, T, cap, beta, eps = 4, 6, 2.0, 0.04, 0.2
    logps = torch.randn(B, T) * 0.3 - 1
    old = logps + 0.05 * torch.randn(B, T)
    ref = logps + 0.1 * torch.randn(B, T)
    engine = old + 0.4 * torch.randn(B, T)
    mask = (torch.rand(B, T) > 0.2).float()
    adv = torch.randn(B)
    w = is_weights(old, engine, mask, cap)
    ours, _ = grpo_loss(logps, old, ref, adv[:, None] * w, mask, clip_eps=eps, beta=beta)
    # TRL GRPOTrainer._compute_loss with vllm_importance_sampling_correction, written out
    ratio = torch.exp(logps - old)
    per_token = -torch.min(ratio * adv[:, None], torch.clamp(ratio, 1 - eps, 1 + eps) * adv[:, None])
    per_token = per_token * torch.exp(old - engine).clamp(max=cap)
    per_token = per_token + beta * k3_kl(logps, ref)
    trl = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    assert float(ours) == pytest.approx(float(trl), rel=1e-6)
    assert torch.all(w[mask == 0] == 1) and torch.all(w <= cap)


def test_mismatch_is_zero_for_equal_log_probs_and_skips_injected_tokens():
    from rzoo.harness.training.vllm_rollouts import mismatch

    policy = torch.tensor([[-1.0, -2.0, -0.5]])
    engine = torch.tensor([[-1.0, float("nan"), -0.5]])
    assert mismatch(policy, engine, torch.ones(1, 3)) == {"rollout_logp_abs_diff": 0.0, "rollout_kl": 0.0}
    got = mismatch(policy, torch.tensor([[-1.2, float("nan"), -0.5]]), torch.ones(1, 3))
    d = 0.2  # log pi_policy - log pi_engine on the one differing token
    assert got["rollout_logp_abs_diff"] == pytest.approx(d / 2, rel=1e-6)
    assert got["rollout_kl"] == pytest.approx((math.exp(d) - 1 - d) / 2, rel=1e-5)  # float32


def test_engine_log_probs_follow_each_completion_token(tokenizer):
    """A round that reports log-probs: every model-written token keeps its own, the forced close gets NaN."""
    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.generation.engine import LENGTH, STOP, RoundOutput

    fmt = T.ThinkingFormat.detect(tokenizer)
    think = tokenizer.encode(" one two three", add_special_tokens=False)
    answer = tokenizer.encode("\\boxed{1}", add_special_tokens=False) + [tokenizer.eos_token_id]

    class Engine:
        eos_ids = {tokenizer.eos_token_id}
        answers_in_round = False

        def __init__(self):
            self.tokenizer = tokenizer

        def rounds(self, prefixes, limits, stop_text, sampling, desc="", progress=False, follow=None):
            class Chunk:
                indices = list(range(len(prefixes)))
                outputs = [RoundOutput(think[:limit], LENGTH, [-0.1 * (i + 1) for i in range(len(think[:limit]))])
                           for limit in limits]
                answers = steps = None

                def continue_rows(self, rows, keep, suffixes, limit, sampling):
                    return [RoundOutput(answer, STOP, [-0.5] * len(answer)) for _ in rows]

            yield Chunk()

    prompt = T.build_prompt(tokenizer, [{"role": "user", "content": "q"}], fmt)
    (row,) = G.generate(Engine(), [prompt], T.Budget(2, 8), fmt=fmt)
    assert len(row.engine_logps) == len(row.completion_ids)
    for lp, sampled in zip(row.engine_logps, row.sampled_mask):
        assert math.isnan(lp) == (not sampled)
    assert row.engine_logps[:2] == pytest.approx([-0.1, -0.2]) and row.engine_logps[-len(answer):] == [-0.5] * len(answer)

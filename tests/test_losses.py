"""The GRPO loss against (1) the paper's equation written out element by element and (2) TRL's
GRPOTrainer loss on identical inputs (same tiny model, same tokens, same log-probs)."""
from __future__ import annotations

import math

import pytest
import torch

from rzoo.harness import losses, rl


def _paper_grpo(logps, old, ref, adv, mask, eps, beta):
    """DeepSeekMath eq. 3 / R1 eq. 1, scalar loops: -(1/G) sum_i 1/|o_i| sum_t [min(..) - beta KL]."""
    total = 0.0
    for i in range(len(logps)):
        n = sum(mask[i])
        s = 0.0
        for t in range(len(logps[i])):
            if not mask[i][t]:
                continue
            rho = math.exp(logps[i][t] - old[i][t])
            surrogate = min(rho * adv[i], min(max(rho, 1 - eps), 1 + eps) * adv[i])
            r = math.exp(ref[i][t] - logps[i][t])
            kl = r - math.log(r) - 1
            s += surrogate - beta * kl
        total += s / max(n, 1)
    return -total / len(logps)


def test_grpo_loss_matches_paper_equation():
    g = torch.Generator().manual_seed(0)
    B, T = 6, 9
    logps = -torch.rand(B, T, generator=g) * 3
    old = logps + (torch.rand(B, T, generator=g) - 0.5) * 0.8  # ratios both inside and outside the clip
    ref = logps + (torch.rand(B, T, generator=g) - 0.5)
    adv = torch.randn(B, generator=g)
    mask = (torch.rand(B, T, generator=g) > 0.25).float()
    mask[0] = 0  # an empty completion must not divide by zero
    loss, stats = losses.grpo_loss(logps, old, ref, adv, mask, clip_eps=0.2, beta=0.04)
    expected = _paper_grpo(logps.tolist(), old.tolist(), ref.tolist(), adv.tolist(), mask.tolist(), 0.2, 0.04)
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert 0 < stats["clip_fraction"] < 1 and stats["kl"] > 0


def test_single_update_ratio_is_one_and_gradient_is_policy_gradient():
    logps = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], requires_grad=True)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.ones(2, 2)
    loss, _ = losses.grpo_loss(logps, logps.detach(), None, adv, mask, clip_eps=0.2, beta=0.0)
    loss.backward()
    # d/dlogp of -(1/G) sum_i (1/|o_i|) sum_t A_i * exp(logp - sg(logp)) = -A_i / (G |o_i|)
    assert torch.allclose(logps.grad, torch.tensor([[-0.25, -0.25], [0.25, 0.25]]))


def test_k3_kl_is_nonnegative_and_zero_at_equality():
    a = torch.randn(100)
    assert torch.all(losses.k3_kl(a, a + torch.randn(100)) >= 0)
    assert torch.allclose(losses.k3_kl(a, a), torch.zeros(100))


def test_group_normalized_advantages():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    adv = losses.group_normalized_advantages(r)
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std()
    assert torch.allclose(adv[:4], (r[0] - 0.5) / (std + 1e-4))
    assert torch.all(adv[4:] == 0)  # a group with equal rewards teaches nothing


@pytest.fixture(scope="module")
def trl_trainer(tokenizer, tiny_model_dir, tmp_path_factory):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model = str(tiny_model_dir)  # TRL loads its reference model (beta != 0) from this path too
    args = GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl")), loss_type="grpo", beta=0.04, epsilon=0.2,
        num_generations=4, per_device_train_batch_size=4, max_completion_length=8, report_to=[],
        use_cpu=True, bf16=False, logging_steps=1,
        # TRL 1.16 defaults to DeepSeek-V3.2's KL x ratio; R1/DeepSeekMath's objective has the plain k3 KL
        use_bias_correction_kl=False,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=args,
                          train_dataset=Dataset.from_list([{"prompt": "hi"}] * 4), processing_class=tokenizer)
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def test_grpo_loss_matches_trl(trl_trainer, tokenizer):
    model = trl_trainer.model
    model.train()
    g = torch.Generator().manual_seed(0)
    B, Lp, Tc = 4, 5, 7
    prompt_ids = torch.randint(0, len(tokenizer), (B, Lp), generator=g)
    completion_ids = torch.randint(0, len(tokenizer), (B, Tc), generator=g)
    completion_mask = torch.ones(B, Tc)
    completion_mask[1, 4:] = 0  # right padding as in a real batch
    completion_mask[3, 2:] = 0
    advantages = torch.tensor([1.0, -0.5, 0.25, -0.75])
    with torch.no_grad():
        ids = torch.cat([prompt_ids, completion_ids], 1)
        base = rl.token_logps(model, ids, torch.ones(B, Lp + Tc, dtype=torch.long), Tc)
    old = base + 0.3 * torch.randn(B, Tc, generator=g)  # several updates per rollout: ratio != 1, clipping active
    ref = base + 0.2 * torch.randn(B, Tc, generator=g)
    inputs = {
        "prompt_ids": prompt_ids, "prompt_mask": torch.ones(B, Lp, dtype=torch.long),
        "completion_ids": completion_ids, "completion_mask": completion_mask,
        "advantages": advantages, "old_per_token_logps": old, "ref_per_token_logps": ref,
    }
    theirs = trl_trainer._compute_loss(model, inputs)
    attn = torch.cat([inputs["prompt_mask"], completion_mask.long()], 1)
    logps = rl.token_logps(model, torch.cat([prompt_ids, completion_ids], 1), attn, Tc)
    ours, _ = losses.grpo_loss(logps, old, ref, advantages, completion_mask, clip_eps=0.2, beta=0.04)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5, abs=1e-6)
    # and the gradients agree too
    g_theirs = torch.autograd.grad(theirs, [p for p in model.parameters() if p.requires_grad][:3], retain_graph=False)
    logps = rl.token_logps(model, torch.cat([prompt_ids, completion_ids], 1), attn, Tc)
    ours, _ = losses.grpo_loss(logps, old, ref, advantages, completion_mask, clip_eps=0.2, beta=0.04)
    g_ours = torch.autograd.grad(ours, [p for p in model.parameters() if p.requires_grad][:3])
    for a, b in zip(g_ours, g_theirs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)

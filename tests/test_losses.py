"""The GRPO loss against (1) the paper's equation written out element by element and (2) TRL's
GRPOTrainer loss on identical inputs (same tiny model, same tokens, same log-probs)."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from rzoo.harness.training import losses, rl


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


def _kimi_paper(logps, old, mask, rewards, tau):
    """(1/|x|) sum_x (1/k) sum_j (r_j - r_bar - tau * sum_t (logp - old))^2, loops (the paper's r_bar practice)."""
    P, G = len(rewards), len(rewards[0])
    total = 0.0
    for p in range(P):
        r_bar = sum(rewards[p]) / G
        for j in range(G):
            i = p * G + j
            ratio = sum((logps[i][t] - old[i][t]) for t in range(len(mask[i])) if mask[i][t])
            total += (rewards[p][j] - r_bar - tau * ratio) ** 2 / G
    return total / P


def test_kimi_loss_matches_the_paper_and_its_gradient():
    g = torch.Generator().manual_seed(1)
    P, G, T = 3, 4, 7
    logps = -torch.rand(P * G, T, generator=g, dtype=torch.float64) * 2
    old = logps + (torch.rand(P * G, T, generator=g, dtype=torch.float64) - 0.5) * 0.3
    mask = (torch.rand(P * G, T, generator=g) > 0.3).double()
    rewards = torch.rand(P, G, generator=g, dtype=torch.float64)
    tau = 0.3
    adv = losses.kimi_mean_baseline(rewards)
    leaf = logps.clone().requires_grad_(True)
    loss, _ = losses.kimi_loss(leaf, old, None, adv, mask, tau=tau)
    expected = _kimi_paper(logps.tolist(), old.tolist(), mask.tolist(), rewards.tolist(), tau)
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    # the paper's gradient: (1/k) sum_j [ grad log pi(y_j) (r_j - r_bar) - (tau/2) grad (log pi/pi_i)^2 ], the
    # ascent direction; per token of y_j it is (1/k)((r_j - r_bar) - tau * ratio_j), and autograd of the loss
    # (averaged over prompts too) must be -2 tau / P times it
    (grad,) = torch.autograd.grad(loss, leaf)
    ratio = ((logps - old) * mask).sum(-1)
    paper = ((adv - tau * ratio) / G).unsqueeze(1) * mask
    assert torch.allclose(grad, -2 * tau / P * paper, atol=1e-6, rtol=0)
    # at the rollout policy (ratio 0) it is a policy gradient with the mean-reward baseline
    zero, _ = losses.kimi_loss(old.clone().requires_grad_(True), old, None, adv, mask, tau=tau)
    assert zero.item() == pytest.approx((adv ** 2).mean().item())


def test_kimi_logmeanexp_baseline_is_tau_log_z():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.2, 0.2, 0.2, 0.2]])
    tau = 0.5
    adv = losses.kimi_logmeanexp_baseline(rewards, tau=tau)
    z = torch.exp(rewards / tau).mean(1, keepdim=True)
    assert torch.allclose(adv, (rewards - tau * torch.log(z)).reshape(-1), atol=1e-6)
    assert torch.allclose(adv[4:], torch.zeros(4), atol=1e-7)  # equal rewards: log mean exp = the reward
    # tau -> large: the log-mean-exp estimate tends to the mean reward (the paper's practice)
    wide = losses.kimi_logmeanexp_baseline(rewards.double(), tau=1e4)
    assert torch.allclose(wide, losses.kimi_mean_baseline(rewards.double()), atol=1e-4)


def test_token_mean_aggregation_weights_micro_batches_by_tokens():
    per_token = torch.rand(4, 5)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.float)
    agg = losses.AGGREGATIONS.get("token_mean")
    whole = agg(per_token, mask)
    parts = [agg(per_token[i:i + 2], mask[i:i + 2]) * agg.units(mask[i:i + 2]) / agg.units(mask) for i in (0, 2)]
    assert torch.allclose(sum(parts), whole)
    assert torch.allclose(whole, (per_token * mask).sum() / mask.sum())
    seq = losses.AGGREGATIONS.get("seq_mean")
    parts = [seq(per_token[i:i + 2], mask[i:i + 2]) * seq.units(mask[i:i + 2]) / seq.units(mask) for i in (0, 2)]
    assert torch.allclose(sum(parts), seq(per_token, mask))


def test_registries_bind_settings_from_the_config_and_can_be_extended():
    from dataclasses import dataclass

    from rzoo.harness.config import ConfigError

    @dataclass
    class Cfg:
        clip_eps: float = 0.1
        beta: float = 0.0
        aggregation: str = "token_mean"

    bound = losses.POLICY_LOSSES.bind("grpo", Cfg())
    assert bound.keywords == {"clip_eps": 0.1, "beta": 0.0, "aggregation": "token_mean"}
    with pytest.raises(ConfigError, match="needs a config field 'tau'"):
        losses.POLICY_LOSSES.check_config("kimi", Cfg())

    @losses.POLICY_LOSSES.register("test_only")
    def test_only(logps, old, ref, adv, mask, *, scale):
        return scale * logps.sum(), {}

    try:
        with pytest.raises(ValueError, match="twice"):
            losses.POLICY_LOSSES.register("test_only")(test_only)
        with pytest.raises(ConfigError, match="'scale'"):
            losses.POLICY_LOSSES.check_config("test_only", Cfg())
    finally:
        losses.POLICY_LOSSES.remove("test_only")
    assert "test_only" not in losses.POLICY_LOSSES.names()


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_shared_prompt_forward_equals_one_forward(tokenizer, attention):
    """A prompt's G samples reading its KV cache once give the same log-probs, entropies and gradients as
    one forward per row (left-padded prompts of different lengths, right-padded completions, rows of one
    prompt not adjacent)."""
    from conftest import build_tiny_model

    from rzoo.harness.generation import forcing as G

    model = build_tiny_model(tokenizer, seed=3).train()
    model.config._attn_implementation = attention
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, len(tokenizer), (n,), generator=g).tolist() for n in (5, 9, 7)]
    completions = []
    for i in range(9):  # 3 prompts x 3 samples, interleaved
        n = int(torch.randint(1, 8, (1,), generator=g))
        ids = torch.randint(0, len(tokenizer), (n,), generator=g).tolist()
        completions.append(G.Completion(prompt_index=i % 3, sample_index=i // 3, completion_ids=ids,
                                        sampled_mask=[1] * n))
    ids, attn, cmask, tc = rl.pack(prompts, completions, tokenizer.pad_token_id)
    params = [p for p in model.parameters() if p.requires_grad]
    results = []
    for share in (False, True):
        logps, entropy = rl.token_logps(model, ids, attn, tc, temperature=0.7, with_entropy=True, share_prompts=share)
        loss = ((logps + 0.1 * entropy) * cmask).sum()
        results.append((logps.detach(), entropy.detach(), torch.autograd.grad(loss, params)))
    (lp_a, ent_a, g_a), (lp_b, ent_b, g_b) = results
    assert torch.allclose((lp_a * cmask), (lp_b * cmask), atol=1e-5)
    assert torch.allclose((ent_a * cmask), (ent_b * cmask), atol=1e-5)
    for a, b in zip(g_a, g_b):  # equal up to float summation order
        assert float((a - b).norm()) <= 1e-5 * float(a.norm())
    with torch.no_grad():  # no shared prompt in the batch: the one-forward path, unchanged
        single = rl.token_logps(model, ids[:3], attn[:3], tc, share_prompts=True)
        assert torch.allclose(single, rl.token_logps(model, ids[:3], attn[:3], tc), atol=1e-6)
    # gradient checkpointing turns the cache off in training: the one-forward path, same values
    assert not rl._checkpointing(model)
    # transformers 5.25 renamed gradient_checkpointing_enable; the old name is gone in v6
    (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated name read (transformers 5.25 renamed the property)
        assert rl._checkpointing(model)
    checkpointed = rl.token_logps(model, ids, attn, tc, temperature=0.7, share_prompts=True)
    assert torch.allclose(checkpointed.detach() * cmask, lp_a * cmask, atol=1e-5)


def test_r1_zero_budget_grows_late_in_training():
    """R1-Zero's maximum length moves from 32,768 to 65,536 after ~8.2k updates: the paper preset's schedule
    switches the rollout budget once (step - 1) x minibatches updates are done."""
    from rzoo.harness.jobs import resolve
    from rzoo.methods import grpo

    cfg = resolve("train", ["method=grpo", "preset=paper"]).config
    assert (cfg.max_thinking_tokens + cfg.answer_tokens, cfg.late_max_thinking_tokens + cfg.answer_tokens) == (32768, 65536)
    switch = [s for s in range(1, cfg.steps + 1) if grpo.length_schedule(cfg, s).max_thinking_tokens != cfg.max_thinking_tokens]
    assert switch[0] == 514 and (switch[0] - 1) * cfg.minibatches >= 8200 > (switch[0] - 2) * cfg.minibatches
    assert len(switch) == cfg.steps - 513
    cpu = resolve("train", ["method=grpo"]).config
    assert all(grpo.length_schedule(cpu, s) is cpu for s in range(1, cpu.steps + 1))

"""GRPO's successors on the core (Dr. GRPO, DAPO, GSPO, CISPO, SAPO, LUSPO): each registered piece against
(1) its paper's formula written out element by element and (2) TRL 1.16's GRPOTrainer on identical inputs
(same tiny model, same tokens, same old log-probs): the loss value and its gradient."""
from __future__ import annotations

import math

import pytest
import torch

from rzoo.harness.training import filters, losses, rewards, rl, samplers


# -- the papers' formulas, scalar loops ---------------------------------------------------------------------------
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


def _paper_clip_higher(logps, old, adv, mask, el, eh):
    """DAPO eq. 10, token-level (eq. 8): -(1 / sum_i |o_i|) sum_i sum_t min(rho A, clip(rho, 1-el, 1+eh) A)."""
    total, n = 0.0, 0.0
    for i in range(len(logps)):
        for t in range(len(logps[i])):
            if mask[i][t]:
                rho = math.exp(logps[i][t] - old[i][t])
                total += min(rho * adv[i], _clip(rho, 1 - el, 1 + eh) * adv[i])
                n += 1
    return -total / n


def _paper_dr_grpo(logps, old, adv, mask, eps, max_tokens):
    """Dr. GRPO eq. 3: -(1/G) sum_i (1/MAX_TOKENS) sum_t min(rho A, clip(rho) A)."""
    total = 0.0
    for i in range(len(logps)):
        for t in range(len(logps[i])):
            if mask[i][t]:
                rho = math.exp(logps[i][t] - old[i][t])
                total += min(rho * adv[i], _clip(rho, 1 - eps, 1 + eps) * adv[i]) / max_tokens
    return -total / len(logps)


def _paper_gspo(logps, old, adv, mask, el, eh):
    """GSPO eq. 5/7: s_i = exp((1/|y_i|) sum_t log ratio); -(1/G) sum_i min(s A, clip(s) A)."""
    total = 0.0
    for i in range(len(logps)):
        n = sum(mask[i])
        s = math.exp(sum(logps[i][t] - old[i][t] for t in range(len(mask[i])) if mask[i][t]) / max(n, 1))
        total += min(s * adv[i], _clip(s, 1 - el, 1 + eh) * adv[i])
    return -total / len(logps)


def _paper_cispo(logps, old, adv, mask, eh):
    """MiniMax-M1 eq. 4 (no lower bound): -(1/sum|o|) sum sum min(rho, 1+eh) A log pi."""
    total, n = 0.0, 0.0
    for i in range(len(logps)):
        for t in range(len(logps[i])):
            if mask[i][t]:
                rho = math.exp(logps[i][t] - old[i][t])
                total += min(rho, 1 + eh) * adv[i] * logps[i][t]
                n += 1
    return -total / n


def _paper_sapo(logps, old, adv, mask, tau_pos, tau_neg):
    """SAPO: -(1/G) sum_i (1/|o_i|) sum_t (4/tau) sigmoid(tau (rho - 1)) A_i."""
    total = 0.0
    for i in range(len(logps)):
        tau = tau_pos if adv[i] > 0 else tau_neg
        s = sum(4 / tau / (1 + math.exp(-tau * (math.exp(logps[i][t] - old[i][t]) - 1))) * adv[i]
                for t in range(len(mask[i])) if mask[i][t])
        total += s / max(sum(mask[i]), 1)
    return -total / len(logps)


def _inputs(seed=0, B=6, T=9, spread=0.8):
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old = logps + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5) * spread
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    mask = (torch.rand(B, T, generator=g) > 0.25).double()
    mask[:, 0] = 1
    return logps, old, adv, mask


def _lists(*xs):
    return [x.tolist() for x in xs]


def test_clip_higher_matches_dapo_equation_and_is_asymmetric():
    logps, old, adv, mask = _inputs()
    loss, stats = losses.clip_higher_loss(logps, old, None, adv, mask, clip_eps=0.2, clip_eps_high=0.28, beta=0.0)
    assert loss.item() == pytest.approx(_paper_clip_higher(*_lists(logps, old, adv, mask), 0.2, 0.28), rel=1e-10)
    assert 0 < stats["clip_fraction"] < 1
    # the upper bound is its own: the same inputs with a symmetric clip give another loss
    sym, _ = losses.clip_higher_loss(logps, old, None, adv, mask, clip_eps=0.2, clip_eps_high=0.2, beta=0.0)
    assert sym.item() != pytest.approx(loss.item(), rel=1e-6)
    # GRPO's loss is clip_higher with eps_high = eps_low
    grpo, _ = losses.grpo_loss(logps, old, None, adv, mask, clip_eps=0.2, beta=0.0, aggregation="token_mean")
    assert grpo.item() == pytest.approx(sym.item(), rel=1e-12)


def test_dr_grpo_constant_normaliser_and_centered_advantage():
    logps, old, _, mask = _inputs(1)
    r = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    adv = losses.group_centered_advantages(r)
    assert torch.allclose(adv, torch.tensor([2 / 3, -1 / 3, -1 / 3, 1 / 3, 1 / 3, -2 / 3], dtype=torch.float64))
    agg = losses.aggregation_for("constant_norm", type("C", (), {"max_thinking_tokens": 12, "answer_tokens": 4})())
    loss, _ = losses.grpo_loss(logps, old, None, adv, mask, clip_eps=0.2, beta=0.0, aggregation=agg)
    assert loss.item() == pytest.approx(_paper_dr_grpo(*_lists(logps, old, adv, mask), 0.2, 16), rel=1e-10)
    # without the length normaliser, a longer completion's tokens weigh as much as a shorter one's
    per_token = torch.ones(2, 4, dtype=torch.float64)
    short_long = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float64)
    assert agg(per_token, short_long).item() == pytest.approx(5 / (2 * 16))
    assert losses.masked_sequence_mean(per_token, short_long).item() == pytest.approx(1.0)


def test_gspo_sequence_ratio_matches_its_equation_and_gradient_reaches_every_token():
    logps, old, adv, mask = _inputs(2, spread=0.3)
    leaf = logps.clone().requires_grad_(True)
    loss, stats = losses.gspo_loss(leaf, old, None, adv, mask, clip_eps=0.02, clip_eps_high=0.03, beta=0.0)
    assert loss.item() == pytest.approx(_paper_gspo(*_lists(logps, old, adv, mask), 0.02, 0.03), rel=1e-10)
    assert 0 < stats["clip_fraction"] < 1  # some sequences clipped, some not
    loss.backward()
    s = torch.exp(losses.sequence_mean_log_ratio(logps, old, mask)).squeeze(1)
    inside = (s > 1 - 0.02) & (s < 1 + 0.03)
    # eq. 10: grad of -(1/G) s_i A_i wrt log pi(y_it) = -(1/G) s_i A_i / |y_i| for unclipped sequences, on their tokens
    expected = -(s * adv / mask.sum(1) / len(s))[:, None] * mask * inside[:, None]
    clipped_active = ((s <= 1 - 0.02) & (adv < 0)) | ((s >= 1 + 0.03) & (adv > 0))
    keep = ~clipped_active  # min() picks the unclipped term when the clip would not bind in the objective's favour
    assert torch.allclose(leaf.grad[keep & inside], expected[keep & inside])
    assert torch.all(leaf.grad[clipped_active] == 0)


def test_cispo_clips_the_weight_and_keeps_every_tokens_gradient():
    logps, old, adv, mask = _inputs(3, spread=1.2)
    leaf = logps.clone().requires_grad_(True)
    loss, stats = losses.cispo_loss(leaf, old, None, adv, mask, cispo_eps_high=0.2, beta=0.0)
    assert loss.item() == pytest.approx(_paper_cispo(*_lists(logps, old, adv, mask), 0.2), rel=1e-10)
    assert stats["clip_fraction"] > 0
    loss.backward()
    # stop-gradient on the weight: d/d log pi = -sg(w) A / N on every sampled token, clipped ones included
    w = torch.clamp(torch.exp(logps - old), max=1.2)
    assert torch.allclose(leaf.grad, -(w * adv[:, None]) * mask / mask.sum())
    assert torch.all(leaf.grad[mask.bool()] != 0)


def test_sapo_matches_its_soft_gate():
    logps, old, adv, mask = _inputs(4)
    loss, _ = losses.sapo_loss(logps, old, None, adv, mask, sapo_tau_pos=1.0, sapo_tau_neg=1.05, beta=0.0)
    assert loss.item() == pytest.approx(_paper_sapo(*_lists(logps, old, adv, mask), 1.0, 1.05), rel=1e-10)


@pytest.mark.parametrize("length,expected", [(0, 0.0), (16, 0.0), (17, -0.25), (19, -0.75), (20, -1.0), (21, -1.0),
                                             (40, -1.0)])
def test_soft_overlong_punishment_is_dapo_eq_13_and_trls(length, expected):
    from trl.rewards import get_soft_overlong_punishment

    assert rewards.soft_overlong_punishment(length, 20, 4) == pytest.approx(expected)
    assert rewards.soft_overlong_punishment(length, 20, 4) == pytest.approx(
        get_soft_overlong_punishment(max_completion_len=20, soft_punish_cache=4)([[1] * length])[0])


def test_mask_truncated_zeroes_cut_off_rows():
    mask = torch.ones(3, 4)
    out = filters.mask_truncated(mask, torch.tensor([False, True, False]))
    assert out.tolist() == [[1] * 4, [0] * 4, [1] * 4]


def test_dynamic_sampling_refills_until_target_informative_groups_then_stops_at_cap():
    batches = [torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),  # one informative group of three
               torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.5, 0.0]]),  # two
               torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])]
    calls = []

    def draw(k):
        calls.append(k)
        return batches[k]

    assert samplers.informative_groups(batches[0]) == [False, True, False]
    kept, drawn = samplers.fill_informative(draw, target=3, max_draws=5)
    assert kept == [(0, 1), (1, 0), (1, 2)] and drawn == 2 and calls == [0, 1]
    calls.clear()
    kept, drawn = samplers.fill_informative(draw, target=4, max_draws=2)  # the cap: what it has
    assert kept == [(0, 1), (1, 0), (1, 2)] and drawn == 2
    kept, drawn = samplers.fill_informative(draw, target=4, max_draws=3)  # trimmed to the target
    assert len(kept) == 4 and kept[-1] == (2, 0) and drawn == 3


# -- against TRL's GRPOTrainer --------------------------------------------------------------------------------------
def _trl(tokenizer, tiny_model_dir, tmp_path, **kw):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=str(tmp_path), beta=0.0, num_generations=4, per_device_train_batch_size=4,
                      max_completion_length=8, report_to=[], use_cpu=True, bf16=False, logging_steps=1, **kw)
    trainer = GRPOTrainer(model=str(tiny_model_dir), reward_funcs=lambda completions, **k: [0.0] * len(completions),
                          args=args, train_dataset=Dataset.from_list([{"prompt": "hi"}] * 4),
                          processing_class=tokenizer)
    trainer.current_gradient_accumulation_steps = 1
    return trainer


class _Cfg:
    max_thinking_tokens, answer_tokens = 6, 2  # completion cap 8 = TRL's max_completion_length


CASES = {  # name: (TRL's GRPOConfig arguments, our loss on (logps, old, adv, mask))
    "dr_grpo": ({"loss_type": "dr_grpo", "epsilon": 0.2}, lambda *a: losses.grpo_loss(
        *a[:2], None, *a[2:], clip_eps=0.2, beta=0.0, aggregation=losses.aggregation_for("constant_norm", _Cfg()))),
    "dapo": ({"loss_type": "dapo", "epsilon": 0.2, "epsilon_high": 0.28}, lambda *a: losses.clip_higher_loss(
        *a[:2], None, *a[2:], clip_eps=0.2, clip_eps_high=0.28, beta=0.0)),
    "gspo": ({"loss_type": "grpo", "importance_sampling_level": "sequence", "epsilon": 0.05, "epsilon_high": 0.08},
             lambda *a: losses.gspo_loss(*a[:2], None, *a[2:], clip_eps=0.05, clip_eps_high=0.08, beta=0.0)),
    "cispo": ({"loss_type": "cispo", "epsilon_high": 1.3}, lambda *a: losses.cispo_loss(
        *a[:2], None, *a[2:], cispo_eps_high=0.3, beta=0.0)),
    "sapo": ({"loss_type": "sapo"}, lambda *a: losses.sapo_loss(*a[:2], None, *a[2:], beta=0.0)),
    "luspo": ({"loss_type": "luspo", "importance_sampling_level": "sequence", "epsilon": 0.05, "epsilon_high": 0.08},
              lambda *a: losses.gspo_loss(*a[:2], None, *a[2:], clip_eps=0.05, clip_eps_high=0.08, beta=0.0,
                                          aggregation="seq_sum")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_matches_trl(name, tokenizer, tiny_model_dir, tmp_path):
    trl_args, ours_fn = CASES[name]
    trainer = _trl(tokenizer, tiny_model_dir, tmp_path, **trl_args)
    model = trainer.model
    model.train()
    g = torch.Generator().manual_seed(0)
    B, Lp, Tc = 4, 5, 7
    prompt_ids = torch.randint(0, len(tokenizer), (B, Lp), generator=g)
    completion_ids = torch.randint(0, len(tokenizer), (B, Tc), generator=g)
    mask = torch.ones(B, Tc)
    mask[1, 4:] = 0
    mask[3, 2:] = 0
    adv = torch.tensor([1.0, -0.5, 0.25, -0.75])
    ids = torch.cat([prompt_ids, completion_ids], 1)
    attn = torch.cat([torch.ones(B, Lp, dtype=torch.long), mask.long()], 1)
    with torch.no_grad():
        base = rl.token_logps(model, ids, attn, Tc)
    old = base + 0.3 * torch.randn(B, Tc, generator=g)  # several updates per rollout: ratios != 1, clips active
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones(B, Lp, dtype=torch.long),
              "completion_ids": completion_ids, "completion_mask": mask, "advantages": adv,
              "old_per_token_logps": old, "num_items_in_batch": mask.sum()}
    params = [p for p in model.parameters() if p.requires_grad][:3]
    theirs = trainer._compute_loss(model, inputs)
    g_theirs = torch.autograd.grad(theirs, params)
    ours, _ = ours_fn(rl.token_logps(model, ids, attn, Tc), old, adv, mask)
    g_ours = torch.autograd.grad(ours, params)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5, abs=1e-7)
    for a, b in zip(g_ours, g_theirs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def _trl_truncated(ids: list[int], tokenizer) -> bool:
    """TRL 1.16's rule (`GRPOTrainer._generate_and_score_completions`, mask_truncated_completions): a completion is
    truncated when its last token is neither an end-of-sequence nor the pad token. Inline code there, so restated."""
    return ids[-1] not in [tokenizer.eos_token_id, tokenizer.pad_token_id]


@pytest.mark.parametrize("case", ["closed", "thinking_cut", "answer_cut", "turn_ended", "forced"])
def test_truncated_agrees_with_trls_rule_on_generated_completions(case, tokenizer):
    """Real completions from the budget-forcing generator (a scripted model): our `truncated` and TRL's rule agree,
    except a force-closed one (s1's forcing, not in TRL) whose answer then ended the turn: it hit the thinking
    budget, so it counts as truncated here, while TRL sees the final end-of-turn token."""
    from test_generation import Script, _prompts, generate, scripted_model

    close_after, eos_after, kw = {
        "closed": (3, None, {"max_thinking_tokens": 50, "answer_tokens": 20}),
        "thinking_cut": (30, None, {"max_thinking_tokens": 5, "force_close": False}),
        "answer_cut": (3, None, {"max_thinking_tokens": 50, "answer_tokens": 3}),
        "turn_ended": (10, 2, {"max_thinking_tokens": 50, "answer_tokens": 20}),
        "forced": (30, None, {"max_thinking_tokens": 5, "answer_tokens": 20}),
    }[case]
    model = scripted_model(tokenizer, Script(tokenizer, None, close_after, eos_after))
    for c in generate(model, tokenizer, _prompts(tokenizer), **kw):
        ours, theirs = filters.truncated(c), _trl_truncated(c.completion_ids, tokenizer)
        if case == "forced":
            assert c.thinking_end == "forced" and ours and not theirs
        else:
            assert ours == theirs == (case in ("thinking_cut", "answer_cut")), (case, c.thinking_end)

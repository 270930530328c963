"""The recurrent-depth model (latent recurrence): KV cache per iteration against a no-cache forward
(with and without early exit), truncated backpropagation, the recurrence distribution, loading with
plain AutoModelForCausalLM, and iterations -> FLOPs."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from transformers.cache_utils import DynamicCache

from rzoo.harness.models.recurrent import RecurrentConfig, RecurrentForCausalLM


def _model(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=40, hidden_size=32, intermediate_size=64, num_attention_heads=2, max_recurrence=16,
               mean_recurrence=4, backprop_depth=3, eos_token_id=3, pad_token_id=0)
    return RecurrentForCausalLM(RecurrentConfig(**{**cfg, **kw}))


@pytest.mark.parametrize("window", [None, 3])
@pytest.mark.parametrize("exit_kl", [0.0, 0.05])
def test_cached_decoding_equals_a_full_forward(exit_kl, window):
    model = _model(attention_window=window).eval()
    ids = torch.randint(5, 40, (3, 10))
    with torch.no_grad():
        full = model(ids, num_steps=6, exit_kl=exit_kl).logits
        model.reset_iterations()
        cache, outs = DynamicCache(config=model.config), []
        outs.append(model(ids[:, :4], num_steps=6, exit_kl=exit_kl, past_key_values=cache, use_cache=True).logits)
        for t in range(4, 10):
            outs.append(model(ids[:, t:t + 1], num_steps=6, exit_kl=exit_kl, past_key_values=cache,
                              use_cache=True).logits)
    assert torch.allclose(torch.cat(outs, 1), full, atol=1e-5)
    if exit_kl:
        assert model.mean_iterations() < 6  # some tokens exited early
    else:
        assert model.mean_iterations() == 6


def test_an_attention_window_bounds_what_r_iterations_can_see():
    # every block sees itself and window - 1 tokens back: (n_prelude + r * n_core + n_coda) * (window - 1) in all
    model = _model(attention_window=3, n_core=1).eval()  # reach 2 per block: 2 * (2 + r)
    ids = torch.randint(5, 40, (1, 16))
    with torch.no_grad():
        for r in (1, 2, 4):
            reach = 2 * (2 + r)
            base = model(ids, num_steps=r).logits[0, -1]
            for j in range(16):
                changed = ids.clone()
                changed[0, j] = 5 + (int(ids[0, j]) - 4) % 35  # another token
                moved = (model(changed, num_steps=r).logits[0, -1] - base).abs().max().item()
                assert (moved > 0) == (15 - j <= reach), (r, j, moved)
    with pytest.raises(ValueError, match="attention_window"):
        RecurrentConfig(attention_window=0)
    model.config._attn_implementation = "flash_attention_2"  # takes no mask: refused, not silently unwindowed
    with pytest.raises(ValueError, match="attn_implementation='sdpa'"):
        model(ids, num_steps=1)


def test_gradients_reach_only_the_last_k_iterations():
    model = _model(backprop_depth=3).train()
    grad_on = []
    model.adapter.register_forward_hook(lambda m, i, o: grad_on.append(torch.is_grad_enabled()))
    ids = torch.randint(5, 40, (2, 6))
    out = model(ids, num_steps=7, labels=ids)
    assert grad_on == [False] * 4 + [True] * 3  # r = 7, k = min(3, 7)
    out.loss.backward()
    assert model.adapter.weight.grad is not None and model.adapter.weight.grad.abs().sum() > 0
    grad_on.clear()
    model(ids, num_steps=2, labels=ids)
    assert grad_on == [True, True]  # k = min(3, 2)


def test_recurrence_is_sampled_as_in_the_paper():
    model = _model(mean_recurrence=8, max_recurrence=64).train()
    torch.manual_seed(0)
    rs = torch.tensor([model.sample_recurrence() for _ in range(4000)], dtype=torch.float)
    # tau ~ LogNormal(log 8 - 0.125, 0.5) has mean 8; r = Poisson(tau) + 1 has mean 9
    assert abs(rs.mean().item() - 9.0) < 0.3 and rs.min().item() >= 1
    assert rs.std().item() > 3  # heavier than Poisson(8) alone (std 2.8): the log-normal spreads it


def test_loads_with_plain_automodel_and_generates_with_num_steps(tmp_path):
    model = _model().eval()
    model.save_pretrained(tmp_path)
    code = ("import torch, rzoo.harness.models.recurrent\n"
            "from transformers import AutoModelForCausalLM\n"
            f"m = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}).eval()\n"
            "ids = torch.tensor([[5, 6, 7, 8]])\n"
            "out = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False,"
            " num_steps=5)\n"
            "print(type(m).__name__, out.shape[1], m.mean_iterations())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-800:]
    assert out.stdout.split()[:2] == ["RecurrentForCausalLM", "7"] and float(out.stdout.split()[2]) == 5.0


def test_flops_grow_with_iterations():
    model = _model()
    one, eight = model.flops_shape_at(1), model.flops_shape_at(8)
    core = sum(p.numel() for p in model.core.parameters()) + model.adapter.weight.numel()
    assert eight.matmul_params - one.matmul_params == 7 * core
    assert eight.n_layer - one.n_layer == 7 * model.config.n_core


@pytest.mark.parametrize("exit_kl", [0.0, 0.05])
def test_generate_equals_greedy_decoding_by_full_forwards(exit_kl):
    # generate drives the cache through its own keyword (`cache` from transformers 5.24, `past_key_values`
    # before); a model that ignored it would decode each token without its context
    model = _model().eval()
    ids = torch.randint(5, 40, (2, 5))
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                             num_steps=4, exit_kl=exit_kl, eos_token_id=None, pad_token_id=0)
        seq = ids
        for _ in range(6):
            seq = torch.cat([seq, model(seq, num_steps=4, exit_kl=exit_kl).logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, seq)


def test_early_exit_uses_huginns_kl_direction():
    """A token exits after iteration i once KL(p_{i-1} || p_i) < the threshold: the reference's
    `F.kl_div(log p_i, log p_{i-1}, log_target=True)` (seal-rg/recurrent-pretraining, KLExitEvaluator), not
    KL(p_i || p_{i-1}). Rows of one token each, so no token's exit changes another's states; the iterations
    the model counts equal the ones predicted from full forwards at each depth, at a threshold where the two
    directions disagree."""
    import torch.nn.functional as F

    model = _model(mean_recurrence=8).eval()
    r = 8
    ids = torch.arange(4, 36).view(-1, 1)  # 32 rows of one token
    with torch.no_grad():
        logp = torch.stack([torch.log_softmax(model(ids, num_steps=i).logits[:, -1].float(), -1)
                            for i in range(1, r + 1)])  # (r, B, V): p_1 .. p_r
    ref = torch.stack([F.kl_div(logp[i], logp[i - 1], reduction="none", log_target=True).sum(-1)
                       for i in range(1, r)])  # (r-1, B): KL(p_i-1 || p_i) for i = 2..r
    other = torch.stack([(logp[i].exp() * (logp[i] - logp[i - 1])).sum(-1) for i in range(1, r)])

    def predicted(kl, threshold):
        used = []
        for b in range(kl.shape[1]):
            # checks run after iterations 2..r-1; an exit after iteration i means i iterations were run
            hits = [i + 2 for i in range(r - 2) if kl[i, b] < threshold]
            used.append(hits[0] if hits else r)
        return sum(used)

    thresholds = [t for t in torch.quantile(ref[:r - 2].flatten(), torch.linspace(0.05, 0.95, 19)).tolist()
                  if predicted(ref, t) != predicted(other, t)]
    assert thresholds, "no threshold tells the two directions apart on this model"
    for threshold in thresholds[:3]:
        model.reset_iterations()
        with torch.no_grad():
            model(ids, num_steps=r, exit_kl=threshold)
        assert model.iterations[1] == predicted(ref, threshold) != predicted(other, threshold)


@pytest.mark.parametrize("exit_kl", [0.0, 0.05])
def test_the_window_counts_tokens_not_columns(exit_kl):
    """A row's output does not depend on masked columns around it (left padding, the holes and suffix padding of a
    continued round in a batch): the attention window covers a query's last w real tokens. Before, it covered w
    columns, so in a batch the latent model's answers changed with the batch size (issue 44)."""
    model = _model(attention_window=3, n_core=1).eval()
    ids = torch.randint(5, 40, (1, 12))
    holes = torch.tensor([0, 0] + [1] * 5 + [0, 0, 0] + [1] * 7)  # padding, 5 tokens, 3 holes, 7 tokens
    wide = torch.zeros(1, 17, dtype=torch.long)
    wide[0, holes.bool()] = ids[0]
    positions = (holes.cumsum(-1) - 1).clamp(min=0)[None]
    with torch.no_grad():
        alone = model(ids, num_steps=4, exit_kl=exit_kl).logits[0]
        padded = model(wide, attention_mask=holes[None], position_ids=positions, num_steps=4,
                       exit_kl=exit_kl).logits[0, holes.bool()]
        # cached: the first 9 columns, then the rest one at a time, as generate feeds them
        cache, outs = DynamicCache(config=model.config), []
        model(wide[:, :9], attention_mask=holes[None, :9], position_ids=positions[:, :9], num_steps=4,
              exit_kl=exit_kl, past_key_values=cache, use_cache=True)
        for t in range(9, 17):
            outs.append(model(wide[:, t:t + 1], attention_mask=holes[None, :t + 1], position_ids=positions[:, t:t + 1],
                              num_steps=4, exit_kl=exit_kl, past_key_values=cache, use_cache=True).logits[0, -1])
    assert torch.allclose(padded, alone, atol=1e-5)
    assert torch.allclose(torch.stack(outs[-7:]), alone[-7:], atol=1e-5)

"""Rollouts and evaluation sample from the model's own distribution: nothing in a model's
`generation_config.json` (top-k, nucleus, repetition penalty: a Qwen-style config sets top_k=20 and
repetition_penalty=1.05) or a library default truncates or reshapes it. A model whose distribution is
spread over 300 tokens must be sampled over all of them, in proportion (top-k 50 would cap it at 50)."""
from __future__ import annotations

import importlib.util
from collections import Counter

import pytest
import torch

from rzoo.harness.generation import forcing as G
from rzoo.harness.generation import thinking as T


@pytest.fixture(scope="module")
def flat_model_dir(tmp_path_factory, tokenizer):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    vocab = len(tokenizer)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0; the bias below keeps the first 300 ids only
    bias = torch.full((vocab,), -1e4)
    bias[:300] = -0.005 * torch.arange(300.0)  # strictly ordered (ties would hide a top-k), nearly flat
    model.generation_config = GenerationConfig(top_k=20, top_p=0.5, repetition_penalty=1.3, temperature=0.3,
                                               do_sample=True)
    out = tmp_path_factory.mktemp("flat")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, bias


def _samples(engine_model, tokenizer, bias):
    from rzoo.harness.engines.hf import HFEngine

    handle = engine_model.lm_head.register_forward_hook(lambda m, i, o: o + bias)
    try:
        engine = HFEngine(engine_model, tokenizer)
        prompts = [T.build_prompt(tokenizer, [{"role": "user", "content": "x"}])]
        out = G.generate(engine, prompts, T.Budget(40, 1, force_close=False), n=40,
                         sampling=G.Sampling(temperature=1.0, batch_size=40), seed=0)
    finally:
        handle.remove()
    return [t for c in out for t in c.thinking_ids]


def test_hf_sampling_ignores_the_models_generation_config(flat_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    path, bias = flat_model_dir
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    assert model.generation_config.top_k == 20  # the saved config that must not apply
    tokens = _samples(model, tokenizer, bias)
    counts = Counter(tokens)
    assert len(tokens) >= 1000 and all(t < 300 for t in counts)
    assert len(counts) > 200  # top-k 20 or 50 would cap this
    p = torch.softmax(bias[:300], 0)
    expected = float(p[50:].sum())  # the mass a top-50 would cut (~0.72)
    observed = sum(c for t, c in counts.items() if t >= 50) / len(tokens)
    assert abs(observed - expected) < 0.05, (observed, expected)


def test_hf_greedy_sets_no_sampling_flag_transformers_warns_about(flat_model_dir, tokenizer):
    """Greedy decoding (every evaluation's default) passes no flag that only sampling reads: transformers' strict
    validation, which raises on what it otherwise prints as 'generation flags are not valid' on every run, passes;
    sampling keeps top_k off. The saved config's sampling flags still do not apply to greedy decoding."""
    from transformers import AutoModelForCausalLM

    from rzoo.harness.engines.hf import HFEngine, generation_config

    eos = {tokenizer.eos_token_id}
    generation_config(G.Sampling(temperature=0.0), 8, tokenizer.pad_token_id, eos).validate(strict=True)
    assert generation_config(G.Sampling(temperature=1.0), 8, tokenizer.pad_token_id, eos).top_k == 0
    path, bias = flat_model_dir
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    prompts = [T.build_prompt(tokenizer, [{"role": "user", "content": "x"}])]
    out = G.generate(HFEngine(model, tokenizer), prompts, T.Budget(8, 1, force_close=False), n=2,
                     sampling=G.Sampling(temperature=0.0, batch_size=2), seed=0)
    assert out[0].thinking_ids == out[1].thinking_ids  # greedy: no sampling slipped in from the saved config


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM (make test-vllm)")
def test_vllm_sampling_params_are_explicit():
    from rzoo.harness.generation.engine import Sampling
    from rzoo.harness.engines.vllm import VllmEngine

    captured = {}

    class FakeLLM:
        def generate(self, prompts, params, use_tqdm=False):
            captured["params"] = params
            return []

    engine = VllmEngine.__new__(VllmEngine)
    engine.llm, engine.seed, engine._calls, engine.eos_ids = FakeLLM(), 0, 0, {2}
    engine.round_outputs([[1, 2]], [5], None, Sampling(temperature=1.0), "", False)
    (p,) = captured["params"]
    assert (p.top_k in (0, -1), p.top_p, p.min_p, p.repetition_penalty, p.temperature) == (True, 1.0, 0.0, 1.0, 1.0)

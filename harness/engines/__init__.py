"""Generation engines, behind one protocol (`generation.engine`): transformers (`hf.py`, with its own
decoding loops `hf_decode.py` and cache surgery `hf_cache.py`) and vLLM (`vllm.py`).

`load` builds the engine an evaluation asks for; `for_policy` wraps a model being trained for its
rollouts. Nothing above this package constructs an engine class itself."""
from __future__ import annotations

BACKENDS = ("hf", "vllm")


def load(resolved, backend: str = "hf", dtype: str = "auto", seed: int = 0, tensor_parallel: int = 1,
         ngram: int = 0):
    """The engine for a resolved model (`models.ResolvedModel`) on `backend`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown generation backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend == "vllm":
        import torch
        from transformers import AutoTokenizer

        from ..models import precision
        from .vllm import VllmEngine

        dtype = precision.resolve(dtype, "cuda" if torch.cuda.is_available() else "cpu")
        return VllmEngine(resolved.path, AutoTokenizer.from_pretrained(resolved.path), dtype=dtype, seed=seed,
                          tensor_parallel=tensor_parallel, ngram=ngram)
    from .. import models
    from .hf import HFEngine

    return HFEngine(*models.load(resolved, dtype=dtype))


def for_policy(model, tokenizer):
    """An engine over a policy being trained (RL rollouts), on the transformers backend. It keeps the plain
    LM head: `head_matmul` picks its orientation by timing, and the two round differently, so a run and its
    resumed copy could sample from different logits (seen: a resumed GRPO run's KL and weights drifted)."""
    from .hf import HFEngine

    return HFEngine(model, tokenizer, fast_head=False)

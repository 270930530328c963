"""The name of transformers' KV-cache argument: `past_key_values` up to 5.23, `cache` from 5.24.

5.24 renamed it in `generate` (which now calls a model's forward with `cache=`), in the decoder layers and
in `create_causal_mask`; the old name still works there with a warning and is removed in 5.40. A model
of our own must accept what `generate` passes (the recurrent model ignored `cache=` and decoded every
token without context under 5.24), and our calls pass the name the installed version takes.
"""
from __future__ import annotations

import functools
import inspect


@functools.cache
def cache_kw() -> str:
    """`"cache"` or `"past_key_values"`: the keyword the installed transformers' generation passes to forward."""
    from transformers import GenerationMixin

    params = inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters
    return "cache" if "cache" in params else "past_key_values"


def with_cache(cache) -> dict:
    """`{cache_kw(): cache}`, to splat into a forward, layer, mask or generate call."""
    return {cache_kw(): cache}


def cache_of(output):
    """The cache a forward or `generate` returned (`output.cache` from 5.24 on, `.past_key_values` before)."""
    return getattr(output, cache_kw(), None)

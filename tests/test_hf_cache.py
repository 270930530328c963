"""`harness/engines/hf_cache.py` (`GrowingLayer`): in-place appends equal `torch.cat`'s, and never write over a view handed out."""
from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from rzoo.harness.engines.hf_cache import cuttable, slice_cache
from rzoo.harness.engines.hf_cache import GrowingLayer, grow


def _pair(B=3, T=1):
    return torch.randn(B, 2, T, 4), torch.randn(B, 2, T, 4)


def test_appends_equal_dynamic_layer_across_regrowth():
    plain, growing = DynamicLayer(), GrowingLayer()
    for T in [5, 1, 1, 70, 1, 3] + [1] * 80:  # multi-token and one-token appends, several regrowths
        k, v = _pair(T=T)
        a, b = plain.update(k, v), growing.update(k, v)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert growing.get_seq_length() == plain.get_seq_length() == 161


def test_replaced_or_cut_keys_get_a_fresh_buffer():
    layer = GrowingLayer()
    layer.update(*_pair(T=4))
    layer.update(*_pair())
    held = layer.keys[1:2].clone(), layer.keys[1:2]  # a row someone kept (a view of the buffer)
    layer.keys, layer.values = layer.keys[[0, 2]], layer.values[[0, 2]]  # rows cut, as compaction does
    k, v = _pair(B=2)
    layer.update(k, v)
    assert torch.equal(held[0], held[1])  # the kept view was not written over
    assert layer.keys.shape == (2, 2, 6, 4) and torch.equal(layer.keys[:, :, -1:], k)
    first = layer.keys[0:1]  # row 0: same storage start and strides as the buffer, fewer rows
    layer.keys, layer.values = first, layer.values[0:1]
    k, v = _pair(B=1)
    layer.update(k, v)
    assert layer.keys.shape == (1, 2, 7, 4) and torch.equal(layer.keys[:, :, -1:], k)


def test_grown_cache_stays_cuttable():
    cache = DynamicCache()
    for i in range(2):
        cache.update(*_pair(T=3), i)
    grow(cache)
    assert all(type(layer) is GrowingLayer for layer in cache.layers)
    assert cuttable(cache)
    part = slice_cache(cache, torch.tensor([2, 0]), 2)
    assert part.layers[0].keys.shape == (2, 2, 2, 4)
    assert torch.equal(part.layers[1].keys, cache.layers[1].keys[[2, 0], :, :2])

"""KV-cache surgery for the transformers engine's own decoding: in-place appends, cutting rows and columns,
and stacking groups of rows into one cache.

`GrowingLayer`: transformers' `DynamicLayer.update` appends a step's keys and values with `torch.cat`, which
copies the whole cache of the layer every step: (B, heads, L, head_dim) x 2 x layers. On a 2-core CPU that
copy (and the fresh allocation behind it) grows with rows x cached tokens: measured for SmolLM2's 30 layers
(3 KV heads of 64, fp32) at 600 cached tokens, 6.7 ms per step for 1 row, 12 ms for 2 and 54 ms for 4,
against a decoding step of 70-140 ms. `GrowingLayer` keeps keys and values as views of a larger buffer
and writes each step into it (the buffer doubles when full), so a step copies only its own token.
`grow(cache)` switches a `DynamicCache`'s plain layers to it in place (same data, same API: `keys` and
`values` are still (B, heads, L, head_dim) tensors). Whoever replaces `keys` / `values` (cutting rows,
cropping) gets a fresh buffer at the next append, so a view handed out earlier is never written over.

`slice_cache` cuts rows and a prefix of columns (a budget sweep's smaller caps, answers continuing their
thinking), `take_rows` keeps rows in place (finished rows leaving a decoding batch), `stack` writes groups
of rows into one cache (prefills of similar-length groups; a compacted batch reassembled).
"""
from __future__ import annotations

import copy

from transformers.cache_utils import DynamicLayer


class GrowingLayer(DynamicLayer):
    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n, t = self.get_seq_length(), key_states.shape[-2]
        buffers = getattr(self, "_buffers", None)
        if not (buffers is not None and self._owns(buffers) and buffers[0].shape[-2] >= n + t
                and buffers[0].shape[:2] == key_states.shape[:2]):
            capacity = max(2 * (n + t), n + t + 64)
            buffers = tuple(new.new_empty(*new.shape[:2], capacity, new.shape[-1]) for new in (key_states, value_states))
            if n:
                buffers[0][:, :, :n] = self.keys
                buffers[1][:, :, :n] = self.values
            self._buffers = buffers
        buffers[0][:, :, n:n + t] = key_states
        buffers[1][:, :, n:n + t] = value_states
        self.keys, self.values = buffers[0][:, :, :n + t], buffers[1][:, :, :n + t]
        return self.keys, self.values

    def _owns(self, buffers) -> bool:
        """Are `keys` / `values` still this layer's views of `buffers`, ending where the next write goes?"""
        return all(view is not None and view.numel() > 0 and view.data_ptr() == buffer.data_ptr()
                   and view.stride() == buffer.stride() for view, buffer in zip((self.keys, self.values), buffers))


def grow(cache) -> None:
    """Switch the plain `DynamicLayer`s of `cache` to `GrowingLayer` (in place; no data is copied)."""
    for layer in getattr(cache, "layers", ()):
        if type(layer) is DynamicLayer:
            layer.__class__ = GrowingLayer


def cuttable(cache) -> bool:
    """Whether `cache` is a plain per-layer KV cache (no sliding window, no quantisation) that rows and
    columns can be cut from."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:  # a transformers without per-layer caches
        return False
    return type(cache) is DynamicCache and all(type(layer) in (DynamicLayer, GrowingLayer) for layer in cache.layers)


def slice_cache(cache, rows, length: int):
    """A new KV cache with batch rows `rows` and the first `length` positions of `cache` (left intact),
    or None for a cache kind this does not know how to cut (the caller then re-reads the prefix)."""
    if not cuttable(cache):
        return None
    new = copy.copy(cache)
    new.layers = []
    for layer in cache.layers:
        part = copy.copy(layer)
        if used(layer):  # unused layers stay empty
            part.keys = layer.keys[rows, :, :length]  # (rows, heads, length, head_dim); indexing copies
            part.values = layer.values[rows, :, :length]
        new.layers.append(part)
    return new


def used(layer) -> bool:
    """Does this cache layer hold keys and values (a model's unused layers stay empty)?"""
    return getattr(layer, "is_initialized", True) and layer.keys is not None


def take_rows(cache, index) -> None:
    """Keep batch rows `index` (a tensor; repeats copy a row) of every layer of `cache`, in place."""
    for layer in cache.layers:
        if used(layer):
            layer.keys, layer.values = layer.keys[index], layer.values[index]


def stack(template, parts, n_rows: int, width: int, right: bool):
    """A cache of `n_rows` rows x `width` columns with `template`'s layer kinds, zeros (masked) where no part
    writes: each part (rows, keys per used layer, values per used layer) goes into its rows, its columns
    aligned right (`right`: a left-padded group) or left (a row that left a decoding batch early)."""
    import torch

    whole = copy.copy(template)
    whole.layers = []
    layers = [k for k, layer in enumerate(template.layers) if used(layer)]
    for k, layer in enumerate(template.layers):
        part = copy.copy(layer)
        if k in layers:
            j = layers.index(k)
            _, H, _, D = layer.keys.shape
            keys = layer.keys.new_zeros(n_rows, H, width, D)  # (rows, heads, width, head_dim)
            values = layer.values.new_zeros(n_rows, H, width, layer.values.shape[-1])
            for rows, ks, vs in parts:
                n = ks[j].shape[2]
                cols = slice(width - n, width) if right else slice(0, n)
                index = torch.tensor(rows, device=keys.device)
                keys[index, :, cols] = ks[j]
                values[index, :, cols] = vs[j]
            part.keys, part.values = keys, values
        whole.layers.append(part)
    return whole


def assemble_cache(parts, n_rows: int, width: int, rows):
    """One left-padded cache of `n_rows` x `width` columns from group caches [(row indices, group width,
    cache)], each right-aligned (columns left of a group stay zero: masked), then rows `rows` of it; None
    for a cache kind this does not know how to cut."""
    caches = [c for _, _, c in parts]
    if not all(cuttable(c) for c in caches):
        return None
    layer_parts = [(group, [layer.keys for layer in c.layers if used(layer)],
                    [layer.values for layer in c.layers if used(layer)]) for group, _, c in parts]
    return slice_cache(stack(caches[0], layer_parts, n_rows, width, right=True), rows, width)

"""A KV-cache layer whose decoding appends write in place, for the HF engine's own decoding loops.

transformers' `DynamicLayer.update` appends a step's keys and values with `torch.cat`, which copies the
whole cache of the layer every step: (B, heads, L, head_dim) x 2 x layers. On a 2-core CPU that copy
(and the fresh allocation behind it) grows with rows x cached tokens: measured for SmolLM2's 30 layers
(3 KV heads of 64, fp32) at 600 cached tokens, 6.7 ms per step for 1 row, 12 ms for 2 and 54 ms for 4,
against a decoding step of 70-140 ms. `GrowingLayer` keeps keys and values as views of a larger buffer
and writes each step into it (the buffer doubles when full), so a step copies only its own token.

`grow(cache)` switches a `DynamicCache`'s plain layers to it in place (same data, same API: `keys` and
`values` are still (B, heads, L, head_dim) tensors). Whoever replaces `keys` / `values` (cutting rows,
cropping) gets a fresh buffer at the next append, so a view handed out earlier is never written over.
"""
from __future__ import annotations

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

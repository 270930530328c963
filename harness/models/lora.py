"""LoRA adapters (peft) on a model: finding their layers and setting their scale, for methods whose
adapter is a direction scaled at test time or per example in training (CoT-Valve)."""
from __future__ import annotations

import contextlib


def lora_layers(model) -> list:
    """Every peft `LoraLayer` in `model` (none when peft is missing or the model has no adapter)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, LoraLayer)]


@contextlib.contextmanager
def row_scales(model, scales):
    """Within the block, batch row b computes with θ + scales[b] · Δθ, all rows in one forward: every active
    adapter's scaling (a number, lora_alpha / r at scale 1) becomes a (B, 1, 1) tensor that peft's
    `result + lora_B(lora_A(x)) * scaling` broadcasts over (B, T, out). Expects the adapters at scale 1;
    restores them after."""
    import torch

    saved = [(layer, name, layer.scaling[name]) for layer in lora_layers(model) for name in layer.active_adapters]
    column = torch.as_tensor(list(scales), dtype=torch.float32).view(-1, 1, 1)  # (B, 1, 1)
    try:
        for layer, name, unit in saved:
            layer.scaling[name] = unit * column.to(layer.lora_A[name].weight.device)
        yield
    finally:
        for layer, name, unit in saved:
            layer.scaling[name] = unit


def set_lora_scale(model, scale: float) -> None:
    """Every active adapter's output scaled by `scale` (peft's `LoraLayer.set_scale`: lora_alpha / r x scale),
    so the model computes θ + scale · Δθ."""
    for layer in lora_layers(model):
        for adapter in layer.active_adapters:
            layer.set_scale(adapter, float(scale))

"""LoRA adapters (peft) on a model: finding their layers and setting their scale, for methods whose
adapter is a direction scaled at test time or per example in training (CoT-Valve)."""
from __future__ import annotations


def lora_layers(model) -> list:
    """Every peft `LoraLayer` in `model` (none when peft is missing or the model has no adapter)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def set_lora_scale(model, scale: float) -> None:
    """Every active adapter's output scaled by `scale` (peft's `LoraLayer.set_scale`: lora_alpha / r x scale),
    so the model computes θ + scale · Δθ."""
    for layer in lora_layers(model):
        for adapter in layer.active_adapters:
            layer.set_scale(adapter, float(scale))

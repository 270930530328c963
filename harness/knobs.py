"""Test-time knobs: what an evaluation may sweep besides the thinking budget.

Every sample and result row carries each knob (`budget`, `waits`, `alpha`, `recurrence`; None where
it does not apply) and names the one its curve sweeps (`knob`). `budget` and `waits` are budget
forcing (generation.py) and apply to every model; the others are set on the engine before
generating, by the appliers registered here:

- `alpha`: CoT-Valve's length direction, θ + αΔθ: every LoRA adapter's scale set to α (peft's own
  `LoraLayer.set_scale`, which multiplies lora_alpha / r by α).
- `recurrence`: a recurrent-depth model's number of core iterations, passed to `generate` as
  `num_steps` (models that declare `supports_recurrence`).
"""
from __future__ import annotations

from typing import Callable

KNOBS = ("budget", "waits", "alpha", "recurrence")
ENGINE_KNOBS: dict[str, tuple[Callable, Callable]] = {}  # name -> (supported(model), apply(engine, value))


def register(name: str, supported: Callable, apply_fn: Callable) -> None:
    if name in ENGINE_KNOBS:
        raise ValueError(f"knob {name!r} is registered twice")
    if name not in KNOBS:
        raise ValueError(f"knob {name!r} is not one of {KNOBS}: results and samples have no column for it")
    ENGINE_KNOBS[name] = (supported, apply_fn)


def lora_layers(model):
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def _set_alpha(engine, value: float) -> None:
    for layer in lora_layers(engine.model):
        for adapter in layer.active_adapters:
            layer.set_scale(adapter, float(value))


def _set_recurrence(engine, value: int) -> None:
    engine.generate_kwargs["num_steps"] = int(value)


register("alpha", lambda model: bool(lora_layers(model)), _set_alpha)
register("recurrence", lambda model: bool(getattr(model, "supports_recurrence", False)), _set_recurrence)


def supported(model) -> frozenset[str]:
    return frozenset(name for name, (ok, _) in ENGINE_KNOBS.items() if ok(model))


def apply(engine, name: str, value) -> None:
    if name not in engine.knobs:
        raise ValueError(f"this model has no test-time knob {name!r}; it has: "
                         f"{', '.join(sorted(engine.knobs)) or 'none besides budget and waits'}")
    ENGINE_KNOBS[name][1](engine, value)

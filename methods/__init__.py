"""Methods (trainer plugins), imported as `rzoo.methods`.

A method is one module with `NAME`, a flat `Config` dataclass (paper defaults, field help),
`PRESETS` (at least "paper" and "cpu") and `train(cfg, run, config_dict) -> checkpoint path`.
The registry is explicit and lazy: listing methods imports no method module (and no torch).
"""
from __future__ import annotations

from rzoo.harness.registry import Registry

REGISTRY = Registry("method")
REGISTRY.add("grpo", "rzoo.methods.grpo", "R1-Zero GRPO: rule rewards (accuracy + format), group advantages, k3 KL")


def get(name: str):
    """The method module registered under `name` (raises UnknownName with suggestions)."""
    return REGISTRY.load(name)

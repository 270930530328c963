"""A method declared outside the package, for tests/test_declaration.py: a new method is one file with one
declaration. It fine-tunes with the core's SFT loop and owns a test-time knob of its own (`toy_scale`: it
scales the model's output logits by a value, i.e. a sampling-free temperature that greedy decoding ignores,
so every value evaluates the same model)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from rzoo.harness.config import option as _f
from rzoo.harness.generation.knobs import Knob
from rzoo.harness.method import Method
from rzoo.harness.training import sft
from rzoo.harness.training.config import SFT_TINY, SFTConfig


@dataclass
class Config(SFTConfig):
    """The toy recipe: SFT, nothing else."""
    toy_weight: float = _f(1.0, "a field of the toy method's own", ge=0)


def train(cfg: Config, ctx):
    return sft.train(cfg, ctx)


def _apply(engine, value, cfg) -> None:
    engine.toy_scale = value  # recorded only: greedy answers do not depend on a positive logit scale


TOY_SCALE = Knob("toy_scale", "ts", "the toy method's knob: one result per value", title="toy scale", point="ts",
                 key="toy_scales", type=float, bounds={"gt": 0}, order=9, supported=lambda model: True, apply=_apply)

# its CPU preset runs on the model and data the test names (subprocesses such as the zoo's read them here)
PRESETS = {
    "paper": {},
    "cpu": {"model": os.environ.get("RZOO_TOY_MODEL", "default"), "max_steps": 2, "save_every": 1,
            "train_data": f"jsonl:{os.environ.get('RZOO_TOY_DATA', 'missing.jsonl')}", "batch_size": 2,
            "lr": 1e-3, "max_length": 256, "eval.task": ["arith"], "eval.limit": 2, "eval.budgets": [3],
            "eval.answer_tokens": 3, "eval.toy_scales": [0.5, 2.0], "eval.baseline": True},
}

METHOD = Method(name="toy", paper="a test's own recipe", config=Config, presets=PRESETS, train=train,
                knobs=(TOY_SCALE,), tiny=SFT_TINY)

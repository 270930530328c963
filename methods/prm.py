"""A process reward model (PRM): a scorer of partial chains, trained on the policy's own chains labelled step by step.

Papers: Lightman et al., "Let's Verify Step by Step" (2023), the PRM; Wang et al., "Math-Shepherd" (2024), labels from
Monte-Carlo rollouts; Snell et al., "Scaling LLM Test-Time Compute Optimally" (2024), search with it.

    harness train+eval method=prm                              (CPU preset: the testbed, testbed:early_stop, minutes)
    harness train+eval method=prm model=<policy> train_task=math_train labels=monte_carlo

1. Chains: `samples_per_problem` completions of each of `problems` training problems from the policy (`model`),
   sampled at `temperature` within `max_thinking_tokens`, cut into steps by the task's rule (`Task.steps`; the close
   and the answer are one last step, `generation/steps.py`).
2. Labels (`labels`, a registry of pure functions): `exact`, the task's own check of each step (`Task.step_labels`;
   the testbed checks every running sum); `monte_carlo`, Math-Shepherd's: from the prefix ending at each step,
   `mc_rollouts` completions; the step is good if one reaches the gold answer (hard estimation, the paper's
   choice), or its label is their share of correct (`mc_soft`). The last step's label is its answer's verdict.
3. The scorer: the policy's architecture with a two-class token head (transformers'
   `AutoModelForTokenClassification`, backbone initialised from the policy, head new), trained with cross-entropy on
   every step's last token (soft labels as targets), no separator inserted: it reads the policy's own tokens
   (`generation/prm.py` `HeadScorer`). Its checkpoint loads with plain transformers; method.json records the policy
   it scores (`base_model`) and says it is a scorer.
4. Step accuracy on held-out chains (`held_out` of the problems, never trained on) is written to
   `prm_eval.json`: every step, and the last (answer) steps alone, with the share of good labels beside it.

Evaluation (`Method.checkpoint = SCORER`): the *policy* is evaluated with this PRM as `eval.prm`: budget forcing,
majority vote, PRM-weighted vote and best-of-N over N samples, beam search, DVTS and MCTS guided by it, on one
compute axis (`generation/search.py`).

Departures: the paper's PRMs are trained from a strong model's weights on human (PRM800K) or Monte-Carlo labels of
math chains; the CPU preset's is the 0.44M testbed policy's architecture on exact labels. The Monte-Carlo path
continues a prefix from its decoded text (re-tokenised) and is tested on a tiny model only: untested at scale.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from rzoo.harness.config import ConfigError
from rzoo.harness.config import option as _f
from rzoo.harness.method import SCORER, SEARCH, Method
from rzoo.harness.registry import Registry
from rzoo.harness.training.config import ModelData, Optimiser, RunSection

from . import prm_train


@dataclass
class Config(RunSection, Optimiser, ModelData):
    """The PRM's data, labels and training. `model` is the policy whose chains it scores."""
    model: str = _f("testbed:early_stop", "the policy whose chains the PRM learns to score (its architecture and "
                                          "weights start the PRM's backbone)")
    train_task: str = _f("runsum", "problems the policy's chains are sampled on (a registered task, its train split)")
    problems: int = _f(2000, "training problems sampled (after a seeded shuffle); `held_out` of them are the test "
                             "split", ge=2)
    held_out: float = _f(0.1, "share of the problems kept out of training to measure step accuracy", gt=0, lt=1)
    samples_per_problem: int = _f(4, "chains sampled per problem (Math-Shepherd: 15 per problem)", ge=1)
    max_thinking_tokens: int = _f(4096, "thinking budget per chain (budget forcing closes it there)", ge=1)
    answer_tokens: int = _f(64, "answer budget after the thinking block", ge=1)
    temperature: float = _f(1.0, "sampling temperature of the chains and the rollouts", gt=0, le=10)
    generation_batch_size: int = _f(64, "rows per generate call (memory/speed only)", ge=1)
    labels: str = _f("exact", "step labels: exact (the task checks each step: the testbed) or monte_carlo "
                              "(Math-Shepherd's rollouts from each prefix)")
    mc_rollouts: int = _f(8, "monte_carlo: completions from each prefix (Math-Shepherd: N = 8)", ge=1)
    mc_soft: bool = _f(False, "monte_carlo: the label is the share of rollouts that are correct (soft estimation); "
                              "false: good if any is (hard estimation, the paper's)")
    epochs: float = _f(2.0, "passes over the training chains", gt=0)
    batch_size: int = _f(32, "chains per optimiser step", ge=1)
    max_steps: int | None = _f(None, "stop after N optimiser steps (none: the epochs decide)", ge=1)
    lr: float = _f(1e-5, "AdamW learning rate (ours: the CPU preset's 1e-3 for the 0.44M testbed model)", gt=0, le=1)

    def validate(self) -> None:
        super().validate()
        if self.labels not in LABELS:
            raise ConfigError(f"labels {self.labels!r} is not valid; valid: {', '.join(LABELS.names())}")


LABELS = Registry("PRM step labels")
LABELS.register("exact", "the task's own check of each step (Task.step_labels)")(prm_train.exact_labels)
LABELS.register("monte_carlo", "Math-Shepherd: rollouts from each prefix")(prm_train.monte_carlo_labels)


def train(cfg: Config, ctx) -> Path:
    from rzoo.harness.runstore import atomic_write_json

    task = ctx.data.task
    problems = list(ctx.data.problems)
    random.Random(cfg.seed).shuffle(problems)
    problems = problems[:cfg.problems]
    cut = max(1, round(len(problems) * cfg.held_out))
    test, train_problems = problems[:cut], problems[cut:]
    folder = ctx.run.path / "prm_data"
    data = prm_train.chains(cfg, ctx, task, {"train": train_problems, "test": test}, folder, LABELS.get(cfg.labels))
    checkpoint = prm_train.PRMTrainer(cfg, ctx, data["train"]).fit()
    report = prm_train.step_accuracy(checkpoint, data["test"], cfg.dtype)
    atomic_write_json(ctx.run.path / "prm_eval.json", report)
    print(f"[prm] held-out step accuracy {report['step_accuracy']:.3f} over {report['steps']} steps "
          f"({report['good_share']:.3f} labelled good); last steps {report['last_step_accuracy']:.3f} over "
          f"{report['last_steps']}", flush=True)
    return checkpoint


_NS = [1, 2, 4, 8, 16, 32, 64]
PRESETS = {
    "paper": {},
    # the testbed: the early-stopping policy (its single sample plateaus at ~0.6 at budget 16), exact labels
    "cpu": {"model": "testbed:early_stop", "train_task": "runsum", "problems": 2000, "samples_per_problem": 4,
            "max_thinking_tokens": 32, "answer_tokens": 8, "lr": 1e-3, "epochs": 2.0, "batch_size": 32,
            "micro_batch_size": 32, "save_every": 100,
            "eval.task": ["runsum"], "eval.budgets": [4, 8, 12, 16, 24, 32], "eval.waits": [1, 2, 3], "eval.k": 64,
            "eval.temperature": 1.0, "eval.answer_tokens": 8, "eval.limit": 500, "eval.k_per_task": [],
            # N = 1..64 from the k = 64 samples of one generation; the searches at the same N
            "eval.votes": list(_NS), "eval.prm_votes": list(_NS), "eval.prm_best": list(_NS), "eval.prm": "trained",
            "eval.beam": _NS[2:], "eval.dvts": _NS[2:], "eval.mcts": _NS[2:], "eval.batch_size": 256,
            "eval.search_candidates": 4},
}


def _tiny_chains() -> dict:
    return {"model": "{model}", "seed": 3, "save_every": 1, "max_steps": "{steps}", "train_task": "{task}",
            "problems": 4, "held_out": 0.25, "samples_per_problem": 2, "max_thinking_tokens": 6, "answer_tokens": 4,
            "labels": "monte_carlo", "mc_rollouts": 2, "batch_size": 2, "micro_batch_size": 2, "lr": 1e-3,
            "generation_batch_size": 8}


METHOD = Method(name="prm", paper="Let's Verify Step by Step (2023); Math-Shepherd (2024): a process reward model "
                                  "for search (Snell et al. 2024)",
                config=Config, presets=PRESETS, train=train, checkpoint=SCORER, figures=(SEARCH,),
                tiny=_tiny_chains())

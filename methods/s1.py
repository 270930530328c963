"""s1: supervised fine-tuning on long reasoning traces, then budget forcing at decode time.

Paper: Muennighoff et al., "s1: Simple test-time scaling" (2025), §2-3; code: simplescaling/s1
(`train/sft.py`, `eval/` with budget forcing).

    SFT:  L = - (1/B) sum_b (1/|C_b|) sum_{t in C_b} log p(x_t | x_<t)   (completion tokens only; each example
          weighs the same, as s1's one example per device did: `aggregation=seq_mean`)
    decode: cap   -- at the thinking budget, append the end-of-thinking delimiter + "Final Answer:"
            extend -- suppress the delimiter and append "Wait", N times (eval.waits=[N, ...])

Run:  harness train+eval method=s1                        (CPU preset: the testbed, minutes)
      harness train+eval method=s1 preset=paper           (s1K-1.1 on Qwen2.5-32B-Instruct, GPUs)

What this file holds is what s1 adds to the shared SFT loop (`harness/training/sft.py`): the paper's
hyper-parameters and the evaluation that sweeps caps and extensions on one curve. Budget forcing
itself is the harness's generator (`harness/generation/forcing.py`, `thinking.Budget`), used by every
method's evaluation; s1 / s1.1 checkpoints' own delimiters (`<|im_start|>think`,
`<|im_start|>answer`) are detected from their chat template (`thinking.ThinkingFormat.detect`).

Why the core SFT loop and not TRL's SFTTrainer: the loop shares checkpoints, resume and logging with
the RL methods, and the prompt is exactly what generation sees (chat template + pre-filled thinking
opening). TRL's completion-only loss is the peer the loss is tested against (tests/test_sft.py);
TRL's assistant-only loss needs generation markers that SmolLM2's template lacks.

The CPU preset (departures, on purpose): the base is the testbed model trained to answer directly
(`testbed:no_chain`, a flat curve), the data are the testbed's `early_stop` traces (chains that
sometimes stop early and guess, sometimes write "Wait" and go on: the s1K-like behaviour budget
forcing works with), 900 steps of batch 64 at learning rate 2e-3 for a 0.4M-parameter model trained
for minutes (paper: 1e-5 for 32B, 5 epochs of 1,000 examples). The evaluation sweeps budgets 2..16
and, at the largest, 1/2/4 Waits.
"""
from __future__ import annotations

from dataclasses import dataclass

from rzoo.harness.training import sft
from rzoo.harness.config import option as _f
from rzoo.harness.method import BUDGET_CURVES, Method
from rzoo.harness.training.config import SFT_TINY, SFTConfig


@dataclass
class Config(SFTConfig):
    """s1 SFT. Defaults are the paper's (s1 §3.1, simplescaling/s1 train/sft.sh) unless the help says
    otherwise; `preset=cpu` moves to the testbed."""
    model: str = _f("Qwen/Qwen2.5-32B-Instruct", "base model (paper: Qwen2.5-32B-Instruct)")
    train_data: str = _f("simplescaling/s1K-1.1", "SFT traces (paper: s1K / s1K-1.1, 1,000 examples from the hub); "
                                                  "<task>:<variant> or jsonl:<path> offline")
    lr: float = _f(1e-5, "AdamW learning rate (paper: 1e-5)", gt=0, le=1)
    epochs: float = _f(5.0, "passes over the data (paper: 5)", gt=0)
    weight_decay: float = _f(1e-4, "AdamW weight decay (paper: 1e-4)", ge=0, le=1)
    adam_beta1: float = _f(0.9, "AdamW beta1 (paper: 0.9)", ge=0, lt=1)
    adam_beta2: float = _f(0.95, "AdamW beta2 (paper: 0.95)", ge=0, lt=1)
    warmup_ratio: float = _f(0.05, "linear warm-up fraction (paper: 5%)", ge=0, le=1)
    lr_schedule: str = _f("cosine", "after warm-up: cosine decay (paper) or constant")
    batch_size: int = _f(16, "examples per optimiser step (paper: 16)", ge=1)
    max_length: int = _f(32768, "tokens per example, longer ones cut (paper: block size 32,768)", ge=8)
    aggregation: str = _f("seq_mean", "each example's mean loss, then their mean (paper: one example per device, so "
                                      "every example weighs the same); token_mean: the batch's token mean")


PRESETS = {
    # evaluated as s1 does (eval.protocol=s1: greedy, budget forcing, an end of turn in the thinking answered),
    # swept over budgets and Waits for its scaling curves
    "paper": {
        "eval.protocol": "s1", "eval.task": ["aime24", "math500", "gpqa_diamond"],
        "eval.budgets": [512, 1024, 2048, 4096, 8192], "eval.waits": [1, 2, 4, 6], "eval.answer_tokens": 512,
    },
    "cpu": {
        "model": "testbed:no_chain", "train_data": "runsum:early_stop", "lr": 2e-3, "batch_size": 64,
        "micro_batch_size": 64, "max_length": 128, "max_steps": 900, "save_every": 300,
        "eval.task": ["runsum"], "eval.budgets": [2, 4, 6, 8, 12, 16], "eval.waits": [1, 2, 4],
        "eval.limit": None, "eval.shuffle": False, "eval.answer_tokens": 8, "eval.batch_size": 128,
    },
}


def train(cfg: Config, ctx):
    return sft.train(cfg, ctx)


METHOD = Method(name="s1", paper="Muennighoff et al. 2025, s1: Simple test-time scaling, §2-3",
                config=Config, presets=PRESETS, train=train, tiny=SFT_TINY,
                figures=(BUDGET_CURVES,))

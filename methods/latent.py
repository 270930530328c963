"""Latent recurrence: a recurrent-depth model whose test-time compute is core iterations, not tokens.

Paper: Geiping et al., "Scaling up Test-Time Compute with Latent Reasoning: A Recurrent Depth Approach"
(2025); code seal-rg/recurrent-pretraining ("Huginn-0125", 3.5B).

    model     prelude -> recurrent core applied r times to a noise-initialised state, the prelude's
              output injected each step -> coda (`harness/recurrent.py`, a transformers model registered
              with AutoConfig / AutoModelForCausalLM)
    training  r per forward: tau ~ LogNormal(log r_bar - sigma^2/2, sigma = 0.5), r = Poisson(tau) + 1;
              backpropagation through the last k = min(backprop_depth, r) iterations only
    test time more iterations = more compute (`eval.recurrence=[1,2,4,8,16,32]`); a token exits early once
              the KL between two successive iterations' outputs is below a threshold (`eval.exit_kl`)

Run:  harness train+eval method=latent          (CPU preset: the testbed's no-chain traces, from scratch)
      harness eval model=<checkpoint> task=runsum eval.recurrence=[1,4,16] eval.exit_kl=0.001

The loss is the core SFT loop's completion-only cross-entropy (`harness/sft.py`); the recurrence sampling
and the truncated backpropagation live in the model's forward, so any loop that trains the model gets
them. FLOPs per sample are counted from the iterations actually run (early exit included), so the model
sits on the accuracy-vs-FLOPs plot beside chain-of-thought models of the same task.

Huginn-3.5B on GPUs: its code is its own (`trust_remote_code`), so it is not loaded by default;
    harness eval model=tomg-group-umd/huginn-0125 ...   needs RZOO_TRUST_REMOTE_CODE=1 (you opt in to
running the repository's code); its generation argument is also `num_steps`, so `eval.recurrence`
applies. Not run here (no GPU, no hub).

Departures (CPU preset): 1 prelude / 2 core / 1 coda blocks of width 128 (Huginn: 2 / 4 / 2 of 5,280),
r_bar = 4 and k = 4 (Huginn: 32 and 8), trained minutes on the testbed instead of 800B tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

from rzoo.harness import sft
from rzoo.harness.config import option as _f
from rzoo.harness.train_config import SFTConfig

NAME = "latent"


@dataclass
class Config(SFTConfig):
    """Training a recurrent-depth model. The architecture (and r_bar, k) is the starting model's config;
    Huginn's are in the module docstring."""
    model: str = _f("testbed_recurrent", "the recurrent-depth model to train (testbed_recurrent: built untrained)")
    train_data: str = _f("runsum:no_chain", "examples: the testbed's no-chain traces (answer directly, no thinking)")
    lr: float = _f(3e-3, "AdamW learning rate (paper: 4e-5 at 3.5B; ours for a 0.6M model)", gt=0, le=1)
    weight_decay: float = _f(0.1, "AdamW weight decay", ge=0, le=1)
    adam_beta2: float = _f(0.95, "AdamW beta2", ge=0, lt=1)
    warmup_ratio: float = _f(0.05, "linear warm-up fraction", ge=0, le=1)
    lr_schedule: str = _f("cosine", "cosine decay after warm-up")


PRESETS = {
    "paper": {},
    "cpu": {
        "batch_size": 64, "micro_batch_size": 64, "max_length": 64, "max_steps": 400, "save_every": 200,
        "eval.task": ["runsum"], "eval.budgets": [1], "eval.recurrence": [1, 2, 4, 8, 16, 32],
        "eval.limit": None, "eval.shuffle": False, "eval.answer_tokens": 6, "eval.batch_size": 128,
    },
}


def train(cfg: Config, ctx):
    return sft.train(cfg, ctx)

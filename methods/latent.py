"""Latent recurrence: a recurrent-depth model whose test-time compute is core iterations, not tokens.

Paper: Geiping et al., "Scaling up Test-Time Compute with Latent Reasoning: A Recurrent Depth Approach"
(2025); code seal-rg/recurrent-pretraining ("Huginn-0125", 3.5B).

    model     prelude -> recurrent core applied r times to a noise-initialised state, the prelude's
              output injected each step -> coda (`harness/models/recurrent.py`, a transformers model
              registered with AutoConfig / AutoModelForCausalLM)
    training  r per forward: tau ~ LogNormal(log r_bar - sigma^2/2, sigma = 0.5), r = Poisson(tau) + 1;
              backpropagation through the last k = min(backprop_depth, r) iterations only
    test time more iterations = more compute: this method's test-time knob (`RECURRENCE` below,
              `eval.recurrence=[1,2,4,8,16,32]`); a token exits early once the KL between two successive
              iterations' outputs is below a threshold (`eval.exit_kl`)

Run:  harness train+eval method=latent          (CPU preset: the testbed's no-chain traces, from scratch)
      harness eval model=<checkpoint> task=runsum eval.recurrence=[1,4,16] eval.exit_kl=0.001

The loss is the core SFT loop's completion-only cross-entropy (`harness/training/sft.py`) plus, on the testbed,
the chain supervision below; the recurrence sampling and the truncated backpropagation live in the
model's forward, so any loop that trains the model gets them. FLOPs per sample are counted from the
iterations actually run (early exit included), so the model sits on the accuracy-vs-FLOPs plot beside
chain-of-thought models of the same task.

Chain supervision (`chain_weight`, a departure: Huginn is pre-trained on next-token prediction alone).
Trained on the answer alone, the model stays at chance at every r within minutes (measured, as the
2-layer direct-answer Llama of the testbed does). So the output at each prompt position is also trained
to the task's intermediate result there (the task's `state_targets`; runsum: the running sum of the digits read
so far, and the final sum on the format tokens up to the answer), positions added left to right over
`chain_curriculum` steps. Nothing is written: the model still answers directly, no thinking tokens.
Lower weights (0.15, 0.3) learned nothing in 900 steps (docs/measurements.md, "Latent recurrence").

Attention window (the testbed model's `attention_window` 6, a departure: Huginn attends to everything).
The running sum mod 10 can be counted in parallel, so with full attention one pass (prelude, one
iteration, coda) could learn to read it, and whether the trained model needed its iterations depended on
the seed. With every block seeing its token and the 5 before it, one pass sees 15 tokens back and a
problem's first digit sits 18 or more before its answer: r = 1 is at chance and each iteration reaches 5
tokens further. The price: the models learn the sums of up to ~6 digits (which fit in one window) and
carry them to the answer by iterating, so accuracy at the largest r is lower than with full attention.
Per-seed numbers, early exit and FLOPs: docs/measurements.md ("Latent recurrence on the testbed").

Huginn-3.5B on GPUs: its code is its own (`trust_remote_code`), so it is not loaded by default;
    harness eval model=tomg-group-umd/huginn-0125 ...   needs RZOO_TRUST_REMOTE_CODE=1 (you opt in to
running the repository's code); its generation argument is also `num_steps`, so `eval.recurrence`
applies. Not run here (no GPU, no hub).

Departures (CPU preset): 1 prelude / 1 core / 1 coda blocks of width 128 (Huginn: 2 / 4 / 2 of 5,280),
an attention window of 6 tokens (above),
r_bar = 8 and k = 1 (Huginn: 32 and 8; with full attention k = 1 gave a larger depth effect than k = 4, and
is cheaper), trained 900 steps of 48 examples on the testbed instead of 800B tokens; the chain supervision
above.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rzoo.harness.config import ConfigError
from rzoo.harness.config import option as _f
from rzoo.harness.generation.knobs import Knob, Option
from rzoo.harness.training import sft
from rzoo.harness.method import ITERATIONS, Method
from rzoo.harness.training.config import SFT_TINY, SFTConfig


@dataclass
class Config(SFTConfig):
    """Training a recurrent-depth model. The architecture (and r_bar, k) is the starting model's config;
    Huginn's are in the module docstring."""
    model: str = _f("testbed_recurrent", "the recurrent-depth model to train (testbed_recurrent: built untrained)")
    train_data: str = _f("runsum:no_chain", "examples: the testbed's no-chain traces (answer directly, no thinking)")
    lr: float = _f(2e-3, "AdamW learning rate (paper: 4e-5 at 3.5B; ours for a 0.4M model: at 3e-3 the "
                         "windowed testbed model learned nothing in two seeds of six)", gt=0, le=1)
    weight_decay: float = _f(0.1, "AdamW weight decay", ge=0, le=1)
    adam_beta2: float = _f(0.95, "AdamW beta2", ge=0, lt=1)
    warmup_ratio: float = _f(0.05, "linear warm-up fraction", ge=0, le=1)
    lr_schedule: str = _f("cosine", "cosine decay after warm-up")
    chain_weight: float = _f(1.0, "weight of the chain supervision: the output at each position of the prompt "
                                   "trained to the task's intermediate result there (runsum: the running sum); "
                                   "not in the paper (0 turns it off)", ge=0)
    chain_curriculum: int = _f(400, "steps over which the chain's positions are added, left to right "
                                    "(0: all from the start)", ge=0)


def chain_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Sum over supervised positions of -log p(target_t | x_<=t), and their count.

    logits: (B, L, V); targets: (B, L) token ids, -100 where a position is not supervised. Unlike the
    language-model loss the target is not shifted: position t's output is trained to the intermediate
    result after reading x_t (the running sum of the digits up to t), not to x_{t+1}."""
    mask = targets != -100
    logprobs = torch.log_softmax(logits[mask].float(), dim=-1)  # (N, V)
    return -logprobs.gather(-1, targets[mask].unsqueeze(-1)).sum(), int(mask.sum())


def chain_curriculum(targets: list[int], step: int, steps: int) -> list[int]:
    """The supervised positions at `step` (1-based): the first 2 + (step - 1) * n / steps of an example's n,
    left to right (all of them once `steps` is reached; `steps` 0: all)."""
    kept = [i for i, t in enumerate(targets) if t != -100]
    if steps:
        kept = kept[:2 + (step - 1) * len(kept) // steps]
    out = [-100] * len(targets)
    for i in kept:
        out[i] = targets[i]
    return out


class LatentTrainer(sft.SFTTrainer):
    """The core SFT loop plus the chain supervision (`chain_weight`)."""

    def after_prepare(self) -> None:
        task = getattr(self.ctx.data, "task", None)
        if self.cfg.chain_weight and (task is None or not hasattr(task, "state_targets")):
            # checked before the core tokenizes: the data itself is the wrong kind, whatever else is wrong
            raise ConfigError(f"chain_weight={self.cfg.chain_weight} needs a task that defines intermediate results "
                              f"(`state_targets`; runsum does), not {self.ctx.data.name!r}; or set chain_weight=0")
        super().after_prepare()
        self.targets = None
        self.chain_total = 0.0
        self._shown_step, self._shown, self._n_chain = None, {}, 0.0
        if not self.cfg.chain_weight:
            return
        # positions between the prompt and the answer keep their next-token (format) targets as well: the
        # answer position reads the sum from its neighbour (measured: with the chain stopped at the prompt's
        # end the chain was learned, loss 0.013, and the answer stayed at chance at every r)
        self.targets = [task.state_targets(self.tokenizer, ids, ex) for (ids, _), ex in zip(self.rows, self.examples)]

    def micro_loss(self, logits, ids, cmask, chunk, batch, step, units):
        loss = super().micro_loss(logits, ids, cmask, chunk, batch, step, units)
        if self.targets is None:
            return loss
        # the chain term is a mean over the global batch's supervised positions (per process, as `units`);
        # the batch's curriculum targets are built once per step, not once per micro-batch
        if self._shown_step != step:
            self._shown = {i: chain_curriculum(self.targets[i], step, self.cfg.chain_curriculum) for i in batch}
            self._n_chain = sum(sum(t != -100 for t in self._shown[i]) for i in batch) / self.world
            self._shown_step = step
        shown, n_chain = self._shown, self._n_chain
        targets = torch.full_like(ids, -100)
        for r, i in enumerate(chunk):
            row = shown[i][:ids.shape[1]]
            targets[r, :len(row)] = torch.tensor(row)
        nll, _ = chain_cross_entropy(logits, targets)
        chain = nll / max(n_chain, 1)
        self.chain_total += float(chain.detach())
        return loss + self.cfg.chain_weight * chain

    def progress_line(self, row: dict) -> str:
        line = super().progress_line(row)
        return f"{line}, chain {row['chain_loss']:.4f}" if "chain_loss" in row else line

    def train_step(self, step: int) -> dict:
        self.chain_total = 0.0
        row = super().train_step(step)
        if self.targets is not None:
            row["chain_loss"] = self.chain_total
        return row


def _set_iterations(engine, value: int, cfg) -> None:
    """The recurrence knob on the engine: `num_steps` (and the exit threshold) travel as `generate` arguments."""
    engine.generate_kwargs["num_steps"] = int(value)
    if cfg is not None and cfg.exit_kl is not None:
        engine.generate_kwargs["exit_kl"] = cfg.exit_kl


# The test-time knob: core iterations r, for models that declare `supports_recurrence`.
RECURRENCE = Knob(
    "recurrence", "r", "recurrent-depth models: core iterations, one result each", title="core iterations",
    point="r", key="recurrence",
    type=int, bounds={"ge": 1}, order=3, apply=_set_iterations,
    supported=lambda model: bool(getattr(model, "supports_recurrence", False)),
    options=(Option("exit_kl", float | None, None, "recurrent-depth models: exit a token's iterations once the KL "
                    "between two successive iterations' outputs is below this (none: the model's config; 0: off)",
                    {"ge": 0}),))


PRESETS = {
    "paper": {"chain_weight": 0.0},
    "cpu": {
        "batch_size": 48, "micro_batch_size": 48, "max_length": 64, "max_steps": 900, "save_every": 300,
        "eval.task": ["runsum"], "eval.budgets": [1], "eval.recurrence": [1, 2, 4, 8, 16, 32],
        "eval.limit": None, "eval.shuffle": False, "eval.answer_tokens": 6, "eval.batch_size": 128,
    },
}


def train(cfg: Config, ctx):
    return LatentTrainer(cfg, ctx).fit()


# chain targets need the testbed's task and tokenizer (tests/test_latent.py): off on the fixture model
METHOD = Method(name="latent", paper="Geiping et al. 2025, Scaling up test-time compute with latent reasoning "
                                     "(Huginn)",
                config=Config, presets=PRESETS, train=train, knobs=(RECURRENCE,), figures=(ITERATIONS,),
                tiny={**SFT_TINY, "model": "{recurrent_model}", "chain_weight": 0})

"""R1-Zero GRPO: RL from a base model with rule-based rewards only.

Paper: DeepSeek-AI, "DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via Reinforcement
Learning" (2025), §2.2 (R1-Zero) and the GRPO objective of Shao et al., "DeepSeekMath" (2024), eq. 3.

    J = E[ (1/G) sum_i (1/|o_i|) sum_t ( min(rho A_i, clip(rho, 1-eps, 1+eps) A_i) - beta KL_k3 ) ]
    A_i = (r_i - mean(r)) / std(r),   r_i = accuracy_i + format_i

Run:  harness train+eval method=grpo                      (CPU preset: `testbed:early_stop` on the testbed)
      harness train method=grpo preset=paper model=Qwen/Qwen2.5-1.5B train_task=...   (on GPUs)

What this file holds is what R1-Zero adds to the shared RL loop (`harness/training/rl.py`): the paper's
defaults and the rule rewards. The loss (`grpo`), the advantages (`group_normalized`) and the
aggregation (`seq_mean`) are registered in `harness/training/losses.py` (tested against the equation and
TRL's GRPOTrainer loss); rollouts use the budget-forcing generator evaluation uses.

Why our own loop and not TRL's GRPOTrainer: rollouts must use the harness's budget-forcing generator
(the same thinking format evaluation measures), and injected tokens must be masked out of the loss.
TRL stays the peer the loss is tested against; to reproduce R1-Zero with TRL itself, override its
defaults: loss_type="grpo" (not "dapo"), beta=0.001 (not 0), num_generations=16,
use_bias_correction_kl=False (TRL 1.16 multiplies the KL by the ratio, after DeepSeek-V3.2).

Departures from the paper, on purpose:
- format reward: 0.5 for closing the thinking block + 0.5 for a `\\boxed{}` answer after it (paper:
  1/0 for the full `<think>/<answer>` template) -- a small model gets a gradient sooner.
- completions are capped by a thinking budget plus an answer budget (the paper caps total length at
  32,768, and at 65,536 after ~8.2k updates: `late_max_thinking_tokens` from `late_after_updates`); a
  truncated rollout scores 0 as in the paper (`force_close=false`), or, in the CPU preset, is force-closed
  s1-style and answers.
- the CPU preset clips at 0.2 (DeepSeekMath) instead of R1-Zero's 10 and updates twice per rollout.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from rzoo.harness.training import rewards, rl
from rzoo.harness.generation import thinking as T
from rzoo.harness.config import option as _f
from rzoo.harness.method import Method
from rzoo.harness.training.config import RL_TINY, RLConfig


@dataclass
class Config(RLConfig):
    """R1-Zero GRPO. Defaults are the paper's (DeepSeek-R1 §2.2 / supplementary) unless the help says
    otherwise; `preset=cpu` (the default run) scales lengths and counts down."""
    steps: int = _f(650, "rollouts; the paper's ~10,400 R1-Zero training steps (Fig. 1) count updates: 650 rollouts "
                         "x 16 updates", ge=1)
    prompts_per_step: int = _f(512, "questions per rollout (paper: 512, x 16 outputs = 8,192)", ge=1)
    samples_per_prompt: int = _f(16, "G, outputs per question (paper: 16)", ge=2)
    max_thinking_tokens: int = _f(32000, "thinking budget per completion (paper: 32,768 total length)", ge=1)
    answer_tokens: int = _f(768, "answer budget after the thinking block (32,000 + 768 = 32,768)", ge=1)
    lr: float = _f(3e-6, "AdamW learning rate (paper: 3e-6)", gt=0, le=1)
    beta: float = _f(0.001, "KL coefficient, k3 estimator against the reference (paper: 0.001; TRL default 0)",
                     ge=0)
    ref_refresh_updates: int = _f(400, "replace the reference model with the policy every N optimiser updates "
                                       "(paper: 400)", ge=0)
    minibatches: int = _f(16, "updates per rollout, one inner epoch over this many parts (paper: 16, so 512 "
                              "outputs per update)", ge=1)
    force_close: bool = _f(False, "at the thinking budget: false = the rollout stays truncated and scores 0 (paper); "
                                  "true = force-close and let it answer (s1)")
    temperature: float = _f(1.0, "rollout sampling temperature (paper: 1)", gt=0, le=10)
    reward: str = _f("r1_zero", "reward function: r1_zero = accuracy + format (this file)")
    clip_eps: float = _f(10.0, "clip ratio epsilon (paper, R1-Zero: 10; DeepSeekMath's GRPO and TRL: 0.2)", gt=0)
    accuracy_weight: float = _f(1.0, "weight of the accuracy reward (paper: rule rewards summed)", ge=0)
    format_weight: float = _f(1.0, "weight of the format reward (paper: rule rewards summed)", ge=0)
    late_max_thinking_tokens: int = _f(64768, "thinking budget once `late_after_updates` updates are done (paper: "
                                              "total length 65,536 late in training; 65,536 - 768)", ge=1)
    late_after_updates: int = _f(8200, "optimiser updates after which the late budget applies (paper: ~8.2k; "
                                       "0 = never)", ge=0)


# The default run on a 2-core CPU: the testbed model that stops its chain early (`testbed:early_stop`), 30 steps of
# 16 prompts x 8 samples (seconds each). The learning rate is raised for a 0.4M-parameter model and ~4 orders of
# magnitude less data than the paper; rollouts are force-closed at the budget so truncated ones still answer.
PRESETS = {
    # evaluated as DeepSeek does (eval.protocol=deepseek_r1: no system prompt, temperature 0.6, 64 samples)
    "paper": {"eval.protocol": "deepseek_r1", "eval.task": ["aime24", "math500", "gpqa_diamond"]},
    "cpu": {
        "model": "testbed:early_stop", "train_task": "runsum", "steps": 30, "prompts_per_step": 16,
        "samples_per_prompt": 8, "max_thinking_tokens": 16, "answer_tokens": 6, "temperature": 1.0, "lr": 3e-4,
        "minibatches": 2, "ref_refresh_updates": 0, "clip_eps": 0.2, "force_close": True,
        "generation_batch_size": 128, "micro_batch_size": 128,
        "save_every": 10, "late_after_updates": 0,
        "eval.task": ["runsum"], "eval.budgets": [2, 4, 6, 8, 12, 16], "eval.limit": None, "eval.shuffle": False,
        "eval.answer_tokens": 6, "eval.batch_size": 128,
    },
}

_NONEMPTY_BOX = re.compile(r"\\boxed\{\s*[^\s}]")


def format_reward(completion) -> float:
    """R1-Zero's format reward, adapted to the boxed-answer prompt: half for closing the thinking
    block itself (not forced), half for a non-empty `\\boxed{...}` in the answer after it."""
    closed = completion.thinking_end == T.CLOSED
    boxed = completion.thinking_end != T.INCOMPLETE and bool(_NONEMPTY_BOX.search(completion.answer_text))
    return 0.5 * closed + 0.5 * boxed


@rewards.REWARDS.register("r1_zero")
def r1_zero_reward(task, problem, group, *, step: int, accuracy_weight: float = 1.0,
                   format_weight: float = 1.0) -> list[dict[str, float]]:
    """R1-Zero's rule rewards for each completion of a group: accuracy (the task's scorer) + format."""
    out = []
    for c in group:
        acc, fmt = rewards.accuracy(task, problem, c), format_reward(c)
        out.append({"accuracy": acc, "format": fmt, "total": accuracy_weight * acc + format_weight * fmt})
    return out


def length_schedule(cfg: Config, step: int) -> Config:
    """The rollout's thinking budget at `step` (1-based): the late one once `late_after_updates` updates are
    done before it (each rollout makes `minibatches` updates)."""
    if cfg.late_after_updates and (step - 1) * cfg.minibatches >= cfg.late_after_updates:
        return dataclasses.replace(cfg, max_thinking_tokens=cfg.late_max_thinking_tokens)
    return cfg


def train(cfg: Config, ctx):
    return rl.train(cfg, ctx, schedule=length_schedule)


METHOD = Method(name="grpo", paper="DeepSeek-R1 (2025) §2.2 (R1-Zero); GRPO: DeepSeekMath (2024) eq. 3",
                config=Config, presets=PRESETS, train=train, tiny=RL_TINY)

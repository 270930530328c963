"""R1-Zero GRPO: RL from a base model with rule-based rewards only.

Paper: DeepSeek-AI, "DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via Reinforcement
Learning" (2025), §2.2 (R1-Zero) and the GRPO objective of Shao et al., "DeepSeekMath" (2024), eq. 3.

    J = E[ (1/G) sum_i (1/|o_i|) sum_t ( min(rho A_i, clip(rho, 1-eps, 1+eps) A_i) - beta KL_k3 ) ]
    A_i = (r_i - mean(r)) / std(r),   r_i = accuracy_i + format_i

Run:  harness train+eval method=grpo                      (CPU preset, default model and task)
      harness train method=grpo preset=paper model=Qwen/Qwen2.5-1.5B train_task=...   (on GPUs)

What lives elsewhere: the rollout, log-probs and update loop (`harness/rl.py`), the loss and
advantages (`harness/losses.py`, tested against TRL's GRPOTrainer loss), the budget-aware generator
(`harness/generation.py`), the scorer (the task's own `score`).

Why our own loop and not TRL's GRPOTrainer: rollouts must use the harness's budget-forcing
generator (the same thinking format evaluation measures), and injected tokens must be masked out of
the loss. TRL stays the peer the loss is tested against; to reproduce R1-Zero with TRL itself,
override its defaults: loss_type="grpo" (not "dapo"), beta=0.001 (not 0), num_generations=16,
use_bias_correction_kl=False (TRL 1.16 multiplies the KL by the ratio, after DeepSeek-V3.2).

Departures from the paper, on purpose:
- format reward: 0.5 for closing the thinking block + 0.5 for a `\\boxed{}` answer after it (paper:
  1/0 for the full `<think>/<answer>` template) -- a small model gets a gradient sooner.
- completions are capped by a thinking budget plus an answer budget, with s1-style forced close
  (the paper caps total length at 32,768 and scores what it gets).
- one rollout of `prompts_per_step` x `samples_per_prompt`; the paper's 8,192-output rollout split
  into 16 minibatches maps to `minibatches=16`.
"""
from __future__ import annotations

from dataclasses import dataclass

from rzoo.harness.config import ConfigError
from rzoo.harness.config import option as _f

NAME = "grpo"


@dataclass
class Config:
    """R1-Zero GRPO. Defaults are the paper's (DeepSeek-R1 §2.2 / supplementary) unless the help says
    otherwise; `preset=cpu` (the default run) scales lengths and counts down."""
    model: str = _f("default", "base model: hub id, local folder, or 'default' (SmolLM2-135M-Instruct)")
    train_task: str = _f("arith", "training task (registered name); its scorer is the accuracy reward")
    data_dir: str | None = _f(None, "local data directory (else $RZOO_DATA; the hub if reachable; ../shared/data)")
    seed: int = _f(0, "seed for problem order, sampling and init of the run")
    steps: int = _f(10000, "optimiser rollouts; paper trains R1-Zero for ~10k steps (Fig. 1)")
    prompts_per_step: int = _f(32, "questions per rollout (paper: 32)")
    samples_per_prompt: int = _f(16, "G, completions per question (paper: 16)")
    max_thinking_tokens: int = _f(32000, "thinking budget per completion (paper: 32,768 total length)")
    answer_tokens: int = _f(768, "answer budget after the thinking block (32,000 + 768 = 32,768)")
    temperature: float = _f(1.0, "rollout sampling temperature (paper: 1.0)")
    lr: float = _f(3e-6, "AdamW learning rate (paper: 3e-6)")
    weight_decay: float = _f(0.0, "AdamW weight decay (paper silent; 0)")
    adam_beta1: float = _f(0.9, "AdamW beta1 (paper silent; torch default)")
    adam_beta2: float = _f(0.999, "AdamW beta2 (paper silent; torch default)")
    max_grad_norm: float = _f(1.0, "gradient clipping norm (paper silent; 1.0 as in TRL)")
    beta: float = _f(0.001, "KL coefficient, k3 estimator against the reference (paper: 0.001; TRL default 0)")
    clip_eps: float = _f(0.2, "PPO clip epsilon (not in the R1 text; 0.2 as DeepSeekMath's GRPO and TRL)")
    ref_refresh_steps: int = _f(400, "replace the reference model with the policy every N steps (paper: 400)")
    minibatches: int = _f(16, "updates per rollout, one inner epoch over this many parts (paper: 16)")
    accuracy_weight: float = _f(1.0, "weight of the accuracy reward (paper: rule rewards summed)")
    format_weight: float = _f(1.0, "weight of the format reward (paper: rule rewards summed)")
    save_every: int = _f(100, "write a resumable checkpoint every N steps (0 = only at the end)")
    bf16: bool = _f(True, "bf16 autocast for rollouts and forward/backward, fp32 master weights (CPU: 1.5-2x faster)")
    micro_batch_size: int = _f(8, "rows per forward/backward (memory only; no effect on the maths)")
    generation_batch_size: int = _f(64, "rows per generate call (memory/speed only)")

    def validate(self) -> None:
        for name in ("steps", "prompts_per_step", "samples_per_prompt", "max_thinking_tokens", "answer_tokens",
                     "minibatches", "micro_batch_size", "generation_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.samples_per_prompt < 2:
            raise ConfigError("samples_per_prompt must be >= 2: GRPO normalises rewards within a group")
        if self.minibatches > self.prompts_per_step * self.samples_per_prompt:
            raise ConfigError("minibatches must not exceed prompts_per_step * samples_per_prompt")
        if not 0 < self.clip_eps < 1:
            raise ConfigError(f"clip_eps must be in (0, 1), got {self.clip_eps}")
        if self.temperature <= 0:
            raise ConfigError("temperature must be > 0 for RL rollouts")


# The default run on a 2-core CPU: SmolLM2-135M, ~6 minutes of training. Learning rate is raised
# because 16 rollouts per step and 12 steps are ~3 orders of magnitude less data than the paper.
PRESETS = {
    "paper": {},
    "cpu": {
        "steps": 7,
        "prompts_per_step": 4,
        "samples_per_prompt": 6,
        "max_thinking_tokens": 32,
        "answer_tokens": 16,
        "temperature": 0.7,
        "lr": 1e-5,
        "minibatches": 1,
        "generation_batch_size": 24,
        "micro_batch_size": 12,
    },
}


def reward(task, problem, completion, *, accuracy_weight: float, format_weight: float) -> dict[str, float]:
    """R1-Zero's rule rewards for one completion: accuracy (the task's scorer) + format."""
    from rzoo.harness import rl

    acc = rl.accuracy_reward(task, problem, completion)
    fmt = rl.format_reward(completion)
    return {"accuracy": acc, "format": fmt, "total": accuracy_weight * acc + format_weight * fmt}


def train(cfg: Config, run, config_dict: dict, progress: bool = True, resume: bool = False):
    from functools import partial

    from rzoo.harness import losses, rl

    return rl.train(
        cfg, run, method=NAME,
        loss_fn=losses.grpo_loss, loss_kwargs={"clip_eps": cfg.clip_eps, "beta": cfg.beta},
        advantage_fn=losses.group_normalized_advantages,
        reward_fn=partial(reward, accuracy_weight=cfg.accuracy_weight, format_weight=cfg.format_weight),
        config_dict=config_dict, progress=progress, resume=resume,
    )

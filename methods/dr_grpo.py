"""Dr. GRPO: GRPO Done Right, without its length and difficulty biases.

Paper: Liu et al., "Understanding R1-Zero-Like Training: A Critical Perspective" (2025, arXiv 2503.20783),
§3.1, eq. 3 (sail-sg/understand-r1-zero); the peer is TRL's GRPOTrainer (loss_type="dr_grpo",
scale_rewards="none").

    J = E[ (1/G) sum_i (1/MAX_TOKENS) sum_t min(rho_it A_i, clip(rho_it, 1 - eps, 1 + eps) A_i) ]
    A_i = R_i - mean(R)            (no division by std(R))

GRPO's 1/|o_i| rewards short correct answers more per token and punishes long wrong ones less, so wrong
answers grow; its 1/std(R) weighs questions that are too easy or too hard up. Dr. GRPO drops both.

Run:  harness train+eval method=dr_grpo                (CPU preset: `testbed:early_stop` on the testbed)
      harness train+eval method=dr_grpo preset=paper    (Qwen2.5-Math-1.5B on MATH levels 3-5, GPUs)
      harness train+eval method=dr_grpo loss=gspo clip_eps=3e-4 clip_eps_high=4e-4   (GSPO's ratio)

The pieces are registered in the core: the advantage (`group_centered`), the constant normaliser
(`constant_norm`, MAX_TOKENS = thinking budget + answer budget: TRL's max_completion_length), GRPO's clipped
loss (`grpo`), the accuracy reward (`accuracy`).

Departures: MAX_TOKENS is the completion cap (thinking + answer budget; the paper's generation budget, 3,000);
the CPU preset force-closes rollouts at the budget, updates twice per rollout and uses GRPO's CPU learning rate.
"""
from __future__ import annotations

from dataclasses import dataclass

from rzoo.harness.config import option as _f
from rzoo.harness.training import rl
from rzoo.harness.method import Method
from rzoo.harness.training.config import RL_TINY, RLConfig


@dataclass
class Config(RLConfig):
    """Dr. GRPO's Oat-Zero-1.5B recipe (paper §3.2 and App.); `preset=cpu` moves it to the testbed."""
    model: str = _f("Qwen/Qwen2.5-Math-1.5B", "base model (paper: Qwen2.5-Math-1.5B)")
    train_task: str = _f("math_train", "training problems (paper: MATH levels 3-5)")
    lr: float = _f(1e-6, "AdamW learning rate (paper: 1e-6)", gt=0, le=1)
    prompts_per_step: int = _f(128, "prompts per rollout (paper: 128)", ge=1)
    samples_per_prompt: int = _f(8, "G, responses per prompt (paper: 8)", ge=2)
    max_thinking_tokens: int = _f(2744, "thinking budget (paper: 3,000 generated tokens; 3,000 - 256)", ge=1)
    answer_tokens: int = _f(256, "answer budget after the thinking block", ge=1)
    temperature: float = _f(1.0, "rollout temperature (paper: 1.0)", gt=0, le=10)
    force_close: bool = _f(False, "false: a truncated response stays truncated and scores 0 (paper)")
    advantage: str = _f("group_centered", "A_i = r_i - mean(r), no std division (paper §3.1)")
    aggregation: str = _f("constant_norm", "sum over tokens / (G x MAX_TOKENS), MAX_TOKENS = the completion cap "
                                           "(paper eq. 3)")
    clip_eps: float = _f(0.2, "clip ratio (paper: 0.2)", gt=0)
    clip_eps_high: float = _f(0.2, "upper clip, for loss=gspo / clip_higher (Dr. GRPO: symmetric)", gt=0)
    beta: float = _f(0.0, "KL coefficient (paper: 0, no KL term)", ge=0)
    reward: str = _f("accuracy", "1 correct / 0 wrong (paper: the math verifier's reward)")


PRESETS = {
    "paper": {"eval.task": ["aime24", "amc23", "math500"], "eval.temperature": 0.0},
    "cpu": {
        "model": "testbed:early_stop", "train_task": "runsum", "steps": 30, "prompts_per_step": 16,
        "samples_per_prompt": 8, "max_thinking_tokens": 16, "answer_tokens": 6, "lr": 3e-4,
        "minibatches": 2, "force_close": True,
        "generation_batch_size": 128, "micro_batch_size": 128, "save_every": 10,
        "eval.task": ["runsum"], "eval.budgets": [2, 4, 6, 8, 12, 16], "eval.limit": None, "eval.shuffle": False,
        "eval.answer_tokens": 6, "eval.batch_size": 128,
    },
}


def train(cfg: Config, ctx):
    return rl.train(cfg, ctx)


METHOD = Method(name="dr_grpo", paper="Liu et al. 2025, Understanding R1-Zero-Like Training: A Critical Perspective",
                config=Config, presets=PRESETS, train=train, tiny=RL_TINY)

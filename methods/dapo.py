"""DAPO: Decoupled clip and Dynamic sAmpling Policy Optimization.

Paper: Yu et al., "DAPO: An Open-Source LLM Reinforcement Learning System at Scale" (2025, arXiv 2503.14476),
eq. 8-13; the peer is TRL's GRPOTrainer (loss_type="dapo", epsilon_high, mask_truncated_completions,
trl.rewards.get_soft_overlong_punishment) and verl's DAPO recipe.

    J = E[ 1 / sum_i |o_i|  sum_i sum_t min(rho_it A_i, clip(rho_it, 1 - eps_low, 1 + eps_high) A_i) ]
    s.t. 0 < |{o_i correct}| < G            (dynamic sampling: only groups whose rewards differ)
    A_i = (R_i - mean(R)) / std(R),  R_i = (+1 correct / -1 wrong) + R_length(|o_i|)   (eq. 13)

Run:  harness train+eval method=dapo                 (CPU preset: `testbed:early_stop` on the testbed)
      harness train+eval method=dapo preset=paper model=Qwen/Qwen2.5-32B train_task=...   (on GPUs)
      harness train+eval method=dapo loss=gspo clip_eps=3e-4 clip_eps_high=4e-4 aggregation=seq_mean   (GSPO)
      harness train+eval method=dapo loss=cispo                                  (CISPO, MiniMax-M1)

Every piece is a registered function of the core, chosen by this Config: the clip-higher loss (`clip_higher`,
`training/losses.py`), token-level aggregation (`token_mean`), dynamic sampling with refill (`dynamic_sampling`,
`training/samplers.py: fill_informative`, the RL loop draws up to `dynamic_sampling_max_draws` rollouts a step
and logs `rollouts_drawn`, `dropped_frac`), the soft over-long punishment (`accuracy_overlong`,
`training/rewards.py`) and overlong filtering (`mask_truncated`). GSPO (Zheng et al. 2025) is the `gspo` loss:
`loss=gspo` with its clip range (paper: 3e-4 / 4e-4) and `aggregation=seq_mean` (its eq. 5).

Departures, on purpose:
- the completion cap L_max is the thinking budget + the answer budget (paper: 20,480 total, buffer 4,096);
- at the dynamic-sampling cap the step trains on the informative groups it has (verl raises an error there);
- the CPU preset force-closes rollouts at the budget (as GRPO's CPU preset), clips at 0.2 / 0.28 and updates
  twice per rollout; its learning rate is GRPO's CPU one.
"""
from __future__ import annotations

from dataclasses import dataclass

from rzoo.harness.config import option as _f
from rzoo.harness.training import rl
from rzoo.harness.method import Method
from rzoo.harness.training.config import RL_TINY, RLConfig


@dataclass
class Config(RLConfig):
    """DAPO's recipe (paper §4.1, Table 1); `preset=cpu` moves it to the testbed."""
    model: str = _f("Qwen/Qwen2.5-32B", "base model (paper: Qwen2.5-32B base)")
    train_task: str = _f("math_train", "training problems (paper: DAPO-Math-17K)")
    lr: float = _f(1e-6, "AdamW learning rate (paper: 1e-6, 10 warm-up steps)", gt=0, le=1)
    prompts_per_step: int = _f(512, "prompts per rollout (paper: 512)", ge=1)
    samples_per_prompt: int = _f(16, "G, responses per prompt (paper: 16)", ge=2)
    minibatches: int = _f(16, "updates per rollout (paper: mini-batch 512 responses of 8,192: 16)", ge=1)
    max_thinking_tokens: int = _f(19968, "thinking budget (paper: 20,480 tokens in all; 20,480 - 512)", ge=1)
    answer_tokens: int = _f(512, "answer budget after the thinking block (ours: the paper caps the whole response)",
                            ge=1)
    temperature: float = _f(1.0, "rollout temperature (paper: 1.0)", gt=0, le=10)
    force_close: bool = _f(False, "false: a truncated response stays truncated (paper)")
    loss: str = _f("clip_higher", "policy loss: clip_higher (DAPO eq. 10); gspo (GSPO's sequence ratio); cispo "
                                  "(MiniMax-M1's clipped IS weight); sapo (a soft gate)")
    clip_eps: float = _f(0.2, "eps_low, the ratio's lower clip (paper: 0.2)", gt=0, lt=1)
    clip_eps_high: float = _f(0.28, "eps_high, the ratio's upper clip (paper: 0.28)", gt=0)
    cispo_eps_high: float = _f(4.0, "for loss=cispo: the IS weight's cap is 1 + this (ScaleRL / TRL: epsilon_high 5.0)",
                               gt=0)
    aggregation: str = _f("token_mean", "token-level loss: mean over all tokens of the batch (paper eq. 8)")
    beta: float = _f(0.0, "KL coefficient (paper: no KL term)", ge=0)
    reward: str = _f("accuracy_overlong", "+1 / -1 rule reward + soft over-long punishment (paper eq. 13)")
    overlong_buffer: int = _f(4096, "L_cache, the soft punishment's buffer below the cap (paper: 4,096)", ge=0)
    dynamic_sampling: bool = _f(True, "drop groups whose rewards are all equal and refill the batch (paper)")
    dynamic_sampling_max_draws: int = _f(3, "rollouts drawn per step at most (verl: max_num_gen_batches)", ge=1)
    mask_truncated: bool = _f(True, "overlong filtering: truncated responses are left out of the loss (Table 1)")


PRESETS = {
    "paper": {"eval.task": ["aime24"], "eval.temperature": 1.0, "eval.top_p": 0.7, "eval.k": 32},  # avg@32
    # GRPO's CPU preset (the testbed model that stops early, 30 rollouts of 16 x 8) with DAPO's pieces;
    # L_max = 16 + 6 = 22 tokens, the punishment starts past 18
    "cpu": {
        "model": "testbed:early_stop", "train_task": "runsum", "steps": 30, "prompts_per_step": 16,
        "samples_per_prompt": 8, "max_thinking_tokens": 16, "answer_tokens": 6, "lr": 3e-4,
        "minibatches": 2, "force_close": True, "overlong_buffer": 4,
        "generation_batch_size": 128, "micro_batch_size": 128, "save_every": 10,
        "eval.task": ["runsum"], "eval.budgets": [2, 4, 6, 8, 12, 16], "eval.limit": None, "eval.shuffle": False,
        "eval.answer_tokens": 6, "eval.batch_size": 128,
    },
}


def train(cfg: Config, ctx):
    return rl.train(cfg, ctx)


# a random model's answers all run to the answer budget: overlong filtering would mask every one
METHOD = Method(name="dapo", paper="Yu et al. 2025, DAPO: An Open-Source LLM Reinforcement Learning System at Scale",
                config=Config, presets=PRESETS, train=train, tiny={**RL_TINY, "mask_truncated": False})

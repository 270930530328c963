"""Kimi k1.5: policy optimisation by online mirror descent with a squared surrogate, a token length
penalty, and curriculum + prioritised sampling.

Paper: Kimi Team, "Kimi k1.5: Scaling Reinforcement Learning with LLMs" (arXiv 2501.12599), §2.3.
No public implementation exists; every choice the paper leaves open is a config field whose help says
"paper silent".

    per iteration i, with pi_theta_i (the current policy) as reference, k samples per prompt:
    L(theta) = E_x (1/k) sum_j ( r_j - tau log Z - tau log( pi_theta(y_j|x) / pi_theta_i(y_j|x) ) )^2
    tau log Z ~ r_bar (the paper's practice; advantage=kimi_mean_baseline)
              or tau log (1/k) sum_j exp(r_j / tau) (advantage=kimi_logmeanexp_baseline)
    no value network; the optimiser state is reset at each iteration (reset_optimizer)

    length penalty over one prompt's k samples (§2.3.3), switched on after a warm-up:
    lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len)   (0 for all when max_len = min_len)
    r_i += w * lambda_i            if y_i is correct
    r_i += w * min(0, lambda_i)    if not

Run:  harness train+eval method=kimi                      (CPU preset: the testbed)
      harness train+eval method=kimi preset=paper model=<hub id> train_task=math_train

The loss and both tau log Z estimators are registered in `harness/training/losses.py` (tested against the
equation written as loops and against the paper's gradient expression: ours is the paper's times -2 tau, a
scale Adam ignores but gradient clipping does not: `max_grad_norm` clips the rescaled norm); the curriculum and the
prioritised sampler (p_i ∝ 1 - s_i, s_i problem i's running success rate) in `harness/training/samplers.py`,
with their state saved for resume. This file holds the defaults and the length-penalty reward.

No forced answers: a rollout that reaches the thinking budget stays unclosed and earns no accuracy
(`force_close=false`); Kimi has no such device, and a forced answer would be the longest of its group.

Departures, on purpose:
- lengths are tokens of the whole completion (model-written and injected); open-r1's implementation
  counts characters.
- values the paper does not give are ours, and say so in their help: the thinking budget, the number of
  samples per prompt, prompts per iteration, the learning rate, tau, w and the penalty's warm-up.
- one iteration = one rollout, split into `minibatches` optimiser updates (paper silent on how many
  gradient steps an iteration takes); with one update the log-ratio is 0 and only the policy-gradient
  term acts, so the default is 4.
- the curriculum's schedule (a pool growing linearly from the easiest quarter to everything by half
  the run) is ours; the paper says only "easy to hard".
"""
from __future__ import annotations

from dataclasses import dataclass

from rzoo.harness.training import rewards, rl
from rzoo.harness.config import option as _f
from rzoo.harness.method import FRONTIER, LONG_BASE, Method
from rzoo.harness.training.config import RL_TINY, RLConfig


@dataclass
class Config(RLConfig):
    """Kimi k1.5's RL. The paper gives the objective, the length penalty and the sampling strategies but
    almost no hyper-parameters: fields marked "paper silent" are ours."""
    loss: str = _f("kimi", "policy loss: the squared mirror-descent surrogate (harness/training/losses.py)")
    advantage: str = _f("kimi_mean_baseline", "tau log Z estimate: kimi_mean_baseline (r_bar, the paper's practice) "
                                              "or kimi_logmeanexp_baseline (tau log mean exp(r/tau))")
    reward: str = _f("kimi_length_penalty", "reward: accuracy + the token length penalty (this file)")
    sampler: str = _f("curriculum_prioritized", "problem sampler: curriculum (easy -> hard) then prioritised "
                                                "by 1 - success rate (harness/training/samplers.py)")
    reset_optimizer: bool = _f(True, "reset the optimiser state at each iteration (paper: yes)")
    force_close: bool = _f(False, "at the thinking budget: false = the rollout stays unclosed and earns no accuracy "
                                  "(Kimi has no forced answer); true = force-close and answer (s1)")
    max_thinking_tokens: int = _f(4096, "thinking budget per rollout (ours; paper silent for this recipe)", ge=1)
    samples_per_prompt: int = _f(8, "k, completions per prompt (ours; paper silent)", ge=2)
    prompts_per_step: int = _f(32, "prompts per iteration (ours; paper silent)", ge=1)
    lr: float = _f(1e-6, "AdamW learning rate (ours; paper silent)", gt=0, le=1)
    minibatches: int = _f(4, "optimiser updates per iteration (paper silent)", ge=1)
    tau: float = _f(0.1, "tau, the KL regularisation strength of the mirror-descent step (paper silent)", gt=0)
    length_penalty_weight: float = _f(0.5, "w, the weight of the length reward (paper silent)", ge=0)
    length_penalty_warmup: int = _f(0, "iterations before the length penalty is switched on (paper: 'a warm-up'; "
                                       "length silent)", ge=0)
    curriculum_start: float = _f(0.25, "curriculum: fraction of the easiest problems drawn from at first (ours)",
                                 gt=0, le=1)
    curriculum_until: float = _f(0.5, "curriculum: fraction of the run after which every problem is drawn (ours)",
                                 ge=0, le=1)


PRESETS = {
    # Kimi's report publishes no evaluation prompt or sampling: DeepSeek-R1's protocol, the closest published one
    # for the same benchmarks, is ours
    "paper": {"temperature": 1.0, "eval.protocol": "deepseek_r1", "eval.task": ["aime24", "math500"]},
    "cpu": {
        "model": "testbed:redundant", "train_task": "runsum", "steps": 60, "prompts_per_step": 16,
        "samples_per_prompt": 8, "max_thinking_tokens": 24, "answer_tokens": 6, "temperature": 1.0, "lr": 1e-4,
        "generation_batch_size": 128, "micro_batch_size": 128, "save_every": 20, "length_penalty_warmup": 5,
        "eval.task": ["runsum"], "eval.budgets": [2, 4, 6, 8, 12, 16, 24], "eval.limit": None,
        "eval.shuffle": False, "eval.answer_tokens": 6, "eval.batch_size": 128,
    },
}


def length_penalty(lengths: list[int], correct: list[bool]) -> list[float]:
    """Kimi k1.5 §2.3.3 over one prompt's samples: w-less length reward per sample (see the docstring)."""
    lo, hi = min(lengths), max(lengths)
    if hi == lo:
        return [0.0] * len(lengths)
    lam = [0.5 - (n - lo) / (hi - lo) for n in lengths]
    return [x if ok else min(0.0, x) for x, ok in zip(lam, correct)]


@rewards.REWARDS.register("kimi_length_penalty")
def kimi_reward(task, problem, group, *, step: int, length_penalty_weight: float = 0.5,
                length_penalty_warmup: int = 0) -> list[dict[str, float]]:
    """Accuracy (the task's scorer, 1/0) plus w x the length penalty once `step` is past the warm-up."""
    acc = [rewards.accuracy(task, problem, c) for c in group]
    on = step > length_penalty_warmup
    pen = length_penalty([len(c.completion_ids) for c in group], [a == 1.0 for a in acc]) if on else [0.0] * len(acc)
    return [{"accuracy": a, "length_penalty": p, "total": a + length_penalty_weight * p} for a, p in zip(acc, pen)]


def train(cfg: Config, ctx):
    return rl.train(cfg, ctx)


METHOD = Method(name="kimi", paper="Kimi k1.5 (2025) §2.3: policy optimisation, length penalty, sampling strategies",
                config=Config, presets=PRESETS, train=train, tiny=RL_TINY,
                figures=(FRONTIER, LONG_BASE))  # its cpu preset starts from the long model

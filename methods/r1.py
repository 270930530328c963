"""DeepSeek-R1: the full recipe, four stages, each starting from a checkpoint of the one before (or the base).

Paper: DeepSeek-AI, "DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via Reinforcement Learning"
(2025), §2.3 ("DeepSeek-R1: Reinforcement Learning with Cold Start").

    1 cold_start     SFT of the base on a small set of readable long chains (paper: thousands)
    2 reasoning_rl   R1-Zero's GRPO (grpo.py) with reward = accuracy + format + language consistency,
                     LC = the share of the chain's words in the target language (training/language.py)
    3 rejection_sft  rejection sampling from stage 2's checkpoint (correct, one language, not too long, no
                     code, no loops: training/rejection_sft.py), then SFT of the *base* model on what was kept
                     (paper: ~600k reasoning samples, 2 epochs)
    4 final_rl       RL again from stage 3's checkpoint, rule rewards as in stage 2

Run:  harness train+eval method=r1                  (CPU preset: the testbed, `testbed:mixed`, minutes)
      harness train+eval method=r1 preset=paper     (DeepSeek-V3-Base: the recipe's values, for GPUs)
      harness train method=r1 language_weight=0     (the same RL without the language reward)

The stages run through the core's `training/stages.py`: each is an ordinary run under `stages/stage<k>-<name>/`,
resumable mid-stage; every stage's checkpoint is evaluated as its own curve (`eval_stage<k>`, knob `stage`).

The testbed's version of R1's problem: `testbed:mixed` is the early-stopping testbed model taught traces whose
steps are written in two "languages" (" 3" or the letter "D" for the same value, `tasks/runsum.py`), mixed the
way R1-Zero mixed English and Chinese (about 70% of its steps in the target language); the language is
`testbed` (by vocabulary), the cold start a few hundred consistent `early_stop` traces.

Departures from the paper, on purpose:
- stage 4 uses the rule rewards only (the paper adds reward models for helpfulness and harmlessness on general
  data, and general data: this zoo trains reasoning only); stage 3 keeps reasoning samples only (the paper adds
  ~200k non-reasoning samples) and judges correctness by the task's scorer (the paper also asks DeepSeek-V3 for
  answers no rule checks);
- the paper is silent on the cold start's and SFT's learning rates, the rejection sampler's k and temperature,
  its length cap and the last RL's length: marked "(ours)" in the help; the readability format of the cold
  start (a summary after the chain) is the task's own format here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rzoo.harness.config import ConfigError, carried
from rzoo.harness.config import option as _f
from rzoo.harness.method import Method
from rzoo.harness.training import rejection_sft, rewards, rl, sft, stages
from rzoo.harness.training.language import LANGUAGES, share
from rzoo.harness.training.config import RL_TINY, RLConfig, SFTConfig

from . import grpo


@dataclass
class Config(RLConfig):
    """DeepSeek-R1's pipeline (§2.3). The RL fields are both RL stages' (R1-Zero's values, grpo.py); the
    cold-start, rejection-sampling and SFT fields are their stages'. `preset=cpu` moves it to the testbed."""
    model: str = _f("deepseek-ai/DeepSeek-V3-Base", "base model (paper: DeepSeek-V3-Base)")
    train_task: str = _f("math_train", "RL and rejection-sampling problems (paper: its own reasoning prompts, not "
                                       "released; ours: MATH's train split)")
    steps: int = _f(650, "reasoning-RL rollouts (paper: 'until convergence'; ours: R1-Zero's, grpo.py)", ge=1)
    prompts_per_step: int = _f(512, "questions per rollout (paper, R1-Zero: 512)", ge=1)
    samples_per_prompt: int = _f(16, "G, outputs per question (paper: 16)", ge=2)
    max_thinking_tokens: int = _f(32000, "thinking budget per completion (paper: 32,768 total length)", ge=1)
    answer_tokens: int = _f(768, "answer budget after the thinking block", ge=1)
    lr: float = _f(3e-6, "RL learning rate (paper: 3e-6)", gt=0, le=1)
    beta: float = _f(0.001, "KL coefficient, k3 (paper: 0.001)", ge=0)
    clip_eps: float = _f(10.0, "clip ratio (paper: 10)", gt=0)
    minibatches: int = _f(16, "updates per rollout (paper: 16)", ge=1)
    ref_refresh_updates: int = _f(400, "reference replaced by the policy every N updates (paper: 400)", ge=0)
    temperature: float = _f(1.0, "rollout temperature (paper: 1)", gt=0, le=10)
    force_close: bool = _f(False, "false: a truncated rollout scores 0 (paper)")
    reward: str = _f("r1", "reward: r1 = accuracy + format + language consistency (this file)")
    accuracy_weight: float = _f(1.0, "weight of the accuracy reward (paper: rewards summed)", ge=0)
    format_weight: float = _f(1.0, "weight of the format reward (paper: rewards summed)", ge=0)
    language: str = _f("en", "target language of the chain of thought (training/language.py LANGUAGES: en, zh "
                             "by script; testbed by vocabulary)")
    language_weight: float = _f(1.0, "weight of the language-consistency reward (paper: summed with accuracy, "
                                     "1); 0 = the same RL without it", ge=0)
    cold_start_data: str = _f("simplescaling/s1K-1.1", "cold-start chains (paper: thousands of readable long CoTs, "
                                                       "not released; ours: s1K-1.1, R1's own chains); "
                                                       "<task>:<variant> or jsonl:<path> offline")
    cold_start_limit: int | None = _f(None, "use only the first N cold-start examples (none: all)", ge=1)
    cold_start_epochs: float = _f(2.0, "passes over the cold-start set (paper: silent; ours, as stage 3's 2)",
                                  gt=0)
    cold_start_steps: int | None = _f(None, "cold-start optimiser steps (none: the epochs decide)", ge=1)
    cold_start_lr: float = _f(1e-5, "cold-start learning rate (paper: silent; ours: s1's)", gt=0, le=1)
    sft_batch_size: int = _f(16, "examples per SFT step, both SFT stages (paper: silent; ours)", ge=1)
    sft_max_length: int = _f(32768, "tokens per SFT example, longer ones cut (ours: the RL length)", ge=8)
    rs_problems: int | None = _f(None, "problems to rejection-sample (none: every training problem)", ge=1)
    rs_samples: int = _f(4, "samples per problem (paper: silent; ours)", ge=1)
    rs_temperature: float = _f(0.6, "sampling temperature (paper: silent; ours: R1's evaluation temperature)",
                               gt=0, le=10)
    rs_max_thinking_tokens: int | None = _f(None, "length cap: samples with more thinking tokens are dropped, "
                                                  "and sampling stops there (none: the RL budget)", ge=1)
    rs_min_language_share: float = _f(1.0, "drop samples whose thinking is less than this share in the target "
                                           "language (paper: mixed-language chains are filtered)", ge=0, le=1)
    rs_max_repetition: float = _f(0.5, "drop samples whose thinking repeats more than this share of its token "
                                       "4-grams (ours)", ge=0, le=1)
    rs_require_closed: bool = _f(True, "drop samples whose thinking did not close within the cap (paper: only "
                                       "complete, correct responses); false: force-close them and judge the answer")
    sft_epochs: float = _f(2.0, "passes over the rejection-sampled set (paper: 2 epochs)", gt=0)
    sft_steps: int | None = _f(None, "SFT optimiser steps (none: the epochs decide)", ge=1)
    sft_lr: float = _f(1e-5, "SFT learning rate (paper: silent; ours: s1's)", gt=0, le=1)
    final_rl_steps: int = _f(650, "final-RL rollouts (paper: silent; ours: stage 2's)", ge=1)

    def validate(self) -> None:
        super().validate()
        LANGUAGES.get(self.language)  # an unknown name fails here, with the valid ones
        if self.reward != "r1" and self.language_weight:
            raise ConfigError(f"language_weight={self.language_weight} is read by reward=r1 only, not "
                              f"{self.reward!r}")


PRESETS = {
    # evaluated as DeepSeek does (eval.protocol=deepseek_r1: no system prompt, temperature 0.6, 64 samples)
    "paper": {"eval.protocol": "deepseek_r1", "eval.task": ["aime24", "math500", "gpqa_diamond"]},
    # The testbed: grpo's CPU preset for both RL stages (30 + 30 rollouts of 16 x 8), a light cold start (5 steps on
    # 64 consistent early_stop traces: measured, it lifts the share of the target language in temperature-1 rollouts
    # from about 0.75 to 0.91; 40 steps on 256 made it 1.000, leaving the language reward nothing to do), 4 samples
    # of 1,024 problems for rejection sampling.
    "cpu": {
        "model": "testbed:mixed", "train_task": "runsum", "language": "testbed", "steps": 30,
        "prompts_per_step": 16, "samples_per_prompt": 8, "max_thinking_tokens": 16, "answer_tokens": 6,
        "temperature": 1.0, "lr": 3e-4, "minibatches": 2, "ref_refresh_updates": 0, "clip_eps": 0.2,
        "force_close": True, "generation_batch_size": 128, "micro_batch_size": 128, "save_every": 10,
        "cold_start_data": "runsum:early_stop", "cold_start_limit": 64, "cold_start_steps": 5,
        "cold_start_lr": 3e-4, "sft_batch_size": 64, "sft_max_length": 128,
        "rs_problems": 1024, "rs_samples": 4, "rs_temperature": 1.0, "rs_max_thinking_tokens": 16,
        "rs_min_language_share": 1.0, "sft_steps": 200, "sft_lr": 1e-3, "final_rl_steps": 30,
        # sampled as R1 evaluates (temperature 0.6, top-p 0.95; 4 samples, paper: 64): greedy decoding hides the
        # mixing (the likelier language wins every step), sampling shows it
        "eval.task": ["runsum"], "eval.budgets": [2, 4, 6, 8, 12, 16], "eval.limit": None, "eval.shuffle": False,
        "eval.answer_tokens": 6, "eval.batch_size": 128, "eval.temperature": 0.6, "eval.top_p": 0.95, "eval.k": 4,
    },
}


@rewards.REWARDS.register("r1")
def r1_reward(task, problem, group, *, step: int, accuracy_weight: float = 1.0, format_weight: float = 1.0,
              language: str = "en", language_weight: float = 1.0) -> list[dict[str, float]]:
    """R1's rule rewards (§2.3.2): R1-Zero's accuracy + format, plus the language consistency of the thinking
    (its share of words in the target language; 0 for a thinking with no words, so an empty chain earns none)."""
    out = []
    for c in group:
        acc, fmt = rewards.accuracy(task, problem, c), grpo.format_reward(c)
        lc = share(c.thinking_text, language) or 0.0
        out.append({"accuracy": acc, "format": fmt, "language": lc,
                    "total": accuracy_weight * acc + format_weight * fmt + language_weight * lc})
    return out


def sft_config(cfg: Config, *, lr: float, epochs: float, steps: int | None, limit: int | None = None) -> SFTConfig:
    """An SFT stage's config: the run's shared fields (model, seed, dtype, optimiser...), the stage's own."""
    return carried(SFTConfig, cfg, lr=lr, epochs=epochs, max_steps=steps, limit=limit, batch_size=cfg.sft_batch_size,
                   max_length=cfg.sft_max_length, train_data="(the stage's)", warmup_ratio=0.0)


def cold_start_data(cfg: Config):
    def data(inputs: stages.StageInputs):
        if inputs.ctx.load_data is None:
            raise ConfigError("r1's cold start needs the app's data loader (TrainContext.load_data)")
        return inputs.ctx.load_data(cfg.cold_start_data)
    return data


def rejection_data(cfg: Config):
    """Stage 3's data: samples of stage 2's checkpoint, filtered (`training/rejection_sft.py`)."""
    def data(inputs: stages.StageInputs):
        import hashlib

        from rzoo.harness.data import SFTData, Source

        ctx = inputs.ctx
        problems = ctx.data.problems[:cfg.rs_problems]
        cap = cfg.rs_max_thinking_tokens or cfg.max_thinking_tokens
        filters = rejection_sft.Filters(cfg.language, cfg.rs_min_language_share, cap, cfg.rs_max_repetition,
                                    require_closed=cfg.rs_require_closed)
        folder = inputs.folder / "rejection"
        examples, report = rejection_sft.sample(
            inputs.previous, ctx.data.task, problems, k=cfg.rs_samples, max_thinking_tokens=cap,
            answer_tokens=cfg.answer_tokens, temperature=cfg.rs_temperature, filters=filters, seed=cfg.seed,
            dtype=cfg.dtype, batch_size=cfg.generation_batch_size, folder=folder, progress=ctx.progress)
        print(f"[r1] rejection sampling kept {report['kept']} of {report['samples']} samples "
              f"({report['kept_share']:.3f}); dropped: {report['dropped']}", flush=True)
        if not examples:
            raise ConfigError(f"r1: rejection sampling kept no sample of {report['samples']} (dropped: "
                              f"{report['dropped']}); see {folder / 'samples.jsonl'}")
        path = folder / "data.jsonl"
        return SFTData(f"rejection:{path}", examples, Source("local", str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    return data


def pipeline(cfg: Config) -> list[stages.Stage]:
    cold = sft_config(cfg, lr=cfg.cold_start_lr, epochs=cfg.cold_start_epochs, steps=cfg.cold_start_steps,
                      limit=cfg.cold_start_limit)
    second = sft_config(cfg, lr=cfg.sft_lr, epochs=cfg.sft_epochs, steps=cfg.sft_steps)
    final = dataclasses.replace(cfg, steps=cfg.final_rl_steps)
    return [
        stages.Stage("cold_start", lambda ctx: sft.train(cold, ctx), data=cold_start_data(cfg), config=cold),
        stages.Stage("reasoning_rl", lambda ctx: rl.train(cfg, ctx), config=cfg),
        stages.Stage("rejection_sft", lambda ctx: sft.train(second, ctx), start=stages.BASE,
                     data=rejection_data(cfg), config=second),
        stages.Stage("final_rl", lambda ctx: rl.train(final, ctx), config=final),
    ]


def train(cfg: Config, ctx):
    return stages.run_stages(pipeline(cfg), ctx)


def curves(run_path):
    """Every stage's checkpoint as its own curve over the evaluation's budgets (knob `stage`); the last stage's is
    the run's own evaluation."""
    from rzoo.harness.evaluation.evaluate import CheckpointCurve

    return [CheckpointCurve(f"eval_stage{k}", "stage", [(k, checkpoint)], f"r1 stage {k}: {name}",
                            f"local:{checkpoint}", sweep=True) for k, name, checkpoint in stages.finished(run_path)]


METHOD = Method(name="r1", paper="DeepSeek-R1 (2025) §2.3: cold start, reasoning RL with language consistency, "
                                 "rejection sampling + SFT, RL",
                config=Config, presets=PRESETS, train=train, curves=curves,
                tiny={**RL_TINY, "reward": "r1", "language": "en", "cold_start_data": "jsonl:{sft_file}",
                      "cold_start_steps": 1, "sft_steps": 1, "steps": 1, "final_rl_steps": "{steps}", "rs_problems": 2,
                      "rs_samples": 4, "rs_min_language_share": 0.0, "rs_require_closed": False, "sft_batch_size": 2,
                      "sft_max_length": 256})

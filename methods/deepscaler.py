"""DeepScaleR: GRPO with the context length staged 8K -> 16K -> 24K, each stage resuming the last.

Reference: Luo et al., "DeepScaleR: Surpassing O1-Preview with a 1.5B Model by Scaling RL" (2025),
agentica-project/rllm (`scripts/deepscaler/train/deepscaler_1.5b_{8k,16k,24k}.sh`, verl's GRPO).

    stage 1: max response 8,192 tokens, 8 samples per prompt   (~1,040 steps)
    stage 2: 16,384 tokens, 16 samples                         (~480 steps)
    stage 3: 24,576 tokens, 16 samples                         (the rest)
    GRPO, token-mean loss aggregation, KL 0.001 (low-variance k3), clip 0.2, entropy bonus 0.001,
    lr 1e-6, 128 prompts per step, rollout temperature 0.6; reward 1 iff the answer is correct and the
    thinking was closed (`</think>`), else 0; truncated responses score 0 (no forced answer).

Run:  harness train+eval method=deepscaler                 (CPU preset: the testbed, stages 8/12/16 tokens)
      harness train+eval method=deepscaler preset=paper     (R1-Distill-Qwen-1.5B on DeepScaleR-40K, GPUs)

Users of the original run three scripts by hand and copy checkpoint paths between them; here the stages
are one config and one run, on the core's stages (`harness/training/stages.py`, R1's pipeline uses them too):
each stage continues the trainer of the one before (`Stage.continues`: its step count, sampler and RNG go on
as in one run), a per-step schedule (`harness/training/rl.py`) switches the response length and the group size
at each stage boundary, the optimiser state is reset and the KL reference is rebuilt from the current weights
there (each original stage starts a fresh trainer from the last checkpoint, and verl builds the reference
from that checkpoint), and each stage's checkpoint, training log and config are kept in
`stages/stage<k>-context<tokens>/` (with `start.json` / `end.json`: the weights it started and ended with; the
last stage trains in the run folder). `resume=` works anywhere. After training, every stage's checkpoint is
evaluated at the largest budget (`eval_stages/`, this file's `curves` hook and the core's `stage` knob), so the
leaderboard shows the stages as points on one line.

Everything else is registered and shared: the `correct_and_closed` reward (harness/training/rewards.py), the
`token_mean` aggregation (harness/training/losses.py), `entropy_coef`, `force_close=false`.

Updates per rollout: rllm's scripts draw 128 prompts (x 8 or 16 samples) and make two optimiser updates of
mini-batches of 64 prompts (`ppo_mini_batch_size=64`, one epoch), so the 0.2 clip acts on the second:
`minibatches=2` here, as in the paper preset.

Departures: the response length is a thinking budget plus a short answer budget (the original caps
the whole response); the CPU preset starts from `testbed:early_stop` on the testbed with stages of
8/12/16 thinking tokens, so that truncation binds in the first stage.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from rzoo.harness.config import ConfigError
from rzoo.harness.config import option as _f
from rzoo.harness.evaluation.evaluate import CheckpointCurve
from rzoo.harness.runstore import atomic_write_json, weights_sha256
from rzoo.harness.training import rl, stages
from rzoo.harness.method import Method
from rzoo.harness.training.config import RL_TINY, RLConfig

@dataclass
class Config(RLConfig):
    """DeepScaleR-1.5B-Preview's recipe (rllm scripts); `preset=cpu` moves it to the testbed."""
    model: str = _f("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "base model (paper: R1-Distill-Qwen-1.5B)")
    train_task: str = _f("deepscaler_data", "training problems (paper: the DeepScaleR-Preview 40K mix)")
    stage_max_tokens: list[int] = _f([8192, 16384, 24576], "thinking budget of each stage (paper: max response "
                                                           "length 8K, 16K, 24K)", ge=1)
    stage_samples: list[int] = _f([8, 16, 16], "completions per prompt in each stage (paper: 8, 16, 16)", ge=2)
    stage_steps: list[int] = _f([1040, 480, 230], "rollouts in each stage (paper: switches at ~1,040 and ~1,520; "
                                                  "the last stage's length is ours)", ge=1)
    steps: int = _f(1750, "total rollouts: must equal sum(stage_steps)", ge=1)
    answer_tokens: int = _f(512, "answer budget after the thinking block (ours: the paper caps the whole response)",
                            ge=1)
    prompts_per_step: int = _f(128, "prompts per step (paper: 128)", ge=1)
    lr: float = _f(1e-6, "AdamW learning rate (paper: 1e-6)", gt=0, le=1)
    temperature: float = _f(0.6, "rollout temperature (paper: 0.6)", gt=0, le=10)
    beta: float = _f(0.001, "KL coefficient, low-variance k3 (paper: 0.001)", ge=0)
    clip_eps: float = _f(0.2, "clip ratio (paper: 0.2)", gt=0)
    entropy_coef: float = _f(0.001, "entropy bonus (paper: 0.001)", ge=0)
    aggregation: str = _f("token_mean", "loss aggregation (paper: verl's token-mean)")
    reward: str = _f("correct_and_closed", "1 iff correct and the thinking was closed (paper: rllm's reward)")
    force_close: bool = _f(False, "false: a truncated response is not force-closed and scores 0 (paper)")
    reset_optimizer_per_stage: bool = _f(True, "fresh optimiser state at each stage (each original stage is a new "
                                               "trainer started from the last checkpoint)")
    renew_reference_per_stage: bool = _f(True, "the KL reference becomes the current weights at each stage (verl "
                                               "builds it from the checkpoint each stage starts from)")
    minibatches: int = _f(2, "optimiser updates per rollout (paper: rllm's ppo_mini_batch_size 64 of "
                             "train_batch_size 128: 2)", ge=1)

    def validate(self) -> None:
        super().validate()
        lengths = {len(self.stage_max_tokens), len(self.stage_samples), len(self.stage_steps)}
        if len(lengths) != 1:
            raise ConfigError("stage_max_tokens, stage_samples and stage_steps must have one entry per stage")
        if self.steps != sum(self.stage_steps):
            raise ConfigError(f"steps must equal sum(stage_steps) = {sum(self.stage_steps)}, got {self.steps}")


PRESETS = {
    # evaluated as rllm does (eval.protocol=deepscaler: its instruction, temperature 0.6, 16 samples, 32K tokens)
    "paper": {"eval.protocol": "deepscaler", "eval.task": ["aime24", "math500", "amc", "minerva", "olympiadbench"]},
    "cpu": {
        "model": "testbed:early_stop", "train_task": "runsum", "stage_max_tokens": [8, 12, 16],
        "stage_samples": [8, 8, 16], "stage_steps": [15, 15, 15], "steps": 45, "prompts_per_step": 16,
        "answer_tokens": 6, "lr": 3e-4, "generation_batch_size": 256,
        "micro_batch_size": 128, "save_every": 5,
        "eval.task": ["runsum"], "eval.budgets": [4, 8, 12, 16], "eval.limit": None, "eval.shuffle": False,
        "eval.answer_tokens": 6, "eval.batch_size": 128,
    },
}


def stage_of(cfg: Config, step: int) -> int:
    """0-based stage of a 1-based step."""
    end = 0
    for k, n in enumerate(cfg.stage_steps):
        end += n
        if step <= end:
            return k
    return len(cfg.stage_steps) - 1


class Stages:
    """The per-step schedule and the stage boundaries (`rl.RLTrainer`'s schedule hooks)."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.ends = [sum(cfg.stage_steps[:k + 1]) for k in range(len(cfg.stage_steps))]

    def __call__(self, cfg: Config, step: int) -> Config:
        k = stage_of(self.cfg, step)
        return dataclasses.replace(cfg, max_thinking_tokens=self.cfg.stage_max_tokens[k],
                                   samples_per_prompt=self.cfg.stage_samples[k])

    def before_step(self, trainer, step: int) -> None:
        starts = [1] + [end + 1 for end in self.ends[:-1]]
        if step not in starts:
            return
        stage = starts.index(step) + 1
        if stage > 1 and self.cfg.reset_optimizer_per_stage:
            trainer.reset_optimizer()
        if stage > 1 and self.cfg.renew_reference_per_stage:
            trainer.refresh_reference()
        if trainer.accelerator.is_main_process:  # the weights this stage starts from, and its KL reference
            ref = trainer.ref_model
            atomic_write_json(stages.folder_of(trainer.ctx) / "start.json", {
                "step": step, "weights_sha256": weights_sha256(trainer.accelerator.unwrap_model(trainer.model)),
                "reference_weights_sha256": weights_sha256(ref) if ref else None})

    def log(self, step: int) -> dict:
        return {"stage": stage_of(self.cfg, step) + 1}

    def after_step(self, trainer, step: int) -> None:
        k = stage_of(self.cfg, step)
        if step == self.ends[k] and trainer.accelerator.is_main_process:  # what the stage ended with
            atomic_write_json(stages.folder_of(trainer.ctx) / "end.json", {
                "stage": k + 1, "steps": [self.ends[k] - self.cfg.stage_steps[k] + 1, step],
                "max_thinking_tokens": self.cfg.stage_max_tokens[k], "samples_per_prompt": self.cfg.stage_samples[k],
                "weights_sha256": weights_sha256(trainer.accelerator.unwrap_model(trainer.model))})


def _train_to(cfg: Config, schedule: Stages, end: int, ctx):
    """One stage: the run's trainer (begun, or continued from the stage before) run to step `end`."""
    return rl.train(dataclasses.replace(cfg, steps=end), ctx, schedule=schedule)


def pipeline(cfg: Config) -> list[stages.Stage]:
    """One stage per context length; each continues the one before it (`Stage.continues`)."""
    schedule = Stages(cfg)
    return [stages.Stage(f"context{tokens}", functools.partial(_train_to, cfg, schedule, end), continues=k > 0,
                         config=cfg) for k, (tokens, end) in enumerate(zip(cfg.stage_max_tokens, schedule.ends))]


def checkpoint_curves(run_path: Path) -> list[CheckpointCurve]:
    """After training: every stage's checkpoint on one curve, at the largest budget (the core's `stage` knob)."""
    run_path = Path(run_path)
    return [CheckpointCurve("eval_stages", "stage", [(k, p) for k, _, p in stages.finished(run_path, last=True)],
                            "stages", f"local:{run_path / stages.STAGES_DIR}")]


def train(cfg: Config, ctx):
    return stages.run_stages(pipeline(cfg), ctx)


METHOD = Method(name="deepscaler", paper="Luo et al. 2025, DeepScaleR (rllm): staged context, GRPO",
                config=Config, presets=PRESETS, train=train, curves=checkpoint_curves,
                tiny={**RL_TINY, "stage_steps": [1, 1], "stage_max_tokens": [4, 6], "stage_samples": [4, 4]})

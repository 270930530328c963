"""Config sections shared by every training method, so that a method's `Config` declares only its own
fields.

A method's `Config` inherits from exactly one of `RLConfig` or `SFTConfig` (each a flat dataclass made
of the sections below), adds its own fields, and re-declares a shared field only to give it the
paper's default. Keys stay flat on the command line (`lr=1e-5`, `temperature=0.6`); `harness train
method=X --help` shows each key's default and where it comes from (a section, the method, or the
preset).

Defaults here are neutral (torch / TRL defaults); each method's `Config` and `PRESETS` say what its
paper uses.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError
from ..config import option as _f


def _next_validate(cls: type, cfg) -> None:
    """Sections validate cooperatively: each runs its own checks, then the next section's in the MRO."""
    check = getattr(super(cls, cfg), "validate", None)
    if check is not None:
        check()


@dataclass
class ModelData:
    section = "model/data"
    model: str = _f("default", "base model: hub id, local folder, 'default' (SmolLM2-135M-Instruct) or 'testbed' "
                               "(the tiny model of the testbed task)")
    data_dir: str | None = _f(None, "local data directory (else $RZOO_DATA; the hub if reachable; ../shared/data)")
    seed: int = _f(0, "seed for data order, sampling and initialisation")


@dataclass
class Optimiser:
    section = "optimiser"
    lr: float = _f(1e-6, "AdamW learning rate", gt=0, le=1)
    weight_decay: float = _f(0.0, "AdamW weight decay", ge=0, le=1)
    adam_beta1: float = _f(0.9, "AdamW beta1 (torch default)", ge=0, lt=1)
    adam_beta2: float = _f(0.999, "AdamW beta2 (torch default)", ge=0, lt=1)
    max_grad_norm: float = _f(1.0, "gradient clipping norm (TRL default 1.0); 0 = no clipping", ge=0)
    warmup_ratio: float = _f(0.0, "linear warm-up over this fraction of the optimiser steps", ge=0, le=1)
    lr_schedule: str = _f("constant", "after warm-up: constant or cosine (decay to 0)")

    def validate(self) -> None:
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        _next_validate(Optimiser, self)


@dataclass
class RunSection:
    section = "run"
    save_every: int = _f(100, "write a resumable checkpoint every N optimiser steps (0 = only at the end)", ge=0)
    dtype: str = _f("auto", "compute dtype for forward/backward and rollouts (autocast; fp32 master weights and "
                            "optimiser): auto = bf16 where measured faster (CUDA, CPUs with native bf16), else "
                            "fp32; float32; bfloat16")
    micro_batch_size: int = _f(8, "rows per forward/backward (memory only; no effect on the maths)", ge=1)
    report_to: str = _f("none", "experiment tracker for training and evaluation metrics (accelerate's): tensorboard "
                                "(event files in the run folder), wandb (offline mode), mlflow (a file store in the "
                                "run folder), trackio, or none")

    def validate(self) -> None:
        from ..models.precision import DTYPES
        from . import tracking

        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        try:
            tracking.check(self.report_to)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        _next_validate(RunSection, self)


@dataclass
class Rollout:
    section = "rollout"
    train_task: str = _f("arith", "training task (registered name, or jsonl:<path>); its scorer is the accuracy reward")
    steps: int = _f(100, "rollouts (each: prompts_per_step x samples_per_prompt completions, then updates)", ge=1)
    prompts_per_step: int = _f(32, "questions per rollout", ge=1)
    samples_per_prompt: int = _f(16, "completions per question (the group)", ge=1)
    max_thinking_tokens: int = _f(4096, "thinking budget per completion", ge=1)
    answer_tokens: int = _f(256, "answer budget after the thinking block", ge=1)
    force_close: bool = _f(True, "at the thinking budget, force-close the block and let the model answer (s1); "
                                 "false: the rollout stays truncated and scores 0 (R1-Zero, DeepScaleR)")
    temperature: float = _f(1.0, "rollout sampling temperature", gt=0, le=10)
    generation_batch_size: int = _f(64, "rows per generate call (memory/speed only)", ge=1)
    rollout_backend: str = _f("hf", "rollout engine: hf (transformers) or vllm (a colocated vLLM engine whose weights "
                                    "are synced after each update; .venv-vllm on CPU, `pip install vllm` on GPUs)")
    rollout_is_cap: float | None = _f(None, "vllm rollouts: weight each token's policy-gradient term by the "
                                            "truncated importance ratio min(pi_policy / pi_engine, cap) (TRL, verl); "
                                            "none = off (the mismatch is logged either way)", gt=0)
    vllm_gpu_memory: float = _f(0.5, "vllm rollouts on CUDA: the share of GPU memory vLLM may take "
                                     "(gpu_memory_utilization)", gt=0, le=1)


@dataclass
class RLConfig(RunSection, Optimiser, Rollout, ModelData):  # fields listed model/data first
    """What the shared RL loop (`rl.py`) reads. Losses, advantage estimators, reward functions and
    samplers are chosen by registered name; a registered function's keyword-only parameters are read
    from this config by name (so a method adds the fields its functions need)."""
    section = "rl"
    loss: str = _f("grpo", "policy loss (registered name: training/losses.py POLICY_LOSSES)")
    advantage: str = _f("group_normalized", "advantage estimator (registered name: losses.ADVANTAGES)")
    aggregation: str = _f("seq_mean", "how a loss over tokens becomes a number (losses.AGGREGATIONS): seq_mean "
                                      "(mean per completion, then over completions; GRPO paper) or token_mean "
                                      "(over all tokens of the batch; DAPO, DeepScaleR)")
    reward: str = _f("accuracy", "reward function (registered name: training/rewards.py REWARDS)")
    sampler: str = _f("shuffle", "problem sampler (registered name: training/samplers.py SAMPLERS)")
    minibatches: int = _f(1, "optimiser updates per rollout: one inner epoch over this many random parts", ge=1)
    beta: float = _f(0.0, "KL coefficient against the reference model (0 = no reference)", ge=0)
    ref_refresh_updates: int = _f(0, "replace the reference model with the policy every N optimiser updates "
                                     "(0 = never)", ge=0)
    entropy_coef: float = _f(0.0, "entropy bonus: subtract this x the aggregated token entropy from the loss", ge=0)
    reset_optimizer: bool = _f(False, "reset the optimiser state at the start of each rollout (Kimi k1.5)")
    dynamic_sampling: bool = _f(False, "train only on groups whose rewards differ, drawing more rollouts until "
                                       "prompts_per_step such groups are in hand (DAPO's dynamic sampling)")
    dynamic_sampling_max_draws: int = _f(3, "dynamic sampling: at most this many rollouts per step (then train on "
                                            "what was kept; verl's max_num_gen_batches)", ge=1)
    mask_truncated: bool = _f(False, "leave completions cut off by a length cap out of the loss (DAPO's overlong "
                                     "filtering; TRL mask_truncated_completions)")
    reflection_words: list[str] | None = _f(None, "words counted as reflection in the thinking, logged per step "
                                                  "(none: the bundled list, generation/reflection_words.txt)")

    def validate(self) -> None:
        super().validate()
        if self.minibatches > self.prompts_per_step * self.samples_per_prompt:
            raise ConfigError("minibatches must not exceed prompts_per_step * samples_per_prompt")
        from . import losses, rewards, samplers

        for registry, name in ((losses.POLICY_LOSSES, self.loss), (losses.ADVANTAGES, self.advantage),
                               (losses.AGGREGATIONS, self.aggregation), (rewards.REWARDS, self.reward),
                               (samplers.SAMPLERS, self.sampler)):
            registry.check_config(name, self)
        if self.rollout_backend not in ("hf", "vllm"):
            raise ConfigError(f"rollout_backend must be hf or vllm, got {self.rollout_backend!r}")
        if self.rollout_backend == "vllm":
            from ..engines.vllm import require_vllm

            require_vllm()  # before any run folder exists
        if self.rollout_is_cap is not None:
            if self.rollout_backend != "vllm":
                raise ConfigError("rollout_is_cap corrects vLLM rollouts: it needs rollout_backend=vllm")
            if "aggregation" not in losses.POLICY_LOSSES.settings(self.loss):
                raise ConfigError(f"rollout_is_cap weights each token's term; loss {self.loss!r} is over whole "
                                  "completions (its ratio is a sequence's)")
        if "aggregation" not in losses.POLICY_LOSSES.settings(self.loss) and self.aggregation != "seq_mean":
            # such a loss is a mean over completions; micro-batches and the entropy term would be weighted by
            # another unit than the loss itself (measured: token_mean with micro-batches drifted from the batch)
            raise ConfigError(f"loss {self.loss!r} is a mean over completions; aggregation must be seq_mean, not "
                              f"{self.aggregation!r}")


@dataclass
class SFTConfig(RunSection, Optimiser, ModelData):
    """What the shared SFT loop (`sft.py`) reads: loss on completion tokens only."""
    section = "sft"
    train_data: str = _f("runsum:minimal", "training examples: <task>:<variant> for a task that writes traces "
                                           "(e.g. runsum:minimal), jsonl:<path> with question/thinking/answer, "
                                           "or a hub id (s1K-1.1) when the hub is reachable")
    epochs: float = _f(5.0, "passes over the training examples", gt=0)
    batch_size: int = _f(16, "examples per optimiser step", ge=1)
    max_length: int = _f(4096, "examples longer than this many tokens are cut (the completion's tail is dropped)",
                         ge=8)
    limit: int | None = _f(None, "use only the first N training examples (after the seeded shuffle)", ge=1)
    max_steps: int | None = _f(None, "stop after N optimiser steps (none: the epochs decide)", ge=1)
    aggregation: str = _f("token_mean", "how the loss over completion tokens becomes a number (losses.AGGREGATIONS): "
                                        "token_mean (all tokens of the batch) or seq_mean (each example's mean, "
                                        "then their mean: every example weighs the same)")

    def validate(self) -> None:
        super().validate()
        from . import losses

        losses.AGGREGATIONS.check_config(self.aggregation, self)


# Overrides that make two optimiser steps cheap on the tests' tiny fixture models (a method's `Method.tiny`
# starts from one of these). `{model}`, `{task}`, `{sft_file}` and `{steps}` name the contract test's fixtures
# (harness/method.py): a random ~3M-parameter Llama, a task whose reward varies on it, a six-row SFT file.
RL_TINY = {
    "model": "{model}", "seed": 3, "save_every": 1, "steps": "{steps}", "train_task": "{task}",
    "prompts_per_step": 2, "samples_per_prompt": 4, "max_thinking_tokens": 6, "answer_tokens": 4, "temperature": 1.0,
    "lr": 1e-2, "generation_batch_size": 8,
    # answers of varying length on a random model, so every reward varies (Kimi's length penalty too)
    "force_close": True,
}
SFT_TINY = {
    "model": "{model}", "seed": 3, "save_every": 1, "max_steps": "{steps}", "train_data": "jsonl:{sft_file}",
    # long enough for the chat template's system prompt and the whole completion (at 64 every completion token was
    # cut: the SFT methods' loss was 0 and their resume compared zeros)
    "batch_size": 2, "lr": 1e-3, "max_length": 256,
}

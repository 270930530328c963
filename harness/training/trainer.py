"""What every training loop shares (the RL loop in `rl.py`, the SFT loop in `sft.py`): the accelerator
and seeds, the model and optimiser, the learning-rate schedule, checkpoints, resumable state,
`train.jsonl` and progress.

A loop subclasses `Trainer` once and implements `total_steps()` and `train_step(step) -> row`; it may
add state to `trainer_state.pt` through `extra_state()` / `load_extra_state()`. Scale-out is
accelerate's: model and optimiser go through `Accelerator.prepare`, so DDP / FSDP / DeepSpeed come
from `accelerate launch` configs, not from code here.

Every `save_every` steps and at the end, the checkpoint (`save_pretrained` + tokenizer + method.json)
and `trainer_state.pt` (optimiser, scheduler, step, RNG states, the loop's own state) are written into a
temp folder that is then renamed to `checkpoint/`: one rename commits both, so a process killed at any
moment (SIGKILL included) leaves the previous pair intact. `resume=True` continues from them,
bit-for-bit the same steps as an uninterrupted run on the same machine (tested with real kills).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..runstore import Run, atomic_folder, atomic_write_json, git_sha
from . import tracking

STATE_FILE = "trainer_state.pt"


@dataclass
class TrainContext:
    """What the command line hands a method's `train`: where to write, what to start from, the data."""
    method: str
    run: Run
    model: Any  # models.ResolvedModel: the base model
    data: Any  # data.TaskData (RL) or data.SFTData (SFT), loaded by the caller
    job: dict  # the resolved job (config and eval sections), saved in method.json
    progress: bool = True
    resume: bool = False
    card: dict = dataclasses.field(default_factory=dict)  # the method's paper, knobs, checkpoint kind: the model card
    # SFT data named like `train_data` ("runsum:minimal", "jsonl:<path>", a hub id) -> data.SFTData: the app's loader,
    # for a staged recipe whose stages read other data than the run's (R1's cold start)
    load_data: Callable[[str], Any] | None = None


def autocast(device: torch.device, dtype: str):
    """Autocast to `dtype` ("bfloat16" / "float16") for forward passes; a no-op for "float32" (fp32
    master weights and optimiser either way)."""
    if dtype == "float32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def save_checkpoint(model, tokenizer, out: Path, meta: dict, state: dict | None = None, state_dict=None) -> Path:
    """HF save_pretrained + tokenizer + method.json + the model card (README.md) (+ trainer_state.pt), written
    to a temp folder and renamed. `state_dict`: the full weights where the model is sharded (FSDP / ZeRO-3)."""
    from . import card

    with atomic_folder(out, fsync=True) as tmp:  # everything on disk before the rename commits it
        model.save_pretrained(tmp, safe_serialization=True, **({"state_dict": state_dict} if state_dict else {}))
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / "method.json", meta)
        card.write(tmp, shown_as=out)  # after save_pretrained: it replaces peft's empty template
        if state is not None:
            torch.save(state, tmp / STATE_FILE)
    return out


def lr_lambda(total_steps: int, warmup_ratio: float, schedule: str):
    """Multiplier of the base learning rate at optimiser step s (0-based): linear warm-up over
    `warmup_ratio` of the steps, then constant or cosine decay to 0 (the s1 / HF cosine schedule)."""
    warmup = int(math.ceil(warmup_ratio * total_steps))

    def f(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        if schedule == "cosine":
            progress = (s - warmup) / max(1, total_steps - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return f


class Trainer:
    """The shared loop; see the module docstring."""

    def __init__(self, cfg, ctx: TrainContext):
        self.cfg = cfg
        self.ctx = ctx
        self.run = ctx.run

    # -- what a loop provides -------------------------------------------------------------------
    def total_steps(self) -> int:
        raise NotImplementedError

    def optimizer_steps(self) -> int:
        """Optimiser updates over the whole run (for the learning-rate schedule)."""
        return self.total_steps()

    def train_step(self, step: int) -> dict:
        raise NotImplementedError

    def build(self) -> None:
        """Anything built between loading the model and creating the optimiser (e.g. a reference model)."""

    def after_prepare(self) -> None:
        """Anything built once the model is prepared (e.g. data and samplers)."""

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def progress_line(self, row: dict) -> str:
        return f"loss {row.get('loss', float('nan')):.4f}"

    def after_step(self, step: int) -> None:
        """Called once the step's row is in train.jsonl (e.g. to keep a stage's checkpoint)."""

    def should_stop(self, step: int, row: dict) -> bool:
        """Stop before `total_steps()` (a convergence test); the checkpoint is then saved at `step`."""
        return False

    # -- shared -----------------------------------------------------------------------------------
    def setup(self) -> None:
        from accelerate import Accelerator

        from .. import models

        cfg, ctx = self.cfg, self.ctx
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.device = self.accelerator.device
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        from ..models import precision

        # a resumed `auto` run keeps the type its checkpoint was trained in: `auto` is decided by timing, and
        # a type that changed mid-run would break the resumed run's equality with an uninterrupted one
        recorded = self.recorded_dtype() if ctx.resume and cfg.dtype == "auto" else None
        self.dtype = recorded or precision.resolve(cfg.dtype, str(self.device))
        how = ", as the run being resumed" if recorded else ""
        print(f"[precision] training computes in {self.dtype} (dtype={cfg.dtype}{how})", flush=True)
        self.rank_seed = cfg.seed + 1000 * self.accelerator.process_index
        random.seed(self.rank_seed)
        torch.manual_seed(self.rank_seed)
        self.state = torch.load(self.run.checkpoint_dir / STATE_FILE, weights_only=False) if ctx.resume else None
        # a resumed run starts from its checkpoint; an adapter run loads the base and its adapter in build()
        resume_full = self.state and not getattr(self, "adapter", None)
        start = (models.ResolvedModel(str(self.run.checkpoint_dir), str(self.run.checkpoint_dir), "resume")
                 if resume_full else ctx.model)
        self.model, self.tokenizer = models.load(start, dtype="float32", device=str(self.device))
        self.build()
        self.optimizer = self.make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.optimizer_steps(), cfg.warmup_ratio, cfg.lr_schedule))
        if self.state:
            self.optimizer.load_state_dict(self.state["optimizer"])
            self.scheduler.load_state_dict(self.state["scheduler"])
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        self.after_prepare()
        if self.state:
            ranks = self.state.get("ranks")  # each process's own RNG states (several processes)
            torch.set_rng_state(ranks[self.rank]["torch_rng"] if ranks else self.state["torch_rng"])
            self.load_extra_state(self.state)

    def frozen_reference(self):
        """A frozen copy of the starting model (the KL or DPO reference). A resumed run loads the starting model
        again: its own checkpoint is where training got to, not where it started."""
        from .. import models

        if self.state:
            ref = models.load(self.ctx.model, dtype="float32", device=str(self.device))[0]
        else:
            ref = copy.deepcopy(self.model)
        ref.eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        return ref

    def require_equal_shares(self, name: str, value: int) -> None:
        """Every process takes an equal share of `value`, so all run the same forwards and backwards (DDP)."""
        if value % self.world:
            raise ValueError(f"{name} ({value}) must be a multiple of the number of processes ({self.world})")

    def recorded_dtype(self) -> str | None:
        """The compute type in the checkpoint's method.json (None for a checkpoint that does not say)."""
        meta = self.run.checkpoint_dir / "method.json"
        dtype = json.loads(meta.read_text(encoding="utf-8")).get("dtype") if meta.is_file() else None
        return dtype if dtype in ("float32", "bfloat16", "float16") else None

    def make_optimizer(self):
        cfg = self.cfg
        return torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 betas=(cfg.adam_beta1, cfg.adam_beta2))

    def reset_optimizer(self) -> None:
        """Forget AdamW's moments (Kimi k1.5 resets the optimiser state at each iteration); the schedule
        and hyper-parameters are kept."""
        self.optimizer.state.clear()

    def optimizer_step(self) -> float:
        """Clip, step the optimiser and the schedule; returns the gradient norm before clipping."""
        cfg = self.cfg
        if cfg.max_grad_norm > 0:
            grad_norm = float(self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm))
        else:
            grads = [p.grad.norm() for p in self.model.parameters() if p.grad is not None]
            grad_norm = float(torch.norm(torch.stack(grads))) if grads else 0.0
        self.optimizer.step()
        self.scheduler.step()
        return grad_norm

    def base_model_info(self) -> dict:
        resolved = self.ctx.model
        source = self.ctx.data.source
        info = {"spec": resolved.spec, "source": resolved.source, "train_data": source.location,
                "train_data_sha256": source.sha256}
        checked = getattr(source, "decontamination", None)
        if checked is not None:  # tasks/overlap.py: every evaluation set read, or which not and why
            info["train_data_decontamination"] = checked
        return info

    @contextlib.contextmanager
    def full_params(self):
        """The whole model's parameters present on every process for the duration (generation, the reference
        refresh): FSDP's summon_full_params, DeepSpeed ZeRO-3's GatheredParameters; nothing to do otherwise.
        Written against accelerate's FSDP (v1) and DeepSpeed paths; not run here (no GPU machine so far)."""
        from accelerate.utils import DistributedType

        kind = self.accelerator.distributed_type
        if kind == DistributedType.FSDP:
            from torch.distributed.fsdp import FullyShardedDataParallel

            with FullyShardedDataParallel.summon_full_params(self.model, writeback=False):
                yield
        elif kind == DistributedType.DEEPSPEED and getattr(self.accelerator.state.deepspeed_plugin, "zero_stage", 0) == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=None):
                yield
        else:
            yield

    def full_state_dict(self):
        """The whole model's weights on the main process: gathered where they are sharded (FSDP, ZeRO-3);
        None where the model holds them itself. Every process must call it (a collective)."""
        from accelerate.utils import DistributedType

        if self.accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
            return self.accelerator.get_state_dict(self.model)
        return None

    def save(self, step: int) -> None:
        from accelerate.utils import gather_object

        state_dict = self.full_state_dict()
        ranks = gather_object([{"torch_rng": torch.get_rng_state()}]) if self.world > 1 else None
        if not self.accelerator.is_main_process:
            return
        meta = {"method": self.ctx.method, "config": self.ctx.job, "git_sha": git_sha(),
                "base_model": self.base_model_info(), "card": self.ctx.card, "step": step, "dtype": self.dtype,
                "processes": self.world,
                "weights_sha256_all_processes": getattr(self, "in_sync", None)}
        state = {"step": step, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "torch_rng": torch.get_rng_state(), "ranks": ranks, **self.extra_state()}
        save_checkpoint(self.accelerator.unwrap_model(self.model), self.tokenizer, self.run.checkpoint_dir, meta,
                        state, state_dict)

    def reduce_row(self, row: dict) -> dict:
        """Across processes: the mean of each number (every process holds an equal share of the batch)."""
        if self.world == 1:
            return row
        from accelerate.utils import gather_object

        rows = gather_object([row])
        out = dict(rows[0])
        for key, value in rows[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                out[key] = sum(r[key] for r in rows) / len(rows)
        return out

    def fit(self) -> Path:
        """Run (or resume) the loop to `total_steps()`; returns the checkpoint folder."""
        from tqdm.auto import tqdm

        self.setup()
        total = self.total_steps()
        first = self.state["step"] + 1 if self.state else 1
        log: list[dict] = self.run.train_log()[:first - 1] if self.state else []
        main = self.accelerator.is_main_process
        bar = tqdm(range(first, total + 1), desc=f"{self.ctx.method} train",
                   disable=None if self.ctx.progress else True, initial=first - 1, total=total)
        every = max(1, total // 25)  # at most ~25 progress lines per run
        tracker = tracking.open_tracker(self.cfg.report_to, self.run.path, self.cfg) if main else None
        try:
            total = self._loop(bar, log, total, every, tracker)
        finally:
            if tracker is not None:
                tracker.finish()
        self.accelerator.wait_for_everyone()
        if self.world > 1:
            self.check_in_sync()
        if first <= total:
            self.save(total)
        return self.run.checkpoint_dir

    def _loop(self, bar, log: list[dict], total: int, every: int, tracker) -> int:
        """The steps; returns the last step (earlier than planned when `should_stop` says so)."""
        from tqdm.auto import tqdm

        main = self.accelerator.is_main_process
        for step in bar:
            t0 = time.time()
            row = self.reduce_row({"step": step, **self.train_step(step)})
            row["seconds"] = time.time() - t0
            bad = [k for k in ("loss", "grad_norm") if k in row and not math.isfinite(row[k])]
            if bad:
                raise FloatingPointError(f"step {step}: non-finite {', '.join(bad)}: {json.dumps(row, default=str)}")
            stop = self.should_stop(step, row)
            log.append(row)
            if main:
                self.run.write_train_log(log)
            if tracker is not None:
                tracker.log(row, step)
            self.after_step(step)
            if self.ctx.progress and main and (step % every == 0 or step in (1, total)):
                tqdm.write(f"[train] step {step}/{total}: {self.progress_line(row)}, {row['seconds']:.0f}s")
            if stop:
                total = step
                break
            if self.cfg.save_every and step % self.cfg.save_every == 0 and step < total:
                self.save(step)
        return total

    def check_in_sync(self) -> None:
        """Several processes must end with identical weights (DDP keeps them so; a bug would not)."""
        from accelerate.utils import gather_object

        from ..runstore import weights_sha256

        digests = gather_object([weights_sha256(self.accelerator.unwrap_model(self.model))])
        if len(set(digests)) != 1:
            raise RuntimeError(f"processes ended with different weights: {digests}")
        self.in_sync = digests[0]

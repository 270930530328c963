"""Recipes as an ordered list of stages, each starting from an earlier stage's checkpoint or from the base.

DeepSeek-R1 (§2.3) alternates stages: cold-start SFT, reasoning RL, rejection sampling + SFT of the *base*,
a final RL. A method declares its stages and calls `run_stages`:

    stages = [Stage("cold_start", lambda ctx: sft.train(cold_cfg, ctx), data=cold_start_data),
              Stage("reasoning_rl", lambda ctx: rl.train(rl_cfg, ctx)),
              Stage("rejection_sft", lambda ctx: sft.train(sft_cfg, ctx), start=BASE, data=rejection_sampling),
              Stage("final_rl", lambda ctx: rl.train(final_cfg, ctx))]
    return run_stages(stages, ctx)

Each stage is an ordinary training run in its own folder, `<run>/stages/stage<k>-<name>/` (its checkpoint,
train.jsonl and config.json; the last stage trains in the run folder itself, so the run's checkpoint and
train.jsonl are the last stage's, as for any method, and its folder holds only its config), given a `TrainContext` whose model is its start and whose data is the run's or
what its `data` step built. A `data` step (rejection sampling) sees the previous stage's checkpoint and the
base, writes what it builds into the stage's folder and returns the stage's training data; it runs again
on resume and must read back what it already wrote.

Resume (`harness train resume=<run>`): finished stages (`done.json`) are skipped; the stage that was running
continues from its own last checkpoint (the trainer's resume), or starts over if it never saved one. At the end
`stages/train.jsonl` holds every stage's rows in order, each with its `stage` and a run-wide `step` (the stage's
own step is `stage_step`).

Evaluation: `finished(run)` lists every stage's checkpoint; a method's `curves` evaluates each as its own curve
(`eval_stage<k>`, every budget, the core's `stage` knob set to k), the last stage's is the run's own evaluation:
one curve per stage on the leaderboard.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

STAGES_DIR = "stages"
PREVIOUS, BASE = "previous", "base"
DONE = "done.json"


@dataclass(frozen=True)
class Stage:
    name: str  # a folder-safe word: stages/stage<k>-<name>
    train: Callable[[Any], Any]  # TrainContext -> trains from ctx.model into ctx.run.checkpoint_dir
    start: str = PREVIOUS  # PREVIOUS, BASE, or an earlier stage's name: the model it starts from
    data: Callable[["StageInputs"], Any] | None = None  # builds its training data (default: the run's)
    config: Any = None  # the stage's config, saved in its config.json
    # continue the previous stage's trainer (its step count, optimiser, RNG, sampler and reference) instead of
    # starting a new one, as one uninterrupted run would: the stage's `train` runs that trainer to a later step
    # (DeepScaleR's context stages)
    continues: bool = False


@dataclass(frozen=True)
class StageInputs:
    """What a stage's `data` step sees: the checkpoints before it, its folder, the run's context."""
    previous: Any  # models.ResolvedModel: the previous stage's checkpoint (the base for the first stage)
    base: Any  # the run's base model
    folder: Path  # the stage's folder: write what the step builds here
    ctx: Any  # the run's TrainContext (its data, progress, job)


def _folder(root: Path, k: int, stage: Stage) -> Path:
    return root / f"stage{k}-{stage.name}"


def _resolved(checkpoint: Path):
    from ..models import ResolvedModel

    return ResolvedModel(str(checkpoint), str(checkpoint), f"local:{checkpoint}")


def _check(stages: list[Stage]) -> None:
    names = [s.name for s in stages]
    if not stages or len(set(names)) != len(names):
        raise ValueError(f"stages need one or more unique names, got {names}")
    for k, s in enumerate(stages):
        if s.continues and (k == 0 or s.start != PREVIOUS or s.data is not None):
            raise ValueError(f"stage {s.name!r} continues the previous stage's trainer: it needs one before it, "
                             "starts from it and reads its data")
        if s.start not in (PREVIOUS, BASE) and s.start not in names[:k]:
            raise ValueError(f"stage {s.name!r} starts from {s.start!r}: not {PREVIOUS!r}, {BASE!r} or an earlier "
                             f"stage ({', '.join(names[:k]) or 'none'})")


def run_stages(stages: list[Stage], ctx) -> Path:
    """Run (or resume) `stages` in order under `ctx.run`; the last one trains in the run folder itself, so its
    checkpoint and train.jsonl are the run's (what evaluation, resume and the leaderboard read)."""
    from ..runstore import Run, atomic_write_json, atomic_write_jsonl
    from .trainer import STATE_FILE

    _check(stages)
    root = ctx.run.path / STAGES_DIR
    if not ctx.resume:
        shutil.rmtree(root, ignore_errors=True)
    checkpoints: dict[str, Path] = {}
    previous, previous_run = ctx.model, None
    for k, stage in enumerate(stages, 1):
        folder = _folder(root, k, stage)
        last = k == len(stages)
        sub = ctx.run if last else Run(folder)
        start = {PREVIOUS: previous, BASE: ctx.model}.get(stage.start) or _resolved(checkpoints[stage.start])
        if not (folder / DONE).is_file():
            resume = (sub.checkpoint_dir / STATE_FILE).is_file()
            if stage.continues:  # the previous stage's trainer goes on: its state (and log) become this stage's
                if not resume:
                    _carry_over(previous_run, sub)
                    resume = True
                start = ctx.model  # the trainer's starting model (its KL reference until renewed), as in one run
            print(f"[stages] stage {k}/{len(stages)} {stage.name}: "
                  f"{'continuing' if stage.continues else 'resuming' if resume else 'from'} {start.spec}", flush=True)
            folder.mkdir(parents=True, exist_ok=True)
            record = {"stage": k, "name": stage.name, "start": stage.start, "start_model": start.source,
                      "in_run_folder": last, "continues": stage.continues, "folder": str(folder),
                      "config": dataclasses.asdict(stage.config) if dataclasses.is_dataclass(stage.config) else None}
            atomic_write_json(folder / "config.json", record)
            data = ctx.data
            if stage.data is not None:
                data = stage.data(StageInputs(previous, ctx.model, folder, ctx))
            stage.train(dataclasses.replace(ctx, run=sub, model=start, data=data, resume=resume,
                                            job={**ctx.job, "stage": record}))
            atomic_write_json(folder / DONE, {"stage": k, "name": stage.name, "checkpoint": str(sub.checkpoint_dir)})
        checkpoints[stage.name] = sub.checkpoint_dir
        previous, previous_run = _resolved(sub.checkpoint_dir), sub
    atomic_write_jsonl(root / "train.jsonl", merged_log(ctx.run.path))
    return ctx.run.checkpoint_dir


def folder_of(ctx) -> Path:
    """The folder of the stage a trainer's context belongs to (`<run>/stages/stage<k>-<name>/`, also for the last
    stage, which trains in the run folder): where a method's stage hooks write what they record; the run folder for
    a trainer run outside `run_stages`."""
    stage = ctx.job.get("stage")
    return Path(stage["folder"]) if stage else Path(ctx.run.path)


def _carry_over(previous, sub) -> None:
    """The previous stage's checkpoint (with its trainer state) and train.jsonl, copied to `sub`."""
    from ..runstore import atomic_folder, atomic_write_jsonl

    sub.path.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(sub.path / "train.jsonl", previous.train_log())
    with atomic_folder(sub.checkpoint_dir) as tmp:
        shutil.copytree(previous.checkpoint_dir, tmp, dirs_exist_ok=True)


def stage_folders(run_path: Path) -> list[tuple[int, str, Path]]:
    """(stage number, name, folder) of every stage a run has begun, in order."""
    out = []
    for folder in (Path(run_path) / STAGES_DIR).glob("stage*-*"):
        number, _, name = folder.name[len("stage"):].partition("-")
        if number.isdigit():
            out.append((int(number), name, folder))
    return sorted(out)


def merged_log(run_path: Path) -> list[dict]:
    """Every stage's train.jsonl rows in stage order (the last stage's are the run's own), each with `stage`, its
    own `stage_step` and a run-wide `step`. A stage that continued the previous one's trainer holds its rows too
    (it carried them over): only the steps after them are its own."""
    from ..runstore import read_jsonl

    rows, offset, before = [], 0, 0
    for k, name, folder in stage_folders(run_path):
        record = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        log_file = (Path(run_path) if record.get("in_run_folder") else folder) / "train.jsonl"
        log = read_jsonl(log_file) if log_file.is_file() else []
        skip = before if record.get("continues") else 0
        own = [r for r in log if r["step"] > skip]
        for r in own:
            rows.append({**r, "stage": k, "stage_name": name, "stage_step": r["step"] - skip,
                         "step": offset + r["step"] - skip})
        offset += len(own)
        before = log[-1]["step"] if log else before
    return rows


def finished(run_path: Path, last: bool = False) -> list[tuple[int, str, Path]]:
    """(stage number, name, checkpoint) of every finished stage but the last (whose checkpoint is the run's, which
    the run's own evaluation covers; `last=True` lists it too): what a method's `curves` evaluates (a
    `CheckpointCurve` per stage, `sweep=True`, or one with a point per stage, under the core's `stage` knob)."""
    out = []
    for k, name, folder in stage_folders(run_path):
        if not (folder / DONE).is_file():
            continue
        in_run = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("in_run_folder")
        if not in_run:
            out.append((k, name, folder / "checkpoint"))
        elif last:
            out.append((k, name, Path(run_path) / "checkpoint"))
    return out


def resumable(run_path: Path) -> bool:
    """A staged run that began a stage (something to continue)."""
    return any((folder / "config.json").is_file() for _, _, folder in stage_folders(run_path))

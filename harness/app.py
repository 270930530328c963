"""The application layer: a typed job from command-line tokens, and running it.

This is the only place (with `cli.py` above it) that imports methods, tasks and the leaderboard: the
core (`harness/*` otherwise) receives tasks and data as objects. Layers, top to bottom:

    cli.py          argparse, commands, help
    app.py          Job, resolve(), run_job(): methods + tasks + core + leaderboard
    methods/        one file per recipe, on the core's RL / SFT loops
    tasks/          benchmarks, the testbed, graders
    harness/ core   config, engines, generation, evaluation, training loops, losses, run store
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, apply_overrides, config_hash, parse_tokens, suggest, valid_keys, with_preset
from .evaluate import PRESETS as EVAL_PRESETS
from .evaluate import EvalConfig

PRESET_NAMES = ("cpu", "paper")
ALIASES = {"task": "eval.task"}
COMMANDS = ("train", "eval", "train+eval")


@dataclass
class EvalJob:
    """`harness eval`: which model to evaluate (the rest is the eval section)."""
    model: str = dataclasses.field(default="default", metadata={
        "help": "model: hub id, local folder (a checkpoint), 'default' (SmolLM2-135M-Instruct) or 'testbed'"})


@dataclass
class Job:
    """What one `harness` command does, fully resolved and validated."""
    command: str  # one of COMMANDS
    preset: str
    config: Any  # the method's Config (train, train+eval) or EvalJob (eval)
    eval: EvalConfig
    method: str | None = None
    module: Any = None  # the method module
    resume: Path | None = None  # a run folder to continue

    @property
    def trains(self) -> bool:
        return self.command in ("train", "train+eval")

    @property
    def evaluates(self) -> bool:
        return self.command in ("eval", "train+eval")

    def to_dict(self) -> dict:
        out: dict = {"command": self.command, "preset": self.preset}
        if self.method:
            out["method"] = self.method
        out["config"] = dataclasses.asdict(self.config)
        if self.evaluates:
            out["eval"] = dataclasses.asdict(self.eval)
        return out


def _split(overrides: dict[str, str], root_keys: list[str], eval_keys: list[str]):
    """Route overrides to the root config and the eval section; unknown keys get suggestions."""
    valid = root_keys + [f"eval.{k}" for k in eval_keys] + list(ALIASES)
    root, ev = {}, {}
    for raw, value in overrides.items():
        key = ALIASES.get(raw, raw)
        if key.startswith("eval.") and key[5:] in eval_keys:
            ev[key[5:]] = value
        elif key in root_keys:
            root[key] = value
        else:
            raise ConfigError(f"unknown config key {raw!r}.{suggest(raw, valid)}")
    return root, ev


def method_module(name: str):
    from rzoo import methods

    return methods.get(name)


def resolve(command: str, tokens: list[str]) -> Job:
    """Parse `key=value` tokens into a validated Job."""
    if command not in COMMANDS:
        raise ConfigError(f"unknown command {command!r}; valid: {', '.join(COMMANDS)}")
    overrides = parse_tokens(tokens)
    if "resume" in overrides:
        return _resolve_resume(command, overrides)
    preset = overrides.pop("preset", "cpu")
    if preset not in PRESET_NAMES:
        raise ConfigError(f"preset {preset!r} is not valid; valid: {', '.join(PRESET_NAMES)}")
    name, module = None, None
    if command == "eval":
        if "method" in overrides:
            raise ConfigError("harness eval takes model=..., not method=... (use train+eval to train)")
        root_cfg = EvalJob()
        eval_preset = EVAL_PRESETS[preset]
    else:
        from rzoo import methods

        name = overrides.pop("method", None)
        if name is None:
            raise ConfigError(f"missing method=NAME; valid: {', '.join(methods.REGISTRY.names())}")
        module = method_module(name)
        presets = module.PRESETS.get(preset, {})
        root_cfg = with_preset(module.Config(), {k: v for k, v in presets.items() if not k.startswith("eval.")})
        eval_preset = {**EVAL_PRESETS[preset], **{k[5:]: v for k, v in presets.items() if k.startswith("eval.")}}
    eval_cfg = with_preset(EvalConfig(), eval_preset)
    root_over, eval_over = _split(overrides, valid_keys(root_cfg), valid_keys(eval_cfg))
    if command == "train" and eval_over:
        raise ConfigError(f"harness train does not evaluate; drop {', '.join('eval.' + k for k in eval_over)} "
                          "or use train+eval")
    return Job(command, preset, apply_overrides(root_cfg, root_over), apply_overrides(eval_cfg, eval_over),
               name, module)


def _resolve_resume(command: str, overrides: dict[str, str]) -> Job:
    """`resume=<run dir>`: the run's saved config, then any overrides (e.g. more steps)."""
    from .trainer import STATE_FILE

    path = Path(overrides.pop("resume")).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"resume={path}: not a run folder (no config.json)")
    saved = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if command == "eval" or saved.get("command") == "eval":
        if command != "eval" or saved.get("command") != "eval":
            raise ConfigError(f"resume={path}: a {saved.get('command')!r} run continues with harness "
                              f"{saved.get('command')}, not {command}")
        root_cfg, eval_cfg = EvalJob(**saved["config"]), EvalConfig(**saved["eval"])
        root_over, eval_over = _split(overrides, valid_keys(root_cfg), valid_keys(eval_cfg))
        return Job("eval", saved["preset"], apply_overrides(root_cfg, root_over), apply_overrides(eval_cfg, eval_over),
                   resume=path)
    if not (path / "checkpoint" / STATE_FILE).is_file():
        raise ConfigError(f"resume={path}: not a resumable run folder (no {STATE_FILE}: it never saved a step)")
    name = overrides.pop("method", saved["method"])
    if name != saved["method"]:
        raise ConfigError(f"resume={path} is a {saved['method']!r} run, not {name!r}")
    if "preset" in overrides:
        raise ConfigError("resume= keeps the run's preset; override single keys instead")
    module = method_module(name)
    root_cfg = module.Config(**saved["config"])
    eval_cfg = EvalConfig(**saved["eval"]) if "eval" in saved else EvalConfig()
    root_over, eval_over = _split(overrides, valid_keys(root_cfg), valid_keys(eval_cfg))
    return Job(command, saved["preset"], apply_overrides(root_cfg, root_over), apply_overrides(eval_cfg, eval_over),
               name, module, path)


# ---------------------------------------------------------------------------------------------
# data


def load_eval_tasks(cfg: EvalConfig):
    """Load and subset every task up front, so bad names or files fail before any run folder exists."""
    import random

    from rzoo import tasks as registry
    from rzoo.tasks.base import find_data_dir

    from .data import TaskData

    data_dir = find_data_dir(cfg.data_dir)
    out = []
    for name in cfg.task:
        task = registry.get(name, cfg.question_field, cfg.answer_field)
        problems, source = task.load(data_dir)
        total = len(problems)
        if cfg.shuffle:
            problems = list(problems)
            random.Random(f"subset-{cfg.seed}").shuffle(problems)
        if cfg.limit is not None:
            problems = problems[:cfg.limit]
        out.append(TaskData(name, task, problems, source, total))
    return out


def load_train_data(cfg):
    """The training data a method's config names: a task's train split (RL) or SFT examples."""
    from rzoo import tasks as registry
    from rzoo.tasks.base import find_data_dir

    from .data import TaskData

    data_dir = find_data_dir(cfg.data_dir)
    if hasattr(cfg, "train_data"):
        return registry.load_examples(cfg.train_data, data_dir)
    task = registry.get(cfg.train_task)
    problems, source = task.load(data_dir, split="train")
    return TaskData(cfg.train_task, task, problems, source, len(problems))


# ---------------------------------------------------------------------------------------------
# running


def _print_table(summary: dict[str, list[dict]], label: str) -> None:
    print(f"\n{label}")
    print(f"  {'task':<12} {'setting':>16} {'accuracy':>9} {'think tok':>9} {'truncated':>9} {'forced':>7}")
    for task, rows in summary.items():
        for r in rows:
            setting = " ".join(f"{k[0]}={r[k]}" for k in ("budget", "waits", "alpha", "recurrence")
                               if r.get(k) is not None)
            print(f"  {task:<12} {setting:>16} {r['accuracy']:>9.3f} {r['thinking_tokens_mean']:>9.1f} "
                  f"{r['truncation_rate']:>9.2f} {r['forced_rate']:>7.2f}")


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT during a run, raised where the program is (a KeyboardInterrupt, so code that
    already cleans up after Ctrl-C does the same here). Python's default for SIGTERM kills the process
    with no cleanup at all, which left the run `running` in status.json forever."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.name}")


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def signals_as_exceptions():
    """SIGTERM and SIGINT raise `Interrupted` while the block runs (main thread only: elsewhere Python
    cannot install handlers, and the main thread's own handlers apply); the previous handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, _raise) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_held():
    """Ignore further stop signals while a failed run's status is written (a second Ctrl-C must not
    leave it `running`); restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_job(job: Job, progress: bool = True):
    """Execute a resolved job; returns the Run. Validates model and data before creating the run.
    SIGTERM / SIGINT mark the run `failed` (with the signal's name) and end it with `Interrupted`."""
    with signals_as_exceptions():
        return _run_job(job, progress)


def _run_job(job: Job, progress: bool):
    from functools import partial

    from . import models
    from .evaluate import evaluate_engines, load_engine
    from .runstore import Run, atomic_write_json
    from .trainer import TrainContext

    cfg, ecfg = job.config, job.eval
    # cheap checks first: a bad task or data name fails before a model is built or converted (minutes
    # for a testbed build or a GGUF file), and everything fails before any run folder exists
    tasks = load_eval_tasks(ecfg) if job.evaluates else []
    train_data = load_train_data(cfg) if job.trains else None
    resolved = models.resolve(cfg.model)
    from . import distributed

    models.set_cpu_threads()
    distributed.init()  # under torchrun / accelerate launch: one process group for the whole job
    main = distributed.rank_and_world()[0] == 0
    resolved_dict = job.to_dict()
    resolved_dict["model_source"] = resolved.source
    if job.module is not None and hasattr(job.module, "label"):  # how curves name the run (e.g. a variant)
        resolved_dict["label"] = job.module.label(cfg)
    if main:
        print("[config] " + json.dumps(resolved_dict, indent=2, default=str), flush=True)
    run = None
    try:
        if job.resume:
            run = Run(job.resume)
            if main:
                atomic_write_json(run.path / "config.json", resolved_dict)
                run.set_status("running")
                print(f"[run] resuming {run.path}", flush=True)
        else:  # one run folder, made by the main process, whatever the number of processes
            path = Run.create(job.method or "eval", resolved_dict, config_hash(cfg)).path if main else None
            run = Run(distributed.broadcast(path))
            if main:
                print(f"[run] {run.path}", flush=True)
        summaries = {}
        if job.evaluates and job.trains and ecfg.baseline and not _finished(run.path / "eval_base", tasks):
            info = {"spec": resolved.spec, "source": resolved.source, "role": "base"}
            # alpha scales the adapter that training makes: the base has none (it is alpha = 0), so it is
            # evaluated at the budgets alone
            base_cfg = dataclasses.replace(ecfg, alphas=[])
            summaries["base"] = evaluate_engines([({}, partial(load_engine, resolved, base_cfg))], info, base_cfg,
                                                 tasks, run.path / "eval_base", progress)
        eval_model = resolved
        if job.trains:
            ctx = TrainContext(job.method, run, resolved, train_data, resolved_dict, progress, bool(job.resume))
            job.module.train(cfg, ctx)
            if main:
                print(f"[train] checkpoint: {run.checkpoint_dir}", flush=True)
            eval_model = models.ResolvedModel(str(run.checkpoint_dir), str(run.checkpoint_dir),
                                              f"local:{run.checkpoint_dir}")
        if job.evaluates and not _finished(run.path / "eval", tasks):
            info = {"spec": eval_model.spec, "source": eval_model.source, "base_model": resolved.source,
                    "method": job.method, "run": str(run.path)}
            summaries["eval"] = evaluate_engines([({}, partial(load_engine, eval_model, ecfg))], info, ecfg, tasks,
                                                 run.path / "eval", progress)
        stages = getattr(job.module, "stage_checkpoints", None) if job.trains else None
        if job.evaluates and stages:  # each stage's checkpoint at the largest budget: one line on the board
            top = {"budget": max(ecfg.budgets), "waits": None, "alpha": None, "recurrence": None, "knob": "stage"}
            engines = [({"stage": k}, partial(load_engine, models.ResolvedModel(str(p), str(p), f"local:{p}"), ecfg))
                       for k, p in stages(run.path)]
            info = {"spec": "stages", "source": f"local:{run.path / 'stages'}", "base_model": resolved.source,
                    "method": job.method, "run": str(run.path)}
            evaluate_engines(engines, info, ecfg, tasks, run.path / "eval_stages", progress, [top])
        if not main:
            summaries = {}
        if "base" in summaries and summaries["base"]:
            _print_table(summaries["base"], "before training (base model)")
        if summaries.get("eval"):
            _print_table(summaries["eval"], "after training" if job.trains else "results")
        log = run.train_log() if main else []
        if log and "reward_mean" in log[0]:
            first, last = log[0], log[-1]
            print(f"\n[train] reward {first['reward_mean']:.3f} (step 1) -> {last['reward_mean']:.3f} "
                  f"(step {last['step']}); see {run.path / 'train.jsonl'}")
        elif log:
            print(f"\n[train] loss {log[0]['loss']:.4f} (step 1) -> {log[-1]['loss']:.4f} (step {log[-1]['step']}); "
                  f"see {run.path / 'train.jsonl'}")
        if main:
            run.set_status("done")
    except BaseException as e:
        if main and run is not None and (run.path / "status.json").exists():
            with _signals_held():
                if isinstance(e, Interrupted):
                    run.set_status("failed", error=f"interrupted by {e.name}", signal=e.name)
                else:
                    run.set_status("failed", error=f"{type(e).__name__}: {e}")
        raise
    if main:
        print(f"[run] done: {run.path}")
        if job.evaluates:
            refresh_leaderboard(run.path.parent.parent)
    return run


def _finished(folder: Path, tasks) -> bool:
    """Every task evaluated into `folder` (results.json written, no journal of an interrupted evaluation)?"""
    return all((folder / t.name.replace(":", "_").replace("/", "_") / "results.json").is_file()
               and not list((folder / t.name.replace(":", "_").replace("/", "_")).glob("samples.partial.*"))
               for t in tasks)


def refresh_leaderboard(root) -> None:
    """Rebuild `<runs root>/leaderboard` and print where it is. A failure here is reported, not raised:
    the run's results are already safe on disk and `harness leaderboard` can rebuild later."""
    from rzoo.leaderboard.site import LeaderboardError, build

    try:
        index = build(root)
    except (LeaderboardError, OSError, ValueError) as e:
        print(f"[leaderboard] not refreshed ({type(e).__name__}: {e}); run `harness leaderboard`", flush=True)
        return
    except Exception as e:  # noqa: BLE001 - a finished run must not end in a traceback over its web page
        print(f"[leaderboard] not refreshed (unexpected {type(e).__name__}: {e}); please report it, and run "
              "`harness leaderboard` to retry", flush=True)
        return
    print(f"[leaderboard] {index.as_uri()}", flush=True)


def key_help(command: str, tokens: list[str]) -> str:
    """`harness <command> [method=NAME] --help`: every key, its default, where it comes from, its help."""
    from .config import field_help

    overrides = parse_tokens([t for t in tokens if t.startswith(("method=", "preset="))])
    preset = overrides.get("preset", "cpu")
    lines = [f"usage: harness {command} " + ("model=SPEC" if command == "eval" else "method=NAME")
             + " [preset=cpu|paper] [key=value ...]", ""]
    rows = []
    eval_preset = dict(EVAL_PRESETS.get(preset, {}))
    if command == "eval":
        rows += field_help(EvalJob)
    elif overrides.get("method"):
        module = method_module(overrides["method"])
        presets = module.PRESETS.get(preset, {})
        rows += field_help(module.Config, {k: v for k, v in presets.items() if not k.startswith("eval.")})
        eval_preset.update({k[5:]: v for k, v in presets.items() if k.startswith("eval.")})
    else:
        lines.append("Give method=NAME to list its keys (harness methods lists the names).")
    if command != "train":
        rows += [(f"eval.{n}", d, s if s == "preset" else "eval", h) for n, d, s, h in field_help(EvalConfig, eval_preset)]
    lines.append(f"  {'key':<26} {'default (preset=' + preset + ')':<22} {'from':<11} help")
    for name, default, source, text in rows:
        lines.append(f"  {name:<26} {default:<22} {source:<11} {text}")
    lines.append("\npreset=cpu (default) sizes the run for a 2-core CPU; preset=paper keeps the paper's values.")
    return "\n".join(lines)

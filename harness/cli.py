"""`harness`: the command line.

    harness train+eval method=grpo [preset=cpu|paper] [key=value ...] [eval.key=value ...]
    harness train      method=grpo [key=value ...]
    harness eval       model=default task=arith,math500 eval.budgets=[64,256]
    harness methods | harness tasks
    harness plot [--run RUN_DIR ...] [--out DIR]      accuracy vs thinking tokens / FLOPs
    harness leaderboard [--out DIR] [--screenshot PNG]

Overrides are `key=value` tokens converted by the config dataclass's field types. Nothing heavy is
imported until a command runs (`harness --help` does not import torch).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback

from .config import (ConfigError, apply_overrides, config_hash, field_help, parse_tokens, suggest, valid_keys,
                     with_preset)

from .models import ModelError
from .registry import UnknownName

PRESET_NAMES = ("cpu", "paper")
ALIASES = {"task": "eval.task"}


def _user_errors() -> tuple[type[BaseException], ...]:
    from rzoo.leaderboard.browser import BrowserError
    from rzoo.leaderboard.site import LeaderboardError
    from rzoo.tasks.base import TaskError

    return (ConfigError, UnknownName, ModelError, TaskError, LeaderboardError, BrowserError)

EPILOG = """examples:
  harness train+eval method=grpo                     the default run (CPU preset)
  harness eval model=default task=arith,math500 eval.budgets=[64,256]
  harness tasks show math500                         print a task's prompt template
  harness plot --run runs/grpo/<run> --out plots     curves of one run (base and trained)
  harness leaderboard --out site                     static site from every run under $RZOO_RUNS
Run `harness <command> --help` (with method=NAME for training) for every key, its default and help."""


@dataclasses.dataclass
class EvalJob:
    """`harness eval`: which model to evaluate (the rest is the eval section)."""
    model: str = dataclasses.field(default="default", metadata={
        "help": "model: hub id, local folder (a checkpoint), or 'default' (SmolLM2-135M-Instruct)"})


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


def resolve(command: str, tokens: list[str]) -> dict:
    """Parse tokens into the job: method module and config, eval config, preset."""
    from .evaluate import EvalConfig
    from .evaluate import PRESETS as EVAL_PRESETS

    overrides = parse_tokens(tokens)
    if "resume" in overrides:
        return _resolve_resume(command, overrides)
    preset = overrides.pop("preset", "cpu")
    if preset not in PRESET_NAMES:
        raise ConfigError(f"preset {preset!r} is not valid; valid: {', '.join(PRESET_NAMES)}")
    job: dict = {"command": command, "preset": preset}
    if command == "eval":
        if "method" in overrides:
            raise ConfigError("harness eval takes model=..., not method=... (use train+eval to train)")
        root_cfg = EvalJob()
    else:
        from rzoo import methods

        name = overrides.pop("method", None)
        if name is None:
            raise ConfigError(f"missing method=NAME; valid: {', '.join(methods.REGISTRY.names())}")
        module = methods.get(name)
        job["method"] = name
        job["module"] = module
        root_cfg = with_preset(module.Config(), module.PRESETS.get(preset, {}))
    eval_cfg = with_preset(EvalConfig(), EVAL_PRESETS[preset])
    root_over, eval_over = _split(overrides, valid_keys(root_cfg), valid_keys(eval_cfg))
    if command == "train" and eval_over:
        raise ConfigError(f"harness train does not evaluate; drop {', '.join('eval.' + k for k in eval_over)} "
                          "or use train+eval")
    job["config"] = apply_overrides(root_cfg, root_over)
    job["eval"] = apply_overrides(eval_cfg, eval_over)
    return job


def _resolve_resume(command: str, overrides: dict[str, str]) -> dict:
    """`resume=<run dir>`: the run's saved config, then any overrides (e.g. more steps)."""
    from pathlib import Path

    from rzoo import methods

    from .evaluate import EvalConfig
    from .rl import STATE_FILE

    if command == "eval":
        raise ConfigError("resume= continues a training run; harness eval takes model=<run>/checkpoint")
    path = Path(overrides.pop("resume")).expanduser()
    if not (path / "config.json").is_file() or not (path / STATE_FILE).is_file():
        raise ConfigError(f"resume={path}: not a resumable run folder (needs config.json and {STATE_FILE})")
    saved = json.loads((path / "config.json").read_text())
    name = overrides.pop("method", saved["method"])
    if name != saved["method"]:
        raise ConfigError(f"resume={path} is a {saved['method']!r} run, not {name!r}")
    if "preset" in overrides:
        raise ConfigError("resume= keeps the run's preset; override single keys instead")
    module = methods.get(name)
    root_cfg = module.Config(**saved["config"])
    eval_cfg = EvalConfig(**saved["eval"]) if "eval" in saved else EvalConfig()
    root_over, eval_over = _split(overrides, valid_keys(root_cfg), valid_keys(eval_cfg))
    return {"command": command, "preset": saved["preset"], "method": name, "module": module, "resume": path,
            "config": apply_overrides(root_cfg, root_over), "eval": apply_overrides(eval_cfg, eval_over)}


def _job_dict(job: dict) -> dict:
    out = {"command": job["command"], "preset": job["preset"]}
    if "method" in job:
        out["method"] = job["method"]
    out["config"] = dataclasses.asdict(job["config"])
    if job["command"] != "train":
        out["eval"] = dataclasses.asdict(job["eval"])
    return out


def _print_table(summary: dict[str, list[dict]], label: str) -> None:
    print(f"\n{label}")
    print(f"  {'task':<12} {'budget':>7} {'accuracy':>9} {'think tok':>9} {'truncated':>9} {'forced':>7}")
    for task, rows in summary.items():
        for r in rows:
            print(f"  {task:<12} {r['budget']:>7} {r['accuracy']:>9.3f} {r['thinking_tokens_mean']:>9.1f} "
                  f"{r['truncation_rate']:>9.2f} {r['forced_rate']:>7.2f}")


def run_job(job: dict, progress: bool = True) -> "object":
    """Execute a resolved job; returns the Run. Validates model and data before creating the run."""
    from . import models
    from .evaluate import evaluate, load_model, load_tasks
    from .runstore import Run

    cfg, ecfg = job["config"], job["eval"]
    model_spec = cfg.model
    resolved = models.resolve(model_spec)  # fails before any run folder exists
    tasks = load_tasks(ecfg) if job["command"] != "train" else []
    if "module" in job:  # the training task must load too
        from rzoo import tasks as task_registry
        from rzoo.tasks.base import find_data_dir

        task_registry.get(cfg.train_task).load(find_data_dir(cfg.data_dir), split="train")
    models.set_cpu_threads()
    resolved_dict = _job_dict(job)
    resolved_dict["model_source"] = resolved.source
    print("[config] " + json.dumps(resolved_dict, indent=2, default=str), flush=True)
    if job.get("resume"):
        from .runstore import atomic_write_json

        run = Run(job["resume"])
        atomic_write_json(run.path / "config.json", resolved_dict)
        run.set_status("running")
        print(f"[run] resuming {run.path}", flush=True)
    else:
        run = Run.create(job.get("method", "eval"), resolved_dict, config_hash(job["config"]))
        print(f"[run] {run.path}", flush=True)
    try:
        summaries = {}
        baseline_done = (run.path / "eval_base").is_dir()
        if job["command"] != "train" and ecfg.baseline and "module" in job and not baseline_done:
            model, tok = load_model(resolved, ecfg)
            info = {"spec": resolved.spec, "source": resolved.source, "role": "base"}
            summaries["base"] = evaluate(model, tok, info, ecfg, tasks, run.path / "eval_base", progress)
            del model
        if "module" in job:
            job["module"].train(cfg, run, resolved_dict, progress=progress, resume=bool(job.get("resume")))
            print(f"[train] checkpoint: {run.checkpoint_dir}", flush=True)
            eval_model = models.ResolvedModel(str(run.checkpoint_dir), str(run.checkpoint_dir),
                                              f"local:{run.checkpoint_dir}")
        else:
            eval_model = resolved
        if job["command"] != "train":
            model, tok = load_model(eval_model, ecfg)
            info = {"spec": eval_model.spec, "source": eval_model.source, "base_model": resolved.source,
                    "method": job.get("method"), "run": str(run.path)}
            summaries["eval"] = evaluate(model, tok, info, ecfg, tasks, run.path / "eval", progress)
        if "base" in summaries:
            _print_table(summaries["base"], "before training (base model)")
        if "eval" in summaries:
            _print_table(summaries["eval"], "after training" if "module" in job else "results")
        log = run.train_log()
        if log:
            first, last = log[0], log[-1]
            print(f"\n[train] reward {first['reward_mean']:.3f} (step 1) -> {last['reward_mean']:.3f} "
                  f"(step {last['step']}); see {run.path / 'train.jsonl'}")
        run.set_status("done")
    except BaseException as e:
        run.set_status("failed", error=f"{type(e).__name__}: {e}")
        raise
    print(f"[run] done: {run.path}")
    if job["command"] != "train":
        refresh_leaderboard(run.path.parent.parent)
    return run


def refresh_leaderboard(root) -> None:
    """Rebuild `<runs root>/leaderboard` and print where it is. A failure here is reported, not raised:
    the run's results are already safe on disk and `harness leaderboard` can rebuild later."""
    from rzoo.leaderboard.site import LeaderboardError, build

    try:
        index = build(root)
    except (LeaderboardError, OSError, ValueError) as e:
        print(f"[leaderboard] not refreshed ({type(e).__name__}: {e}); run `harness leaderboard`", flush=True)
        return
    print(f"[leaderboard] {index.as_uri()}", flush=True)


def _plot_command(args) -> int:
    from pathlib import Path

    from rzoo.leaderboard.collect import collect, find_runs
    from rzoo.leaderboard.plot import AXES, plot_curves

    from .runstore import runs_root

    root = Path(args.runs) if args.runs else runs_root()
    runs = find_runs(root)
    if args.run:
        wanted = {Path(r).resolve() for r in args.run}
        missing = wanted - {r.path.resolve() for r in runs}
        if missing:
            raise ConfigError(f"not a run folder under {root}: {', '.join(sorted(map(str, missing)))}")
        runs = [r for r in runs if r.path.resolve() in wanted]
    points = collect(root, runs)
    if points.empty:
        raise ConfigError(f"no evaluation results under {root}" + (" for the given runs" if args.run else ""))
    out = Path(args.out) if args.out else root / "plots"
    for axis in AXES:
        for path in plot_curves(points, out, axis):
            print(path)
    return 0


def _leaderboard_command(args) -> int:
    from pathlib import Path

    from rzoo.leaderboard.site import build

    from .runstore import runs_root

    index = build(Path(args.runs) if args.runs else runs_root(), args.out)
    print(f"[leaderboard] {index.as_uri()}")
    if args.screenshot:
        from rzoo.leaderboard import browser

        print(f"[leaderboard] screenshot {browser.screenshot(index, args.screenshot)}")
    return 0


def _cmd_help(command: str, tokens: list[str]) -> str:
    from .evaluate import EvalConfig

    lines = [f"usage: harness {command} " + ("model=SPEC" if command == "eval" else "method=NAME")
             + " [preset=cpu|paper] [key=value ...]", ""]
    rows = []
    if command == "eval":
        rows += field_help(EvalJob)
    else:
        name = parse_tokens([t for t in tokens if t.startswith("method=")]).get("method")
        if name:
            from rzoo import methods

            rows += field_help(methods.get(name).Config)
        else:
            lines.append("Give method=NAME to list its keys (harness methods lists the names).")
    if command != "train":
        rows += [(f"eval.{n}", d, h) for n, d, h in field_help(EvalConfig)]
    for name, default, text in rows:
        lines.append(f"  {name:<28} {default:<18} {text}")
    lines.append("\npreset=cpu (default) sizes the run for a 2-core CPU; preset=paper keeps the paper's values.")
    return "\n".join(lines)


def _tasks_command(words: list[str]) -> int:
    """`harness tasks` lists tasks; `harness tasks show NAME` prints its prompt template."""
    from rzoo import tasks
    from rzoo.tasks.base import Problem

    from .thinking import THINK_OPEN

    if not words:
        for e in tasks.REGISTRY.entries():
            print(f"{e.name:<14} {e.description}")
        print(f"{'jsonl:<path>':<14} any JSONL/JSON file (eval.question_field / eval.answer_field)")
        return 0
    if words[0] != "show" or len(words) != 2:
        raise ConfigError("usage: harness tasks [show NAME]")
    task = tasks.get(words[1])
    # a placeholder, never a real question (GPQA's text must not be printed)
    messages = task.messages(Problem("example", "<question>", "<gold>"))
    for m in messages:
        print(f"--- {m['role']} ---\n{m['content']}")
    print(f"--- assistant (pre-filled) ---\n{THINK_OPEN}...")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="harness", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train reasoning models with published recipes; evaluate accuracy against thinking tokens.")
    parser.add_argument("command", nargs="?",
                        choices=["train", "eval", "train+eval", "methods", "tasks", "plot", "leaderboard"])
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--runs", metavar="DIR", help="plot/leaderboard: runs root (default $RZOO_RUNS or ./runs)")
    parser.add_argument("--out", metavar="DIR", help="plot/leaderboard: output folder (default <runs>/plots, "
                                                     "<runs>/leaderboard)")
    parser.add_argument("--run", metavar="RUN_DIR", action="append", help="plot: only these runs (repeatable)")
    parser.add_argument("--screenshot", metavar="PNG", help="leaderboard: also save a headless-Chromium "
                                                            "screenshot of the index page")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    if any(a in ("-h", "--help") for a in argv[1:]) and argv[0] in ("train", "eval", "train+eval"):
        try:
            print(_cmd_help(argv[0], [a for a in argv[1:] if "=" in a]))
        except _user_errors() as e:
            print(f"harness: error: {e}", file=sys.stderr)
            return 2
        return 0
    args = parser.parse_intermixed_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported (see models.set_cpu_threads)
    try:
        if args.command == "methods":
            from rzoo import methods

            for e in methods.REGISTRY.entries():
                print(f"{e.name:<12} {e.description}")
            return 0
        if args.command == "tasks":
            return _tasks_command(args.overrides)
        given = [f"--{n}" for n in ("runs", "out", "run", "screenshot") if getattr(args, n)]
        if args.command not in ("plot", "leaderboard") and given:
            raise ConfigError(f"{', '.join(given)} belong to harness plot / leaderboard, not {args.command}")
        if args.command in ("plot", "leaderboard"):
            if args.overrides:
                raise ConfigError(f"harness {args.command} takes options, not key=value: {' '.join(args.overrides)}")
            return (_plot_command if args.command == "plot" else _leaderboard_command)(args)
        job = resolve(args.command, args.overrides)
        run_job(job, progress=not args.no_progress)
        return 0
    except _user_errors() as e:
        if os.environ.get("RZOO_DEBUG"):
            traceback.print_exc()
        print(f"harness: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The application layer: running a resolved job (`jobs.resolve`), in named steps.

This is the only place (with `jobs.py`, `cli.py` and `zoo.py` beside it) that imports methods, tasks and the
leaderboard: the core receives tasks and data as objects. Layers, top to bottom (`tests/test_layers.py`):

    cli, jobs, app, zoo         the command line; a typed job; running it; every recipe at once
    methods/  tasks/            one file per recipe, on the training core; benchmarks, the testbed, graders
    training/  evaluation/      the loops, losses, rewards, samplers; evaluating, results, metrics
    engines/                    transformers and vLLM behind one protocol
    generation/                 thinking format, budget forcing, the engine protocol, test-time knobs
    models/                     loading, precision, attention, the recurrent architecture, FLOPs
    config, registry, runstore, data, distributed
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
from functools import partial
from pathlib import Path

from .config import config_hash
from .jobs import Job, load_eval_tasks, load_train_data
from .evaluation.config import TRAINED_PRM
from .method import SCORER


def _print_table(summary: dict[str, list[dict]], label: str) -> None:
    from .generation import knobs

    print(f"\n{label}")
    print(f"  {'task':<12} {'setting':>16} {'accuracy':>9} {'think tok':>9} {'truncated':>9} {'forced':>7}")
    for task, rows in summary.items():
        for r in rows:
            # a compute-optimal row (a mix of strategies) has no truncation or forced rate
            rates = [f"{r[k]:>{w}.2f}" if r.get(k) is not None else f"{'-':>{w}}"
                     for k, w in (("truncation_rate", 9), ("forced_rate", 7))]
            print(f"  {task:<12} {knobs.label(r):>16} {r['accuracy']:>9.3f} {r['thinking_tokens_mean']:>9.1f} "
                  f"{rates[0]} {rates[1]}")


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
def _signals(handler):
    """`handler` for SIGTERM and SIGINT while the block runs (main thread only: elsewhere Python cannot
    install handlers, and the main thread's own apply); the previous handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _raise(signum, frame):
    raise Interrupted(signum)


def signals_as_exceptions():
    """SIGTERM and SIGINT raise `Interrupted` while the block runs."""
    return _signals(_raise)


def run_job(job: Job, progress: bool = True):
    """Execute a resolved job; returns the Run. Validates model and data before creating the run.
    SIGTERM / SIGINT mark the run `failed` (with the signal's name) and end it with `Interrupted`."""
    with signals_as_exceptions():
        return _run_job(job, progress)


class _Steps:
    """One job's steps, sharing what they need: the job, its inputs, the run folder, the process's role."""

    def __init__(self, job: Job, progress: bool):
        from . import models

        self.job, self.progress = job, progress
        # cheap checks first: a bad task or data name fails before a model is built or converted (minutes
        # for a testbed build or a GGUF file), and everything fails before any run folder exists
        self.tasks = load_eval_tasks(job.eval) if job.evaluates else []
        self.train_data = load_train_data(job.config) if job.trains else None
        self.resolved = models.resolve(job.config.model)
        self.record = job.to_dict()
        self.record["model_source"] = self.resolved.source
        checked = getattr(getattr(self.train_data, "source", None), "decontamination", None)
        if checked is not None:  # a train split's contamination check (tasks/overlap.py): the leaderboard shows it
            self.record["train_data_decontamination"] = checked
        if job.declaration is not None and job.declaration.label is not None:  # how curves name the run (a variant)
            self.record["label"] = job.declaration.run_label(job.config)
        self.run = None
        from . import distributed

        models.set_cpu_threads()
        distributed.init()  # under torchrun / accelerate launch: one process group for the whole job
        self.main = distributed.rank_and_world()[0] == 0
        if self.main:
            print("[config] " + json.dumps(self.record, indent=2, default=str), flush=True)

    def start(self) -> None:
        """Open the run folder (a new one, or the one being resumed)."""
        from . import distributed
        from .runstore import Run, atomic_write_json

        job = self.job
        if job.resume:
            self.run = Run(job.resume)
            if self.main:
                atomic_write_json(self.run.path / "config.json", self.record)
                self.run.set_status("running")
                print(f"[run] resuming {self.run.path}", flush=True)
        else:  # one run folder, made by the main process, whatever the number of processes
            path = Run.create(job.method or "eval", self.record, config_hash(job.config)).path if self.main else None
            self.run = Run(distributed.broadcast(path))
            if self.main:
                print(f"[run] {self.run.path}", flush=True)

    def evaluate(self, resolved, folder: str, info: dict, ecfg=None, engines=None, settings=None):
        """Evaluate into `<run>/<folder>/` unless it is already complete; returns {task: results} ({} if not)."""
        from .evaluation.evaluate import evaluate_engines, load_engine

        ecfg = ecfg or self.job.eval
        out = self.run.path / folder
        if _finished(out, self.tasks):
            return {}
        engines = engines or [({}, partial(load_engine, resolved, ecfg))]
        return evaluate_engines(engines, info, ecfg, self.tasks, out, self.progress, settings)

    def train(self):
        """The method's training; returns the checkpoint as a model to evaluate."""
        from . import models
        from .training.trainer import TrainContext

        job = self.job
        method = job.declaration
        card = {"paper": method.paper, "checkpoint": method.checkpoint, "label": method.run_label(job.config),
                "knobs": [{"name": k.name, "key": k.key, "title": k.caption, "help": k.help} for k in method.knobs]}
        from .jobs import load_sft_data

        ctx = TrainContext(job.method, self.run, self.resolved, self.train_data, self.record, self.progress,
                           bool(job.resume), card, partial(load_sft_data, data_dir=job.config.data_dir))
        method.train(job.config, ctx)
        checkpoint = self.run.checkpoint_dir
        if self.main:
            print(f"[train] checkpoint: {checkpoint}", flush=True)
        return models.ResolvedModel(str(checkpoint), str(checkpoint), f"local:{checkpoint}")

    def method_curves(self) -> None:
        """A method's own extra evaluations of its run (`Method.curves`: e.g. one line of checkpoints)."""
        from . import models
        from .evaluation.evaluate import load_engine

        curves = self.job.declaration.curves
        ecfg = self.job.eval
        for curve in curves(self.run.path) if curves is not None else []:
            engines = [({curve.knob: value}, partial(load_engine, models.ResolvedModel(str(p), str(p), f"local:{p}"),
                                                     ecfg)) for value, p in curve.checkpoints]
            info = {"spec": curve.spec, "source": curve.source, "base_model": self.resolved.source,
                    "method": self.job.method, "run": str(self.run.path)}
            self.evaluate(None, curve.folder, info, engines=engines,
                          settings=None if curve.sweep else [ecfg.top_setting(curve.knob)])

    def report(self, summaries: dict) -> None:
        if summaries.get("base"):
            _print_table(summaries["base"], "before training (base model)")
        if summaries.get("eval"):
            _print_table(summaries["eval"], "after training" if self.job.trains else "results")
            self.report_published(summaries["eval"])
        log = self.run.train_log()
        if log and "reward_mean" in log[0]:
            first, last = log[0], log[-1]
            print(f"\n[train] reward {first['reward_mean']:.3f} (step 1) -> {last['reward_mean']:.3f} "
                  f"(step {last['step']}); see {self.run.path / 'train.jsonl'}")
        elif log:
            print(f"\n[train] loss {log[0]['loss']:.4f} (step 1) -> {log[-1]['loss']:.4f} (step {log[-1]['step']}); "
                  f"see {self.run.path / 'train.jsonl'}")

    def report_published(self, summary: dict) -> None:
        """Measured beside what the model's authors report (`evaluation/reported.json`), where they do: printed with
        the measurement's n, k and the protocol settings it changed, and saved beside results.json."""
        from .evaluation import reported
        from .runstore import atomic_write_json, task_folder

        info = getattr(self, "eval_info", {})
        for task, rows in summary.items():
            folder = self.run.path / "eval" / task_folder(task)
            evaluation = json.loads((folder / "results.json").read_text(encoding="utf-8"))
            for line in reported.lines(info, task, rows, self.job.eval.protocol, evaluation):
                print(line, flush=True)
            found = reported.comparisons(info, task, rows, evaluation)
            if found:
                atomic_write_json(folder / "reported.json", found)

    def fail(self, error: BaseException) -> None:
        """Mark the run failed (with the signal's name when a signal ended it), ignoring further signals."""
        if not (self.main and self.run is not None and (self.run.path / "status.json").exists()):
            return
        with _signals(signal.SIG_IGN):  # a second Ctrl-C must not leave it `running`
            if isinstance(error, Interrupted):
                self.run.set_status("failed", error=f"interrupted by {error.name}", signal=error.name)
            else:
                self.run.set_status("failed", error=f"{type(error).__name__}: {error}")


def _run_job(job: Job, progress: bool):
    steps = _Steps(job, progress)
    try:
        steps.start()
        summaries = {}
        scorer = job.trains and job.declaration.checkpoint == SCORER  # a PRM: the policy is evaluated, guided by it
        if job.evaluates and job.trains and job.eval.baseline and not scorer:
            info = {"spec": steps.resolved.spec, "source": steps.resolved.source, "role": "base"}
            summaries["base"] = steps.evaluate(steps.resolved, "eval_base", info, ecfg=job.eval.for_base())
        model = steps.train() if job.trains else steps.resolved
        if job.evaluates:
            ecfg = None
            if scorer:  # eval.prm=trained (the method's preset) is this run's checkpoint
                ecfg = dataclasses.replace(job.eval, prm=model.path if job.eval.prm == TRAINED_PRM else job.eval.prm)
                model = steps.resolved
            info = {"spec": model.spec, "source": model.source, "base_model": steps.resolved.source,
                    "method": job.method, "run": str(steps.run.path)}
            steps.eval_info = info
            summaries["eval"] = steps.evaluate(model, "eval", info, ecfg=ecfg)
            if job.trains and steps.main and getattr(job.config, "report_to", "none") != "none":
                from .training import tracking  # the evaluation's numbers beside the training's, at its last step

                last = steps.run.train_log()[-1]["step"]
                tracking.log_evaluation(job.config.report_to, steps.run.path, summaries["eval"], last)
            if job.trains:
                steps.method_curves()
                if steps.main and summaries["eval"]:  # the model card, with the run's results
                    from .training import card

                    card.write(steps.run.checkpoint_dir, summaries["eval"])
        if steps.main:
            steps.report(summaries)
            steps.run.set_status("done")
    except BaseException as e:
        steps.fail(e)
        raise
    if steps.main:
        print(f"[run] done: {steps.run.path}")
        if job.evaluates:
            refresh_leaderboard(steps.run.path.parent.parent)
    return steps.run


def _finished(folder: Path, tasks) -> bool:
    """Every task evaluated into `folder` (results.json written, no journal of an interrupted evaluation)?"""
    from .runstore import task_folder

    return all((folder / task_folder(t.name) / "results.json").is_file()
               and not list((folder / task_folder(t.name)).glob("samples.partial.*")) for t in tasks)


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

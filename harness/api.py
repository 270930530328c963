"""The Python API (`import rzoo`), for notebooks and scripts: the command line's jobs as functions that return
objects with pandas DataFrames, and raise typed exceptions instead of exiting.

    import rzoo
    r = rzoo.evaluate("testbed", "runsum", budgets=[2, 8], limit=20)
    r.results                     # one row per task x setting: the knobs, accuracy, its CI, thinking tokens, rates
    run = rzoo.train_eval("grpo", steps=2, limit=8)
    run.log, run.evaluations["runsum"].results, run.evaluations["runsum"].plot()

Keyword names are the command line's keys (`harness train method=grpo --help` lists them), evaluation keys
without their `eval.` prefix (`budgets=[2, 8]`, `limit=20`); each value is checked once, against the same field
(type, range, help) as on the command line (`jobs.build`). A key both a method and the evaluation have
(`seed`, `answer_tokens`, ...) goes to the method; `eval={"seed": 1}` sets the evaluation's. The CLI is a thin
layer over the same `jobs.build` + `app.run_job`. Errors are `ConfigError` (a bad key or value, naming the key
and the nearest valid ones), `UnknownName` (a method, task or knob), `ModelError`, `TaskError`.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, suggest


# -- what a run wrote, read back ----------------------------------------------------------------------------
@dataclass
class Results:
    """One evaluation folder (`<run>/eval`, `<run>/eval_base`, ...): every task's results.json and samples.jsonl."""
    path: Path

    def _tasks(self) -> list[Path]:
        return sorted(p.parent for p in Path(self.path).glob("*/results.json"))

    @property
    def tasks(self) -> list[str]:
        return [json.loads((p / "results.json").read_text(encoding="utf-8")).get("task", p.name)
                for p in self._tasks()]

    def raw(self, task: str | None = None) -> dict:
        """A task's results.json as written (the only task's when `task` is None)."""
        folders = self._tasks()
        if task is None and len(folders) == 1:
            return json.loads((folders[0] / "results.json").read_text(encoding="utf-8"))
        for folder, name in zip(folders, self.tasks):
            if name == task:
                return json.loads((folder / "results.json").read_text(encoding="utf-8"))
        raise KeyError(f"no results for task {task!r} in {self.path}; tasks: {', '.join(self.tasks)}")

    @property
    def results(self):
        """One row per task x setting: `task`, every knob, accuracy with `ci_lo` / `ci_hi`, pass@k and maj@k,
        thinking-token mean / median / p90, truncation / forced / closed rates, FLOPs, seconds."""
        import pandas as pd

        rows = []
        for folder in self._tasks():
            data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
            for r in data["results"]:
                lo, hi = (r.get("accuracy_ci95") or [None, None])[:2]
                rows.append({"task": data.get("task", folder.name), **r, "ci_lo": lo, "ci_hi": hi})
        return pd.DataFrame(rows)

    @property
    def samples(self):
        """samples.jsonl of every task, one row per problem x sample x setting, with a `task` column."""
        import pandas as pd

        frames = []
        for folder, name in zip(self._tasks(), self.tasks):
            frame = pd.read_json(folder / "samples.jsonl", lines=True)
            if "task" not in frame.columns:
                frame.insert(0, "task", name)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def curves(self):
        """s1's Control / Scaling / Performance per curve, one row per task x curve."""
        import pandas as pd

        rows = []
        for folder in self._tasks():
            data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
            rows += [{"task": data.get("task", folder.name), **c} for c in data.get("curves", [])]
        return pd.DataFrame(rows)

    def plot(self, axis: str = "tokens"):
        """The matplotlib figure `harness plot` saves for this run (accuracy against mean thinking tokens, or
        `axis="flops"`), with the run's other evaluations (e.g. the base model) beside this one."""
        from rzoo.leaderboard.collect import collect, find_runs
        from rzoo.leaderboard.plot import curves_figure

        run = next(p for p in Path(self.path).resolve().parents if (p / "config.json").is_file())
        runs = [r for r in find_runs(run.parent.parent) if r.path.resolve() == run]
        points = collect(run.parent.parent, runs)
        if points.empty:
            raise ConfigError(f"no evaluation results in {run}")
        return curves_figure(points, axis)

    def __repr__(self) -> str:
        return f"Results({str(self.path)!r}, tasks={self.tasks})"


@dataclass
class Run:
    """A run folder (`harness train` / `train+eval` / `eval`): its config, training log, checkpoint, evaluations."""
    path: Path
    config: dict = field(repr=False, default_factory=dict)

    @property
    def status(self) -> dict:
        path = Path(self.path) / "status.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    @property
    def checkpoint(self) -> Path | None:
        """The trained checkpoint (a `model=` for `rzoo.evaluate` / `harness eval`), None for an evaluation."""
        folder = Path(self.path) / "checkpoint"
        return folder if folder.is_dir() else None

    @property
    def log(self):
        """train.jsonl as a DataFrame, one row per step (empty for an evaluation)."""
        import pandas as pd

        path = Path(self.path) / "train.jsonl"
        return pd.read_json(path, lines=True) if path.is_file() and path.stat().st_size else pd.DataFrame()

    @property
    def evaluations(self) -> dict[str, Results]:
        """{task: Results} of the run's own evaluation (the trained model's, or the evaluated model's)."""
        return self._by_task("eval")

    @property
    def base_evaluations(self) -> dict[str, Results]:
        """{task: Results} of the base model's evaluation (`baseline=True`), {} without one."""
        return self._by_task("eval_base")

    @property
    def results(self) -> Results:
        """The run's own evaluation, every task in one `Results`."""
        return Results(Path(self.path) / "eval")

    def _by_task(self, folder: str) -> dict[str, Results]:
        out = {}
        for task_dir in sorted((Path(self.path) / folder).glob("*/results.json")):
            single = _TaskResults(task_dir.parent)
            out[single.tasks[0]] = single
        return out


@dataclass
class _TaskResults(Results):
    """One task's folder as `Results`."""

    def _tasks(self) -> list[Path]:
        return [Path(self.path)] if (Path(self.path) / "results.json").is_file() else []


def load_run(path: str | os.PathLike) -> Run:
    """A run folder written by `harness` or this API."""
    path = Path(path).expanduser().resolve()
    config = path / "config.json"
    if not config.is_file():
        raise ConfigError(f"{path} is not a run folder (no config.json)")
    return Run(path, json.loads(config.read_text(encoding="utf-8")))


# -- running jobs ---------------------------------------------------------------------------------------------
def _valid_api_keys(job_keys: list[str], eval_keys: list[str]) -> list[str]:
    return sorted(set(job_keys) | set(eval_keys) | {"preset", "eval"})


def _route(kwargs: dict[str, Any], root_keys: list[str], eval_keys: list[str], evaluates: bool,
           eval_section: dict[str, Any] | None) -> dict[str, Any]:
    """Python keywords -> the command line's keys: a method's own keys as they are, evaluation keys under
    `eval.`; an unknown keyword raises ConfigError naming it and the nearest valid ones (as the API spells them)."""
    out: dict[str, Any] = {}
    valid = _valid_api_keys(root_keys, eval_keys if evaluates else [])
    for key, value in kwargs.items():
        if key in root_keys:
            out[key] = value
        elif evaluates and key in eval_keys:
            out[f"eval.{key}"] = value
        elif evaluates and key.startswith("eval.") and key[5:] in eval_keys:
            out[key] = value
        else:
            hint = suggest(key, valid)
            if not evaluates and key in eval_keys:
                hint = " (an evaluation key: use rzoo.train_eval or rzoo.evaluate)"
            raise ConfigError(f"unknown keyword {key!r}.{hint}")
    for key, value in (eval_section or {}).items():
        if key not in eval_keys:
            raise ConfigError(f"unknown evaluation key {key!r} in eval=.{suggest(key, eval_keys)}")
        out[f"eval.{key}"] = value
    return out


def _keys(method: str | None) -> tuple[list[str], list[str]]:
    import dataclasses

    from .evaluation.config import eval_config_class
    from .jobs import EvalJob, method_declaration

    root = method_declaration(method).config if method else EvalJob
    return [f.name for f in dataclasses.fields(root)], [f.name for f in dataclasses.fields(eval_config_class())]


@contextlib.contextmanager
def _runs_root(runs: str | os.PathLike | None):
    """Runs go under `runs` for this call (default: $RZOO_RUNS, else ./runs)."""
    from .runstore import RUNS_ENV

    if runs is None:
        yield
        return
    before = os.environ.get(RUNS_ENV)
    os.environ[RUNS_ENV] = str(Path(runs).expanduser().resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUNS_ENV, None)
        else:
            os.environ[RUNS_ENV] = before


def _run(command: str, overrides: dict[str, Any], progress: bool, runs) -> Run:
    from . import distributed
    from .app import run_job
    from .jobs import build

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one OpenMP thread per process (models.set_cpu_threads)
    with _runs_root(runs):
        job = build(command, overrides)
        run = run_job(job, progress=progress)
    distributed.shutdown()
    return load_run(run.path)


def train(method: str, preset: str = "cpu", *, progress: bool = True, runs: str | os.PathLike | None = None,
          **overrides: Any) -> Run:
    """`harness train method=METHOD`: train a checkpoint (`Run.checkpoint`) without evaluating it."""
    root_keys, eval_keys = _keys(method)
    routed = _route(overrides, root_keys, eval_keys, False, None)
    return _run("train", {"method": method, "preset": preset, **routed}, progress, runs)


def train_eval(method: str, preset: str = "cpu", *, eval: dict[str, Any] | None = None, progress: bool = True,
               runs: str | os.PathLike | None = None, **overrides: Any) -> Run:
    """`harness train+eval method=METHOD`: train, then evaluate the checkpoint (and the base, where the preset
    says so); `Run.evaluations` holds the trained model's results, `Run.base_evaluations` the base's."""
    root_keys, eval_keys = _keys(method)
    routed = _route(overrides, root_keys, eval_keys, True, eval)
    return _run("train+eval", {"method": method, "preset": preset, **routed}, progress, runs)


def evaluate(model: str | os.PathLike, tasks: str | list[str] | None = None, preset: str = "cpu",
             protocol: str | None = None, *, progress: bool = True, runs: str | os.PathLike | None = None,
             **overrides: Any) -> Results:
    """`harness eval model=MODEL task=TASKS`: `model` is any `model=` spec (a hub id, a folder, a run's checkpoint
    or the run folder itself, `default`, `testbed[:variant]`); returns the evaluation's `Results`."""
    root_keys, eval_keys = _keys(None)
    routed = _route(overrides, [k for k in root_keys if k != "model"], eval_keys, True, None)
    given = {"model": os.fspath(model), "preset": preset, **routed}
    if tasks is not None:
        given["eval.task"] = [tasks] if isinstance(tasks, str) else list(tasks)
    if protocol is not None:
        given["eval.protocol"] = protocol
    return _run("eval", given, progress, runs).results


def leaderboard(runs_root: str | os.PathLike | None = None, out: str | os.PathLike | None = None) -> Path:
    """Build the static leaderboard of every run under `runs_root` (default $RZOO_RUNS or ./runs); returns
    its index.html (also `rzoo.leaderboard(...)`: the package is callable)."""
    from rzoo import leaderboard as package

    return package(runs_root, out)


def plot(run: str | os.PathLike | Run, axis: str = "tokens"):
    """The matplotlib figure `harness plot --run RUN` saves (accuracy against thinking tokens, or FLOPs)."""
    run = run if isinstance(run, Run) else load_run(run)
    return run.results.plot(axis)

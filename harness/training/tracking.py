"""Experiment tracking through accelerate's trackers: `report_to=tensorboard|wandb|mlflow|trackio|none`.

A run's training rows (train.jsonl's numbers, under `train/`) are logged at each step, the evaluation's results
(`eval/<task>/<setting>/<metric>`) at the last step, and the resolved config as hyper-parameters. Everything
stays offline and in the run folder:

- tensorboard: event files in `<run>/tensorboard/` (`tensorboard --logdir <run>/tensorboard`);
- wandb: offline mode unless WANDB_MODE says otherwise, files in `<run>/wandb/` (`wandb sync` uploads them);
- mlflow: a file store in `<run>/mlruns/` unless MLFLOW_TRACKING_URI is set (`mlflow ui --backend-store-uri ...`);
- trackio: its local store (trackio's default).

The jsonl files stay the record; a tracker is for watching a long run. A tracker whose package is not installed
is a one-line error naming the package, raised when the config is validated (before a run folder exists).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from pathlib import Path

PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}
CHOICES = ("none", *PACKAGES)


def check(report_to: str) -> None:
    """ValueError when `report_to` is unknown or its package is not installed."""
    if report_to not in CHOICES:
        raise ValueError(f"report_to must be one of {', '.join(CHOICES)}, got {report_to!r}")
    package = PACKAGES.get(report_to)
    if package and importlib.util.find_spec(package) is None:
        raise ValueError(f"report_to={report_to} needs the {package} package: pip install {package}")


def hyperparameters(cfg) -> dict:
    """The resolved config as flat scalars (trackers take bool / int / float / str): lists as JSON, None as 'none'."""
    out = {}
    for key, value in (dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)).items():
        out[key] = value if isinstance(value, (bool, int, float, str)) else (
            "none" if value is None else json.dumps(value, default=str))
    return out


def _tracker(report_to: str, run_path: Path, run_name: str):
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    cls = LOGGER_TYPE_TO_CLASS[report_to]
    if report_to == "tensorboard":
        return cls("tensorboard", logging_dir=str(run_path))
    if report_to == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline")
        # one W&B run per run folder: the evaluation's numbers resume the training's run
        return cls("rzoo", dir=str(run_path), name=run_name, id=run_name, resume="allow")
    if report_to == "mlflow":
        os.environ.setdefault("MLFLOW_TRACKING_URI", (run_path / "mlruns").resolve().as_uri())
        return cls(experiment_name="rzoo", run_name=run_name)
    return cls("rzoo", name=run_name)  # trackio


class Tracker:
    """One accelerate tracker for a run folder: `log(row, step)` logs a row's numbers, `finish()` closes it."""

    def __init__(self, report_to: str, run_path: Path, config=None):
        check(report_to)
        run_path = Path(run_path)
        self.tracker = _tracker(report_to, run_path, run_path.name)
        self.tracker.start()
        if config is not None:
            self.tracker.store_init_configuration(hyperparameters(config))

    def log(self, row: dict, step: int, prefix: str = "train/") -> None:
        numbers = {f"{prefix}{k}": float(v) for k, v in row.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step"}
        if numbers:
            self.tracker.log(numbers, step=step)

    def finish(self) -> None:
        self.tracker.finish()


def open_tracker(report_to: str, run_path: Path, config=None) -> Tracker | None:
    """A tracker, or None for report_to=none."""
    return None if report_to == "none" else Tracker(report_to, run_path, config)


def log_evaluation(report_to: str, run_path: Path, summary: dict, step: int) -> None:
    """The evaluation's results (summary: task -> result rows) at the run's last training step."""
    tracker = open_tracker(report_to, run_path)
    if tracker is None:
        return
    from ..generation import knobs

    for task, rows in summary.items():
        for r in rows:
            tracker.log({k: r[k] for k in ("accuracy", "thinking_tokens_mean", "truncation_rate", "reflections_mean")
                         if r.get(k) is not None}, step, prefix=f"eval/{task}/{knobs.label(r).replace(' ', '_')}/")
    tracker.finish()

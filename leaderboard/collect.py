"""Gather every evaluation under a runs root into one pandas table (one row per curve point).

    from rzoo.leaderboard.collect import collect
    points = collect("runs")          # run, role, task, budget, accuracy, ci_lo, ci_hi, ...

A "curve" is one evaluated model on one task: a trained checkpoint (`eval/`), the base model it
started from (`eval_base/`, role "base"), or a plain `harness eval` run. Files that are not valid
results are skipped with a warning naming them, so one broken run does not hide the others.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from rzoo.harness.generation import knobs

from . import runfiles

# Columns of the table `collect` returns, in order; the knobs' columns (`knobs.names()`) follow "setting".
BEFORE_KNOBS = ["curve", "run", "run_dir", "role", "method", "model", "base_model", "task", "series", "knob",
                "setting"]
AFTER_KNOBS = ["accuracy", "ci_lo", "ci_hi", "thinking_tokens_mean", "flops_mean", "n_problems", "n_problems_total",
               "k", "date", "git_sha", "data_sha256", "results_file"]


def columns() -> list[str]:
    return BEFORE_KNOBS + knobs.names() + AFTER_KNOBS


def setting_label(r: dict) -> str:
    """A short name for one test-time setting (`knobs.label`): `b=16`, `b=128 w=2`, `α=0.5 b=64`."""
    return knobs.label(r)


def series_of(r: dict) -> str:
    """What one curve holds fixed while its knob varies (`knobs.series`): "" for a budget (and Wait) curve,
    e.g. "α @ b=64" for a sweep of a method's knob at budget 64, "N @ BF=True" for a prompt control."""
    return knobs.series(r)


# An evaluation folder of a run and its role: `eval` (the trained model), `eval_base` (its base), and any
# other `eval_<name>` a method's hook writes (its role is <name>).
ROLE_DIRS = {"eval": "trained", "eval_base": "base"}


def role_of(folder: str) -> str:
    return ROLE_DIRS.get(folder) or folder.removeprefix("eval_")


@dataclass
class RunInfo:
    """One run folder: its config, status, training log and evaluation files."""
    path: Path
    id: str  # <kind>/<folder>, unique under the root
    config: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    results: list[tuple[str, Path]] = field(default_factory=list)  # (role, results.json)

    @property
    def method(self) -> str | None:
        return self.config.get("method")

    @property
    def date(self) -> str:
        return run_date(self.path)


def run_date(path: Path) -> str:
    """The run's UTC start time from its folder name (`20261124T101500Z-<hash>`), else the folder's
    modification time."""
    stamp = path.name.split("-", 1)[0]
    try:
        when = _dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
    except ValueError:
        when = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc).replace(tzinfo=None)
    return when.strftime("%Y-%m-%d %H:%M")


def _read_json(path: Path, check=runfiles.check_config) -> dict | None:
    return runfiles.read_json(path, check)


def find_runs(root: Path | str) -> list[RunInfo]:
    """Every run folder under `root` (a folder with config.json), oldest first."""
    root = Path(root)
    runs = []
    for config_path in sorted(root.glob("*/*/config.json")):
        path = config_path.parent
        config = _read_json(config_path) or {}
        status_path = path / "status.json"
        status = (_read_json(status_path, runfiles.check_status) or {}) if status_path.exists() else {}
        info = RunInfo(path, f"{path.parent.name}/{path.name}", config, status)
        others = sorted(p.name for p in path.glob("eval_*") if p.is_dir() and p.name not in ROLE_DIRS)
        for folder in [*ROLE_DIRS, *others]:
            for results in sorted((path / folder).glob("*/results.json")):
                info.results.append((role_of(folder), results))
        runs.append(info)
    runs.sort(key=lambda r: (r.date, r.id))
    return runs


def short_model(spec: str | None) -> str:
    """A readable model name: the last path component of a hub id or folder."""
    if not isinstance(spec, str) or not spec:  # None, or pandas' NaN for a missing value
        return "?"
    spec = spec.removeprefix("local:").rstrip("/")
    if spec.startswith("testbed:"):  # testbed:<variant>:<recipe hash>
        return ":".join(spec.split(":")[:2])
    name = spec.rsplit("/", 1)[-1].rsplit(":", 1)[-1]  # hub:org/name, gguf:pkg==v:file.gguf
    if name == "checkpoint":  # <runs>/<method>/<run>/checkpoint
        return spec.rsplit("/", 2)[-2]
    return name


def curve_label(run: RunInfo, role: str, results: dict) -> str:
    """Legend text for one curve: what was evaluated and when."""
    model = results.get("model") or {}
    when = run.date[5:]  # MM-DD HH:MM
    if role == "base":
        return f"{short_model(model.get('source') or model.get('spec'))} (base) {when}"
    name = run.config.get("label") if isinstance(run.config.get("label"), str) else run.method
    if role != "trained":  # a method's own evaluation of its run (`checkpoint_curves`)
        return f"{name} {role} {when}"
    if run.method:
        return f"{name} {when}"
    return f"{short_model(model.get('source') or model.get('spec'))} {when}"


def points_of(run: RunInfo, role: str, path: Path, results: dict) -> list[dict]:
    """The rows one results.json contributes (one per test-time setting)."""
    model = results.get("model") or {}
    label = curve_label(run, role, results)
    base = model.get("base_model") if role == "trained" else None
    out = []
    for r in results["results"]:
        lo, hi = r.get("accuracy_ci95") or (None, None)
        values = {k: r.get(k) for k in knobs.names()}
        series = series_of(r)
        out.append({
            "curve": f"{label} [{series}]" if series else label, "run": run.id, "run_dir": str(run.path),
            "role": role, "method": (run.config.get("label") if isinstance(run.config.get("label"), str) else None)
            or run.method or "eval",
            "model": model.get("source") or model.get("spec"), "base_model": base or model.get("source"),
            "task": results["task"], "series": series, "knob": r.get("knob") or "budget",
            "setting": setting_label(r), **values, "accuracy": float(r["accuracy"]),
            "ci_lo": lo, "ci_hi": hi, "thinking_tokens_mean": r.get("thinking_tokens_mean"),
            "flops_mean": r.get("flops_mean"), "n_problems": r.get("n_problems"),
            "n_problems_total": results.get("n_problems_total"), "k": results.get("k"), "date": run.date,
            "git_sha": results.get("git_sha"), "data_sha256": (results.get("data") or {}).get("sha256"),
            "results_file": str(path),
        })
    return out


REPORTED = "reported by the authors; not run here"


def reference_points(tasks) -> list[dict]:
    """Published results (`harness/evaluation/reported.py`) for the tasks on the board: one row each, marked
    role "reported", accuracy as a fraction, thinking tokens where the source reports a response length."""
    from rzoo.harness.evaluation import reported

    out = []
    for r in reported.load():
        if r.task in tasks:
            out.append({"curve": f"{r.model} ({r.metric}, reported)", "model": r.model, "task": r.task,
                        "metric": r.metric, "accuracy": r.value / 100, "thinking_tokens_mean": r.response_tokens,
                        "protocol": r.protocol, "source": r.source, "note": r.note, "role": "reported"})
    return out


def load_results(path: Path) -> dict | None:
    """A results.json, or None (with one warning naming it) when it is not a well-formed one."""
    return runfiles.read_json(path, runfiles.check_results)


def _unique_bases(rows: list[dict]) -> list[dict]:
    """A base model evaluated identically by several runs (same model, task, settings and numbers) appears once:
    the first run's rows are kept."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["role"] == "base":
            groups.setdefault((row["run"], row["task"]), []).append(row)
    seen, drop = set(), set()
    for key, group in groups.items():
        sig = (group[0]["model"], group[0]["task"],
               tuple((r["setting"], r["accuracy"], r["thinking_tokens_mean"]) for r in group))
        if sig in seen:
            drop.add(key)
        seen.add(sig)
    return [r for r in rows if r["role"] != "base" or (r["run"], r["task"]) not in drop]


def collect(root: Path | str, runs: list[RunInfo] | None = None, results: dict[Path, dict | None] | None = None):
    """One row per (run, role, task, budget) under `root`, as a pandas DataFrame with `columns()`.
    `results`: results.json files already loaded (path -> content, None when skipped), so a bad file
    is warned about once per build."""
    import pandas as pd

    runs = find_runs(root) if runs is None else runs
    rows = []
    for run in runs:
        for role, path in run.results:
            data = results[path] if results is not None and path in results else load_results(path)
            if data is not None:
                rows.extend(points_of(run, role, path, data))
    rows = _unique_bases(rows)
    # two runs started in the same minute would share a legend entry: tell them apart by folder hash
    owners: dict[str, set] = {}
    for row in rows:
        owners.setdefault(row["curve"], set()).add((row["run"], row["role"]))
    for row in rows:
        if len(owners[row["curve"]]) > 1:
            row["curve"] += " #" + row["run"].rsplit("/", 1)[-1].split("-", 1)[-1]
    return pd.DataFrame(rows, columns=columns())

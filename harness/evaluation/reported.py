"""Published results, beside measured ones: `reported.json` holds numbers their authors report (model,
benchmark, metric, value, protocol, mean response tokens where given, source), each checked against its
source. `harness eval` of a registered model prints measured beside reported with the measured 95%
interval and whether the reported value lies inside it; the leaderboard shows them as marked reference
rows and, where a response length is reported, as marked points ("reported by the authors; not run here").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FILE = Path(__file__).resolve().parent / "reported.json"
# metrics that are this project's `accuracy` (avg@k: pass@1 averaged over k samples, or greedy accuracy)
ACCURACY_METRICS = ("pass@1", "accuracy")


@dataclass(frozen=True)
class Reported:
    model: str
    task: str
    metric: str
    value: float  # percent
    protocol: str | None
    response_tokens: float | None
    source: str
    note: str = ""


@lru_cache(maxsize=None)
def load() -> tuple[Reported, ...]:
    data = json.loads(FILE.read_text(encoding="utf-8"))
    return tuple(Reported(**row) for row in data["results"])


def model_id(spec_or_source: str | None) -> str:
    """A comparable model id: `hub:org/name` or `org/name` -> `org/name` (lower case)."""
    text = str(spec_or_source or "").removeprefix("hub:").strip().lower()
    return text


def for_model(model: dict, task: str) -> list[Reported]:
    """Published results for the evaluated model (its spec or source names a registered model) on `task`."""
    names = {model_id(model.get("spec")), model_id(model.get("source"))}
    return [r for r in load() if r.task == task and model_id(r.model) in names]


def compare(reported: Reported, result: dict) -> dict | None:
    """Measured beside reported for one results entry: {reported, measured, ci95, inside}, in percent; None when
    the reported metric is not what the entry measures."""
    if reported.metric in ACCURACY_METRICS:
        measured, ci = result["accuracy"], result.get("accuracy_ci95")
    elif reported.metric.startswith("cons@") and f"maj@{reported.metric[5:]}" in result:
        measured, ci = result[f"maj@{reported.metric[5:]}"], None
    else:
        return None
    lo, hi = (100 * ci[0], 100 * ci[1]) if ci else (None, None)
    inside = None if lo is None else lo <= reported.value <= hi
    return {"reported": reported.value, "measured": 100 * measured, "ci95": [lo, hi], "inside": inside,
            "metric": reported.metric, "protocol": reported.protocol, "source": reported.source}


def scope(evaluation: dict) -> str:
    """How much of the paper's evaluation a measurement is, from its results.json: n problems of the set, k samples
    each, and the protocol settings the run changed ("" for a results file without them)."""
    if "n_problems" not in evaluation:
        return ""
    n, total, k = evaluation["n_problems"], evaluation.get("n_problems_total"), evaluation.get("k")
    changed = (evaluation.get("protocol") or {}).get("overridden") or []
    text = f"n = {n}" + (f" of {total}" if total and total != n else "") + f" problems, k = {k}"
    return text + (f"; differs from the protocol in {', '.join(changed)}" if changed else "; the protocol's settings")


def comparisons(model: dict, task: str, results: list[dict], evaluation: dict | None = None) -> list[dict]:
    """Every reported number for the model on `task` beside the measured one at the headline setting (the largest
    budget), with the measurement's scope (n, k, what differs): what the run saves (`reported.json`)."""
    entries = for_model(model, task)
    if not entries or not results:
        return []
    top = max(results, key=lambda r: (r.get("budget") or 0, -(r.get("waits") or 0)))
    evaluation = evaluation or {}
    out = []
    for rep in entries:
        c = compare(rep, top)
        if c is not None:
            out.append({**c, "task": task, "n_problems": evaluation.get("n_problems"),
                        "n_problems_total": evaluation.get("n_problems_total"), "k": evaluation.get("k"),
                        "overridden": (evaluation.get("protocol") or {}).get("overridden")})
    return out


def lines(model: dict, task: str, results: list[dict], protocol: str, evaluation: dict | None = None) -> list[str]:
    """What `harness eval` prints for a registered model: one line per reported number, against the entry
    at the largest budget (the run's headline setting); with the run's results.json (`evaluation`), each line
    ends with the measurement's scope (n, k, the protocol settings it changed)."""
    entries = for_model(model, task)
    if not entries or not results:
        return []
    top = max(results, key=lambda r: (r.get("budget") or 0, -(r.get("waits") or 0)))
    extent = scope(evaluation or {})
    out = []
    for rep in entries:
        c = compare(rep, top)
        if c is None:
            continue
        same = "" if rep.protocol == protocol else f" (reported under protocol {rep.protocol}, measured under {protocol})"
        where = ("inside" if c["inside"] else "OUTSIDE") + " the 95% interval" if c["inside"] is not None else \
            "no interval"
        ci = f" [{c['ci95'][0]:.1f}, {c['ci95'][1]:.1f}]" if c["ci95"][0] is not None else ""
        out.append(f"[reported] {task} {rep.metric}: measured {c['measured']:.1f}{ci}, reported {rep.value:g} "
                   f"({rep.source}): {where}{same}" + (f" [{extent}]" if extent else ""))
    return out

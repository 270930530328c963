"""The leaderboard's test-time control table: s1's Control / Scaling / Performance (s1 §3.2, Table 3) of every
curve a run evaluated (`harness/evaluation/controls.py`), on the index (all runs) and on each run's page."""
from __future__ import annotations

from .markup import cell, e, url

UNITS = ("Control: share of samples within their setting's bound, averaged over settings. Scaling: mean slope "
         "over all pairs of settings, accuracy points per 1,000 thinking tokens. Performance: best accuracy.")


def curves_of(data: dict) -> list[dict]:
    """A results file's curves: as written (`curves`), or computed from its settings for older files."""
    from rzoo.harness.evaluation.results import control_curves

    if isinstance(data.get("curves"), list):
        return data["curves"]
    try:
        return control_curves(data["results"])
    except (KeyError, TypeError, ValueError):  # a file without the numbers a curve needs: no rows
        return []


def _cells(c: dict) -> list[str]:
    name = c.get("title") or c.get("knob")
    return [cell(f"{name} ({c['series']})" if c.get("series") else name), cell(c.get("settings")),
            cell(None if c.get("control") is None else f"{c['control']:.0%}", sort=c.get("control")),
            cell(c.get("scaling"), 1), cell(c.get("performance"))]


HEAD = ["control (curve)", "settings", "Control", "Scaling (pts / 1k tokens)", "Performance"]


TEXT = {"method", "model", "task", "run", "control (curve)"}


def _table(head: list[str], rows: list[str]) -> str:
    th = "".join(f'<th data-type="{"text" if h in TEXT else "num"}">{e(h)}</th>' for h in head)
    return f'<table class="sortable"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def run_table(data: dict) -> str:
    """A run page's table for one results file ("" when it has one curve of one setting)."""
    curves = [c for c in curves_of(data) if (c.get("settings") or 0) > 1 or c.get("control") is not None]
    if not curves:
        return ""
    rows = [f"<tr>{''.join(_cells(c))}</tr>" for c in curves]
    return f'<h3>Test-time control</h3><p class="hint">{e(UNITS)}</p>' + _table(HEAD, rows)


def index_section(entries: list[tuple[str, str, str, str, dict]]) -> str:
    """The index's section: `entries` are (method, model, task, run page link, results data); "" when no run
    has a curve with more than one setting."""
    rows = []
    for method, model, task, link, data in entries:
        for c in curves_of(data):
            if (c.get("settings") or 0) > 1:
                rows.append(f'<tr data-task="{e(task)}">{cell(method)}{cell(model)}{cell(task)}{"".join(_cells(c))}'
                            f'<td><a href="{url(link)}">run</a></td></tr>')
    if not rows:
        return ""
    return (f'<section><h2>Test-time control</h2><p class="hint">Every curve (one knob swept at fixed other '
            f'settings), scored as s1 does (§3.2, Table 3). {e(UNITS)}</p>'
            + _table(["method", "model", "task", *HEAD, "run"], rows) + "</section>")

"""A run's page of the leaderboard (`runs/<run>.html`): its config, training curve, per-setting results,
the curves' Control / Scaling / Performance, and a per-sample browser filterable by setting and verdict."""
from __future__ import annotations

import json
import re
from pathlib import Path

from rzoo.harness.generation import knobs

from . import runfiles
from .collect import RunInfo, load_results
from .controls_table import run_table
from .markup import cell, e, page, url

MAX_SAMPLES = 2000  # rows per task in a run's sample browser; the rest stay in samples.jsonl


def _results_table(data: dict) -> str:
    cols = [(k.name, k.name, 2 if k.type is float else 0) for k in knobs.all_knobs()
            if any(r.get(k.name) is not None for r in data["results"])]
    cols += [("accuracy", "accuracy", 3), ("accuracy_ci95", "95% CI", 3),
            ("thinking_tokens_mean", "thinking mean", 1), ("thinking_tokens_median", "median", 1),
            ("closed_rate", "closed", 2), ("forced_rate", "forced", 2), ("truncation_rate", "unclosed", 2),
            ("reflections_mean", "reflections", 2), ("flops_mean", "FLOPs/sample", 0), ("n_problems", "problems", 0), ("seconds", "seconds", 1),
            ("tokens_per_second", "tokens/s", 1), ("grader_disagreements", "grader disagreements", 0)]
    th = "".join(f'<th data-type="{"text" if key == "accuracy_ci95" else "num"}">{e(name)}</th>'
                 for key, name, _ in cols)
    trs = []
    for r in data["results"]:
        tds = []
        for key, _, digits in cols:
            v = r.get(key)
            if key == "accuracy_ci95" and v:
                tds.append(cell(f"{v[0]:.3f}–{v[1]:.3f}", sort=v[0]))
            elif key == "flops_mean" and v is not None:
                tds.append(cell(f"{v:.3g}", sort=v))
            else:
                tds.append(cell(v, digits))
        trs.append(f"<tr>{''.join(tds)}</tr>")
    return f'<table class="sortable"><thead><tr>{th}</tr></thead><tbody>{"".join(trs)}</tbody></table>'


def _samples_browser(task: str, samples: list[dict], show_text: bool, key: str) -> str:
    from .collect import setting_label

    labels = {}
    for s in samples:
        labels.setdefault(setting_label(s), None)
    shown = samples[:MAX_SAMPLES]
    options = "".join(f'<option value="{e(b)}">{e(b)}</option>' for b in labels)
    controls = (f'<div class="filters" data-for="{e(key)}">setting <select data-filter="budget">'
                f'<option value="">all</option>{options}</select> verdict <select data-filter="verdict">'
                '<option value="">all</option><option value="correct">correct</option>'
                '<option value="wrong">wrong</option></select> <span class="count"></span></div>')
    note = ""
    if len(samples) > len(shown):
        note = f'<p class="hint">Showing the first {len(shown)} of {len(samples)} samples; all are in samples.jsonl.</p>'
    if not show_text:
        note += ('<p class="hint">Model text is withheld for this task: it may quote the question, whose text '
                 'must not be published. Verdicts, extracted answers and token counts are shown.</p>')
    trs = []
    for s in shown:
        verdict = "correct" if s.get("correct") else "wrong"
        text = ""
        if show_text:
            text = (f'<details><summary>thinking ({e(s.get("thinking_tokens"))} tokens)</summary>'
                    f'<pre>{e(s.get("thinking"))}</pre></details><pre class="answer">{e(s.get("answer"))}</pre>')
        trs.append(
            f'<tr data-budget="{e(setting_label(s))}" data-verdict="{verdict}"><td>{e(s.get("problem_id"))}</td>'
            f'<td>{e(s.get("sample_index"))}</td><td>{e(setting_label(s))}</td>'
            f'<td class="{verdict}">{verdict}</td><td>{e(s.get("extracted"))}</td><td>{e(s.get("gold"))}</td>'
            f'<td>{e(s.get("thinking_end"))}</td><td>{e(s.get("thinking_tokens"))}</td>'
            f'<td>{e(s.get("answer_tokens"))}</td><td class="text">{text}</td></tr>')
    head = ("<tr><th>problem</th><th>sample</th><th>setting</th><th>verdict</th><th>extracted</th><th>gold</th>"
            "<th>thinking ended</th><th>thinking tokens</th><th>answer tokens</th><th>model text</th></tr>")
    return (f'{controls}{note}<table class="samples" id="{e(key)}"><thead>{head}</thead>'
            f'<tbody>{"".join(trs)}</tbody></table>')


def _provenance_name(index: int, role: str, task: str) -> str:
    """The site's copy of one results.json: a safe file name (the task may be `jsonl:/a/b.jsonl`)."""
    return f"results-{index}-{role}-{re.sub(r'[^A-Za-z0-9._-]+', '_', task)[:60]}.json"


def run_html(run: RunInfo, train_figure: str | None, files: dict[str, str] | None = None,
             results: dict[Path, dict | None] | None = None, samples_of=None) -> str:
    """One run's page (in `runs/`). `files`: its provenance files copied into the site (name -> link
    relative to the page), so no link leaves the site;
    `results`: its results.json files as loaded (None: skipped); `samples_of(path)`: a samples.jsonl's
    checked rows, or None when it is not well formed."""
    from rzoo.tasks.withheld import publishes_model_text

    files = files or {}
    samples_of = samples_of or (lambda path: runfiles.read_jsonl(path, runfiles.check_sample))
    status = run.status.get("state", "unknown")
    error = run.status.get("error")
    links = " · ".join(f'<a href="{url(target)}">{e(name)}</a>' for name, target in files.items()
                       if not name.startswith("results"))
    parts = [f"<header><p><a href=\"../index.html\">← leaderboard</a></p><h1>{e(run.id)}</h1>",
             f"<p>method <b>{e(run.method or 'eval')}</b> · started {e(run.date)} UTC · status "
             f"<b>{e(status)}</b>{(' · ' + e(error)) if error else ''}</p>",
             f"<p>folder <code>{e(run.path)}</code> · model source {e(run.config.get('model_source'))}"
             f"{' · ' + links if links else ''}</p>{_decontamination(run.config)}</header>"]
    if train_figure:
        parts.append(f'<section><h2>Training</h2><img src="{url(train_figure)}" alt="reward and completion length '
                     f'per step"></section>')
    for index, (role, path) in enumerate(run.results):
        data = results.get(path) if results is not None else load_results(path)
        if data is None:
            continue
        task = data["task"]
        label = "base model" if role == "base" else "evaluated model"
        src = data.get("data") or {}
        model = data.get("model") or {}
        key = f"samples-{index}"  # unique on the page, whatever the task is called
        copy = files.get(_provenance_name(index, role, task))
        parts.append(
            f"<section><h2>{e(task)} — {e(label)}</h2>"
            f"<p>model {e(model.get('source') or model.get('spec'))} · {e(data.get('n_problems'))} of "
            f"{e(data.get('n_problems_total'))} problems · k={e(data.get('k'))} · seed {e(data.get('seed'))} · "
            f"data {e(src.get('kind'))} {e(src.get('location'))} (sha256 {e(str(src.get('sha256'))[:12])}) · "
            f"git {e(str(data.get('git_sha'))[:8])}"
            + (f' · <a href="{url(copy)}">results.json</a>' if copy else "") + "</p>"
            + _results_table(data) + run_table(data))
        samples_path = path.parent / "samples.jsonl"
        if samples_path.is_file():
            samples = samples_of(samples_path)
            if samples is None:
                parts.append('<p class="hint">samples.jsonl is not well formed; its samples are not shown.</p>')
            else:
                parts.append("<h3>Samples</h3>" + _samples_browser(task, samples, publishes_model_text(data, samples),
                                                                    key))
        parts.append("</section>")
    config = json.dumps(run.config, indent=2, default=str)
    parts.append(f"<section><h2>Config</h2><pre class=\"config\">{e(config)}</pre></section>")
    return page(f"run {run.id}", "\n".join(parts), depth=1)


def _unreadable_run_html(run: RunInfo, problem: str) -> str:
    """The page of a run whose files could not be shown (the index still links to something)."""
    body = (f"<header><p><a href=\"../index.html\">← leaderboard</a></p><h1>{e(run.id)}</h1></header>"
            f"<p>This run's files could not be shown: {e(problem)}. See <code>{e(run.path)}</code>.</p>")
    return page(f"run {run.id}", body, depth=1)


def _decontamination(config: dict) -> str:
    """The training data's contamination check (`tasks/overlap.py`), where the run trained on a task's train split."""
    checked = config.get("train_data_decontamination")
    if not isinstance(checked, dict):
        return ""
    if checked.get("decontaminated"):
        return (f"<p>training data decontaminated against {e(', '.join(checked.get('checked') or []))} "
                f"({e(checked.get('removed'))} problems removed)</p>")
    reasons = "; ".join(f"{k}: {v}" for k, v in (checked.get("unreadable") or {}).items())
    return f"<p class=\"warn\"><b>decontaminated: false</b> — evaluation sets not read: {e(reasons)}</p>"

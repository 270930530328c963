"""The zoo's page (`harness zoo`): the section of the index a researcher reads first when the runs root holds a
zoo (`zoo.json`): one row per recipe (paper, what it changes, the testbed effect read from its runs, the seed
range where `bench/seeds.py` left a `seeds.json` in the root, the base model, the run), and three figures, each
with one sentence written from its numbers:

- before / after: each training recipe's trained model beside its base, on the axis its knob fits (thinking
  tokens; its own knob's values for a model that writes none);
- the compression frontier: the long model and every way to a short one (Kimi's length penalty, CoT-Valve's
  variants over their LoRA scale, long2short's four), at the largest budget (`frontier.py`);
- test-time compute: budget forcing, Waits, s1's controls and latent iterations, on thinking tokens (linear) and on
  estimated FLOPs (log), the recurrent model only on FLOPs (it writes no thinking tokens).
"""
from __future__ import annotations

import json
from pathlib import Path

from .markup import cell, e, url


def _results(run: Path, folder: str) -> dict | None:
    from .collect import load_results

    found = sorted((run / folder).glob("*/results.json"))
    return load_results(found[0]) if found else None


def _top(rows: list[dict]) -> list[dict]:
    """The rows at the largest budget without Waits."""
    top = max(r["budget"] for r in rows)
    return [r for r in rows if r["budget"] == top and not r.get("waits")]


def effect(entry: dict) -> str:
    """What a recipe's runs show, in numbers (base → trained at the largest budget; a swept knob's ends)."""
    run = Path(entry["run"])
    trained, base = _results(run, "eval"), _results(run, "eval_base")
    if trained is None:
        return ""
    if entry["command"] == "eval":  # a test-time recipe: its curves' s1 numbers
        return "; ".join(f"{c['title']}{' (' + c['series'] + ')' if c['series'] else ''}: Control "
                         f"{'n/a' if c['control'] is None else format(c['control'], '.0%')}, Performance "
                         f"{c['performance']:.3f}" for c in trained.get("curves", []))
    rows = _top(trained["results"])
    knob = rows[0].get("knob") or "budget"
    parts = []
    if base is not None:
        b = _top(base["results"])[0]
        if knob in ("budget", "waits"):
            t = rows[0]
            parts.append(f"accuracy {b['accuracy']:.3f} → {t['accuracy']:.3f}, thinking tokens "
                         f"{b['thinking_tokens_mean']:.1f} → {t['thinking_tokens_mean']:.1f} at budget {t['budget']}")
        else:
            parts.append(f"base accuracy {b['accuracy']:.3f} at {b['thinking_tokens_mean']:.1f} thinking tokens")
    if knob not in ("budget", "waits"):
        ends = sorted(rows, key=lambda r: r[knob])
        lo, hi = ends[0], ends[-1]
        parts.append(f"{knob} {lo[knob]:g} → {hi[knob]:g}: accuracy {lo['accuracy']:.3f} → {hi['accuracy']:.3f}, "
                     f"thinking tokens {lo['thinking_tokens_mean']:.1f} → {hi['thinking_tokens_mean']:.1f}")
    parts += _largest_n(trained["results"], rows[0], knob)
    for folder in sorted(p.name for p in run.glob("eval_*") if p.name != "eval_base"):
        extra = _results(run, folder)
        if extra:
            k = extra["results"][0].get("knob")
            parts.append(f"{folder[5:]}: " + " / ".join(f"{r['accuracy']:.3f}" for r in extra["results"])
                         + f" accuracy by {k}")
    return "; ".join(parts)


def _largest_n(results: list[dict], one: dict, swept: str) -> list[str]:
    """Votes and searches beside the curve a run sweeps (a PRM's run): each at its largest N, after one sample."""
    from rzoo.harness.generation import knobs

    last: dict[str, dict] = {}
    for r in results:
        k = r.get("knob")
        if k not in (None, "budget", "waits", swept) and isinstance(r.get(k), (int, float)) and knobs.find(k):
            if k not in last or r[k] > last[k][k]:
                last[k] = r
    if not last:
        return []
    shown = ", ".join(f"{knobs.get(k).point_label(r[k])} {r['accuracy']:.3f}" for k, r in last.items())
    return [f"one sample {one['accuracy']:.3f} at budget {one['budget']}; {shown}"]


def seed_range(root: Path, method: str | None) -> str:
    path = root / "seeds.json"
    if not method or not path.is_file():
        return ""
    data = json.loads(path.read_text(encoding="utf-8")).get(method, {})
    return "; ".join(f"{name}: {v['mean']:.3f} ({v['min']:.3f}..{v['max']:.3f}, seeds "
                     f"{','.join(map(str, v['seeds']))})" for name, v in data.items())


def recipes_table(root: Path, state: dict, slugs: dict[str, str]) -> str:
    rows = []
    for name, entry in state.items():
        run = Path(entry.get("run", ""))
        base = _results(run, "eval_base") if entry.get("run") else None
        trained = _results(run, "eval") if entry.get("run") else None
        model = (base or trained or {}).get("model") or {}
        base_model = model.get("source") or model.get("spec") or ""
        state_text = entry.get("state", "?")
        if state_text == "failed":
            state_text = f"failed: {entry.get('error', '')}"
        link = ""
        if entry.get("run"):
            slug = slugs.get(f"{run.parent.name}/{run.name}")
            link = f'<a href="{url("runs/" + slug + ".html")}">{e(run.name)}</a>' if slug else e(run.name)
        method = entry["args"][0].split("=", 1)[1] if entry["command"] == "train+eval" else None
        rows.append(f'<tr class="{"failed" if entry.get("state") == "failed" else ""}">{cell(name)}'
                    f'{cell(entry.get("description", ""))}{cell(entry.get("changes", ""))}'
                    f'{cell(effect(entry) if entry.get("state") == "done" else state_text)}'
                    f'{cell(seed_range(root, method))}{cell(base_model.split(":")[1] if base_model.startswith("testbed:") else base_model)}'
                    f'{cell(entry.get("seconds"), 0)}<td>{link}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("recipe", "paper and what it adds", "changes", "testbed effect (this run)",
                                              "seed range (bench/seeds.py)", "base model", "seconds", "run"))
    return (f'<table id="recipes" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            "</table>")


def section(root: Path, slugs: dict[str, str], assets: Path) -> str:
    """The zoo section of the index, with its figures written into `assets` ("" without a zoo)."""
    from . import zoo_figures

    path = root / "zoo.json"
    if not path.is_file():
        return ""
    state = json.loads(path.read_text(encoding="utf-8"))
    parts = ['<section id="zoo"><h2>The zoo: every recipe on the testbed</h2>',
             '<p class="hint">Each recipe at its CPU preset (<code>harness zoo</code>), one after another on one '
             'machine; numbers are this run\'s, the seed ranges are <code>bench/seeds.py</code>\'s where it ran.</p>',
             recipes_table(root, state, slugs)]
    for title, (files, sentence) in zoo_figures.draw_all(state, assets).items():
        if files:
            png = next(f for f in files if f.suffix == ".png")
            parts.append(f'<figure class="zoo"><img src="{url("assets/" + png.name)}" alt="{e(title)}">'
                         f"<figcaption><b>{e(title)}.</b> {e(sentence)}</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)

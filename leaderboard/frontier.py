"""The compression frontier (Kimi k1.5 §2.4, Fig. 7, on the testbed): each way from one long-thinking model to a
short one, as accuracy against mean thinking tokens at the largest budget; used by the zoo page and
`bench/frontier.py`."""
from __future__ import annotations

import json
from pathlib import Path


def points(run_dir: Path, folder: str = "eval") -> list[dict]:
    """(accuracy, thinking tokens, setting) at the largest budget of a run's evaluation: one point per value of the
    knob its curve sweeps where that is not the budget (e.g. a method's own scale), in the knob's order; the
    setting is the knob's label (`symbol=value`), None for a plain budget sweep."""
    from rzoo.harness.generation import knobs

    results = json.loads(next(Path(run_dir, folder).glob("*/results.json")).read_text())["results"]
    top = max(r["budget"] for r in results)
    rows = [r for r in results if r["budget"] == top and not r.get("waits")]
    name = rows[0].get("knob") if rows else None
    knob = knobs.find(name) if name not in (None, "budget", "waits") else None
    if knob is not None:
        rows = sorted(rows, key=lambda r: r.get(knob.name) if r.get(knob.name) is not None else 0)
    return [{"accuracy": r["accuracy"], "tokens": r["thinking_tokens_mean"],
             "setting": knob.label(r[knob.name]) if knob is not None and r.get(knob.name) is not None else None}
            for r in rows]


MARKERS = "sD^vP"  # a single-point recipe's marker, one per method (`draw`'s `markers`)


def draw(table: dict, long: dict, out: Path, stem: str = "frontier", markers: dict | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=130)
    ax.scatter([long["tokens"]], [long["accuracy"]], marker="*", s=220, color="black", zorder=3, label="long model")
    for name, pts in table.items():
        xs, ys = [p["tokens"] for p in pts], [p["accuracy"] for p in pts]
        if len(pts) > 1:  # a method swept over its own knob: one line through its settings
            ax.plot(xs, ys, marker="o", label=f"{name} ({pts[0]['setting']} .. {pts[-1]['setting']})")
        else:
            ax.scatter(xs, ys, marker=(markers or {}).get(name, MARKERS[0]), s=60, label=name, zorder=3)
    ax.axvline(0.7 * long["tokens"], color="grey", ls=":", lw=1)
    ax.axhline(long["accuracy"] - 0.05, color="grey", ls=":", lw=1)
    ax.set_xlabel("mean thinking tokens (largest budget)")
    ax.set_ylabel("accuracy (greedy)")
    ax.set_title("Compression frontier: from one long model to short ones (dotted: 0.7x tokens, -0.05 accuracy)",
                 fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(color="0.9")
    out.mkdir(parents=True, exist_ok=True)
    files = [out / f"{stem}.svg", out / f"{stem}.png"]
    for f in files:
        fig.savefig(f, bbox_inches="tight")
    plt.close(fig)
    return files


def reading(table: dict, long: dict, near: float = 0.05) -> str:
    """One sentence that says what it computed: among the points whose accuracy is within 0.05 of the long model's,
    the one with the fewest thinking tokens; and, where points within `near` tokens of it are more accurate, the most
    accurate of them (a point 0.01 tokens shorter is not "the best accuracy per token" over one 0.05 more accurate)."""
    kept = [(p["tokens"], -p["accuracy"], name, p) for name, pts in table.items() for p in pts
            if p["accuracy"] >= long["accuracy"] - 0.05]
    if not kept:
        return "No method kept the long model's accuracy within 0.05."
    tokens, _, name, p = min(kept, key=lambda k: (k[0], k[1], k[2]))
    what = name + (f" at {p['setting']}" if p.get("setting") else "")
    out = (f"Fewest thinking tokens within 0.05 of the long model's accuracy: {what}, {p['accuracy']:.3f} at "
           f"{tokens:.2f} tokens, {tokens / long['tokens']:.2f}x the long model's {long['tokens']:.2f} (accuracy "
           f"{long['accuracy']:.3f})")
    better = [(q[1], q[0], q[2], q[3]) for q in kept if q[0] <= tokens + near and -q[1] > p["accuracy"]]
    if better:
        top = min(b[0] for b in better)
        settings: dict[str, list[str]] = {}  # each method once, with the settings of its points there
        for b in sorted(better, key=lambda b: (b[2], b[1])):
            if b[0] == top:
                settings.setdefault(b[2], [])
                if b[3].get("setting") and b[3]["setting"] not in settings[b[2]]:
                    settings[b[2]].append(b[3]["setting"])
        names = [name + (f" ({', '.join(v)})" if v else "") for name, v in sorted(settings.items())]
        length = max(b[1] for b in better if b[0] == top)
        out += (f"; within {near:g} tokens of it, {', '.join(names)} reach{'es' if len(names) == 1 else ''} "
                f"{-top:.3f} (at up to {length:.2f} tokens)")
    return out + "."

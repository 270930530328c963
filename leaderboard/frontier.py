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


def reading(table: dict, long: dict) -> str:
    """One sentence: the method that keeps accuracy within 0.05 of the long model with the fewest thinking tokens."""
    kept = [(p["tokens"], -p["accuracy"], name, p) for name, pts in table.items() for p in pts
            if p["accuracy"] >= long["accuracy"] - 0.05]
    if not kept:
        return "No method kept the long model's accuracy within 0.05."
    tokens, _, name, p = min(kept, key=lambda k: (k[0], k[1], k[2]))
    what = name + (f" at {p['setting']}" if p.get("setting") else "")
    return (f"{what} gives the best accuracy per token: {p['accuracy']:.3f} at {tokens:.2f} thinking tokens, "
            f"{tokens / long['tokens']:.2f}x the long model's {long['tokens']:.2f} (accuracy {long['accuracy']:.3f}).")

"""s1's Table 3 on the testbed: budget forcing, token-, step- and class-conditional prompting (each with and
without budget forcing at the stated bound) and rejection sampling, each scored by Control / Scaling /
Performance (s1 §3.2; `harness/evaluation/controls.py`), as one table and one figure.

    python bench/controls.py                                   # testbed:conditional, the 500 test problems
    python bench/controls.py --real                            # the path on the default model (16 MATH-500)
    python bench/controls.py --root runs-controls --out out/controls

Runs one `harness eval` into `<root>` (a finished one is read, not run again), prints the table (one row per
curve), and writes `<out>/controls.md` and the figure `<out>/controls.{svg,png}` (one line per control). The testbed model `testbed:conditional` reads the controls' instructions
as s1's conditional models were trained to (`tasks/runsum_controls.py`); it is built on first use (minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# the same controls on the default real model, sized as a path check (16 problems, short budgets)
REAL = ["model=default", "task=math500", "eval.limit=16", "eval.shuffle=true", "eval.budgets=[32,128]",
        "eval.token_bounds=[32,128]", "eval.bound_forcing=[false,true]", "eval.step_bounds=[1]",
        "eval.step_tokens=100", "eval.think_classes=[short,long]", "eval.class_bounds=[32,128]",
        "eval.rejection_budgets=[32,128]", "eval.rejection_tries=4", "eval.answer_tokens=32"]


def _run(root: Path, args: list[str]) -> Path:
    """The finished evaluation under `root` (run once)."""
    done = sorted(p.parents[2] for p in (root / "eval").glob("*/eval/*/results.json"))
    if done:
        return done[-1]
    env = {**os.environ, "RZOO_RUNS": str(root), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run([sys.executable, "-m", "rzoo.harness.cli", "eval", *args, "--no-progress"], env=env, check=True)
    return sorted(p.parents[2] for p in (root / "eval").glob("*/eval/*/results.json"))[-1]


def table(results: dict) -> str:
    def num(value, fmt):
        return "n/a" if value is None else format(value, fmt)

    lines = [f"{results['task']}, {results['n_problems']} problems, model {results['model'].get('spec')}", "",
             "| control | settings | Control | Scaling (points / 1k thinking tokens) | Performance |",
             "|---|---|---|---|---|"]
    for c in results["curves"]:
        name = c["title"] + (f" ({c['series']})" if c["series"] else "")
        lines.append(f"| {name} | {c['settings']} | {num(c['control'], '.0%')} | {num(c['scaling'], '+.1f')} | "
                     f"{num(c['performance'], '.3f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="the default real model on 16 MATH-500 problems")
    parser.add_argument("--root", type=Path, default=None, help="runs root (default runs-controls[-real])")
    parser.add_argument("--out", type=Path, default=None, help="table and figure (default out/controls[-real])")
    args = parser.parse_args(argv)
    suffix = "-real" if args.real else ""
    root = (args.root or Path(f"runs-controls{suffix}")).resolve()
    out = args.out or Path(f"out/controls{suffix}")
    from rzoo.methods.s1_controls import TESTBED_EVAL

    run = _run(root, REAL if args.real else TESTBED_EVAL)
    (path,) = (run / "eval").glob("*/results.json")
    text = table(json.loads(path.read_text()))
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "controls.md").write_text(text + "\n")

    for figure in draw(json.loads(path.read_text()), out):
        print(f"[controls] figure {figure}")
    return 0


def draw(results: dict, out: Path) -> list[Path]:
    """Accuracy against mean thinking tokens, one line per control (s1's Figure 5 / Table 3 on one axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rzoo.harness.generation import knobs

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    curves: dict[str, list[dict]] = {}
    for r in results["results"]:
        knob = knobs.swept(r)
        name = "budget forcing" if knob.name in ("budget", "waits") else knob.caption
        if r.get("bound_forcing"):
            name += " + budget forcing"
        curves.setdefault(name, []).append(r)
    summary = {c["title"] + (" + budget forcing" if "BF=True" in c["series"] else ""): c for c in results["curves"]}
    summary["budget forcing"] = summary.pop("thinking budget", None)
    for name, rows in curves.items():
        rows = sorted(rows, key=lambda r: r["thinking_tokens_mean"])
        c = summary.get(name) or {}
        ctl = "n/a" if c.get("control") is None else f"{c['control']:.0%}"
        ax.plot([r["thinking_tokens_mean"] for r in rows], [r["accuracy"] for r in rows], marker="o",
                ls="--" if "+ budget forcing" in name else "-", label=f"{name} (Control {ctl})")
    ax.set_xlabel("mean thinking tokens")
    ax.set_ylabel(f"accuracy ({results['task']}, {results['n_problems']} problems)")
    ax.set_title(f"Controlling test-time compute (s1 §3.2) on {results['model'].get('spec')}")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "controls.svg", out / "controls.png"]
    for f in files:
        fig.savefig(f, bbox_inches="tight")
    plt.close(fig)
    return files


if __name__ == "__main__":
    raise SystemExit(main())

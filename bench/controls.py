"""s1's Table 3 on the testbed: budget forcing, token-, step- and class-conditional prompting (each with and
without budget forcing at the stated bound) and rejection sampling, each scored by Control / Scaling /
Performance (s1 §3.2; `harness/evaluation/controls.py`), as one table and one figure.

    python bench/controls.py                                   # testbed:conditional, the 500 test problems
    python bench/controls.py --real                            # the path on the default model (16 MATH-500)
    python bench/controls.py --root runs-controls --out out/controls

Runs one `harness eval` into `<root>` (a finished one is read, not run again), prints the table (one row per
curve), and writes `<out>/controls.md` and the figure `<out>/accuracy_vs_thinking_tokens.{svg,png}` (the
leaderboard's plot: one line per curve). The testbed model `testbed:conditional` reads the controls' instructions
as s1's conditional models were trained to (`tasks/runsum_controls.py`); it is built on first use (minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

TESTBED = ["model=testbed:conditional", "task=runsum", "eval.limit=none", "eval.budgets=[2,4,8,16]", "eval.token_bounds=[2,4,8,16]",
           "eval.bound_forcing=[false,true]", "eval.step_bounds=[1,2,4]", "eval.step_tokens=5",
           "eval.think_classes=[short,long]", "eval.class_bounds=[5,14]", "eval.rejection_budgets=[2,4,8,16]",
           "eval.answer_tokens=8", "eval.batch_size=128"]
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
    run = _run(root, REAL if args.real else TESTBED)
    (path,) = (run / "eval").glob("*/results.json")
    text = table(json.loads(path.read_text()))
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "controls.md").write_text(text + "\n")

    from rzoo.harness.jobs import bootstrap
    from rzoo.leaderboard import plot
    from rzoo.leaderboard.collect import collect

    bootstrap()
    for figure in plot.plot_curves(collect(root), out, "tokens"):
        print(f"[controls] figure {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

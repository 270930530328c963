"""The compression frontier: every way this zoo has from a long-thinking model to a short one, from the same
long model (`testbed:redundant`), on one figure of accuracy against mean thinking tokens (Kimi k1.5 §2.4's
comparison, Fig. 7, on the testbed).

    python bench/frontier.py                       # runs what is missing under runs-frontier/, then draws
    python bench/frontier.py --root runs-frontier --out docs/img

Runs one after another (two at once slow each other on 2 cores), each `harness train+eval method=M ...` with its
CPU preset into `<root>/<name>/` (a finished run is read, not run again): Kimi's length penalty (`kimi`),
CoT-Valve's three variants (`cot_valve`, swept over alpha), and long2short's four (`merge`, `shortest`, `dpo`,
`rl`); the long model is every run's base evaluation. Each point is the method's accuracy and mean thinking
tokens at its largest budget (CoT-Valve: one point per alpha). Prints one line per method, the check of
long2short's target (thinking <= 0.7x the long model's at accuracy >= the long model's - 0.05), and one
sentence naming the best accuracy per token, written from the numbers; writes `<out>/frontier.{svg,png}` and
`<root>/frontier.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUNS = {  # name: train+eval overrides (each with its CPU preset)
    "kimi": ["method=kimi"],
    "cot_valve": ["method=cot_valve"], "cot_valve++": ["method=cot_valve", "valve=plus_plus"],
    "cot_valve+P": ["method=cot_valve", "valve=plus_p"],
    "long2short/merge": ["method=long2short", "variant=merge"],
    "long2short/shortest": ["method=long2short", "variant=shortest"],
    "long2short/dpo": ["method=long2short", "variant=dpo"], "long2short/rl": ["method=long2short", "variant=rl"],
}


def run(root: Path, name: str, args: list[str]) -> Path:
    runs = root / name.replace("/", "_").replace("+", "plus")
    done = [p for p in runs.glob("*/*") if (p / "status.json").is_file()
            and json.loads((p / "status.json").read_text()).get("state") == "done"]
    if done:
        return sorted(done)[-1]
    env = {**os.environ, "RZOO_RUNS": str(runs), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "rzoo.harness.cli", "train+eval", *args, "--no-progress"], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    print(f"[frontier] {name}: {time.time() - start:.0f} s", flush=True)
    return run(root, name, args)


def points(run_dir: Path, folder: str = "eval") -> list[dict]:
    """(accuracy, thinking tokens, knob value) at the largest budget of a run's evaluation."""
    results = json.loads((run_dir / folder / "runsum" / "results.json").read_text())["results"]
    top = max(r["budget"] for r in results)
    return [{"accuracy": r["accuracy"], "tokens": r["thinking_tokens_mean"], "alpha": r.get("alpha")}
            for r in results if r["budget"] == top and not r.get("waits")]


def draw(table: dict, long: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    ax.scatter([long["tokens"]], [long["accuracy"]], marker="*", s=220, color="black", zorder=3,
               label="long model (testbed:redundant)")
    for name, pts in table.items():
        xs, ys = [p["tokens"] for p in pts], [p["accuracy"] for p in pts]
        if len(pts) > 1:  # CoT-Valve over alpha
            ax.plot(xs, ys, marker="o", label=f"{name} (alpha {pts[0]['alpha']:g}..{pts[-1]['alpha']:g})")
        else:
            ax.scatter(xs, ys, marker="D" if name.startswith("long2short") else "s", s=60, label=name, zorder=3)
    ax.axvline(0.7 * long["tokens"], color="grey", ls=":", lw=1)
    ax.axhline(long["accuracy"] - 0.05, color="grey", ls=":", lw=1)
    ax.set_xlabel("mean thinking tokens (largest budget)")
    ax.set_ylabel("accuracy (runsum, 500 problems, greedy)")
    ax.set_title("Compression frontier: from one long model to short ones")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "frontier.svg", out / "frontier.png"]
    for f in files:
        fig.savefig(f, bbox_inches="tight")
    plt.close(fig)
    return files


def reading(table: dict, long: dict) -> str:
    """One sentence from the numbers: the method that keeps accuracy within 0.05 of the long model with the
    fewest thinking tokens."""
    kept = [(p["tokens"], -p["accuracy"], name, p) for name, pts in table.items() for p in pts
            if p["accuracy"] >= long["accuracy"] - 0.05]
    if not kept:
        return "No method kept the long model's accuracy within 0.05."
    tokens, _, name, p = min(kept)
    what = name + (f" at alpha {p['alpha']:g}" if p.get("alpha") is not None else "")
    return (f"{what} gives the best accuracy per token: {p['accuracy']:.3f} at {tokens:.2f} thinking tokens, "
            f"{tokens / long['tokens']:.2f}x the long model's {long['tokens']:.2f} (accuracy {long['accuracy']:.3f}).")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="runs-frontier")
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--only", nargs="*", default=list(RUNS), help="names to run / draw (default: all)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    table, long = {}, None
    for name in args.only:
        run_dir = run(root, name, RUNS[name])
        table[name] = sorted(points(run_dir), key=lambda p: p["alpha"] or 0)
        if (run_dir / "eval_base").is_dir():
            long = long or points(run_dir, "eval_base")[0]
    for name, pts in table.items():
        for p in pts:
            ok = p["tokens"] <= 0.7 * long["tokens"] and p["accuracy"] >= long["accuracy"] - 0.05
            alpha = f" alpha {p['alpha']:g}" if p["alpha"] is not None else ""
            print(f"frontier {name}{alpha}: accuracy {p['accuracy']:.3f}, thinking tokens {p['tokens']:.2f} "
                  f"({p['tokens'] / long['tokens']:.2f}x the long model's), target {'met' if ok else 'missed'}")
    sentence = reading(table, long)
    print(f"frontier long model: accuracy {long['accuracy']:.3f}, thinking tokens {long['tokens']:.2f}")
    print(sentence)
    for f in draw(table, long, Path(args.out)):
        print(f"[frontier] figure {f}")
    (root / "frontier.json").write_text(json.dumps({"long": long, "methods": table, "reading": sentence}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

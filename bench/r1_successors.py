"""GRPO and its successors on the testbed, side by side: one figure from the runs' train.jsonl and results.json.

    RZOO_RUNS=runs-succ harness train+eval method=grpo      # then method=dapo, method=dr_grpo (one at a time)
    python bench/r1_successors.py runs-succ [--out docs/img/r1-successors.png]

Panels, per RL step: the mean completion length of each method (all completions, and the wrong ones: Dr. GRPO's
claim is that GRPO's 1/|o_i| lets wrong answers grow), the share of groups DAPO's dynamic sampling dropped, and
the reflection words per completion ("Wait" on the testbed). Prints, per method: accuracy at the largest budget
before -> after training, the length and reflection count at the first and last step, and DAPO's dropped share.
Each method's latest run under the root is read.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

METHODS = ("grpo", "dapo", "dr_grpo")


def latest_run(root: Path, method: str) -> Path | None:
    runs = sorted(p for p in (root / method).glob("*") if (p / "train.jsonl").is_file()) if (root / method).is_dir() else []
    return runs[-1] if runs else None


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines() if line.strip()]


def top_budget_accuracy(run: Path, folder: str) -> float | None:
    """Accuracy at the largest budget (no Waits) of the run's first task evaluated into `folder`."""
    for results in sorted((run / folder).glob("*/results.json")):
        rows = [r for r in json.loads(results.read_text())["results"] if not r.get("waits") and "budget" in r]
        if rows:
            return max(rows, key=lambda r: r["budget"])["accuracy"]
    return None


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def summary(method: str, run: Path, log: list[dict]) -> str:
    def first_last(key: str) -> str:
        vals = [r[key] for r in log if key in r]
        return f"{vals[0]:.2f} -> {vals[-1]:.2f}" if vals else "n/a"

    dropped = [r["first_draw_dropped_frac"] for r in log if "first_draw_dropped_frac" in r]
    drawn = [r["rollouts_drawn"] for r in log if "rollouts_drawn" in r]
    before, after = top_budget_accuracy(run, "eval_base"), top_budget_accuracy(run, "eval")
    acc = f"{before:.3f} -> {after:.3f}" if before is not None and after is not None else "n/a"
    extra = (f", dropped share of the first draw {_mean(dropped):.2f} (first 10 steps {_mean(dropped[:10]):.2f}, "
             f"last 10 {_mean(dropped[-10:]):.2f}), rollouts drawn per step {_mean(drawn):.2f}") if dropped else ""
    return (f"{method:8s} accuracy at the largest budget {acc}; completion tokens {first_last('completion_tokens_mean')}"
            f" (wrong ones {first_last('wrong_completion_tokens_mean')}); reflection words per completion "
            f"{first_last('reflection_words_mean')}{extra}  [{run}]")


def plot(logs: dict[str, list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("completion_tokens_mean", "completion tokens (mean)"),
              ("wrong_completion_tokens_mean", "wrong completions' tokens (mean)"),
              ("first_draw_dropped_frac", "groups dropped by dynamic sampling (share)"),
              ("reflection_words_mean", "reflection words per completion"))
    colours = {m: f"C{i}" for i, m in enumerate(METHODS)}  # one colour per method on every panel
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (key, title) in zip(axes, panels):
        for method, log in logs.items():
            pts = [(r["step"], r[key]) for r in log if key in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=2.5, label=method, color=colours[method])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("RL step")
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="runs root holding grpo/, dapo/, dr_grpo/")
    ap.add_argument("--out", type=Path, default=Path("docs/img/r1-successors.png"))
    args = ap.parse_args(argv)
    logs = {}
    for method in METHODS:
        run = latest_run(args.root, method)
        if run is None:
            print(f"{method:8s} no run under {args.root / method}")
            continue
        logs[method] = read_log(run)
        print(summary(method, run, logs[method]))
    if not logs:
        return 1
    plot(logs, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

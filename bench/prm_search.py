"""Sequential, parallel and search on one compute axis: the `method=prm` run's evaluation of its policy, drawn as
accuracy against the thinking tokens and the FLOPs each answer cost (all samples of a vote, all candidates of a
search, the PRM's forwards), with the same searches guided by a random scorer beside them.

    harness train+eval method=prm                                   (the CPU preset: runs/prm/<run>)
    harness eval model=testbed:early_stop task=runsum eval.prm=random eval.beam=[4,8,16,32,64] \\
        eval.dvts=[4,8,16,32,64] eval.mcts=[4,8,16,32,64] eval.compute_optimal_bins=0 eval.budgets=[32] \\
        eval.temperature=1.0 eval.answer_tokens=8 eval.batch_size=256                        (runs/eval/<control>)
    python bench/prm_search.py runs/prm/<run> [--control runs/eval/<control>] [--out docs/img/prm-search.png]

Prints one row per strategy and N: accuracy, thinking tokens and FLOPs per answer; which strategy is the most
accurate at small and at large compute; the PRM against the random scorer at equal N; DVTS against beam search at
small and large N, overall and on the hardest problems (n >= 8 digits); compute-optimal against the best single
strategy at each N; and the PRM's held-out step accuracy (`prm_eval.json`).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from rzoo.harness.runstore import read_jsonl

STRATEGIES = [("budget", "budget forcing (one sample)"), ("waits", "budget forcing + Wait"),
              ("votes", "majority vote"), ("prm_votes", "PRM-weighted vote"), ("prm_best", "best-of-N (PRM)"),
              ("beam", "beam search (PRM)"), ("dvts", "DVTS (PRM)"), ("mcts", "MCTS (PRM)"),
              ("compute_optimal", "compute-optimal")]


def lines(results: list[dict]) -> dict[str, list[dict]]:
    """{strategy: its rows, by compute}: the budget curve's settings, the Waits, each vote and search."""
    out: dict[str, list[dict]] = {}
    for r in results:
        out.setdefault(r.get("knob") or "budget", []).append(r)
    return {k: sorted(v, key=lambda r: r["thinking_tokens_mean"]) for k, v in out.items()}


def hard_accuracy(folder: Path, knob: str, value, n_min: int = 8) -> float | None:
    """A search's accuracy on the problems of n >= `n_min` digits (the testbed's difficulty), from samples.jsonl."""
    samples = folder / "samples.jsonl"
    if not samples.is_file():
        return None
    from rzoo.tasks import runsum

    n = {p.id: p.meta["n"] for p in runsum.generate("test", runsum.SIZES["test"])}
    rows = [r for r in read_jsonl(samples) if r.get("knob") == knob and r.get(knob) == value and n[r["problem_id"]] >= n_min]
    return statistics.fmean(float(r["correct"]) for r in rows) if rows else None


def report(run: Path, control: Path | None) -> tuple[dict, dict]:
    folder = run / "eval" / "runsum"
    ours = lines(json.loads((folder / "results.json").read_text())["results"])
    rand = lines(json.loads((control / "eval" / "runsum" / "results.json").read_text())["results"]) if control else {}
    print(f"{'strategy':28} {'N / setting':>12} {'accuracy':>9} {'tokens':>8} {'GFLOPs':>8}")
    for name, words in STRATEGIES:
        for r in ours.get(name, []):
            value = r.get(name) if name not in ("budget", "waits") else r.get("waits") or r["budget"]
            print(f"{words:28} {value!s:>12} {r['accuracy']:9.3f} {r['thinking_tokens_mean']:8.1f} "
                  f"{(r.get('flops_mean') or 0) / 1e9:8.3f}")
    for name in ("beam", "dvts", "mcts"):
        for r in rand.get(name, []):
            print(f"{name + ' (random scorer)':28} {r[name]!s:>12} {r['accuracy']:9.3f} {r['thinking_tokens_mean']:8.1f} "
                  f"{(r.get('flops_mean') or 0) / 1e9:8.3f}")
    print()
    pool = [(words, r) for name, words in STRATEGIES if name != "compute_optimal" for r in ours.get(name, [])]
    tokens = sorted(r["thinking_tokens_mean"] for _, r in pool)
    for where, cap in (("small", statistics.median(tokens[:len(tokens) // 2])), ("large", tokens[-1])):
        within = [(w, r) for w, r in pool if r["thinking_tokens_mean"] <= cap]
        words, best = max(within, key=lambda x: (x[1]["accuracy"], -x[1]["thinking_tokens_mean"]))
        print(f"most accurate within {cap:.0f} thinking tokens per answer ({where} compute): {words} "
              f"{best['accuracy']:.3f} at {best['thinking_tokens_mean']:.1f} tokens")
    for name in ("beam", "dvts", "mcts"):
        for r in ours.get(name, []):
            other = next((x for x in rand.get(name, []) if x[name] == r[name]), None)
            if other:
                print(f"{name} N={r[name]}: PRM {r['accuracy']:.3f} ({r['thinking_tokens_mean']:.0f} tokens) vs random "
                      f"{other['accuracy']:.3f} ({other['thinking_tokens_mean']:.0f} tokens)")
    for r in ours.get("beam", []):
        d = next((x for x in ours.get("dvts", []) if x["dvts"] == r["beam"]), None)
        if d:
            hb, hd = hard_accuracy(folder, "beam", r["beam"]), hard_accuracy(folder, "dvts", r["beam"])
            hard = f"; n >= 8 digits: beam {hb:.3f}, DVTS {hd:.3f}" if hb is not None and hd is not None else ""
            print(f"N={r['beam']}: beam {r['accuracy']:.3f} ({r['thinking_tokens_mean']:.0f} tokens), DVTS "
                  f"{d['accuracy']:.3f} ({d['thinking_tokens_mean']:.0f} tokens){hard}")
    singles = [r for name, _ in STRATEGIES[2:-1] for r in ours.get(name, [])]
    for r in ours.get("compute_optimal", []):
        n = r["compute_optimal"]
        same = [x for x in singles if x.get(x["knob"]) == n]
        best = max(same, key=lambda x: x["accuracy"])
        print(f"compute-optimal N={n}: {r['accuracy']:.3f} at {r['thinking_tokens_mean']:.1f} tokens (picked "
              f"{r['picked']}); best single {best['knob']}@{n} {best['accuracy']:.3f} at "
              f"{best['thinking_tokens_mean']:.1f} tokens")
    evaluation = run / "prm_eval.json"
    if evaluation.is_file():
        e = json.loads(evaluation.read_text())
        print(f"PRM held-out step accuracy {e['step_accuracy']:.3f} over {e['steps']} steps (always 'good': "
              f"{e['good_share']:.3f}); last (answer) steps {e['last_step_accuracy']:.3f} (always 'good': "
              f"{e['last_good_share']:.3f})")
    return ours, rand


def plot(ours: dict, rand: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    for ax, key, label in ((axes[0], "thinking_tokens_mean", "thinking tokens per answer (all samples / candidates)"),
                           (axes[1], "flops_mean", "FLOPs per answer (policy + PRM)")):
        for name, words in STRATEGIES:
            rows = ours.get(name, [])
            if name == "waits" and rows:  # the Wait extensions continue the budget curve from its largest budget
                top = max(ours["budget"], key=lambda r: r["budget"])
                rows = [top] + rows
            rows = sorted(rows, key=lambda r: r[key] or 0)
            if rows:
                ax.plot([r[key] for r in rows], [r["accuracy"] for r in rows], marker="o", ms=3,
                        lw=2.5 if name == "compute_optimal" else 1.5, label=words)
        for name in ("beam", "dvts", "mcts"):
            rows = rand.get(name, [])
            if rows:
                ax.plot([r[key] for r in rows], [r["accuracy"] for r in rows], ls="--", marker="x", ms=3,
                        label=f"{name} (random scorer)")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (testbed, 500 problems)")
    handles, labels = axes[1].get_legend_handles_labels()  # beside the panels: inside, it hides the largest N
    fig.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("testbed:early_stop: sequential, parallel and PRM-guided search on one compute axis")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"wrote {out}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--control", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    ours, rand = report(args.run, args.control)
    if args.out:
        plot(ours, rand, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

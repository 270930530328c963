"""DeepSeek-R1's pipeline, stage by stage: accuracy, thinking tokens and language consistency of each stage's
checkpoint, the rejection sampler's report, and the RL stages with and without the language reward.

    harness train+eval method=r1                                   (the CPU preset: runs/r1/<run>)
    harness train+eval method=r1 language_weight=0                 (the same RL without the language reward)
    python bench/r1_stages.py runs/r1/<run> [--without runs/r1/<run0>] [--out docs/img/r1-stages.png]

Prints one row per checkpoint and budget (the base, stages 1-3 from `eval_stage<k>/`, stage 4 = the run's `eval/`):
accuracy, mean thinking tokens and the mean share of the thinking in the target language (`training/language.py`,
over every sample of that setting; a sample with no chain counts 0, as in the reward). Draws accuracy against
thinking tokens (one curve per stage), the language share per stage, and the RL stages' per-step language share
(their temperature-1 rollouts) with and without the language reward.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rzoo.harness.runstore import read_jsonl
from rzoo.harness.training import language, stages


def curves(run: Path, task: str = "runsum") -> list[tuple[str, list[dict]]]:
    """(label, rows) per evaluated checkpoint: rows of budget, accuracy, thinking tokens, language share."""
    cfg = json.loads((run / "config.json").read_text())["config"]
    folders = [("base", run / "eval_base")]
    names = {k: name for k, name, _ in stages.stage_folders(run)}
    folders += [(f"stage {k}: {names[k]}", run / f"eval_stage{k}") for k in sorted(names) if k < len(names)]
    folders.append((f"stage {len(names)}: {names[len(names)]}", run / "eval"))
    out = []
    for label, folder in folders:
        results = folder / task / "results.json"
        if not results.is_file():
            continue
        samples = read_jsonl(folder / task / "samples.jsonl")
        rows = []
        for r in json.loads(results.read_text())["results"]:
            mine = [s for s in samples if s["budget"] == r["budget"] and s["knob"] == "budget"]
            shares = [language.share(s["thinking"], cfg["language"]) or 0.0 for s in mine]
            rows.append({"budget": r["budget"], "accuracy": r["accuracy"], "thinking": r["thinking_tokens_mean"],
                         "language": sum(shares) / len(shares) if shares else float("nan")})
        out.append((label, rows))
    return out


def rl_language(run: Path) -> dict[str, list[float]]:
    """The RL stages' mean language share per step (the reward's `language` term)."""
    rows = read_jsonl(run / "stages" / "train.jsonl")
    out: dict[str, list[float]] = {}
    for r in rows:
        if "language_mean" in r:
            out.setdefault(f"stage {r['stage']}: {r['stage_name']}", []).append(r["language_mean"])
    return out


def report(run: Path, label: str) -> list[tuple[str, list[dict]]]:
    print(f"\n== {label}: {run}")
    found = curves(run)
    print(f"  {'checkpoint':<28} {'budget':>6} {'accuracy':>8} {'think tok':>9} {'language':>8}")
    for name, rows in found:
        for r in rows:
            print(f"  {name:<28} {r['budget']:>6} {r['accuracy']:>8.3f} {r['thinking']:>9.2f} {r['language']:>8.3f}")
    rs = next(run.glob("stages/*/rejection/report.json"), None)
    if rs is not None:
        rep = json.loads(rs.read_text())
        print(f"  rejection sampling: kept {rep['kept']} of {rep['samples']} ({rep['kept_share']:.3f}) from "
              f"{rep['problems']} problems x {rep['samples_per_problem']}; dropped {rep['dropped']}")
    for name, values in rl_language(run).items():
        print(f"  {name}: language share per step {values[0]:.3f} -> {values[-1]:.3f} ({len(values)} steps)")
    return found


def _color(name: str) -> str:
    """One colour per checkpoint in every panel: the base C0, stage k Ck."""
    return f"C{name.split(':')[0].split()[-1]}" if name.startswith("stage") else "C0"


def figure(found, without, out: Path, steps=None, steps_without=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.2))
    for series, style, suffix in ((steps or {}, "-", ""), (steps_without or {}, "--", ", no language reward")):
        for name, values in series.items():
            c.plot(range(1, len(values) + 1), values, style, color=_color(name), label=name + suffix)
    c.set(xlabel="RL step", ylabel="language share of the step's rollouts (T = 1)", title="the RL stages' rollouts",
          ylim=(0.85, 1.005))
    c.legend(fontsize=7)
    for name, rows in found:
        a.plot([r["thinking"] for r in rows], [r["accuracy"] for r in rows], marker="o", color=_color(name), label=name)
        b.plot([r["budget"] for r in rows], [r["language"] for r in rows], marker="o", color=_color(name), label=name)
    for name, rows in without or []:
        if name.startswith("stage 2"):
            a.plot([r["thinking"] for r in rows], [r["accuracy"] for r in rows], "k--", marker="x",
                   label=f"{name}, no language reward")
            b.plot([r["budget"] for r in rows], [r["language"] for r in rows], "k--", marker="x",
                   label=f"{name}, no language reward")
    a.set(xlabel="mean thinking tokens", ylabel="accuracy (500 test problems)", title="each stage's checkpoint")
    b.set(xlabel="thinking budget", ylabel="share of the thinking in the target language",
          title="language consistency", ylim=(0, 1.02))
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"\nfigure: {out}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--without", type=Path, help="the same recipe with language_weight=0")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    found = report(args.run, "r1")
    without = report(args.without, "r1, language_weight=0") if args.without else None
    if args.out:
        figure(found, without, args.out, rl_language(args.run), rl_language(args.without) if args.without else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

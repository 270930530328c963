"""The compression frontier: every way this zoo has from a long-thinking model to a short one, from the same
long model (`testbed:redundant`), on one figure of accuracy against mean thinking tokens (Kimi k1.5 §2.4, Fig. 7,
on the testbed).

    python bench/frontier.py                       # runs what is missing (harness zoo, runs-zoo/), then draws
    python bench/frontier.py --runs runs-zoo --out docs/img

The runs are the zoo's (`harness zoo kimi cot_valve cot_valve++ cot_valve+P long2short/...`: each recipe's CPU
preset, one after another, a finished one read, not run again). Each point is a method's accuracy and mean
thinking tokens at its largest budget (CoT-Valve: one point per alpha); the long model is the runs' base
evaluation. Prints one line per point with long2short's target (thinking <= 0.7x the long model's at accuracy
>= the long model's - 0.05), and one sentence naming the best accuracy per token, written from the numbers;
writes `<out>/frontier.{svg,png}`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAMES = ("kimi", "cot_valve", "cot_valve++", "cot_valve+P", "long2short/merge", "long2short/shortest",
         "long2short/dpo", "long2short/rl")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs-zoo")
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args(argv)
    from rzoo.harness.zoo import run_zoo
    from rzoo.leaderboard.frontier import draw, points, reading

    root = Path(args.runs).resolve()
    state = json.loads((root / "zoo.json").read_text()) if (root / "zoo.json").is_file() else {}
    if any(state.get(n, {}).get("state") != "done" for n in NAMES):
        run_zoo(root, list(NAMES))
        state = json.loads((root / "zoo.json").read_text())
    table = {n: points(Path(state[n]["run"])) for n in NAMES if state.get(n, {}).get("state") == "done"}
    long = points(Path(state["kimi"]["run"]), "eval_base")[0]
    for name, pts in table.items():
        for p in pts:
            ok = p["tokens"] <= 0.7 * long["tokens"] and p["accuracy"] >= long["accuracy"] - 0.05
            setting = f" {p['setting']}" if p["setting"] else ""
            print(f"frontier {name}{setting}: accuracy {p['accuracy']:.3f}, thinking tokens {p['tokens']:.2f} "
                  f"({p['tokens'] / long['tokens']:.2f}x the long model's), target {'met' if ok else 'missed'}")
    print(f"frontier long model: accuracy {long['accuracy']:.3f}, thinking tokens {long['tokens']:.2f}")
    print(reading(table, long))
    for f in draw(table, long, Path(args.out)):
        print(f"[frontier] figure {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

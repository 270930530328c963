"""What the parallel sweep over N costs: the vote rows of a finished evaluation (majority, PRM-weighted, best-of-N,
compute-optimal), recomputed from its samples.jsonl for every N of its config and for the largest N alone, side by
side in one process, against what the run spent generating and grading that largest budget.

    harness train+eval method=prm                          (or any `harness eval ... eval.votes=[1,2,...,K]`)
    python bench/vote_sweep.py runs/prm/<run>/eval/runsum [--repeats 3]

The sweep reads the k samples the largest N already needs, so what it adds is the aggregation of the other N's rows
(their votes, bootstrap intervals and sample statistics). Prints the seconds of both, the extra, and the ratio
sweep / one run with one run counted as its generation and grading seconds alone (no model load, no PRM scoring, no
start-up): the smallest a run can be, so the largest this ratio can be. Timings swing on a shared machine: the
ratio of one invocation is what to quote.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

from rzoo.harness.runstore import read_jsonl

VOTES = ("votes", "prm_votes", "prm_best")


def derived_rows(samples: list[dict], results: list[dict], config: dict) -> list[dict]:
    """The evaluation's vote and compute-optimal rows, recomputed as `write_task` computes them."""
    from rzoo.harness.evaluation import results as R
    from rzoo.harness.generation import knobs

    names = set(knobs.names()) | {"budget", "waits", "knob"}
    settings = [{k: v for k, v in r.items() if k in names} for r in results
                if not r.get("derived_from_sweep") or (r.get("knob") or "budget") == "budget"]
    tops: dict[tuple, int] = {}
    for s in settings:
        tops[knobs.generation_key(s)] = max(tops.get(knobs.generation_key(s), 0), s["budget"])
    parts: dict[tuple, list[dict]] = {}
    for r in samples:
        parts.setdefault(R._setting_key(r), []).append(r)
    cfg = SimpleNamespace(**config)
    picks, memos = R._picks(cfg), {}
    return (R.vote_results("bench", parts, settings, cfg, tops, picks, memos)
            + R.optimal_results("bench", parts, settings, cfg, tops, picks, memos))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="an evaluation's task folder (results.json, samples.jsonl)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each, alternating; the median is quoted")
    args = parser.parse_args()
    results = json.loads((args.folder / "results.json").read_text())
    samples = list(read_jsonl(args.folder / "samples.jsonl"))
    config = results["config"]
    swept = {name: sorted(set(config.get(name) or [])) for name in VOTES}
    if not any(swept.values()):
        raise SystemExit(f"{args.folder}: the evaluation swept no vote (eval.votes, eval.prm_votes, eval.prm_best)")
    largest = {name: ns[-1:] for name, ns in swept.items()}
    top = max((r for r in results["results"] if (r.get("knob") or "budget") == "budget" and not r.get("waits")),
              key=lambda r: r["budget"])
    one_run = top["generation_seconds"] + top["grading_seconds"]

    import contextlib
    import io
    import statistics

    times: dict[str, list[float]] = {"sweep": [], "largest": []}
    counts = {}
    for _ in range(args.repeats):
        for which, ns in (("largest", largest), ("sweep", swept)):
            with contextlib.redirect_stdout(io.StringIO()):  # the rows' own log lines
                t = time.perf_counter()
                rows = derived_rows(samples, results["results"], {**config, **ns})
                times[which].append(time.perf_counter() - t)
            counts[which] = len(rows)
    sweep, only = statistics.median(times["sweep"]), statistics.median(times["largest"])
    print(f"{args.folder}: k={config.get('k')}, {top['n_problems']} problems, N swept "
          + ", ".join(f"{name}={ns}" for name, ns in swept.items() if ns))
    print(f"one run at the largest budget, its generation and grading alone   {one_run:8.2f} s")
    print(f"its rows at the largest N ({counts['largest']} rows)                  {only:8.2f} s  "
          f"(median of {args.repeats}: {', '.join(f'{x:.2f}' for x in times['largest'])})")
    print(f"the sweep's rows ({counts['sweep']} rows)                             {sweep:8.2f} s  "
          f"(median of {args.repeats}: {', '.join(f'{x:.2f}' for x in times['sweep'])})")
    print(f"ratio sweep / one run at the largest N: {(one_run + sweep) / (one_run + only):.3f}x "
          f"(the sweep adds {sweep - only:.2f} s)")


if __name__ == "__main__":
    main()

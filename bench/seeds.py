"""Each method's default run at several seeds: every testbed effect the README quotes, with its mean and
range over the seeds, so that no effect rests on one lucky seed.

    python bench/seeds.py                          # methods grpo s1 kimi deepscaler cot_valve latent, seeds 0 1 2
    python bench/seeds.py --methods latent --seeds 0 1 2 3 --root runs-seeds

Runs `harness train+eval method=M seed=S` one after another (two at once slow each other on 2 cores), each
into `<root>/seed<S>/` (resumable: a finished run is read, not run again), then prints one line per effect:
`effect <method> <name>: mean <m> range <lo>..<hi> (seeds: v0 v1 v2)`, and writes `<root>/seeds.json`.
The testbed's base models are the same for every seed (built once, seed 0); the seed is the method's
(its data order, sampling and initialisation).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("grpo", "s1", "kimi", "deepscaler", "cot_valve", "latent")


def _results(run: Path, folder: str = "eval") -> list[dict]:
    return json.loads((run / folder / "runsum" / "results.json").read_text())["results"]


def _at(rows: list[dict], **knobs) -> dict:
    (row,) = [r for r in rows if all(r.get(k) == v for k, v in knobs.items())]
    return row


def _train_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]


def effects(method: str, run: Path) -> dict[str, float]:
    """The numbers behind the README's row for `method`, from one finished run."""
    trained, base = _results(run), _results(run, "eval_base")
    if method == "grpo":
        top = max(r["budget"] for r in trained)
        return {"base accuracy at the top budget": _at(base, budget=top)["accuracy"],
                "trained accuracy at the top budget": _at(trained, budget=top)["accuracy"],
                "base thinking tokens": _at(base, budget=top)["thinking_tokens_mean"],
                "trained thinking tokens": _at(trained, budget=top)["thinking_tokens_mean"]}
    if method == "s1":
        top = max(r["budget"] for r in trained)
        return {"base accuracy at the top budget": _at(base, budget=top, waits=None)["accuracy"],
                "trained accuracy at the top budget": _at(trained, budget=top, waits=None)["accuracy"],
                "trained accuracy with one Wait": _at(trained, budget=top, waits=1)["accuracy"]}
    if method == "kimi":
        top = max(r["budget"] for r in trained)
        return {"base thinking tokens": _at(base, budget=top)["thinking_tokens_mean"],
                "trained thinking tokens": _at(trained, budget=top)["thinking_tokens_mean"],
                "base accuracy": _at(base, budget=top)["accuracy"],
                "trained accuracy": _at(trained, budget=top)["accuracy"]}
    if method == "deepscaler":
        stages = _results(run, "eval_stages")
        log = _train_log(run)
        out = {f"accuracy after stage {r['stage']}": r["accuracy"] for r in stages}
        out["rollout truncation, first step"] = log[0]["incomplete_frac"]
        out["rollout truncation, last step"] = log[-1]["incomplete_frac"]
        return out
    if method == "cot_valve":
        return {**{f"thinking tokens at alpha {a:g}": _at(trained, alpha=a)["thinking_tokens_mean"] for a in (0.0, 0.5, 1.0)},
                **{f"accuracy at alpha {a:g}": _at(trained, alpha=a)["accuracy"] for a in (0.0, 0.5, 1.0)}}
    if method == "latent":
        rs = sorted(r["recurrence"] for r in trained)
        low, high = _at(trained, recurrence=rs[0])["accuracy"], _at(trained, recurrence=rs[-1])["accuracy"]
        return {f"accuracy at r={rs[0]}": low, f"accuracy at r={rs[-1]}": high, "depth effect": high - low}
    raise ValueError(f"no effects defined for method {method!r}")


def run_once(method: str, seed: int, root: Path, extra: list[str]) -> Path:
    runs = root / f"seed{seed}"
    done = [p for p in (runs / method).glob("*") if (p / "status.json").is_file()
            and json.loads((p / "status.json").read_text()).get("state") == "done"]
    if done:
        return sorted(done)[-1]
    env = {**os.environ, "RZOO_RUNS": str(runs), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "rzoo.harness.cli", "train+eval", f"method={method}", f"seed={seed}",
                          *extra, "--no-progress"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{method} seed {seed} failed:\n{out.stderr[-3000:]}")
    print(f"[seeds] {method} seed {seed}: {time.time() - start:.0f} s", flush=True)
    (run,) = [p for p in (runs / method).glob("*") if json.loads((p / "status.json").read_text())["state"] == "done"]
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--root", default="runs-seeds", help="runs root for these runs (default runs-seeds)")
    parser.add_argument("--extra", nargs="*", default=[], help="more key=value overrides for every run")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    table: dict[str, dict[str, list[float]]] = {}
    for method in args.methods:
        for seed in args.seeds:
            for name, value in effects(method, run_once(method, seed, root, args.extra)).items():
                table.setdefault(method, {}).setdefault(name, []).append(value)
    summary = {}
    for method, rows in table.items():
        for name, values in rows.items():
            mean = statistics.fmean(values)
            summary.setdefault(method, {})[name] = {"mean": mean, "min": min(values), "max": max(values),
                                                    "values": values, "seeds": args.seeds}
            print(f"effect {method} {name}: mean {mean:.3f} range {min(values):.3f}..{max(values):.3f} "
                  f"(seeds {' '.join(str(s) for s in args.seeds)}: {' '.join(f'{v:.3f}' for v in values)})")
    (root / "seeds.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[seeds] {root / 'seeds.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cross-check our math grader with lm-eval's own MATH scoring, on the same texts.

    .venv/bin/pip install "lm-eval>=0.4"          # the optional extra
    .venv/bin/python bench/grader_agreement.py --samples runs/eval/<run>/eval/math500/samples.jsonl

Two inputs:
1. `--samples`: MATH-500 generations written by `harness eval` (samples.jsonl). Each sample's answer
   text (after the thinking block) is scored by lm-eval's `minerva_math500` process_results (its
   `math_verify` and Minerva `exact_match` metrics) and `hendrycks_math500` process_results, with the
   MATH-500 row (solution, answer) as the document. Samples whose thinking block never closed are
   skipped (we grade them as no answer by rule; lm-eval has no such notion).
2. the human-labelled grader cases in tasks/cases/math.jsonl: each grader's accuracy against the labels.

Prints agreement rates and timing; no GPQA text is involved.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lm_eval_scorers():
    from lm_eval.tasks.hendrycks_math import utils as hendrycks
    from lm_eval.tasks.minerva_math import utils as minerva

    def score(doc: dict, text: str) -> dict[str, int]:
        m = minerva.process_results(doc, [text])
        h = hendrycks.process_results(doc, [text])
        return {"lm_eval_math_verify": m["math_verify"], "lm_eval_minerva_exact": m["exact_match"],
                "lm_eval_hendrycks_exact": h["exact_match"]}

    return score


def agreement(rows: list[dict], ours: str, theirs: str) -> dict:
    both = [(bool(r[ours]), bool(r[theirs])) for r in rows]
    return {
        "n": len(both),
        "agree": sum(a == b for a, b in both) / len(both) if both else None,
        "ours_only": sum(a and not b for a, b in both),
        "theirs_only": sum(b and not a for a, b in both),
        "both_correct": sum(a and b for a, b in both),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, nargs="*", default=[], help="math500 samples.jsonl files")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "math500" / "math500.jsonl")
    args = parser.parse_args()

    from rzoo.tasks.grading import math_verdict

    score = lm_eval_scorers()
    docs = {}
    for line in args.data.read_text().splitlines():
        row = json.loads(line)
        docs[row["unique_id"]] = row

    rows = []
    ours_seconds = []
    for path in args.samples:
        for line in path.read_text().splitlines():
            s = json.loads(line)
            if s["thinking_end"] == "incomplete":
                continue
            doc = docs[s["problem_id"]]
            t0 = time.perf_counter()
            verdict = math_verdict(s["answer"], doc["answer"])
            ours_seconds.append(time.perf_counter() - t0)
            assert verdict.correct == s["correct"], "samples.jsonl was graded by another grader version"
            rows.append({"id": s["problem_id"], "ours": s["correct"], **score(doc, s["answer"])})
    if rows:
        print(f"MATH-500 generations: {len(rows)} graded samples ({sum(r['ours'] for r in rows)} correct by ours)")
        for other in ("lm_eval_math_verify", "lm_eval_minerva_exact", "lm_eval_hendrycks_exact"):
            print(f"  ours vs {other:<24} {json.dumps(agreement(rows, 'ours', other))}")
        print(f"  our grader: {statistics.fmean(ours_seconds) * 1e3:.2f} ms mean, "
              f"{max(ours_seconds) * 1e3:.1f} ms max per sample")

    cases = [json.loads(line) for line in (ROOT / "tasks" / "cases" / "math.jsonl").read_text().splitlines()]
    labelled = []
    for c in cases:
        doc = {"answer": c["gold"], "solution": f"\\boxed{{{c['gold']}}}", "problem": ""}
        labelled.append({"label": c["correct"], "ours": math_verdict(c["answer"], c["gold"]).correct,
                         **score(doc, c["answer"])})
    print(f"grader cases (tasks/cases/math.jsonl, {len(labelled)} human-labelled): accuracy against the labels")
    for name in ("ours", "lm_eval_math_verify", "lm_eval_minerva_exact", "lm_eval_hendrycks_exact"):
        acc = sum(bool(r[name]) == r["label"] for r in labelled) / len(labelled)
        print(f"  {name:<24} {acc:.3f}")
    print(f"  ours vs lm_eval_math_verify on the cases: {json.dumps(agreement(labelled, 'ours', 'lm_eval_math_verify'))}")


if __name__ == "__main__":
    main()

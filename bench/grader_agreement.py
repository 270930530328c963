"""How often each grader agrees with the labelled cases (and with ours), and with lm-eval on generations.

    python bench/grader_agreement.py                      # the labelled cases in tasks/grading/cases/
    python bench/grader_agreement.py --samples runs/eval/<run>/eval/math500/samples.jsonl

Graders compared on the labelled cases (`tasks/grading/cases/math.jsonl`, `choice.jsonl`):
- ours: `math_verdict` / `choice_letter` (what evaluation, the RL reward and `harness grade` use);
- plain math-verify: `parse` + `verify` with their defaults (the gold wrapped in `$...$` unless it is
  already LaTeX with delimiters or a box); for choices, `StringExtractionConfig` over the letters;
- lm-eval (when importable): for math, `minerva_math` `process_results` (its `math_verify` metric
  and Minerva `exact_match`) and `hendrycks_math` `process_results`; for choices, the MMLU-Pro
  filter (`answer is \\(?([A-J])\\)?`, first match) and GPQA's two filters (strict "The answer is
  (X)" and flexible: the last "(X)", with lm-eval's `MultiChoiceRegexFilter` fallbacks).

lm-eval's MATH utilities need `antlr4-python3-runtime==4.11` (its `[math]` extra) while math-verify
installs 4.13, so run this from a separate environment:

    python3 -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install "lm-eval[math]" math-verify sympy
    PYTHONPATH=<a folder where `import rzoo` finds this checkout> /tmp/lmeval/bin/python bench/grader_agreement.py

`--samples`: MATH-500 generations written by `harness eval`; each answer is scored by lm-eval's
MATH scoring with the MATH-500 row as the document (samples whose thinking never closed are skipped).
No GPQA text is involved anywhere.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tasks" / "grading" / "cases"


def read_cases(name: str) -> list[dict]:
    return [json.loads(line) for line in (CASES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# graders


def plain_math_verify():
    from math_verify import StringExtractionConfig, parse, verify

    def gold_text(gold: str) -> str:
        return gold if ("$" in gold.replace("\\$", "") or "\\boxed" in gold or "\\(" in gold) else f"${gold}$"

    def math(answer: str, gold: str) -> bool:
        try:
            return bool(verify(parse(gold_text(gold)), parse(answer)))
        except Exception:  # noqa: BLE001 - a grader that raises counts as "incorrect" here
            return False

    def choice(answer: str, gold: str, letters: str) -> bool:
        config = [StringExtractionConfig(strings=tuple(letters))]
        try:
            return bool(verify(parse(gold, config), parse(answer, config)))
        except Exception:  # noqa: BLE001
            return False

    return math, choice


def lm_eval_math():
    """lm-eval's own MATH scoring, or None when lm-eval is not importable."""
    try:
        from lm_eval.tasks.hendrycks_math import utils as hendrycks
        from lm_eval.tasks.minerva_math import utils as minerva
    except ImportError:
        return None

    def score(doc: dict, text: str) -> dict[str, bool]:
        m = minerva.process_results(doc, [text])
        h = hendrycks.process_results(doc, [text])
        return {"lm-eval minerva math_verify": bool(m["math_verify"]),
                "lm-eval minerva exact_match": bool(m["exact_match"]),
                "lm-eval hendrycks exact_match": bool(h["exact_match"])}

    return score


def lm_eval_choice():
    """lm-eval's MMLU-Pro and GPQA answer filters, or None when lm-eval is not importable."""
    try:
        from lm_eval.filters.extraction import MultiChoiceRegexFilter, RegexFilter
    except ImportError:
        return None
    import string

    mmlu_pro = RegexFilter(r"answer is \(?([ABCDEFGHIJ])\)?", group_select=0)
    strict = RegexFilter(r"(?<=The answer is )(.*)(?=.)", group_select=0)
    flexible = MultiChoiceRegexFilter(r"(\([A-Z]\))", group_select=-1, ignore_case=True, ignore_punctuation=True)
    strip = str.maketrans("", "", string.punctuation)

    def same(extracted: str, gold: str) -> bool:  # lm-eval's exact_match with ignore_case / ignore_punctuation
        return extracted.lower().translate(strip).strip() == f"({gold})".lower().translate(strip).strip()

    def score(answer: str, gold: str, letters: str) -> dict[str, bool]:
        # placeholder option texts: our cases carry letters only, so the filters' text matching never fires
        doc = {"choices": [f"<option {letter} text>" for letter in letters]}
        return {"lm-eval mmlu_pro regex": mmlu_pro.apply([[answer]], [doc])[0][0] == gold,
                "lm-eval gpqa strict": same(strict.apply([[answer]], [doc])[0][0], gold),
                "lm-eval gpqa flexible": same(flexible.apply([[answer]], [doc])[0][0], gold)}

    return score


# ---------------------------------------------------------------------------------------------
# the labelled cases


def grade_cases() -> tuple[list[dict], list[dict]]:
    from rzoo.tasks.grading.choice import LETTERS, choice_letter
    from rzoo.tasks.grading.verdict import math_verdict

    mv_math, mv_choice = plain_math_verify()
    lm_math, lm_choice = lm_eval_math(), lm_eval_choice()
    math_rows = []
    for c in read_cases("math.jsonl"):
        row = {"category": c["category"], "label": c["correct"], "ours": math_verdict(c["answer"], c["gold"]).correct,
               "plain math-verify": mv_math(c["answer"], c["gold"])}
        if lm_math:
            row.update(lm_math({"answer": c["gold"], "solution": f"\\boxed{{{c['gold']}}}", "problem": ""}, c["answer"]))
        math_rows.append(row)
    choice_rows = []
    for c in read_cases("choice.jsonl"):
        letters = LETTERS[:c.get("options", len(LETTERS))]
        row = {"category": c["category"], "label": c["correct"],
               "ours": choice_letter(c["answer"], letters) == c["gold"],
               "plain math-verify": mv_choice(c["answer"], c["gold"], letters)}
        if lm_choice:
            row.update(lm_choice(c["answer"], c["gold"], letters))
        choice_rows.append(row)
    return math_rows, choice_rows


def _rate(rows: list[dict], name: str, against: str = "label") -> float:
    return sum(r[name] == r[against] for r in rows) / len(rows)


def report(title: str, rows: list[dict]) -> dict:
    graders = [k for k in rows[0] if k not in ("category", "label")]
    print(f"\n{title}: {len(rows)} labelled cases; share of verdicts equal to the label (and to ours)")
    summary = {}
    for name in graders:
        summary[name] = {"vs_labels": _rate(rows, name), "vs_ours": _rate(rows, name, "ours")}
        print(f"  {name:<32} {summary[name]['vs_labels']:.3f}   (vs ours {summary[name]['vs_ours']:.3f})")
    by_category: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_category[r["category"]].append(r)
    print(f"  per category (n; {', '.join(graders)}):")
    for category, part in sorted(by_category.items()):
        rates = " ".join(f"{_rate(part, g):.2f}" for g in graders)
        print(f"    {category:<18} {len(part):>3}  {rates}")
    return summary


# ---------------------------------------------------------------------------------------------
# generations


def agreement(rows: list[dict], ours: str, theirs: str) -> dict:
    both = [(bool(r[ours]), bool(r[theirs])) for r in rows]
    return {
        "n": len(both),
        "agree": sum(a == b for a, b in both) / len(both) if both else None,
        "ours_only": sum(a and not b for a, b in both),
        "theirs_only": sum(b and not a for a, b in both),
        "both_correct": sum(a and b for a, b in both),
    }


def grade_samples(paths: list[Path], data: Path) -> None:
    from rzoo.tasks.grading.verdict import math_verdict

    score = lm_eval_math()
    if score is None:
        raise SystemExit("--samples needs lm-eval (see the module docstring)")
    docs = {}
    for line in data.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs[row["unique_id"]] = row
    rows, seconds = [], []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            s = json.loads(line)
            if s["thinking_end"] == "incomplete":
                continue
            doc = docs[s["problem_id"]]
            t0 = time.perf_counter()
            verdict = math_verdict(s["answer"], doc["answer"])
            seconds.append(time.perf_counter() - t0)
            rows.append({"id": s["problem_id"], "ours": verdict.correct, "recorded": s["correct"],
                         **score(doc, s["answer"])})
    if not rows:
        return
    changed = sum(r["ours"] != r["recorded"] for r in rows)
    print(f"MATH-500 generations: {len(rows)} graded samples ({sum(r['ours'] for r in rows)} correct by ours; "
          f"{changed} verdicts differ from the ones recorded at evaluation time)")
    for other in ("lm-eval minerva math_verify", "lm-eval minerva exact_match", "lm-eval hendrycks exact_match"):
        print(f"  ours vs {other:<30} {json.dumps(agreement(rows, 'ours', other))}")
    print(f"  our grader: {statistics.fmean(seconds) * 1e3:.2f} ms mean, {max(seconds) * 1e3:.1f} ms max per sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, nargs="*", default=[], help="math500 samples.jsonl files")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "math500" / "math500.jsonl")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    if args.samples:
        grade_samples(args.samples, args.data)
    math_rows, choice_rows = grade_cases()
    summary = {"math": report("math cases (tasks/grading/cases/math.jsonl)", math_rows),
               "choice": report("multiple-choice cases (tasks/grading/cases/choice.jsonl)", choice_rows)}
    everything = math_rows + choice_rows
    shared = [g for g in everything[0] if g in choice_rows[0] and g not in ("category", "label")]
    print(f"\nall {len(everything)} cases: " + ", ".join(f"{g} {_rate(everything, g):.3f}" for g in shared))
    if lm_eval_math() is None:
        print("(lm-eval not importable here: its graders were skipped; see the module docstring)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""How short can long2short's `shortest` and `dpo` get on the testbed? Re-checks counted in one run's samples.

Both variants learn only from the long model's own samples (`<run>/long2short/samples.jsonl`): SFT imitates the
shortest correct one, DPO prefers it to wrong and much longer ones. Neither has any sample to learn a length
from that the long model does not write. On the testbed a sample is the chain of n running sums plus re-checks
of the final sum, so its re-checks are `thinking tokens - n`. This prints, for a `shortest` or `dpo` run:

- how many re-checks the long model's correct samples hold, and the chosen (shortest correct) ones;
- the re-checks of the base (the long model) and of the trained model on the test set, greedy, at the largest
  budget, with their mean thinking tokens;
- the floor: the test set's chain alone plus one re-check, as a fraction of the long model's thinking tokens.

    harness train+eval method=long2short variant=shortest
    python bench/long2short_floor.py runs/long2short/<run>
"""
from __future__ import annotations

import collections
import statistics
import sys
from pathlib import Path


def rechecks(rows: list[dict], digits: dict[str, int], tokens) -> collections.Counter:
    return collections.Counter(tokens(r) - digits[r["problem_id"]] for r in rows)


def show(name: str, counts: collections.Counter) -> None:
    total = sum(counts.values())
    cells = ", ".join(f"{k}: {v} ({v / total:.1%})" for k, v in sorted(counts.items()))
    print(f"{name:<34} {cells}")


def largest_budget(path: Path) -> list[dict]:
    from rzoo.harness.runstore import read_jsonl

    rows = [r for r in read_jsonl(path) if r["knob"] == "budget"]
    top = max(r["budget"] for r in rows)
    return [r for r in rows if r["budget"] == top]


def main(run: Path) -> None:
    from rzoo.harness.runstore import read_jsonl
    from rzoo.tasks.runsum import SIZES, generate

    samples_file = run / "long2short" / "samples.jsonl"
    if not samples_file.exists():
        sys.exit(f"{samples_file} does not exist: give a long2short run of variant shortest or dpo")
    digits = {p.id: p.meta["n"] for split in ("train", "test") for p in generate(split, SIZES[split])}
    samples = read_jsonl(samples_file)
    correct = [r for r in samples if r["correct"]]
    by_problem = collections.defaultdict(list)
    for r in correct:
        by_problem[r["problem_id"]].append(r)
    chosen = [min(rows, key=lambda r: r["length"]) for rows in by_problem.values()]
    words = lambda r: len(r["thinking"].split())  # noqa: E731 -- one testbed token per word
    print(f"{run}: {len(samples)} samples of the long model, {len(correct)} correct, {len(chosen)} chosen")
    show("re-checks, correct samples", rechecks(correct, digits, words))
    show("re-checks, chosen (shortest)", rechecks(chosen, digits, words))
    means = {}
    for name in ("eval_base", "eval"):
        rows = largest_budget(run / name / "runsum" / "samples.jsonl")
        means[name] = statistics.mean(r["thinking_tokens"] for r in rows)
        accuracy = statistics.mean(r["correct"] for r in rows)
        show(f"re-checks, {name} b={rows[0]['budget']} (greedy)", rechecks(rows, digits, lambda r: r["thinking_tokens"]))
        print(f"{'':<34} thinking tokens {means[name]:.3f}, accuracy {accuracy:.3f}")
    test = generate("test", SIZES["test"])
    floor = statistics.mean(p.meta["n"] for p in test) + 1
    long = means["eval_base"]
    print(f"chain + one re-check: {floor:.3f} tokens = {floor / long:.3f}x the long model's {long:.3f}; "
          f"trained: {means['eval'] / long:.3f}x; 0.7x would be {0.7 * long:.3f} tokens")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))

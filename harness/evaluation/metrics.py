"""Aggregate per-sample verdicts into per-(task, budget) metrics. Pure Python, no torch.

- accuracy: avg@k, the mean over problems of the mean over the k samples; accuracy_std is the
  standard deviation across the k sample indices of the accuracy each index alone gives (0 if k=1);
- accuracy_ci95: a percentile bootstrap over problems (seeded, reproducible);
- pass@j: the unbiased estimator of Chen et al. 2021, 1 - C(n-c, j) / C(n, j), for j <= n;
- maj@k: majority vote over each problem's k extracted answers (ties go to the answer seen first);
- `vote_summary`: the majority vote over each problem's first N samples as a point of its own, its thinking
  tokens and FLOPs the N samples' sum (parallel scaling on the budget curve's compute axis); with `prm_pick`, the
  PRM-weighted vote or best-of-N over the same groups.
"""
from __future__ import annotations

import functools
import math
import random
import statistics
from collections import Counter

from ..generation import thinking as T


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is
    correct (Chen et al. 2021, eq. 1, numerically stable product form)."""
    if not 0 < k <= n:
        raise ValueError(f"pass@k needs 0 < k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def bootstrap_ci(values: list[float], seed: int = 0, resamples: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one value per problem). Each resample draws n indices
    with `random.Random(seed).randrange(n)` and sums its values left to right: the draws depend on (seed, n) only, so
    every row of a sweep over the same problems reuses them (`_draws`)."""
    import numpy as np

    n = len(values)
    # (resamples, n) running sums, left to right as Python's float `sum` adds (cumsum never regroups the additions)
    sums = np.cumsum(np.asarray(values, dtype=np.float64)[_draws(seed, n, resamples)], axis=1)[:, -1]
    means = sorted(float(s) / n for s in sums)
    lo = means[int((1 - level) / 2 * resamples)]
    hi = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return lo, hi


@functools.lru_cache(maxsize=8)
def _draws(seed: int, n: int, resamples: int):
    """The bootstrap's (resamples, n) indices: what `randrange(n)` draws from `Random(seed)`, row after row."""
    import numpy as np

    below = random.Random(seed)._randbelow  # randrange(n) without its argument checks: the same draws, 2x faster
    draws = np.array([[below(n) for _ in range(n)] for _ in range(resamples)], dtype=np.int64)
    draws.flags.writeable = False
    return draws


def majority_correct(answers: list[str | None], correct: list[bool]) -> bool:
    """Is the most frequent extracted answer (None = no answer, never a winner) a correct one?"""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == top)
    return any(c for a, c in zip(answers, correct) if a == winner)


def majority_pick(group: list[dict]) -> bool:
    """Is a group's majority answer correct (`majority_correct`)?"""
    return majority_correct([r.get("extracted") for r in group], [bool(r["correct"]) for r in group])


def prm_pick(how: str = "last", weighted: bool = True):
    """A group's verdict picked by PRM scores (each row's `prm_scores`, aggregated by `how`, `prm.AGGREGATES`):
    weighted, the answer whose samples' values sum highest (a sample with no answer never wins; ties go to the answer
    seen first), else best-of-N, the sample with the highest value (the first on a tie)."""
    from ..generation.prm import aggregate

    def pick(group: list[dict]) -> bool:
        values = [aggregate(r["prm_scores"], how) for r in group]
        if not weighted:
            return bool(group[max(range(len(group)), key=lambda i: (values[i], -i))]["correct"])
        totals: dict[str, float] = {}
        for r, v in zip(group, values):
            if r.get("extracted") is not None:
                totals[r["extracted"]] = totals.get(r["extracted"], 0.0) + v
        if not totals:
            return False
        top = max(totals, key=totals.get)
        return any(bool(r["correct"]) for r in group if r.get("extracted") == top)
    return pick


def _groups(rows: list[dict], n: int) -> tuple[dict[str, list[list[dict]]], list[dict]]:
    """Each problem's samples in order, split into k // n disjoint groups of n; and every sample a group holds."""
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], []).append(r)
    groups, read = {}, []
    for pid, rs in by_problem.items():
        ordered = sorted(rs, key=lambda r: r["sample_index"])
        groups[pid] = [ordered[i:i + n] for i in range(0, len(ordered) - n + 1, n)]
        if not groups[pid]:
            raise ValueError(f"a vote over {n} samples: problem {pid} has {len(ordered)}")
        read += [r for g in groups[pid] for r in g]
    return groups, read


def vote_outcomes(rows: list[dict], n: int, pick=majority_pick, scored: bool = False,
                  memo: dict | None = None) -> dict[str, tuple]:
    """Per problem: (the share of its groups of n whose pick is correct, the thinking tokens one group spent, its FLOPs
    (the PRM's scoring too when `scored`; None where a row has no FLOPs)), averaged over its groups. `memo`: a dict
    shared by calls over the same `rows` (a sweep's rows), which then form each N's groups and each pick's outcomes
    once."""
    memo = {} if memo is None else memo
    if ("outcomes", n, pick, scored) not in memo:
        memo["outcomes", n, pick, scored] = _outcomes(_grouped(rows, n, memo)[0], pick, scored)
    return memo["outcomes", n, pick, scored]


def _grouped(rows: list[dict], n: int, memo: dict) -> tuple[dict[str, list[list[dict]]], list[dict]]:
    if ("groups", n) not in memo:
        memo["groups", n] = _groups(rows, n)
    return memo["groups", n]


def _outcomes(by_problem: dict[str, list[list[dict]]], pick, scored: bool) -> dict[str, tuple]:
    out = {}
    for pid, groups in by_problem.items():
        flops = None
        if all("flops" in r for g in groups for r in g):
            flops = statistics.fmean(sum(r["flops"] + (r["prm_flops"] if scored else 0.0) for r in g) for g in groups)
        out[pid] = (statistics.fmean(float(pick(g)) for g in groups),
                    statistics.fmean(sum(r["thinking_tokens"] for r in g) for g in groups), flops)
    return out


def vote_summary(rows: list[dict], n: int, seed: int = 0, pick=majority_pick, scored: bool = False,
                 memo: dict | None = None) -> dict:
    """A vote (`pick`: the majority by default; `prm_pick`, with `scored` counting the PRM's FLOPs) over `n` samples
    as one point, estimated from each problem's k samples split in order into k // n disjoint groups of n (sample
    indices 0..n-1, n..2n-1, ...; for n = 1 this is avg@k): `accuracy` is the mean over problems of the share of its
    groups whose vote is correct (bootstrap CI over problems); thinking
    tokens (mean, median, p90 over problems) and FLOPs are what one vote spent, a group's n samples summed and
    averaged over its groups; the other statistics (truncation, forced and closed rates, pass@j...) are those of the
    samples read (`summarize`), and `thinking_tokens_per_sample_mean` their mean length. `memo`: as `vote_outcomes`'s
    (the samples' statistics, too, are computed once per set of samples read)."""
    memo = {} if memo is None else memo
    by_problem, read = _grouped(rows, n, memo)
    outcomes = vote_outcomes(rows, n, pick, scored, memo)
    votes = [o[0] for o in outcomes.values()]
    tokens = [o[1] for o in outcomes.values()]
    spent = [o[2] for o in outcomes.values() if o[2] is not None]
    # the samples read: each problem's first len(groups) * n (every N that divides k reads all k)
    key = ("samples", tuple(len(groups) * n for groups in by_problem.values()), seed)
    if key not in memo:
        memo[key] = summarize(read, len(read) // len(by_problem), seed, ci=False)
    out = dict(memo[key])
    out.pop("accuracy_std")  # a spread over sample indices: a vote has one verdict per group
    lo, hi = bootstrap_ci(votes, seed=seed)
    out.update({"accuracy": statistics.fmean(votes), "accuracy_ci95": [lo, hi],
                "vote_groups": len(read) // len(by_problem) // n,
                "thinking_tokens_per_sample_mean": out["thinking_tokens_mean"],
                "thinking_tokens_mean": statistics.fmean(tokens), "thinking_tokens_median": statistics.median(tokens),
                "thinking_tokens_p90": percentile(tokens, 0.9)})
    if len(spent) == len(votes):
        out["flops_mean"] = statistics.fmean(spent)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = (len(ordered) - 1) * q
    lo, hi = math.floor(index), math.ceil(index)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (index - lo)


def summarize(rows: list[dict], k: int, seed: int = 0, ci: bool = True) -> dict:
    """rows: one per (problem, sample) at one budget, with keys problem_id, sample_index, correct,
    extracted, thinking_tokens, answer_tokens, thinking_end, answer_truncated, waits_used."""
    if not rows:
        raise ValueError("no samples to summarise")
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], []).append(r)
    per_problem = [statistics.fmean(float(r["correct"]) for r in rs) for rs in by_problem.values()]
    by_index: dict[int, list[float]] = {}
    for r in rows:
        by_index.setdefault(r["sample_index"], []).append(float(r["correct"]))
    per_index = [statistics.fmean(by_index.get(j, [])) for j in range(k)]
    lo, hi = bootstrap_ci(per_problem, seed=seed) if ci else (None, None)  # (a vote sets its own)
    thinking = [r["thinking_tokens"] for r in rows]
    ends = [r["thinking_end"] for r in rows]
    pass_ks = sorted({j for j in (1, 2, 4, 8, 16, 32, 64) if j <= k} | {k})
    out = {
        "accuracy": statistics.fmean(per_problem),
        "accuracy_std": statistics.stdev(per_index) if k > 1 else 0.0,
        "accuracy_ci95": [lo, hi],
        "n_problems": len(by_problem),
        "n_samples": len(rows),
        "k": k,
        **{f"pass@{j}": statistics.fmean(pass_at_k(len(rs), sum(bool(r["correct"]) for r in rs), j)
                                         for rs in by_problem.values()) for j in pass_ks},
        f"maj@{k}": statistics.fmean(float(majority_correct([r.get("extracted") for r in rs],
                                                            [bool(r["correct"]) for r in rs]))
                                     for rs in by_problem.values()),
        "thinking_tokens_mean": statistics.fmean(thinking),
        "thinking_tokens_median": statistics.median(thinking),
        "thinking_tokens_p90": percentile(thinking, 0.9),
        "answer_tokens_mean": statistics.fmean(r["answer_tokens"] for r in rows),
        "truncation_rate": ends.count(T.INCOMPLETE) / len(ends),
        "forced_rate": ends.count(T.FORCED) / len(ends),
        "closed_rate": ends.count(T.CLOSED) / len(ends),
        "answer_truncated_rate": sum(bool(r["answer_truncated"]) for r in rows) / len(rows),
        "waits_mean": statistics.fmean(r["waits_used"] for r in rows),
        # reflection words the model wrote in its thinking, per sample (generation/reflection.py); older sample
        # files lack the column
        **({"reflections_mean": statistics.fmean(r["reflections"] for r in rows)}
           if all("reflections" in r for r in rows) else {}),
    }
    if all("flops" in r for r in rows):  # estimated inference FLOPs per sample (harness/flops.py)
        out["flops_mean"] = statistics.fmean(r["flops"] for r in rows)
    return out

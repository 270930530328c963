"""Compute-optimal test-time scaling (Snell et al., 2024, "Scaling LLM Test-Time Compute Optimally", §3-§5; as
Hugging Face's search-and-learn reproduces it): problems binned by difficulty, and for each bin and generation
budget N the strategy that wins there; the compute-optimal point at N picks each problem's strategy from its bin.

    harness eval ... eval.votes=[...] eval.prm_votes=[...] eval.beam=[...] eval.dvts=[...]   (eval.compute_optimal_bins=4)

- Difficulty: the base sampling's pass@1 on the problem (its k samples at the largest budget), as Snell et al.'s
  "model-predicted difficulty" from the base policy's own samples (their oracle bins use the ground truth the same
  way); bins are its quantiles.
- Strategies at N: every vote (`votes`, `prm_votes`, `prm_best`: N samples) and every search (`beam`, `dvts`,
  `mcts` at N) the evaluation ran, each with its per-problem accuracy, thinking tokens and FLOPs.
- Honest selection: the problems are split in two folds by a hash of their id; the bin edges and each bin's best
  strategy are learned on one fold and applied to the other, so no problem's choice was learned from its own result.
  Ties go to the cheaper strategy (fewer thinking tokens).

Its accuracy is compared with each single strategy's at the same N; its thinking tokens and FLOPs are those of the
strategies it picked, problem by problem.
"""
from __future__ import annotations

import hashlib
import statistics


def fold_of(problem_id: str) -> int:
    return int(hashlib.sha256(problem_id.encode()).hexdigest()[:8], 16) % 2


def edges(values: list[float], bins: int) -> list[float]:
    """The bins' inner edges near the quantiles of `values`, each the midpoint between two distinct values (pass@1
    over k samples has many ties: a tie is never split, so fewer bins may come out)."""
    ordered = sorted(values)
    cuts = [i for i in range(1, len(ordered)) if ordered[i - 1] < ordered[i]]  # where the value changes
    out = []
    for b in range(1, bins):
        if not cuts:
            break
        at = min(cuts, key=lambda i: (abs(i - len(ordered) * b / bins), i))
        edge = (ordered[at - 1] + ordered[at]) / 2
        if edge not in out:
            out.append(edge)
    return sorted(out)


def bin_of(value: float, inner: list[float]) -> int:
    return sum(value >= e for e in inner)


def choose(outcomes: dict[str, dict[str, tuple]], difficulty: dict[str, float], problems: list[str],
           bins: int) -> tuple[list[float], dict[int, str]]:
    """Bin edges from `problems`' difficulty and each bin's best strategy on them (ties: fewer tokens). `outcomes`:
    {strategy: {problem: (accuracy, thinking tokens, flops)}}."""
    inner = edges([difficulty[p] for p in problems], bins)
    members: dict[int, list[str]] = {}  # each bin's problems (a bin none falls in picks nothing)
    for p in problems:
        members.setdefault(bin_of(difficulty[p], inner), []).append(p)
    chosen = {}
    for b, ps in sorted(members.items()):
        score = {s: (statistics.fmean(o[p][0] for p in ps), -statistics.fmean(o[p][1] for p in ps))
                 for s, o in outcomes.items()}
        chosen[b] = max(sorted(score), key=lambda s: score[s])
    return inner, chosen


def compute_optimal(outcomes: dict[str, dict[str, tuple]], difficulty: dict[str, float], bins: int) -> dict:
    """The compute-optimal point over `outcomes` (see the module docstring): accuracy, thinking tokens and FLOPs per
    problem of the strategy its bin picked on the other fold, averaged; and which strategy each fold's bins picked."""
    problems = sorted(set.intersection(*(set(o) for o in outcomes.values())) & set(difficulty))
    folds = {f: [p for p in problems if fold_of(p) == f] for f in (0, 1)}
    picked, record = {}, {}
    for f in (0, 1):
        learn, apply = folds[1 - f], folds[f]
        if not learn:
            learn = apply  # one fold empty (a handful of problems): learn where it is applied, and say so
        inner, chosen = choose(outcomes, difficulty, learn, bins)
        fallback = max(sorted(chosen.values()), key=list(chosen.values()).count)
        for p in apply:
            picked[p] = chosen.get(bin_of(difficulty[p], inner), fallback)
        record[f"fold{f}"] = {"edges": inner, "strategies": {str(b): s for b, s in sorted(chosen.items())},
                              "learned_on_other_fold": bool(folds[1 - f])}
    rows = [outcomes[picked[p]][p] for p in problems]
    out = {"accuracy": statistics.fmean(r[0] for r in rows), "thinking_tokens_mean": statistics.fmean(r[1] for r in rows),
           "n_problems": len(problems), "bins": bins, "choices": record,
           "picked": {s: sum(v == s for v in picked.values()) for s in sorted(set(picked.values()))}}
    if all(r[2] is not None for r in rows):
        out["flops_mean"] = statistics.fmean(r[2] for r in rows)
    return out

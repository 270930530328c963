"""Parallel scaling (`eval.votes`): a majority vote over N of each problem's k samples, one point per N, on the
budget curve's compute axis (thinking tokens and FLOPs summed over the N samples). Checked by hand: the votes
on hand-made samples, and an evaluation's vote rows recomputed from its own samples.jsonl."""
from __future__ import annotations

import json
from collections import Counter

import pytest

import rzoo
from rzoo.harness.config import ConfigError
from rzoo.harness.evaluation import metrics


def _rows(answers: dict[str, list], gold: dict[str, str], tokens: int = 3) -> list[dict]:
    return [{"problem_id": pid, "sample_index": i, "extracted": a, "correct": a is not None and a == gold[pid],
             "thinking_tokens": tokens + i, "answer_tokens": 2, "thinking_end": "closed", "answer_truncated": False,
             "waits_used": 0, "flops": 100.0 * (i + 1)}
            for pid, xs in answers.items() for i, a in enumerate(xs)]


ANSWERS = {"p0": ["7", "7", "3", "3"], "p1": [None, "2", "2", "5"], "p2": [None, None, None, None]}
GOLD = {"p0": "7", "p1": "2", "p2": "1"}


@pytest.mark.parametrize("n,accuracy,tokens", [
    # N=1: each sample alone (avg@4): p0 2/4, p1 2/4, p2 0
    (1, (0.5 + 0.5 + 0) / 3, 3 + 1.5),
    # N=2: groups (0,1) and (2,3): p0 7,7 right / 3,3 wrong; p1 None,2 -> 2 right / 2,5 tie -> 2 (seen first) right
    (2, (0.5 + 1 + 0) / 3, ((3 + 4) + (5 + 6)) / 2),
    # N=4: p0 7 and 3 tie -> 7 (seen first) right; p1 2 wins; p2 no answer is never a winner
    (4, (1 + 1 + 0) / 3, 3 + 4 + 5 + 6),
])
def test_the_vote_on_hand_made_samples(n, accuracy, tokens):
    out = metrics.vote_summary(_rows(ANSWERS, GOLD), n)
    assert out["accuracy"] == pytest.approx(accuracy)
    assert out["thinking_tokens_mean"] == pytest.approx(tokens)  # what one vote spent: its N samples summed
    assert out["thinking_tokens_per_sample_mean"] == pytest.approx(4.5)
    assert out["flops_mean"] == pytest.approx(sum(100.0 * (i + 1) for i in range(4)) / (4 // n))
    assert out["k"] == n * (4 // n) and out["vote_groups"] == 4 // n and out["n_problems"] == 3


def test_a_shared_memo_changes_no_row():
    """A sweep's rows share one memo (each N's groups, each pick's outcomes, the statistics of the samples read):
    every row equals the one computed alone, for N that divide k and N that do not (3 of 4 samples read), and for
    two picks over the same groups."""
    rows = _rows(ANSWERS, GOLD)

    def first(group):  # another pick over the same groups: the first sample's verdict
        return bool(group[0]["correct"])

    memo = {}
    shared = [metrics.vote_summary(rows, n, 0, pick, False, memo) for pick in (metrics.majority_pick, first)
              for n in (1, 2, 3, 4)]
    alone = [metrics.vote_summary(rows, n, 0, pick) for pick in (metrics.majority_pick, first) for n in (1, 2, 3, 4)]
    assert shared == alone
    assert shared[2]["k"] == 3 and shared[1]["accuracy"] != shared[5]["accuracy"]  # the memo kept them apart
    assert metrics.vote_outcomes(rows, 2, first, memo=memo) == metrics.vote_outcomes(rows, 2, first)


def test_too_few_samples_for_a_vote_is_an_error():
    with pytest.raises(ValueError, match="problem p0 has 4"):
        metrics.vote_summary(_rows(ANSWERS, GOLD), 5)


def _by_hand(samples: list[dict], n: int) -> tuple[float, float]:
    """The vote's accuracy and tokens, recomputed from samples.jsonl rows without the project's code."""
    problems: dict[str, list[dict]] = {}
    for s in samples:
        problems.setdefault(s["problem_id"], []).append(s)
    accs, toks = [], []
    for rs in problems.values():
        rs.sort(key=lambda s: s["sample_index"])
        groups = [rs[i:i + n] for i in range(0, len(rs) - n + 1, n)]
        right = 0
        for g in groups:
            counts = Counter(s["extracted"] for s in g if s["extracted"] is not None)
            if counts:
                best = max(counts.values())
                winner = [s["extracted"] for s in g if counts.get(s["extracted"]) == best][0]
                right += any(s["correct"] for s in g if s["extracted"] == winner)
        accs.append(right / len(groups))
        toks.append(sum(sum(s["thinking_tokens"] for s in g) for g in groups) / len(groups))
    return sum(accs) / len(accs), sum(toks) / len(toks)


def test_an_evaluations_vote_rows_equal_the_vote_by_hand(tiny_model_dir, runs_root):
    r = rzoo.evaluate(tiny_model_dir, "arith", budgets=[2, 4], limit=6, answer_tokens=3, temperature=1.0, k=4,
                      votes=[1, 2, 4], progress=False)
    rows = r.results
    votes = rows[rows["knob"] == "votes"]
    assert sorted(votes["votes"]) == [1, 2, 4] and set(votes["budget"]) == {4}  # at the largest budget only
    samples = [s for s in r.samples.to_dict("records") if s["budget"] == 4 and s["knob"] == "budget"]
    for _, row in votes.iterrows():
        accuracy, tokens = _by_hand(samples, int(row["votes"]))
        assert row["accuracy"] == pytest.approx(accuracy)
        assert row["thinking_tokens_mean"] == pytest.approx(tokens)
    one = votes[votes["votes"] == 1].iloc[0]
    top = rows[(rows["knob"] == "budget") & (rows["budget"] == 4)].iloc[0]
    assert one["accuracy"] == pytest.approx(top["accuracy"])  # a vote of one is avg@k
    assert one["thinking_tokens_mean"] == pytest.approx(top["thinking_tokens_mean"])
    assert len(samples) == 6 * 4  # the votes generated nothing of their own
    on_disk = json.loads((r.path / "arith" / "results.json").read_text())
    assert [x["votes"] for x in on_disk["results"] if x["knob"] == "votes"] == [1, 2, 4]


def test_votes_need_as_many_samples():
    with pytest.raises(ConfigError, match="eval.k >= 8"):
        rzoo.evaluate("testbed", "runsum", budgets=[2], temperature=1.0, k=4, votes=[2, 8])

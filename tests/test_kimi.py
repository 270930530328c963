"""Kimi k1.5's length penalty (§2.3.3) against the paper's formula on scripted groups."""
from __future__ import annotations

import pytest

from rzoo.harness.generation.forcing import Completion
from rzoo.harness.generation import thinking as T
from rzoo.methods import kimi


def test_length_penalty_formula():
    lengths, correct = [10, 20, 30, 40], [True, True, False, False]
    lam = [0.5 - (n - 10) / 30 for n in lengths]  # 0.5, 0.1667, -0.1667, -0.5
    assert kimi.length_penalty(lengths, correct) == pytest.approx([lam[0], lam[1], min(0, lam[2]), min(0, lam[3])])
    # a wrong short answer earns no bonus: min(0, lambda)
    assert kimi.length_penalty([10, 40], [False, True]) == pytest.approx([0.0, -0.5])
    assert kimi.length_penalty([7, 7, 7], [True, False, True]) == [0.0, 0.0, 0.0]  # max = min


class _Task:
    def score(self, problem, answer_text):
        return 1.0 if answer_text == "right" else 0.0


def _c(n_tokens, answer):
    c = Completion(0, 0, thinking_end=T.CLOSED, answer_text=answer)
    c.completion_ids = list(range(n_tokens))
    return c


def test_reward_switches_on_after_warmup():
    group = [_c(10, "right"), _c(30, "right"), _c(20, "wrong")]
    before = kimi.kimi_reward(_Task(), None, group, step=3, length_penalty_weight=0.5, length_penalty_warmup=3)
    assert [r["total"] for r in before] == [1.0, 1.0, 0.0]
    after = kimi.kimi_reward(_Task(), None, group, step=4, length_penalty_weight=0.5, length_penalty_warmup=3)
    assert [r["total"] for r in after] == pytest.approx([1.25, 0.75, 0.0])  # lambdas 0.5, -0.5, 0 (wrong: min 0)
    assert [r["accuracy"] for r in after] == [1.0, 1.0, 0.0]

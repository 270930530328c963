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


def test_kimi_takes_no_token_level_aggregation():
    """Kimi's surrogate is a mean over completions: a token-mean aggregation would weight its micro-batches and
    its entropy term by tokens while the loss averages rows, so the combination is refused."""
    from rzoo.harness.config import ConfigError
    from rzoo.harness.jobs import resolve

    with pytest.raises(ConfigError, match="loss 'kimi' is a mean over completions; aggregation must be seq_mean"):
        resolve("train", ["method=kimi", "aggregation=token_mean"])
    assert resolve("train", ["method=kimi"]).config.aggregation == "seq_mean"
    assert resolve("train", ["method=grpo", "aggregation=token_mean"]).config.aggregation == "token_mean"  # GRPO's takes it


def test_kimi_forces_no_answer_and_marks_its_own_values():
    """Kimi has no forced answer: an over-budget rollout stays unclosed (no reward for the longest answer of
    its group); the values the paper does not give say so in their help."""
    from dataclasses import fields

    from rzoo.harness.jobs import resolve

    for preset in ("paper", "cpu"):
        assert resolve("train", ["method=kimi", f"preset={preset}"]).config.force_close is False
    helps = {f.name: f.metadata["help"] for f in fields(kimi.Config)}
    for name in ("max_thinking_tokens", "samples_per_prompt", "prompts_per_step", "lr", "tau", "length_penalty_weight"):
        assert "paper silent" in helps[name] or "ours" in helps[name], name

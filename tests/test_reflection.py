"""Reflection words (the R1 paper's "aha moment", measured): counted whole-word, case-insensitively, from the
bundled data file or a config field; budget forcing's injected Waits are not the model's; per evaluation sample
(samples.jsonl) and setting (results.json), and per RL step (train.jsonl, `tests/test_contract.py` runs the loop)."""
from __future__ import annotations

import pytest

from rzoo.harness.evaluation import metrics
from rzoo.harness.generation import forcing as G
from rzoo.harness.generation import reflection
from rzoo.harness.generation import thinking as T


def test_counts_whole_words_from_the_bundled_list():
    words = reflection.default_words()
    assert {"wait", "alternatively", "hmm", "check", "verify"} <= set(words)
    text = "Hmm, 3 + 4 = 7. Wait, let me check: but wait, alternatively verify. Waiting checks awaited re-check"
    # hmm, wait, check, but wait (one phrase), alternatively, verify, re-check; not waiting / checks / awaited
    assert reflection.count(text) == 7


def test_the_testbeds_wait_token_counts_even_glued_to_a_digit():
    # the testbed decodes its Wait token without a space: " 8 6 7 1 7Wait 0 7Wait 7"
    assert reflection.count(" 8 6 7 1 7Wait 0 7Wait 7") == 2
    assert reflection.count(" 8 6 7 1 7 0 7") == 0


def test_the_list_is_a_config_field():
    assert reflection.count("Hmm. Wait. Actually", ["actually"]) == 1
    with pytest.raises(ValueError, match="reflection_words is empty"):
        reflection._pattern(())


def test_injected_waits_are_not_the_models():
    c = G.Completion(0, 0, thinking_text="1 2 3Wait 4 5Wait 6", thinking_end=T.FORCED, waits=1)
    assert reflection.model_reflections(c) == 1  # two Waits, one appended by budget forcing
    assert reflection.model_reflections(c, ["hmm"]) == 0  # injected Waits only come off a count that has "wait"


def test_results_carry_the_mean_per_setting():
    rows = [{"problem_id": "a", "sample_index": 0, "correct": True, "extracted": "1", "thinking_tokens": 3,
             "answer_tokens": 1, "thinking_end": T.CLOSED, "answer_truncated": False, "waits_used": 0,
             "reflections": r} for r in (0, 2)]
    rows[1]["problem_id"] = "b"
    assert metrics.summarize(rows, 1)["reflections_mean"] == 1.0
    for r in rows:
        del r["reflections"]
    assert "reflections_mean" not in metrics.summarize(rows, 1)  # older sample files: no column

"""The testbed: splits, trace variants, and the effects everything else builds on, on the real testbed
models (built once per machine and cached: ~3 minutes the first time, then seconds).

- accuracy rises with the thinking budget: at the largest budget >= the smallest + 0.3, and
  non-decreasing across budgets within one problem's noise;
- "Wait" (s1's extension) raises accuracy on the model trained with early-stopping traces.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzoo.tasks import runsum
from rzoo.tasks.runsum import TASK


def test_splits_are_seeded_disjoint_and_large_enough():
    splits = {s: TASK.load(None, s)[0] for s in ("train", "validation", "test")}
    digits = {s: {p.meta["digits"] for p in ps} for s, ps in splits.items()}
    assert len(splits["test"]) == 500 and len(digits["test"]) == 500
    assert not digits["train"] & digits["test"] and not digits["train"] & digits["validation"]
    assert not digits["validation"] & digits["test"]
    assert [p.question for p in TASK.load(None, "test")[0]] == [p.question for p in splits["test"]]
    ns = [p.meta["n"] for p in splits["test"]]
    assert min(ns) == runsum.N_MIN and max(ns) == runsum.N_MAX
    for p in splits["test"][:50]:
        assert p.answer == str(sum(int(d) for d in p.meta["digits"]) % 10)


def test_trace_variants(tokenizer_testbed):
    from rzoo.harness.training import sft
    from rzoo.harness.generation import thinking as T

    fmt = T.ThinkingFormat.detect(tokenizer_testbed)
    steps = set(tokenizer_testbed.convert_tokens_to_ids([" " + d for d in "0123456789"]))
    by_variant = {v: TASK.examples(v).examples[:400] for v in runsum.VARIANTS}
    for ex in by_variant["minimal"]:
        sums = runsum.running_sums(ex.meta["digits"])
        assert ex.thinking == runsum.chain([str(s) for s in sums])
        ids, mask = sft.tokenize(tokenizer_testbed, ex, fmt, 128)
        # one token per slot and per step: step i sits a fixed distance after slot i
        first = next(i for i, m in enumerate(mask) if m)
        assert [t for t in ids[first:first + len(sums)]] and all(t in steps for t in ids[first:first + len(sums)])
        assert first - 1 == ids.index(tokenizer_testbed.convert_tokens_to_ids("<think>")) + 1
    assert all(len(e.thinking.split()) > e.meta["n"] for e in by_variant["redundant"])
    long = [e for e in by_variant["early_stop"] if e.meta["n"] > runsum.PATIENCE]
    stopped = [e for e in long if "Wait" not in e.thinking]
    assert stopped and all(len(e.thinking.split()) == runsum.PATIENCE for e in stopped)
    assert any("Wait" in e.thinking for e in long)
    assert all(e.thinking == "" for e in by_variant["no_chain"])


@pytest.fixture(scope="session")
def tokenizer_testbed():
    from rzoo.tasks.testbed_model import build_tokenizer

    return build_tokenizer()


def _eval(main, runs_root, model: str, extra: list[str]) -> dict:
    rc = main(["eval", f"model={model}", "task=runsum", "eval.limit=none", "eval.answer_tokens=6",
               "eval.batch_size=128", *extra, "--no-progress"])
    assert rc == 0
    run = sorted((runs_root / "eval").iterdir())[-1]
    return json.loads((run / "eval" / "runsum" / "results.json").read_text())


def test_accuracy_rises_with_the_thinking_budget(runs_root):
    from rzoo.harness.cli import main

    results = _eval(main, runs_root, "testbed", ["eval.budgets=[1,2,4,6,8,12]"])
    acc = [r["accuracy"] for r in results["results"]]
    n = results["n_problems"]
    assert n == 500
    assert acc[-1] >= acc[0] + 0.3, acc
    assert all(b >= a - 1 / n for a, b in zip(acc, acc[1:])), acc  # non-decreasing within one problem
    assert acc[-1] >= 0.95, acc


def test_wait_raises_accuracy_after_early_stopping_traces(runs_root):
    from rzoo.harness.cli import main
    from rzoo.tasks import testbed_model as tm

    record = json.loads((Path(tm.build("early_stop", progress=False).path) / "rzoo_source.json").read_text())
    assert record["converged"] is True, record  # else the post-"Wait" step was not learned on this host
    results = _eval(main, runs_root, "testbed:early_stop", ["eval.budgets=[4,16]", "eval.waits=[1]"])
    by = {(r["budget"], r["waits"]): r for r in results["results"]}
    capped, extended = by[(16, None)], by[(16, 1)]
    assert extended["knob"] == "waits" and capped["knob"] == "budget"
    assert extended["accuracy"] >= capped["accuracy"] + 0.2, (capped["accuracy"], extended["accuracy"])
    assert extended["thinking_tokens_mean"] > capped["thinking_tokens_mean"]
    assert extended["waits_mean"] > 0.5


def test_the_cache_key_follows_the_code_that_builds_the_model(tmp_path, monkeypatch):
    """A testbed model is cached under a key made of its recipe and the source of the modules that decide
    what a build produces, so a change to the SFT loop or the tokenizer code builds anew (no stale model)."""
    import sys

    from rzoo.tasks import testbed_model as tm

    for name in ("rzoo.harness.training.sft", "rzoo.harness.training.trainer", "rzoo.tasks.runsum",
                 "rzoo.tasks.testbed_model", "rzoo.harness.generation.thinking"):
        assert name in tm.BUILD_CODE
    probe = tmp_path / "tb_probe.py"
    probe.write_text("STEPS = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = tm.code_hash(("tb_probe",))
    probe.write_text("STEPS = 2\n")  # an edit to a builder's code
    tm.code_hash.cache_clear()
    assert tm.code_hash(("tb_probe",)) != before
    sys.modules.pop("tb_probe", None)
    keys = set()
    for code in ("a" * 64, "b" * 64):
        monkeypatch.setattr(tm, "code_hash", lambda modules=tm.BUILD_CODE, code=code: code)
        keys.add(tm.Recipe(variant="minimal").key())
    assert len(keys) == 2  # same recipe, other code: another cache folder
    monkeypatch.undo()
    tm.code_hash.cache_clear()
    assert tm.Recipe().key() == tm.Recipe().key() != tm.Recipe(seed=1).key()


def test_a_build_that_does_not_learn_its_chain_says_so(tmp_path, monkeypatch, capsys):
    """The stop rule may not fire within the schedule (a host's numerics decide: on an H200 GPU early_stop had not
    learned the post-"Wait" step by step 2,400 of 3,000); the build records it and warns each time it is used."""
    from rzoo.tasks import testbed_model as tm

    monkeypatch.setenv("RZOO_CACHE", str(tmp_path))
    model = tm.build("minimal", progress=False, max_steps=60, min_steps=50)  # one check, at step 50
    record = json.loads((Path(model.path) / "rzoo_source.json").read_text())
    assert record["converged"] is False and record["steps"] == 60, record
    assert record["validation_chain_accuracy"] < 0.99
    assert "testbed ended its 60-step schedule before its stop rule" in capsys.readouterr().err
    again = tm.build("minimal", progress=False, max_steps=60, min_steps=50)  # from the cache: warned again
    assert again.path == model.path and "before its stop rule" in capsys.readouterr().err
    assert tm.convergence(Path(model.path) / "train.jsonl", tm.Recipe(variant="no_chain"))["converged"] is None

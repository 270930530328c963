"""Latent recurrence's training (`methods/latent.py`): the chain supervision's loss against a hand-written
loop, its targets on the testbed's tokens, its curriculum, and `harness train+eval method=latent` end to end
on a few steps (a checkpoint plain transformers loads, the recurrence sweep in results and samples)."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from rzoo.harness.training import sft
from rzoo.harness.generation import thinking as T
from rzoo.methods import latent
from rzoo.tasks import runsum
from rzoo.tasks.runsum import TASK


@pytest.fixture(scope="module")
def tok():
    from rzoo.tasks.testbed_model import build_tokenizer

    return build_tokenizer()


def test_chain_cross_entropy_equals_a_loop():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11)
    targets = torch.full((3, 7), -100)
    targets[0, 1], targets[0, 2], targets[2, 6], targets[1, 0] = 4, 10, 0, 3
    total, count = latent.chain_cross_entropy(logits, targets)
    expected = 0.0
    for b in range(3):
        for t in range(7):
            if targets[b, t] != -100:  # position t's own output, not shifted
                p = math.exp(logits[b, t, targets[b, t]]) / sum(math.exp(x) for x in logits[b, t].tolist())
                expected -= math.log(p)
    assert count == 4 and total.item() == pytest.approx(expected, rel=1e-5)


def test_state_targets_are_the_running_sums_up_to_the_answer(tok):
    fmt = T.ThinkingFormat.detect(tok)
    examples = TASK.examples("no_chain").examples[:300]
    cued = 0
    for ex in examples:
        ids, _ = sft.tokenize(tok, ex, fmt, 64)
        targets = TASK.state_targets(tok, ids, ex)
        assert len(targets) == len(ids)
        digits = ex.meta["digits"]
        first = next(i for i, t in enumerate(targets) if t != -100)
        assert tok.decode(ids[first:first + len(digits)]) == "".join(" " + d for d in digits)
        sums = runsum.running_sums(digits)
        supervised = [t for t in targets if t != -100]
        assert [tok.decode([t]) for t in supervised[:len(digits)]] == [f" {s}" for s in sums]
        assert set(supervised[len(digits):]) == {tok.convert_tokens_to_ids(f" {sums[-1]}")}  # the final sum
        last = max(i for i, t in enumerate(targets) if t != -100)
        # the next position predicts the answer digit itself: the answer loss's, not the chain's
        assert tok.decode(ids[last + 1:last + 3]) == f"\\boxed{{{sums[-1]}"
        assert all(t == -100 for t in targets[last + 1:])
        cued += runsum.FORCED_CUE in ex.answer
    assert cued  # examples with the forced close's cue before the answer are covered too


def test_chain_curriculum_adds_positions_left_to_right():
    targets = [-100, 5, 6, 7, 8, 9, -100, -100]
    assert latent.chain_curriculum(targets, 1, 10) == [-100, 5, 6, -100, -100, -100, -100, -100]
    assert latent.chain_curriculum(targets, 5, 10) == [-100, 5, 6, 7, 8, -100, -100, -100]
    assert latent.chain_curriculum(targets, 10, 10) == targets == latent.chain_curriculum(targets, 500, 10)
    assert latent.chain_curriculum(targets, 1, 0) == targets


def test_train_eval_latent_end_to_end(runs_root):
    from transformers import AutoModelForCausalLM

    from rzoo.harness.cli import main

    rc = main(["train+eval", "method=latent", "preset=cpu", "max_steps=3", "batch_size=8", "micro_batch_size=4",
               "chain_curriculum=2", "limit=64", "eval.limit=6", "eval.recurrence=[1,3]", "eval.baseline=false",
               "--no-progress"])
    assert rc == 0
    (run,) = (runs_root / "latent").iterdir()
    log = pd.read_json(run / "train.jsonl", lines=True)
    assert list(log["step"]) == [1, 2, 3] and (log["chain_loss"] > 0).all()
    model = AutoModelForCausalLM.from_pretrained(run / "checkpoint")  # registered on import: no remote code
    assert model.config.model_type == "rzoo_recurrent"
    results = json.loads((run / "eval" / "runsum" / "results.json").read_text())["results"]
    assert [r["recurrence"] for r in results] == [1, 3]
    assert results[1]["flops_mean"] > results[0]["flops_mean"]  # more iterations, more FLOPs
    samples = pd.read_json(run / "eval" / "runsum" / "samples.jsonl", lines=True)
    assert sorted(samples["recurrence"].unique()) == [1, 3] and len(samples) == 12


def test_chain_weight_needs_a_task_with_intermediate_results(runs_root, tmp_path, capsys):
    from rzoo.harness.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"question": "1 2", "thinking": "3", "answer": "3"}) + "\n")
    rc = main(["train", "method=latent", "preset=cpu", "max_steps=1", "batch_size=1", f"train_data=jsonl:{data}",
               "--no-progress"])
    assert rc != 0
    assert "state_targets" in capsys.readouterr().err

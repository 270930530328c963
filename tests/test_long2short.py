"""Kimi's long2short (`methods/long2short.py`): the DPO pair rule on scripted samples, the DPO loss against the
formula and TRL's `DPOTrainer` on one batch, the merge as the exact weighted average, and the trained variants
resuming like every method (the rl variant is in the contract test, shortest and dpo here)."""
from __future__ import annotations

import json
import random

import pytest
import torch

from resume_check import assert_resumed_equals_uninterrupted
from rzoo.methods.long2short_data import Sample, dpo_pairs, shortest_correct


def _s(i, length, correct, text=None):
    return Sample("p", i, text or f"t{i}", "a", length, correct)


def test_dpo_pairs_follow_the_rule_on_scripted_samples():
    samples = [_s(0, 10, True), _s(1, 6, True), _s(2, 8, True), _s(3, 9, True), _s(4, 4, False), _s(5, 30, False),
               _s(6, 6, True, text="t1"), _s(7, 12, True)]
    chosen = shortest_correct(samples)
    assert chosen.index == 1  # the shortest correct; a wrong shorter one (4) does not count
    pairs = dpo_pairs(samples, 1.5)
    assert all(c is chosen for c, _ in pairs)
    # Kimi §2.4 takes the longer responses: the wrong one longer than 6 tokens (5; 4 is shorter: no negative) and
    # correct ones >= 1.5 x 6 = 9 tokens (0, 3, 7); 2 (8 tokens) is kept out, 6 repeats the chosen
    assert sorted(r.index for _, r in pairs) == [0, 3, 5, 7]
    # a wrong reply of the chosen's own length is not longer: no pair
    assert [r.index for _, r in dpo_pairs([_s(0, 6, True), _s(1, 6, False), _s(2, 7, False)])] == [2]
    assert dpo_pairs([_s(0, 5, False), _s(1, 7, False)]) == [] and shortest_correct([_s(0, 5, False)]) is None


@pytest.mark.parametrize("seed", range(20))
def test_every_pair_of_random_samples_keeps_the_rule(seed):
    rng = random.Random(seed)
    samples = [_s(i, rng.randint(1, 40), rng.random() < 0.5, text=f"t{rng.randint(0, 5)}") for i in range(8)]
    chosen = shortest_correct(samples)
    for c, r in dpo_pairs(samples, 1.5):
        assert c is chosen and c.correct and all(c.length <= s.length for s in samples if s.correct)
        assert r.length > c.length and ((not r.correct) or r.length >= 1.5 * c.length)
        assert (r.thinking, r.answer) != (c.thinking, c.answer)


def test_a_sample_becomes_the_completion_the_model_wrote():
    """The model's answer text starts with the separator the SFT format adds again: kept once (a doubled one
    taught the shortest variant a format of its own: accuracy 0.000 on the testbed)."""
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.generation.forcing import Completion
    from rzoo.methods.long2short_data import to_sample
    from rzoo.tasks.runsum import TASK

    problem = TASK.load(None, "test")[0][0]
    fmt = T.ThinkingFormat()
    c = Completion(0, 2, thinking_end=T.CLOSED, thinking_text=" 3 0", answer_text=f"\n\n\\boxed{{{problem.answer}}}")
    s = to_sample(TASK, problem, c, fmt)
    assert fmt.completion_text(s.thinking, s.answer) == f" 3 0\n{T.THINK_CLOSE}\n\n\\boxed{{{problem.answer}}}"
    assert s.correct and s.index == 2


def test_dpo_loss_is_the_formula():
    from rzoo.harness.training.dpo import dpo_loss

    pc, pr, rc, rr = (torch.tensor(v) for v in ([-3.0, -5.0], [-4.0, -2.0], [-3.5, -4.0], [-3.0, -2.5]))
    loss, stats = dpo_loss(pc, pr, rc, rr, beta=0.1)
    want = [-torch.nn.functional.logsigmoid(torch.tensor(0.1 * ((a - c) - (b - d)))) for a, b, c, d in
            zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist())]
    assert float(loss) == pytest.approx(float(sum(want) / 2), rel=1e-6)
    assert stats["preference_accuracy"] == 0.5  # pair 1: +0.5 - (-1) > 0; pair 2: -1 - 0.5 < 0


@pytest.mark.parametrize("nll_weight", [0.0, 0.5])
def test_dpo_loss_equals_trls_dpo_trainer_on_one_batch(tiny_model_dir, tmp_path, nll_weight):
    """TRL's DPOTrainer computes its loss on a batch it tokenised; ours, on the same ids and completion mask
    through the same two models (TRL's, as its trainer holds them: its set-up moves this tiny model's summed
    log-probs by up to 2e-3 against a fresh copy, so both sides read the same ones), gives the same number.
    With the NLL term (RPO): TRL's loss_type=[sigmoid, sft] weighted [1, alpha]."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from rzoo.harness.training.dpo import chosen_nll, dpo_loss, sequence_logps

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    policy = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():  # a policy that differs from its reference, so the loss is not log 2
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rows = [{"prompt": f"What is {i} + {i}?", "chosen": f" {2 * i}", "rejected": f" it is {2 * i + 1} I think"}
            for i in range(4)]
    losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, nll_weight]} if nll_weight else \
        {"loss_type": ["sigmoid"]}
    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, beta=0.1, use_cpu=True, report_to=[],
                     max_length=64, **losses)
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        trl_loss = float(trainer._compute_loss(trainer.model, batch, return_outputs=False))
        ids, attn, cmask = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
        pol = sequence_logps(trainer.model, ids, attn, cmask)
        rf = sequence_logps(trainer.ref_model, ids, attn, cmask)
        m = ids.shape[0] // 2  # TRL's batch: the chosen rows, then the rejected
        ours, _ = dpo_loss(pol[:m], pol[m:], rf[:m], rf[m:], beta=0.1)
        ours = ours + nll_weight * chosen_nll(pol[:m], int(cmask[:m].sum()))
    assert float(ours) == pytest.approx(trl_loss, rel=1e-5)
    assert abs(trl_loss - 0.6931) > 1e-3


def test_merge_is_the_exact_weighted_average(tiny_model_dir, tokenizer, runs_root, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from conftest import build_tiny_model
    from rzoo.harness.cli import main

    short = tmp_path / "short"
    build_tiny_model(tokenizer, seed=1).save_pretrained(short)
    tokenizer.save_pretrained(short)
    assert main(["train", "method=long2short", "variant=merge", f"model={tiny_model_dir}", f"short_model={short}",
                 "merge_weight=0.3", "--no-progress"]) == 0
    (run,) = (runs_root / "long2short").iterdir()
    merged = load_file(run / "checkpoint" / "model.safetensors")
    a = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    b = AutoModelForCausalLM.from_pretrained(short, dtype=torch.float32).state_dict()
    assert merged.keys() <= a.keys()
    for k, v in merged.items():
        assert torch.equal(v, 0.3 * a[k] + 0.7 * b[k]), k
    assert json.loads((run / "checkpoint" / "method.json").read_text())["merge_weight"] == 0.3


def test_merge_refuses_two_architectures(tiny_model_dir, tiny_recurrent_dir, runs_root, capsys):
    from rzoo.harness.cli import main

    assert main(["train", "method=long2short", "variant=merge", f"model={tiny_model_dir}",
                 f"short_model={tiny_recurrent_dir}", "--no-progress"]) != 0
    assert "merging needs one architecture" in capsys.readouterr().err


@pytest.mark.parametrize("variant", ["shortest", "dpo"])
def test_trained_variants_resume_like_every_method(variant, tiny_model_dir, runs_root, monkeypatch):
    """Interrupted after its first saved step and resumed: the same train.jsonl and weights (the contract test's
    check, for the variants its tiny declaration does not run: it runs rl). The random model's replies all run to
    the cap, so for dpo the samples' recorded lengths are spread by their index (their texts unchanged), as DPO's
    longer-only negatives need."""
    import dataclasses

    from rzoo import tasks
    from rzoo.harness.cli import main
    from rzoo.harness.training import trainer
    from rzoo.methods import long2short_data

    if variant == "dpo":
        real_sample = long2short_data.sample_long
        monkeypatch.setattr(long2short_data, "sample_long", lambda *a, **k: [
            dataclasses.replace(s, length=s.length + 2 * s.index) for s in real_sample(*a, **k)])

    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only")
    try:
        common = ["train", "method=long2short", f"variant={variant}", f"model={tiny_model_dir}", "train_task=varying",
                  "seed=3", "save_every=1", "sample_problems=4", "samples_per_prompt=4", "max_thinking_tokens=6",
                  "rl_max_thinking_tokens=4", "answer_tokens=4", "force_close=true", "batch_size=2",
                  "micro_batch_size=4", "max_length=256", "prompts_per_step=2", "generation_batch_size=8",
                  "lr=1e-2", "rl_lr=1e-2", "steps=2", "train_steps=2", "--no-progress"]
        assert main(common) == 0
        (full,) = (runs_root / "long2short").iterdir()
        real = trainer.Trainer.fit

        def crash_at_two(self):
            step_fn = self.train_step
            self.train_step = lambda step: (_ for _ in ()).throw(KeyboardInterrupt()) if step == 2 else step_fn(step)
            return real(self)

        monkeypatch.setattr(trainer.Trainer, "fit", crash_at_two)
        with pytest.raises(KeyboardInterrupt):
            main(common)
        monkeypatch.setattr(trainer.Trainer, "fit", real)
        (part,) = [p for p in (runs_root / "long2short").iterdir() if p != full]
        assert main(["train", f"resume={part}", "--no-progress"]) == 0
    finally:
        tasks.REGISTRY.remove("varying")
    assert_resumed_equals_uninterrupted(full, part)
    if variant == "shortest":  # the samples were drawn once and read back on resume
        assert (part / "long2short" / "samples.jsonl").read_text() == (full / "long2short" / "samples.jsonl").read_text()


def test_dpo_adds_rpos_nll_per_chosen_token_whatever_the_micro_batches(tiny_model_dir, runs_root, monkeypatch):
    """At step 1 the policy is its reference, so DPO's term is log 2 and the logged loss is log 2 + w * NLL; the
    NLL is the mean over the step's chosen tokens, the same with one micro-batch or one pair per micro-batch.
    The random model's replies all run to the cap (one length), so the longer-only negatives (§2.4) would find
    no pair: the real samples' recorded lengths are spread by their index (their texts are unchanged)."""
    import dataclasses
    import math

    from rzoo import tasks
    from rzoo.harness.cli import main
    from rzoo.methods import long2short_data

    real = long2short_data.sample_long
    monkeypatch.setattr(long2short_data, "sample_long", lambda *a, **k: [
        dataclasses.replace(s, length=s.length + 2 * s.index) for s in real(*a, **k)])

    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only")
    try:
        rows = {}
        for micro in (4, 1):
            assert main(["train", "method=long2short", "variant=dpo", f"model={tiny_model_dir}", "train_task=varying",
                         "seed=3", "sample_problems=8", "samples_per_prompt=4", "max_thinking_tokens=6",
                         "answer_tokens=4", "force_close=true", "batch_size=4", f"micro_batch_size={micro}",
                         "max_length=256", "generation_batch_size=8", "dpo_lr=1e-2", "dpo_nll_weight=0.5",
                         "train_steps=1", "--no-progress"]) == 0
            run = sorted((runs_root / "long2short").iterdir())[-1]
            rows[micro] = json.loads((run / "train.jsonl").read_text().splitlines()[0])
    finally:
        tasks.REGISTRY.remove("varying")
    for row in rows.values():
        assert row["chosen_nll"] > 0
        assert row["loss"] == pytest.approx(math.log(2) + 0.5 * row["chosen_nll"], rel=1e-5)
    assert rows[1]["chosen_nll"] == pytest.approx(rows[4]["chosen_nll"], rel=1e-5)

"""The SFT loss: completion-only cross-entropy, against a hand-written loop and against TRL's SFTTrainer
on the same batch (TRL tokenises our prompt/completion pair itself; the ids must agree too)."""
from __future__ import annotations

import math

import pytest
import torch

from rzoo.harness.training import sft
from rzoo.harness.generation import thinking as T
from rzoo.harness.data import Example
from rzoo.tasks.testbed_model import Recipe, build_tokenizer, build_untrained


@pytest.fixture(scope="module")
def testbed_tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def model(testbed_tok):
    return build_untrained(testbed_tok, Recipe(hidden_size=32, intermediate_size=64, seed=1)).eval()


def _examples():
    return [Example(str(i), [{"role": "user", "content": f"{i} 4 {i} _ _"}], " ".join(str(i + j) for j in range(i + 1)),
                    f"\\boxed{{{i}}}") for i in range(4)]


def _hand_written(model, rows):
    """-(1/|C|) sum over completion tokens of log p(x_t | x_<t), one token at a time."""
    total, count = 0.0, 0
    for ids, mask in rows:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        for t in range(1, len(ids)):
            if mask[t]:
                logp = torch.log_softmax(logits[t - 1].double(), -1)[ids[t]].item()
                total -= logp
                count += 1
    return total / count


def test_completion_only_loss_equals_hand_written(model, testbed_tok):
    fmt = T.ThinkingFormat.detect(testbed_tok)
    rows = [sft.tokenize(testbed_tok, ex, fmt, 128) for ex in _examples()]
    ids, attn, cmask = sft.collate(rows, testbed_tok.pad_token_id)
    with torch.no_grad():
        ours = sft.completion_cross_entropy(model(input_ids=ids, attention_mask=attn).logits, ids, cmask)
    assert ours.item() == pytest.approx(_hand_written(model, rows), rel=1e-5)
    # the prompt is exactly what generation sees, and the completion ends with the end-of-turn token
    first_ids, first_mask = rows[0]
    prompt = testbed_tok.decode([t for t, m in zip(first_ids, first_mask) if not m])
    assert prompt == T.build_prompt(testbed_tok, _examples()[0].messages)
    assert first_ids[-1] == testbed_tok.eos_token_id and first_mask[-1] == 1
    # sum reduction and micro-batching: the weighted micro-batch sums give the batch mean
    with torch.no_grad():
        parts = [sft.completion_cross_entropy(model(input_ids=ids[i:i + 1], attention_mask=attn[i:i + 1]).logits,
                                              ids[i:i + 1], cmask[i:i + 1], reduction="sum") for i in range(len(rows))]
    n = int(cmask[:, 1:].sum())
    assert (sum(parts) / n).item() == pytest.approx(ours.item(), rel=1e-5)


def test_completion_only_loss_equals_trl(model, testbed_tok, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    fmt = T.ThinkingFormat.detect(testbed_tok)
    exs = _examples()
    data = Dataset.from_list([{"prompt": T.build_prompt(testbed_tok, e.messages, fmt),
                               "completion": fmt.completion_text(e.thinking, e.answer)} for e in exs])
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=len(exs), report_to=[], use_cpu=True,
                     bf16=False, max_length=128, completion_only_loss=True, shuffle_dataset=False, seed=0)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=testbed_tok)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        theirs = trainer.compute_loss(model, batch)
    rows = [sft.tokenize(testbed_tok, ex, fmt, 128) for ex in exs]
    trl_rows = sorted((tuple(x[m.bool()].tolist()) for x, m in zip(batch["input_ids"], batch["attention_mask"])))
    assert trl_rows == sorted(tuple(ids) for ids, _ in rows)  # TRL tokenised the pair to our ids
    ids, attn, cmask = sft.collate(rows, testbed_tok.pad_token_id)
    with torch.no_grad():
        ours = sft.completion_cross_entropy(model(input_ids=ids, attention_mask=attn).logits, ids, cmask)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    assert math.isfinite(ours.item())


def test_lr_schedule_warms_up_then_decays():
    from rzoo.harness.training.trainer import lr_lambda

    f = lr_lambda(100, 0.05, "cosine")
    assert [round(f(s), 3) for s in (0, 4)] == [0.2, 1.0]  # 5 warm-up steps
    assert f(5) == pytest.approx(1.0) and f(99) < 0.01 and f(52) == pytest.approx(0.5, abs=0.02)
    assert lr_lambda(10, 0.0, "constant")(7) == 1.0


def test_sft_data_sources(tmp_path):
    """runsum traces, a user's JSONL, and s1K-1.1 from the hub (a clear error where the hub is unreachable)."""
    from rzoo import tasks
    from rzoo.tasks.base import TaskError

    data = tasks.load_examples("runsum:early_stop")
    assert len(data.examples) == 20000 and data.source.sha256
    path = tmp_path / "t.jsonl"
    path.write_text('{"question": "q", "thinking": "t", "answer": "a"}\n')
    assert tasks.load_examples(f"jsonl:{path}").examples[0].thinking == "t"
    with pytest.raises(TaskError, match="needs the hub"):
        tasks.load_examples("simplescaling/s1K-1.1")
    with pytest.raises(TaskError, match="variants"):
        tasks.load_examples("runsum:nope")


def test_example_mean_weighs_every_example_the_same(model, testbed_tok):
    """`aggregation=seq_mean` (s1: one example per device, so each example weighed the same): the loss is the
    mean over examples of each example's mean -log p, written out by hand here; split into micro-batches, the
    micro-batches' totals over the batch's units give the same number. token_mean stays the batch's token mean."""
    from rzoo.harness.training.losses import AGGREGATIONS

    fmt = T.ThinkingFormat.detect(testbed_tok)
    rows = [sft.tokenize(testbed_tok, ex, fmt, 128) for ex in _examples()]  # 4 examples, 1-4 chain steps
    by_example = [_hand_written(model, [row]) for row in rows]
    ids, attn, cmask = sft.collate(rows, testbed_tok.pad_token_id)
    with torch.no_grad():
        nll, mask = sft.completion_nll(model(input_ids=ids, attention_mask=attn).logits, ids, cmask)
    seq, tok = AGGREGATIONS.get("seq_mean"), AGGREGATIONS.get("token_mean")
    assert (seq.total(nll, mask) / len(rows)).item() == pytest.approx(sum(by_example) / len(rows), rel=1e-5)
    assert (tok.total(nll, mask) / mask.sum()).item() == pytest.approx(_hand_written(model, rows), rel=1e-5)
    assert sum(by_example) / len(rows) != pytest.approx(_hand_written(model, rows), rel=1e-6)  # they differ here
    micro = sum(seq.total(nll[i:i + 2], mask[i:i + 2]) for i in (0, 2)) / sum(seq.units(mask[i:i + 1]) for i in range(4))
    assert micro.item() == pytest.approx(sum(by_example) / len(rows), rel=1e-5)


def test_s1_paper_preset_weighs_examples():
    from rzoo.harness.jobs import resolve

    assert resolve("train", ["method=s1", "preset=paper"]).config.aggregation == "seq_mean"
    assert resolve("train", ["method=s1"]).config.aggregation == "seq_mean"  # the paper default, kept by the cpu preset

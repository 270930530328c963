"""End to end on the tiny fixture model: `harness train+eval` -> 2 GRPO steps -> a checkpoint that
plain transformers loads, with changed parameters -> eval results and samples that pandas reads."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from rzoo import tasks
from rzoo.harness.cli import main


@pytest.fixture()
def varying_task():
    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only: reward varies on a random model")
    yield "varying"
    tasks.REGISTRY.remove("varying")


def test_train_eval_end_to_end(tiny_model_dir, runs_root, varying_task, capsys):
    from transformers import AutoModelForCausalLM

    rc = main(["train+eval", "method=grpo", f"model={tiny_model_dir}", f"train_task={varying_task}", "steps=2",
               "prompts_per_step=2", "samples_per_prompt=4", "max_thinking_tokens=8", "answer_tokens=6",
               "temperature=1.0", "lr=1e-2", "task=arith", "eval.limit=3", "eval.budgets=[4,8]",
               "eval.baseline=false", "--no-progress"])
    assert rc == 0
    (run,) = (runs_root / "grpo").iterdir()
    assert json.loads((run / "status.json").read_text())["state"] == "done"
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["steps"] == 2 and config["eval"]["budgets"] == [4, 8]

    log = pd.read_json(run / "train.jsonl", lines=True)
    assert list(log["step"]) == [1, 2]
    for col in ("loss", "reward_mean", "reward_std", "kl", "completion_tokens_mean", "seconds"):
        assert col in log.columns
    assert log["reward_std"].max() > 0  # the varying reward gave a gradient

    ckpt = run / "checkpoint"
    trained = AutoModelForCausalLM.from_pretrained(ckpt)  # plain transformers, no project code
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    changed = [n for (n, a), (_, b) in zip(trained.named_parameters(), base.named_parameters())
               if not torch.equal(a, b)]
    assert changed, "training did not change any parameter"
    meta = json.loads((ckpt / "method.json").read_text())
    assert meta["method"] == "grpo" and meta["base_model"]["source"].startswith("local:")
    assert meta["config"]["config"]["lr"] == 1e-2

    results = json.loads((run / "eval" / "arith" / "results.json").read_text())
    assert [r["budget"] for r in results["results"]] == [4, 8]
    for r in results["results"]:
        assert r["n_problems"] == 3 and 0.0 <= r["accuracy"] <= 1.0
        assert r["thinking_tokens_mean"] <= r["budget"]
    assert results["data"]["sha256"] and results["seed"] == 0
    samples = pd.read_json(run / "eval" / "arith" / "samples.jsonl", lines=True)
    assert len(samples) == 3 * 2
    assert set(samples["thinking_end"]) <= {"closed", "forced", "incomplete"}
    assert (samples["thinking_tokens"] <= samples["budget"]).all()
    assert "question" not in samples.columns
    assert (samples["flops"] > 0).all() and all("flops_mean" in r for r in results["results"])
    out = capsys.readouterr().out
    assert "[config]" in out and "after training" in out


def test_eval_only_on_real_math500_subset(tiny_model_dir, runs_root):
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("needs ../shared/data")
    rc = main(["eval", f"model={tiny_model_dir}", "task=math500", "eval.limit=2", "eval.budgets=[4]",
               "eval.answer_tokens=4", "--no-progress"])
    assert rc == 0
    (run,) = (runs_root / "eval").iterdir()
    results = json.loads((run / "eval" / "math500" / "results.json").read_text())
    assert results["data"]["kind"] == "local" and results["n_problems_total"] == 500
    assert results["results"][0]["n_problems"] == 2


def test_failed_training_marks_run_failed(tiny_model_dir, runs_root, monkeypatch):
    from rzoo.harness.training import rl

    def boom(*a, **k):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(rl, "train", boom)  # the loop grpo's declared train calls
    with pytest.raises(RuntimeError):
        main(["train", "method=grpo", f"model={tiny_model_dir}", "--no-progress"])
    (run,) = (runs_root / "grpo").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "simulated crash" in status["error"]
    assert not (run / "checkpoint").exists()


def test_sft_refuses_a_max_length_that_keeps_no_completion(tiny_model_dir, runs_root, tmp_path, capsys):
    """A max_length shorter than every prompt would train on nothing with loss 0 at every step: refuse it."""
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"question": "What is 2 + 2? " * 8, "thinking": "2 + 2 = 4", "answer": "4"}) + "\n")
    args = ["train", "method=s1", f"model={tiny_model_dir}", f"train_data=jsonl:{data}", "max_steps=1",
            "batch_size=1", "micro_batch_size=1", "dtype=float32", "--no-progress"]
    assert main(args + ["max_length=8"]) == 2
    assert "max_length=8 leaves no completion token" in capsys.readouterr().err


def test_resume_continues_exactly(tiny_model_dir, runs_root, varying_task, tmp_path):
    """3 uninterrupted steps == 2 steps, then `resume=` to 3: same log, same weights."""
    from safetensors.torch import load_file

    common = ["method=grpo", f"model={tiny_model_dir}", f"train_task={varying_task}", "prompts_per_step=2",
              "samples_per_prompt=4", "max_thinking_tokens=6", "answer_tokens=4", "temperature=1.0", "lr=1e-2",
              "minibatches=2", "ref_refresh_updates=3", "--no-progress"]
    assert main(["train", *common, "steps=3"]) == 0
    (full,) = (runs_root / "grpo").iterdir()
    assert main(["train", *common, "steps=2"]) == 0
    (part,) = [p for p in (runs_root / "grpo").iterdir() if p != full]
    assert json.loads((part / "checkpoint" / "method.json").read_text())["step"] == 2
    assert main(["train", f"resume={part}", "steps=3", "--no-progress"]) == 0
    a = pd.read_json(full / "train.jsonl", lines=True)
    b = pd.read_json(part / "train.jsonl", lines=True)
    assert list(b["step"]) == [1, 2, 3]
    for col in ("loss", "reward_mean", "kl", "completion_tokens_mean"):
        assert a[col].tolist() == pytest.approx(b[col].tolist(), rel=1e-5, abs=1e-7)
    wa, wb = load_file(full / "checkpoint" / "model.safetensors"), load_file(part / "checkpoint" / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert json.loads((part / "status.json").read_text())["state"] == "done"



def test_training_rollouts_keep_the_plain_head(tiny_model_dir, runs_root, varying_task, monkeypatch):
    """head_matmul picks the head's orientation by timing and the two orientations round differently: a
    timing-dependent choice in training made a run and its resumed copy diverge. Rollouts must not use it."""
    from rzoo.harness.engines import head_matmul

    calls = []
    monkeypatch.setattr(head_matmul, "install", lambda model, **kw: calls.append(model))
    assert main(["train", "method=grpo", f"model={tiny_model_dir}", f"train_task={varying_task}", "steps=1",
                 "prompts_per_step=2", "samples_per_prompt=2", "max_thinking_tokens=4", "answer_tokens=2",
                 "--no-progress"]) == 0
    assert calls == []


def test_resume_keeps_the_recorded_dtype(tiny_model_dir, runs_root, varying_task, monkeypatch, capsys):
    """`dtype=auto` is decided by timing; a resumed run keeps what its checkpoint recorded, even where the
    timing would now say otherwise."""
    from rzoo.harness.models import precision

    common = ["method=grpo", f"model={tiny_model_dir}", f"train_task={varying_task}", "prompts_per_step=2",
              "samples_per_prompt=2", "max_thinking_tokens=4", "answer_tokens=2", "--no-progress"]
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 0.5)
    assert main(["train", *common, "steps=1"]) == 0
    (run,) = (runs_root / "grpo").iterdir()
    assert json.loads((run / "checkpoint" / "method.json").read_text())["dtype"] == "float32"
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 5.0)  # `auto` would now pick bf16
    assert precision.resolve("auto") == "bfloat16"
    capsys.readouterr()
    assert main(["train", f"resume={run}", "steps=2", "--no-progress"]) == 0
    assert "training computes in float32 (dtype=auto, as the run being resumed)" in capsys.readouterr().out
    meta = json.loads((run / "checkpoint" / "method.json").read_text())
    assert meta["step"] == 2 and meta["dtype"] == "float32"

def test_resume_rejects_non_runs(runs_root, tmp_path):
    assert main(["train", f"resume={tmp_path}"]) == 2


def test_eval_k_samples_on_real_benchmarks(tiny_model_dir, runs_root):
    """`harness eval ... task=aime24,gpqa_diamond eval.k=2` offline: pass@k, maj@k, CI, per budget."""
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("needs ../shared/data")
    rc = main(["eval", f"model={tiny_model_dir}", "task=aime24,gpqa_diamond", "eval.k=2", "eval.temperature=1.0",
               "eval.limit=3", "eval.budgets=[4,8]", "eval.answer_tokens=4", "--no-progress"])
    assert rc == 0
    (run,) = (runs_root / "eval").iterdir()
    for task in ("aime24", "gpqa_diamond"):
        results = json.loads((run / "eval" / task / "results.json").read_text())
        for r in results["results"]:
            assert {"pass@1", "pass@2", "maj@2", "accuracy_ci95", "accuracy_std", "thinking_tokens_p90",
                    "grader_disagreements", "flops_mean"} <= set(r)
            assert r["n_samples"] == 6 and r["pass@1"] == pytest.approx(r["accuracy"])
        samples = pd.read_json(run / "eval" / task / "samples.jsonl", lines=True)
        assert sorted(samples["sample_index"].unique()) == [0, 1]
    gpqa = pd.read_json(run / "eval" / "gpqa_diamond" / "samples.jsonl", lines=True)
    assert gpqa["problem_id"].str.startswith("rec").all() and set(gpqa["gold"]) <= set("ABCD")

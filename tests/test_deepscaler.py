"""DeepScaleR's stages (on the core's `training/stages.py`): one run, each stage continuing the previous stage's
trainer from its final weights, with its KL reference rebuilt from them (hash checks), every stage's checkpoint,
log and config kept; the stages equal one uninterrupted trainer; a run killed in the middle of stage 2 resumes to
the same result; each stage's checkpoint is evaluated as a point of one line."""
from __future__ import annotations

import json

import pytest

from rzoo import tasks
from rzoo.harness.training import trainer
from rzoo.harness.cli import main


@pytest.fixture()
def varying_task():
    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only: reward varies on a random model")
    yield "varying"
    tasks.REGISTRY.remove("varying")


def _args(model, task):
    return ["method=deepscaler", f"model={model}", f"train_task={task}", "stage_steps=[2,2,1]", "steps=5",
            "stage_max_tokens=[3,5,7]", "stage_samples=[2,4,4]", "prompts_per_step=2", "answer_tokens=3",
            "lr=1e-2", "save_every=1", "generation_batch_size=16", "seed=1"]


def test_stages_chain_their_weights_and_resume_mid_stage(tiny_model_dir, runs_root, varying_task, monkeypatch):
    assert main(["train", *_args(tiny_model_dir, varying_task), "--no-progress"]) == 0
    (full,) = (runs_root / "deepscaler").iterdir()
    folders = [full / "stages" / f"stage{k}-context{t}" for k, t in ((1, 3), (2, 5), (3, 7))]
    starts = [json.loads((f / "start.json").read_text()) for f in folders]
    ends = [json.loads((f / "end.json").read_text()) for f in folders]
    assert [e["steps"] for e in ends] == [[1, 2], [3, 4], [5, 5]]
    for k in range(2):
        assert starts[k + 1]["weights_sha256"] == ends[k]["weights_sha256"]  # stage k+1 starts from stage k
        assert starts[k + 1]["reference_weights_sha256"] == ends[k]["weights_sha256"]  # and measures its KL against it
    assert len({e["weights_sha256"] for e in ends}) == 3  # and each stage trained
    from rzoo.harness import models
    from rzoo.harness.runstore import weights_sha256

    base = weights_sha256(models.load(models.resolve(str(tiny_model_dir)), dtype="float32", device="cpu")[0])
    assert starts[0]["reference_weights_sha256"] == starts[0]["weights_sha256"] == base
    for k in (1, 2):  # each stage's own checkpoint holds the weights it ended with
        saved = weights_sha256(models.load(models.resolve(str(folders[k - 1] / "checkpoint")), dtype="float32",
                                           device="cpu")[0])
        assert saved == ends[k - 1]["weights_sha256"]
    merged = [json.loads(x) for x in (full / "stages" / "train.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["stage_step"], r["step"]) for r in merged] == [(1, 1, 1), (1, 2, 2), (2, 1, 3), (2, 2, 4),
                                                                          (3, 1, 5)]
    assert [r["max_thinking_tokens"] for r in merged] == [3, 3, 5, 5, 7]
    run_log = [json.loads(x) for x in (full / "train.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in run_log] == [1, 1, 2, 2, 3]  # the run's log: every step, as one trainer writes it
    # killed in the middle of stage 2, resumed: the same log and final weights
    real = trainer.Trainer.fit

    def crash_at_four(self):
        step_fn = self.train_step
        self.train_step = lambda step: (_ for _ in ()).throw(KeyboardInterrupt()) if step == 4 else step_fn(step)
        return real(self)

    monkeypatch.setattr(trainer.Trainer, "fit", crash_at_four)
    with pytest.raises(KeyboardInterrupt):
        main(["train", *_args(tiny_model_dir, varying_task), "--no-progress"])
    monkeypatch.setattr(trainer.Trainer, "fit", real)
    (part,) = [p for p in (runs_root / "deepscaler").iterdir() if p != full]
    assert main(["train", f"resume={part}", "--no-progress"]) == 0
    a = [json.loads(x) for x in (full / "train.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (part / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5]
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5, abs=1e-7) and rb["stage"] == ra["stage"]
    final = lambda run: json.loads((run / "stages" / "stage3-context7" / "end.json").read_text())["weights_sha256"]  # noqa
    assert final(part) == final(full)


def test_the_stages_equal_one_uninterrupted_trainer(tiny_model_dir, runs_root, varying_task, monkeypatch):
    """The same schedule in one `rl.train` (its hooks switch length, group size, optimiser and reference by step)
    and the staged run: the same log and final weights (each stage continues the trainer; nothing restarts)."""
    import dataclasses

    from safetensors.torch import load_file

    from rzoo import methods
    from rzoo.methods import deepscaler

    one_trainer = dataclasses.replace(deepscaler.METHOD, train=lambda cfg, ctx: deepscaler.rl.train(
        cfg, ctx, schedule=deepscaler.Stages(cfg)))
    real_get = methods.get
    monkeypatch.setattr(methods, "get", lambda name: one_trainer if name == "deepscaler" else real_get(name))
    assert main(["train", *_args(tiny_model_dir, varying_task), "--no-progress"]) == 0
    monkeypatch.setattr(methods, "get", real_get)
    assert main(["train", *_args(tiny_model_dir, varying_task), "--no-progress"]) == 0
    single, staged = sorted((runs_root / "deepscaler").iterdir())
    assert not (single / "stages").exists() and (staged / "stages").is_dir()
    a = [json.loads(x) for x in (single / "train.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (staged / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5]
    for ra, rb in zip(a, b, strict=True):
        for key, value in ra.items():
            if key not in ("seconds", "generation_seconds") and isinstance(value, (int, float)):
                assert rb[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    wa, wb = (load_file(run / "checkpoint" / "model.safetensors") for run in (single, staged))
    assert all((wa[n] - wb[n]).abs().max() < 1e-5 for n in wa)


def test_stage_checkpoints_are_evaluated_as_one_line(tiny_model_dir, runs_root, varying_task):
    rc = main(["train+eval", *_args(tiny_model_dir, varying_task), "task=arith", "eval.limit=2",
               "eval.budgets=[3,7]", "eval.baseline=false", "--no-progress"])
    assert rc == 0
    (run,) = (runs_root / "deepscaler").iterdir()
    results = json.loads((run / "eval_stages" / "arith" / "results.json").read_text())
    assert [(r["stage"], r["budget"], r["knob"]) for r in results["results"]] == [(1, 7, "stage"), (2, 7, "stage"),
                                                                                  (3, 7, "stage")]
    from rzoo.leaderboard.collect import collect

    points = collect(runs_root)
    stages = points[points["role"] == "stages"]
    assert len(stages) == 3 and stages["curve"].nunique() == 1


def test_two_updates_per_rollout_as_rllm_in_both_presets():
    """rllm's scripts make two optimiser updates per rollout (mini-batch 64 of 128), so the 0.2 clip can act; the
    default and both presets keep that (one update per rollout would make the ratio 1 and the clip a no-op)."""
    from rzoo.harness.jobs import resolve

    for extra in ([], ["preset=paper"], ["preset=cpu"]):
        cfg = resolve("train", ["method=deepscaler", *extra]).config
        assert cfg.minibatches == 2, (extra, cfg.minibatches)
        assert cfg.prompts_per_step * cfg.samples_per_prompt >= 2 * cfg.minibatches

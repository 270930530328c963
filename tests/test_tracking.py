"""Experiment tracking through accelerate's trackers (`report_to=`): a run with report_to=tensorboard leaves
event files in its folder that TensorBoard's own reader loads with the step-wise loss and reward, the resolved
config as hyper-parameters, and the evaluation's numbers; an unknown tracker, or one whose package is missing,
is a one-line error naming it."""
from __future__ import annotations

import pytest

from rzoo import tasks
from rzoo.harness.cli import main
from rzoo.harness.config import ConfigError
from rzoo.harness.jobs import resolve
from rzoo.harness.training import tracking


@pytest.fixture()
def varying_task():
    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only: reward varies on a random model")
    yield "varying"
    tasks.REGISTRY.remove("varying")


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc, {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_run_leaves_event_files_with_loss_and_reward(tiny_model_dir, runs_root, varying_task):
    import json

    assert main(["train", "method=grpo", f"model={tiny_model_dir}", f"train_task={varying_task}", "steps=3",
                 "prompts_per_step=2", "samples_per_prompt=4", "max_thinking_tokens=6", "answer_tokens=4",
                 "lr=1e-2", "force_close=true", "save_every=0", "report_to=tensorboard", "--no-progress"]) == 0
    (run,) = (runs_root / "grpo").iterdir()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    _, scalars = _scalars(run / "tensorboard")
    log = [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]
    for key in ("loss", "reward_mean", "reflection_words_mean"):
        assert [s for s, _ in scalars[f"train/{key}"]] == [1, 2, 3]
        assert [v for _, v in scalars[f"train/{key}"]] == pytest.approx([r[key] for r in log], rel=1e-6)
    # the resolved config as hyper-parameters (TensorBoard's hparams plugin + accelerate's yaml beside it)
    hparams = list((run / "tensorboard").rglob("hparams.yml"))
    assert hparams and {"steps: 3", "train_task: varying", "report_to: tensorboard"} <= set(hparams[0].read_text().splitlines())

    # the evaluation's numbers, at the run's last step
    summary = {"runsum": [{"budget": 8, "waits": None, "accuracy": 0.5, "thinking_tokens_mean": 6.0,
                           "truncation_rate": 0.0, "reflections_mean": 0.25}]}
    tracking.log_evaluation("tensorboard", run, summary, step=3)
    _, scalars = _scalars(run / "tensorboard")
    (tag,) = [t for t in scalars if t.startswith("eval/runsum/") and t.endswith("/accuracy")]
    assert scalars[tag] == [(3, 0.5)]


def test_report_to_errors_are_one_line_naming_the_problem(monkeypatch):
    with pytest.raises(ConfigError, match="report_to must be one of none, tensorboard, wandb, mlflow, trackio"):
        resolve("train", ["method=grpo", "report_to=neptune"])
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name))
    with pytest.raises(ConfigError, match=r"^report_to=wandb needs the wandb package: pip install wandb$"):
        resolve("train", ["method=grpo", "report_to=wandb"])
    assert resolve("train", ["method=grpo"]).config.report_to == "none"


def test_wandb_logs_offline_into_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb")  # not a dependency: checked where it is installed
    from dataclasses import dataclass

    from accelerate import PartialState

    PartialState()
    monkeypatch.delenv("WANDB_MODE", raising=False)

    @dataclass
    class Cfg:
        lr: float = 0.1
        reflection_words: list | None = None

    tracker = tracking.Tracker("wandb", tmp_path, Cfg())
    for step in (1, 2):
        tracker.log({"loss": 1.0 / step, "reward_mean": 0.1 * step, "example": "text is skipped"}, step)
    tracker.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert runs and list(runs[0].glob("*.wandb"))  # offline: nothing left the machine; `wandb sync` uploads it


def test_train_and_eval_log_the_evaluation_beside_the_training(tiny_model_dir, runs_root, varying_task):
    assert main(["train+eval", "method=grpo", f"model={tiny_model_dir}", f"train_task={varying_task}", "steps=1",
                 "prompts_per_step=2", "samples_per_prompt=2", "max_thinking_tokens=4", "answer_tokens=2",
                 "save_every=0", "report_to=tensorboard", f"eval.task={varying_task}", "eval.limit=2",
                 "eval.budgets=[2,4]", "eval.baseline=false", "--no-progress"]) == 0
    (run,) = (runs_root / "grpo").iterdir()
    _, scalars = _scalars(run / "tensorboard")
    assert scalars["train/loss"][0][0] == 1
    evaluated = {t for t in scalars if t.startswith(f"eval/{varying_task}/") and t.endswith("/accuracy")}
    assert len(evaluated) == 2 and all(scalars[t][0][0] == 1 for t in evaluated)  # both budgets, at the last step

"""The contract every registered method keeps (parametrised over the method registry):

- `harness train method=X --help` works and lists its keys;
- the cpu and paper presets validate;
- two training steps on a tiny fixture model write a checkpoint that plain transformers loads;
- a run interrupted after its first saved step and resumed with `resume=` ends exactly like an
  uninterrupted one (same train.jsonl, same weights).

A method that trains the recurrent-depth architecture (`latent`) runs on a tiny recurrent model, whose
depth is drawn from the RNG inside each training forward, so its resume also checks the RNG state.
"""
from __future__ import annotations

import json

import pytest

from rzoo import methods, tasks
from rzoo.harness.training import trainer
from rzoo.harness.jobs import resolve
from rzoo.harness.cli import main
from rzoo.harness.training.config import RLConfig, SFTConfig
from resume_check import assert_resumed_equals_uninterrupted


@pytest.fixture()
def varying_task():
    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only: reward varies on a random model")
    yield "varying"
    tasks.REGISTRY.remove("varying")


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sft") / "traces.jsonl"
    rows = [{"id": i, "question": f"What is {i} + {i}?", "thinking": f"{i} plus {i} is {2 * i}", "answer":
             f"\\boxed{{{2 * i}}}"} for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_overrides(name: str, model_dir, varying: str, sft_file, recurrent_dir=None) -> list[str]:
    """Overrides that make one optimiser step cheap on the fixture model, by the loop the method uses."""
    cfg = methods.get(name).Config()
    recurrent = cfg.model == "testbed_recurrent" and recurrent_dir is not None  # it trains the recurrent architecture
    out = [f"model={recurrent_dir if recurrent else model_dir}", "seed=3", "save_every=1"]
    if isinstance(cfg, RLConfig):
        out += [f"train_task={varying}", "prompts_per_step=2", "samples_per_prompt=4", "max_thinking_tokens=6",
                "answer_tokens=4", "temperature=1.0", "lr=1e-2", "generation_batch_size=8",
                # answers of varying length on a random model, so every reward varies (Kimi's length penalty too)
                "force_close=true",
                # a random model's answers all run to the answer budget: overlong filtering (DAPO) would mask them all
                "mask_truncated=false"]
    if hasattr(cfg, "stage_steps"):  # staged context: two one-step stages
        out += ["stage_steps=[1,1]", "stage_max_tokens=[4,6]", "stage_samples=[4,4]"]
    elif isinstance(cfg, SFTConfig):
        # long enough for the chat template's system prompt and the whole completion (at 64 every completion token
        # was cut: the SFT methods' loss was 0 and their resume compared zeros)
        out += [f"train_data=jsonl:{sft_file}", "batch_size=2", "lr=1e-3", "max_length=256"]
    if hasattr(cfg, "dpo_beta"):  # long2short: its samples of the long model, and the SFT / DPO step's shape
        out += ["sample_problems=4", "batch_size=2", "micro_batch_size=2", "max_length=256"]
    if hasattr(cfg, "chain_weight"):  # latent: chain targets need the testbed's task and tokenizer (tests/test_latent.py)
        out += ["chain_weight=0"]
    return out


def _steps(name: str, n: int) -> list[str]:
    cfg = methods.get(name).Config()
    steps = [f"steps={n}" if isinstance(cfg, RLConfig) else f"max_steps={n}"]
    return steps + ([f"train_steps={n}"] if hasattr(cfg, "train_steps") else [])  # long2short's SFT / DPO steps


@pytest.mark.parametrize("name", methods.REGISTRY.names())
def test_help_and_presets(name, capsys):
    assert main(["train", f"method={name}", "--help"]) == 0
    text = capsys.readouterr().out
    assert "lr" in text and "seed" in text
    for preset in ("cpu", "paper"):
        job = resolve("train+eval", [f"method={name}", f"preset={preset}"])
        assert job.method == name and job.trains


@pytest.mark.parametrize("name", methods.REGISTRY.names())
def test_two_steps_checkpoint_loads_and_resume_repeats(name, tiny_model_dir, tiny_recurrent_dir, runs_root, varying_task,
                                                        sft_file, monkeypatch):
    from transformers import AutoModelForCausalLM

    common = ["train", f"method={name}", *tiny_overrides(name, tiny_model_dir, varying_task, sft_file,
                                                         tiny_recurrent_dir), *_steps(name, 2), "--no-progress"]
    assert main(common) == 0
    (full,) = (runs_root / name).iterdir()
    meta = json.loads((full / "checkpoint" / "method.json").read_text())
    assert meta["method"] == name and meta["step"] == 2
    loaded = AutoModelForCausalLM.from_pretrained(full / "checkpoint")  # plain transformers, no project code
    if methods.get(name).Config().model == "testbed_recurrent":
        assert getattr(loaded, "supports_recurrence", False)  # the recurrent architecture was trained and resumed

    # interrupted after step 1 was saved, then resumed
    real_step = trainer.Trainer.fit

    def crash_at_two(self):
        step_fn = self.train_step

        def guarded(step):
            if step == 2:
                raise KeyboardInterrupt("simulated kill")
            return step_fn(step)

        self.train_step = guarded
        return real_step(self)

    monkeypatch.setattr(trainer.Trainer, "fit", crash_at_two)
    with pytest.raises(KeyboardInterrupt):
        main(common)
    monkeypatch.setattr(trainer.Trainer, "fit", real_step)
    (part,) = [p for p in (runs_root / name).iterdir() if p != full]
    assert json.loads((part / "checkpoint" / "method.json").read_text())["step"] == 1
    assert main(["train", f"resume={part}", "--no-progress"]) == 0
    # an adapter method's checkpoint is the adapter (peft format)
    weights = next(n for n in ("adapter_model.safetensors", "model.safetensors") if (full / "checkpoint" / n).is_file())
    assert_resumed_equals_uninterrupted(full, part, weights)
    assert json.loads((part / "status.json").read_text())["state"] == "done"

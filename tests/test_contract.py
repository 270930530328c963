"""The contract every registered method keeps, read from its declaration (`harness/method.py`) and parametrised
over the method registry; this file names no method:

- `harness train method=X --help` works and lists its keys; the cpu and paper presets validate;
- two training steps on a tiny fixture model (the declaration's `tiny` overrides) write a checkpoint that plain
  transformers loads;
- a run interrupted after its first saved step and resumed with `resume=` ends exactly like an uninterrupted one
  (same train.jsonl, same weights);
- the checkpoint is a model: `harness eval model=<checkpoint>` evaluates it at each test-time knob the method
  declares (values from its cpu preset), given as `model=<the run folder>`; its model card names the method, the
  base model and the knobs;
- a recipe without training refuses `harness train` by name and its evaluation resolves.

A method that trains the recurrent-depth architecture runs on a tiny recurrent model, whose depth is drawn from
the RNG inside each training forward, so its resume also checks the RNG state.
"""
from __future__ import annotations

import json

import pytest

from rzoo import methods, tasks
from rzoo.harness.cli import main
from rzoo.harness.config import ConfigError
from rzoo.harness.jobs import resolve
from rzoo.harness.method import ADAPTER, SCORER
from rzoo.harness.training import trainer
from resume_check import assert_resumed_equals_uninterrupted

TRAINED = [m.name for m in methods.all_methods() if m.trains]
EVALUATION_ONLY = [m.name for m in methods.all_methods() if not m.trains]


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


def tiny_overrides(name: str, steps: int, fixtures: dict) -> list[str]:
    """The declaration's `tiny` overrides as key=value tokens, its fixture names filled in."""
    out = []
    for key, value in methods.get(name).tiny.items():
        text = value.format(steps=steps, **fixtures) if isinstance(value, str) else json.dumps(value)
        out.append(f"{key}={text}")
    return out


@pytest.mark.parametrize("name", TRAINED)
def test_help_and_presets(name, capsys):
    assert main(["train", f"method={name}", "--help"]) == 0
    text = capsys.readouterr().out
    assert "lr" in text and "seed" in text
    for preset in ("cpu", "paper"):
        job = resolve("train+eval", [f"method={name}", f"preset={preset}"])
        assert job.method == name and job.trains


@pytest.mark.parametrize("name", EVALUATION_ONLY)
def test_a_recipe_without_training_is_an_evaluation(name):
    method = methods.get(name)
    with pytest.raises(ConfigError, match="no training step"):
        resolve("train", [f"method={name}"])
    job = resolve("eval", list(method.evaluation))
    assert job.evaluates and not job.trains


def _knob_tokens(method) -> list[str]:
    """`eval.<key>=[values]` for each knob the method declares that an evaluation sets (its cpu preset's first two
    values), so the checkpoint is evaluated through each of its knobs."""
    preset = method.presets.get("cpu", {})
    out = []
    for knob in method.knobs:
        if knob.key and f"eval.{knob.key}" in preset:
            out.append(f"eval.{knob.key}={json.dumps(list(preset[f'eval.{knob.key}'])[:2])}")
    return out


@pytest.mark.parametrize("name", TRAINED)
def test_two_steps_checkpoint_loads_evaluates_and_resume_repeats(name, tiny_model_dir, tiny_recurrent_dir, runs_root,
                                                                  varying_task, sft_file, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    method = methods.get(name)
    fixtures = {"model": tiny_model_dir, "recurrent_model": tiny_recurrent_dir, "task": varying_task,
                "sft_file": sft_file}
    common = ["train", f"method={name}", *tiny_overrides(name, 2, fixtures), "--no-progress"]
    assert main(common) == 0
    (full,) = (runs_root / name).iterdir()
    meta = json.loads((full / "checkpoint" / "method.json").read_text())
    assert meta["method"] == name and meta["step"] == 2
    if method.checkpoint == SCORER:  # a process reward model: plain transformers with its token head
        AutoModelForTokenClassification.from_pretrained(full / "checkpoint")
    else:
        loaded = AutoModelForCausalLM.from_pretrained(full / "checkpoint")  # plain transformers, no project code
        if "recurrent_model" in json.dumps(dict(method.tiny)):
            assert getattr(loaded, "supports_recurrence", False)  # the recurrent architecture was trained and resumed

    # the checkpoint (and the run folder) is a model for `harness eval`, at each of the method's knobs
    card = (full / "checkpoint" / "README.md").read_text()
    assert name in card and meta["base_model"]["spec"] in card
    assert all(k.name in card for k in method.knobs)
    # the run folder resolves to its checkpoint (tests/test_cot_valve.py gives the checkpoint folder itself); a
    # scorer's run guides a search of the policy it was trained on
    model = [f"model={full}"] if method.checkpoint != SCORER else [
        f"model={meta['base_model']['spec']}", f"eval.prm={full}", "eval.beam=[2]", "eval.dvts=[2]", "eval.mcts=[2]",
        "eval.search_candidates=2", "eval.k=2", "eval.temperature=1.0", "eval.prm_best=[2]", "eval.prm_votes=[1,2]"]
    assert main(["eval", *model, "task=arith", "eval.limit=2", "eval.budgets=[3]", "eval.answer_tokens=3",
                 *_knob_tokens(method), "--no-progress"]) == 0
    for evaluated in sorted((runs_root / "eval").iterdir()):  # each knob value is a setting of its own
        results = json.loads((evaluated / "eval" / "arith" / "results.json").read_text())["results"]
        for tokens in _knob_tokens(method):
            key, values = tokens.split("=")
            knob = next(k for k in method.knobs if k.key == key[5:])
            assert sorted({r[knob.name] for r in results if r.get(knob.name) is not None}) == json.loads(values)
        if method.checkpoint == SCORER:  # one row per search and per PRM-picked vote
            assert sorted((r["knob"], r[r["knob"]]) for r in results if r["knob"] != "budget") == [
                ("beam", 2), ("compute_optimal", 2), ("dvts", 2), ("mcts", 2), ("prm_best", 2), ("prm_votes", 1),
                ("prm_votes", 2)]
    adapter = (full / "checkpoint" / "adapter_config.json").is_file()
    assert adapter == (method.checkpoint == ADAPTER)  # the declaration says what the checkpoint is

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
    weights = "adapter_model.safetensors" if adapter else "model.safetensors"
    assert_resumed_equals_uninterrupted(full, part, weights)
    assert json.loads((part / "status.json").read_text())["state"] == "done"

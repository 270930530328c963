"""The Python API (`import rzoo`): the same jobs as the command line, returning DataFrames, raising typed errors.

- `rzoo.evaluate` gives the CLI's results for the same settings, one row per setting;
- a bad keyword raises ConfigError (never SystemExit) naming it and the nearest valid key; a bad value too;
- `rzoo.train_eval` returns a Run whose log and evaluations are what it did; `Results.plot()` is a figure;
- in a fresh interpreter that never imports the CLI, the leaderboard built from a run folder has a method's knob
  column (the registries fill themselves: no set-up call)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rzoo
from rzoo.harness.cli import main



def _rows(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith(("seconds", "per_second"))} for r in results]


def test_evaluate_equals_the_cli_and_gives_one_row_per_budget(tiny_model_dir, runs_root):
    r = rzoo.evaluate(tiny_model_dir, "arith", budgets=[2, 8], limit=5, answer_tokens=4, progress=False)
    assert list(r.results["budget"]) == [2, 8] and set(r.results["task"]) == {"arith"}
    assert {"accuracy", "ci_lo", "ci_hi", "thinking_tokens_mean", "truncation_rate"} <= set(r.results.columns)
    assert len(r.samples) == 5 * 2 and "thinking" in r.samples.columns
    assert main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.budgets=[2,8]", "eval.limit=5",
                 "eval.answer_tokens=4", "--no-progress"]) == 0
    cli_run = max((runs_root / "eval").iterdir())
    assert cli_run != r.path.parent
    cli = json.loads((cli_run / "eval" / "arith" / "results.json").read_text())["results"]
    assert _rows(r.raw("arith")["results"]) == _rows(cli)
    api_samples = [{k: v for k, v in json.loads(x).items() if not k.endswith("seconds")}
                   for x in (r.path / "arith" / "samples.jsonl").read_text().splitlines()]
    cli_samples = [{k: v for k, v in json.loads(x).items() if not k.endswith("seconds")}
                   for x in (cli_run / "eval" / "arith" / "samples.jsonl").read_text().splitlines()]
    assert api_samples == cli_samples
    run = rzoo.load_run(r.path.parent)
    assert run.checkpoint is None and run.config["command"] == "eval" and set(run.evaluations) == {"arith"}


def test_a_bad_keyword_is_a_typed_error_naming_it(tiny_model_dir, runs_root):
    with pytest.raises(rzoo.ConfigError) as e:
        rzoo.evaluate(tiny_model_dir, "arith", budgetz=[2])
    assert "budgetz" in str(e.value) and "budgets" in str(e.value)
    with pytest.raises(rzoo.ConfigError, match="budgets"):  # a value of the wrong type, checked like the CLI's
        rzoo.evaluate(tiny_model_dir, "arith", budgets=["many"])
    with pytest.raises(rzoo.ConfigError, match="must be >= 1"):  # the field's range
        rzoo.evaluate(tiny_model_dir, "arith", budgets=[0])
    with pytest.raises(rzoo.ConfigError, match="lr"):
        rzoo.train("grpo", lr=True)
    with pytest.raises(rzoo.ConfigError, match="evaluation key"):
        rzoo.train("grpo", budgets=[2])
    with pytest.raises(rzoo.UnknownName, match="grpo"):
        rzoo.train("grpp")
    assert not (runs_root / "eval").exists()  # nothing was started


def test_train_eval_returns_the_run(tiny_model_dir, runs_root, varying_task):
    run = rzoo.train_eval("grpo", model=tiny_model_dir, train_task=varying_task, steps=2, prompts_per_step=2,
                          samples_per_prompt=4, max_thinking_tokens=6, answer_tokens=4, lr=1e-2,
                          generation_batch_size=8, task="arith", limit=3, budgets=[4, 8], baseline=False,
                          eval={"answer_tokens": 5}, progress=False)
    assert list(run.log["step"]) == [1, 2] and "reward_mean" in run.log.columns
    assert run.config["config"]["answer_tokens"] == 4 and run.config["eval"]["answer_tokens"] == 5
    (results,) = run.evaluations.values()
    assert list(results.results["budget"]) == [4, 8] and (results.results["n_problems"] == 3).all()
    assert run.evaluations["arith"].raw()["model"]["spec"] == str(run.checkpoint)
    fig = results.plot()
    assert fig.axes and fig.axes[0].get_xlabel().startswith("mean thinking tokens")
    assert rzoo.plot(run.path, axis="flops").axes


@pytest.fixture()
def varying_task():
    from rzoo import tasks

    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only: reward varies on a random model")
    yield "varying"
    tasks.REGISTRY.remove("varying")


FRESH = """
import sys
from pathlib import Path
from rzoo.leaderboard.site import build
index = build(Path(sys.argv[1]))
assert "rzoo.harness.cli" not in sys.modules and "rzoo.harness.jobs" not in sys.modules
print(index.read_text())
"""


def test_a_fresh_interpreter_builds_the_leaderboard_with_method_knob_columns(tiny_model_dir, runs_root):
    from rzoo.harness.generation import knobs

    # a method's knob (s1's token-conditional control, declared in its method file) on a plain model
    r = rzoo.evaluate(tiny_model_dir, "arith", budgets=[3], limit=2, answer_tokens=3, token_bounds=[2, 4],
                      progress=False)
    assert {2, 4} <= set(r.results["token_bound"].dropna())
    knob = knobs.get("token_bound")
    page = subprocess.run([sys.executable, "-c", FRESH, str(runs_root)], capture_output=True, text=True, check=True,
                          timeout=300).stdout
    assert knob.label(2) in page and knob.label(4) in page  # "N=2": the knob's settings, labelled by its declaration

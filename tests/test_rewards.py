"""The rewards the papers define, by value on scripted completions with the real runsum grader: R1-Zero's
accuracy + format reward, DeepScaleR's correct-and-closed reward (a truncated or force-closed rollout earns
0), "an unclosed thinking block scores 0", and Kimi's optimiser reset at each iteration."""
from __future__ import annotations

import pytest

from rzoo.harness.generation import thinking as T
from rzoo.harness.generation.forcing import Completion
from rzoo.harness.training import rewards
from rzoo.methods import grpo


@pytest.fixture(scope="module")
def task_and_problem():
    from rzoo.tasks.runsum import TASK

    problems, _ = TASK.load(None, split="test")
    return TASK, problems[0]


def _completion(end: str, answer: str) -> Completion:
    c = Completion(0, 0, thinking_end=end, answer_text=answer)
    c.completion_ids = [1, 2, 3]
    return c


def _cases(problem):
    right, wrong = f"\\boxed{{{problem.answer}}}", f"\\boxed{{{(int(problem.answer) + 1) % 10}}}"
    return {
        "closed right": _completion(T.CLOSED, right),
        "closed wrong": _completion(T.CLOSED, wrong),
        "closed unboxed": _completion(T.CLOSED, f"the answer is {problem.answer}"),
        "forced right": _completion(T.FORCED, right),
        "unclosed": _completion(T.INCOMPLETE, right),  # an answer text with no closed block is no answer
    }


def test_an_unclosed_block_scores_zero_whatever_its_text(task_and_problem):
    task, problem = task_and_problem
    cases = _cases(problem)
    assert task.score(problem, cases["unclosed"].answer_text) == 1.0  # the text alone would be right
    assert rewards.accuracy(task, problem, cases["unclosed"]) == 0.0
    assert rewards.accuracy(task, problem, cases["forced right"]) == 1.0


def test_r1_zero_reward_is_accuracy_plus_format(task_and_problem):
    task, problem = task_and_problem
    cases = _cases(problem)
    got = {name: r for name, r in zip(cases, grpo.r1_zero_reward(task, problem, list(cases.values()), step=1),
                                      strict=True)}
    # format: 0.5 for closing the block itself + 0.5 for a non-empty \boxed{} after it
    want = {"closed right": (1.0, 1.0), "closed wrong": (0.0, 1.0), "closed unboxed": (0.0, 0.5),
            "forced right": (1.0, 0.5), "unclosed": (0.0, 0.0)}
    for name, (accuracy, fmt) in want.items():
        assert (got[name]["accuracy"], got[name]["format"], got[name]["total"]) == (accuracy, fmt, accuracy + fmt), name
    weighted = grpo.r1_zero_reward(task, problem, [cases["closed right"]], step=1, accuracy_weight=2.0,
                                   format_weight=0.25)
    assert weighted[0]["total"] == 2.0 * 1.0 + 0.25 * 1.0
    assert grpo.format_reward(_completion(T.CLOSED, "\\boxed{ }")) == 0.5  # an empty box is no answer


def test_deepscaler_reward_needs_a_correct_answer_and_a_closed_block(task_and_problem):
    task, problem = task_and_problem
    cases = _cases(problem)
    got = rewards.correct_and_closed_reward(task, problem, list(cases.values()), step=1)
    assert [r["total"] for r in got] == [1.0, 0.0, 0.0, 0.0, 0.0]  # forced right: 0 (truncated = 0)
    assert [r["closed"] for r in got] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert [r["accuracy"] for r in got] == [1.0, 0.0, 0.0, 1.0, 0.0]


def test_accuracy_reward_is_the_scorer_on_a_closed_or_forced_answer(task_and_problem):
    """The plain `accuracy` reward (`reward=accuracy`): 1 for a right answer after a closed or force-closed block, 0 for a
    wrong or unboxed one and for an unclosed block; registered under its name."""
    task, problem = task_and_problem
    cases = _cases(problem)
    got = rewards.REWARDS.get("accuracy")(task, problem, list(cases.values()), step=1)
    assert [(r["accuracy"], r["total"]) for r in got] == [(1.0, 1.0), (0.0, 0.0), (0.0, 0.0), (1.0, 1.0), (0.0, 0.0)]
    assert rewards.REWARDS.get("correct_and_closed") is rewards.correct_and_closed_reward


@pytest.mark.parametrize("reward", ["accuracy", "correct_and_closed"])
def test_rewards_read_a_thinking_end_by_its_value(task_and_problem, reward):
    """A completion's end read back from a file (samples.jsonl, a journal) is an equal string, not the module's
    constant itself: the rewards compare values (a check by identity would pass on the generator's constants alone)."""
    import json

    task, problem = task_and_problem
    cases = list(_cases(problem).values())
    fn = rewards.REWARDS.get(reward)
    want = [r["total"] for r in fn(task, problem, cases, step=1)]
    for c in cases:
        end = c.thinking_end
        c.thinking_end = json.loads(json.dumps(end))  # an equal str, a different object
        assert c.thinking_end == end and c.thinking_end is not end
    assert [r["total"] for r in fn(task, problem, cases, step=1)] == want


def test_kimi_resets_the_optimiser_at_each_iteration(tiny_model_dir, runs_root):
    """reset_optimizer: AdamW's moments are forgotten at the start of every rollout, so after each step the
    state holds only that iteration's updates (its step count is `minibatches`, not the run's total)."""
    from rzoo.harness.jobs import load_train_data, resolve
    from rzoo.harness import models
    from rzoo.harness.runstore import Run
    from rzoo.harness.training.rl import RLTrainer
    from rzoo.harness.training.trainer import TrainContext

    counts = {}
    for reset in (True, False):
        job = resolve("train", ["method=kimi", f"model={tiny_model_dir}", "train_task=arith", "steps=3",
                                "prompts_per_step=2", "samples_per_prompt=2", "max_thinking_tokens=4", "answer_tokens=2",
                                "minibatches=2", "dtype=float32", "save_every=0", f"reset_optimizer={reset}"])
        run = Run.create("kimi", job.to_dict(), f"reset{reset}")
        ctx = TrainContext("kimi", run, models.resolve(job.config.model), load_train_data(job.config), job.to_dict(),
                           progress=False)
        trainer = RLTrainer(job.config, ctx)
        steps = []
        real_step = trainer.train_step

        def spy(step, real_step=real_step, trainer=trainer, steps=steps):
            row = real_step(step)
            state = trainer.optimizer.state
            steps.append(max(int(s["step"]) for s in state.values() if "step" in s))
            return row

        trainer.train_step = spy
        trainer.fit()
        counts[reset] = steps
    assert counts[True] == [2, 2, 2]  # 2 updates per iteration, from a fresh state each time
    assert counts[False] == [2, 4, 6]

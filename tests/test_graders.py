"""Graders as data of a protocol (`tasks/grading/graders.py`): every grader against its case file
(`cases/graders.jsonl`: hand-made replies with the verdict the published rule gives), each protocol's graders
registered and covered, both verdicts on every sample and in results, and `harness grade --grader` giving the
evaluation's own verdicts back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzoo.harness.data import Problem, Reply
from rzoo.harness.evaluation import protocol as P
from rzoo.tasks.grading import graders

CASES = Path(__file__).resolve().parents[1] / "tasks" / "grading" / "cases" / "graders.jsonl"
GRADER_CASES = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def _verdict(case: dict):
    grader = graders.get(case["grader"])
    reply = Reply(case["thinking"], case["answer"], case["closed"])
    if case["kind"] == "choice":
        return grader.choice(reply, case["gold"], "ABCD")
    return grader.math(reply, tuple(case["golds"]) if "golds" in case else (case["gold"],))


@pytest.mark.parametrize("case", GRADER_CASES, ids=lambda c: f"{c['grader']}:{c['rule'][-40:]}")
def test_every_grader_follows_its_published_rule(case):
    v = _verdict(case)
    assert (v.correct, v.extracted) == (case["correct"], case["extracted"]), case["rule"]


def test_every_protocol_names_registered_graders_each_with_cases():
    covered = {c["grader"] for c in GRADER_CASES}
    for name in P.names():
        p = P.load(name)
        assert set(p.graders) == {"math", "choice"}, name
        for family, grader in p.graders.items():
            assert grader in graders.names(), (name, grader)
            assert grader in covered, f"{name}: grader {grader} has no case"
            kinds = {c["kind"] for c in GRADER_CASES if c["grader"] == grader}
            assert family == "choice" or "math" in kinds, (name, grader)
    assert P.load("deepseek_r1").graders["choice"] == "simple_evals" and P.load("deepscaler").graders["math"] == "rllm"
    assert P.load("open_r1").graders["math"] == "lighteval" and P.load("s1").graders["math"] == "s1"


def test_the_replies_the_issue_names_are_cases():
    """`Answer: A ... Answer: C`, a bare `\\boxed{B}`, a box inside cut-off thinking, and a list answer."""
    def has(grader, pred):
        return any(c["grader"] == grader and pred(c) for c in GRADER_CASES)

    assert has("simple_evals", lambda c: "Answer: A" in c["answer"] and "Answer: C" in c["answer"] and
               c["extracted"] == "A")
    assert has("simple_evals", lambda c: c["answer"] == "\\boxed{B}" and c["extracted"] is None)
    assert has("lighteval", lambda c: not c["closed"] and "\\boxed" in c["thinking"] and c["correct"])
    assert has("rllm", lambda c: not c["closed"] and "\\boxed" in c["thinking"] and not c["correct"])
    assert has("rllm", lambda c: len(c.get("golds", [])) > 1 and c["correct"])


def test_the_registry_is_explicit():
    with pytest.raises(ValueError, match="already registered"):
        graders.register(graders.get("rllm"))
    with pytest.raises(KeyError, match="unknown grader 'nope'"):
        graders.get("nope")
    with pytest.raises(ValueError, match="multiple choice only"):
        graders.get("simple_evals").math(Reply("", "\\boxed{1}", True), ("1",))


def test_a_list_gold_is_right_when_any_item_matches():
    from rzoo.tasks.minerva import TASK

    problem = Problem("m", "q", "0.01 || 0.02", meta={"answers": ["0.01", "0.02"]})
    assert TASK.score(problem, "\\boxed{0.02}") == 1.0 and TASK.score(problem, "\\boxed{0.03}") == 0.0
    for grader in ("rzoo", "rllm", "lighteval", "s1"):
        assert TASK.grade_with(grader, problem, Reply("", "\\boxed{0.01}", True)).correct, grader
        assert not TASK.grade_with(grader, problem, Reply("", "\\boxed{0.015}", True)).correct, grader


def _completion(thinking: str, answer: str, end: str):
    from rzoo.harness.generation.forcing import Completion

    return Completion(0, 0, thinking_end=end, thinking_text=thinking, answer_text=answer)


def test_samples_keep_both_verdicts_and_results_count_the_disagreements(tmp_path, capsys):
    """Under the deepscaler protocol a sample is graded by rllm's rule (`correct`) and by this project's
    (`correct_rzoo`); results.json gives both accuracies and the disagreements; `harness grade --grader`
    re-grades the written samples to the same verdicts under each grader."""
    from types import SimpleNamespace

    from rzoo.harness.cli import main
    from rzoo.harness.data import Source, TaskData
    from rzoo.harness.evaluation.results import _result, grade_rows
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.models.flops import Shape
    from rzoo.tasks.math500 import TASK

    problem = Problem("p1", "q", "42")
    td = TaskData("math500", TASK, [problem], Source("generated", "test"), 1)
    completions = [_completion("so 42", "The answer is 42.", T.CLOSED),  # rzoo reads it; rllm needs a box
                   _completion("so 41", "\\boxed{42}", T.CLOSED),  # both right
                   _completion("I get \\boxed{42} and", "", T.INCOMPLETE)]  # cut off: neither
    for i, c in enumerate(completions):
        c.sample_index = i
    shape = Shape(n_layer=1, d_model=1, matmul_params=1)
    rows = grade_rows(td, [problem], completions, {"budget": 8, "waits": None}, shape, grader="rllm")
    assert [(r["correct"], r["correct_rzoo"]) for r in rows] == [(False, True), (True, True), (False, False)]
    assert {r["grader"] for r in rows} == {"rllm"} and rows[0]["kind"] == "math"
    for r in rows:
        r["generation_seconds"] = 0.0
    cfg = SimpleNamespace(samples=lambda task: 3, seed=0)
    result = _result(rows, {"budget": 8, "waits": None}, cfg, False)
    assert result["accuracy"] == pytest.approx(1 / 3) and result["accuracy_rzoo"] == pytest.approx(2 / 3)
    assert result["rzoo_disagreements"] == 1 and result["grader"] == "rllm"
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for grader, key in (("rllm", "correct"), ("rzoo", "correct_rzoo")):
        capsys.readouterr()
        assert main(["grade", str(path), "--grader", grader]) == 0
        out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [o["correct"] for o in out] == [r[key] for r in rows], grader
        assert [o["id"] for o in out] == ["p1#0", "p1#1", "p1#2"]
    # lighteval reads the whole output: the cut-off reply's box counts
    capsys.readouterr()
    assert main(["grade", str(path), "--grader", "lighteval"]) == 0
    assert [json.loads(line)["correct"] for line in capsys.readouterr().out.splitlines()] == [True, True, True]


def test_grade_help_lists_every_grader(capsys):
    from rzoo.harness.cli import main

    assert main(["grade", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--grader" in out and all(f"  {name} " in out for name in graders.names())

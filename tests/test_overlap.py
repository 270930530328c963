"""A train split never holds an evaluation problem (`tasks/overlap.py`, the README's decontamination
sentence): problems whose normalised text or id is in MATH-500 or AIME 2024/2025 are dropped at load."""
from __future__ import annotations

import json

import pytest

from conftest import SHARED_DATA
from rzoo import tasks
from rzoo.tasks import overlap


def _write_eval_sets(root):
    """A data folder with a full-size MATH-500 file (the loader checks its size) of made-up problems."""
    (root / "math500").mkdir(parents=True)
    rows = [{"problem": f"Compute $\\frac{{{i}}}{{2}} + {i}$.", "answer": str(1.5 * i), "unique_id": f"test/x/{i}.json",
             "subject": "Algebra", "level": 1} for i in range(500)]
    (root / "math500" / "math500.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_training_problems_that_are_evaluation_problems_are_dropped(tmp_path, capsys):
    overlap._eval_keys.cache_clear()
    evals = _write_eval_sets(tmp_path)
    train = [
        {"problem": "  COMPUTE  \\frac{7}{2} +\\, 7. ", "answer": "10.5", "difficulty": 1, "type": "Algebra"},  # #7, respaced
        {"problem": "Compute \\left(\\frac{9}{2}\\right) + 9.", "answer": "13.5", "difficulty": 1, "type": "Algebra"},
        {"problem": "A training problem of its own.", "answer": "3", "difficulty": 2, "type": "Algebra"},
        {"problem": evals[42]["problem"], "answer": "63", "difficulty": 3, "type": "Algebra"},  # verbatim
    ]
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "math_train_rllm.json").write_text(json.dumps(train))
    problems, source = tasks.get("math_train").load(tmp_path, split="train")
    # case, spacing, `$` and LaTeX spacing do not hide a problem; other brackets make another problem
    assert [p.question for p in problems] == ["Compute \\left(\\frac{9}{2}\\right) + 9.", "A training problem of its own."]
    assert "minus 2 evaluation problems" in source.location
    assert "removed 2 training problems" in capsys.readouterr().out
    overlap._eval_keys.cache_clear()


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_the_real_train_splits_hold_no_evaluation_problem():
    overlap._eval_keys.cache_clear()
    evaluation = {overlap.normalise(p.question) for name in overlap.EVAL_SETS
                  for p in tasks.get(name).load(SHARED_DATA)[0]}
    assert len(evaluation) == 500 + 30 + 30
    for name, total, dropped in (("math_train", 7470, 0), ("aime_train", 975, 4)):  # 7,474 rows less 4 without answer or repeated
        problems, source = tasks.get(name).load(SHARED_DATA, split="train")
        assert not {overlap.normalise(p.question) for p in problems} & evaluation, name
        assert len(problems) == total - dropped, (name, len(problems))
        assert (f"minus {dropped} evaluation problems" in source.location) == bool(dropped)


def _math500_rows():
    """MATH-500's own rows where the shared data has them (real ids), else made-up ones of the same schema."""
    real = SHARED_DATA / "math500" / "math500.jsonl"
    if real.is_file():
        return [json.loads(x) for x in real.read_text().splitlines() if x.strip()]
    return [{"problem": f"Compute $\\frac{{{i}}}{{2}} + {i}$.", "answer": str(1.5 * i),
             "unique_id": f"test/algebra/{i}.json", "subject": "Algebra", "level": 1} for i in range(500)]


def test_a_training_problem_with_an_evaluation_id_is_dropped(tmp_path, capsys):
    """A real id overlap: a train file that carries MATH's `unique_id` (as MATH-500's problems are MATH test
    problems) holds one MATH-500 problem reworded, so only its id matches. Fails if the id match is removed."""
    from rzoo.tasks.base import DataDir, Problem
    from rzoo.tasks.math_train import MathTrain

    class MathWithIds(MathTrain):  # a training set whose rows keep MATH's own ids
        name = "math_with_ids"

        def problem(self, row, index, where):
            return Problem(row["unique_id"], row["problem"], row["answer"])

    overlap._eval_keys.cache_clear()
    evals = _math500_rows()
    (tmp_path / "math500").mkdir()
    (tmp_path / "math500" / "math500.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
    reworded = {"problem": "Reworded: " + evals[7]["problem"][::-1], "answer": evals[7]["answer"],
                "unique_id": evals[7]["unique_id"]}
    own = {"problem": "A training problem of its own.", "answer": "3", "unique_id": "train/algebra/1.json"}
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "math_train_rllm.json").write_text(json.dumps([reworded, own]))
    problems, source = MathWithIds().load(DataDir(tmp_path, explicit=True), split="train")
    assert [p.id for p in problems] == ["train/algebra/1.json"]
    assert source.decontamination["removed"] == 1 and "math500" in source.decontamination["checked"]
    overlap._eval_keys.cache_clear()


def test_a_training_run_whose_evaluation_sets_cannot_be_read_says_so(tiny_model_dir, runs_root, tmp_path, capsys,
                                                                     monkeypatch):
    """Hub unreachable (offline) and a data folder holding the training file alone: the run prints one line and
    records `decontaminated: false` with the reasons in its config, its checkpoint and its leaderboard page."""
    from rzoo.harness.cli import main

    overlap._eval_keys.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "data" / "train").mkdir(parents=True)
    rows = [{"problem": f"What is {i} + {i}?", "answer": str(2 * i), "difficulty": 1, "type": "Algebra"}
            for i in range(8)]
    (tmp_path / "data" / "train" / "math_train_rllm.json").write_text(json.dumps(rows))
    assert main(["train", "method=grpo", f"model={tiny_model_dir}", "train_task=math_train",
                 f"data_dir={tmp_path / 'data'}", "steps=1", "prompts_per_step=2", "samples_per_prompt=2",
                 "max_thinking_tokens=4", "answer_tokens=4", "--no-progress"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if "NOT decontaminated" in x]
    assert len(lines) == 1 and "math500" in lines[0] and "aime24" in lines[0], lines
    (run,) = (runs_root / "grpo").iterdir()
    recorded = json.loads((run / "config.json").read_text())["train_data_decontamination"]
    assert recorded["decontaminated"] is False and set(recorded["unreadable"]) == {"math500", "aime24", "aime25"}
    assert all(recorded["unreadable"].values())  # each with its reason
    method = json.loads((run / "checkpoint" / "method.json").read_text())
    assert method["base_model"]["train_data_decontamination"]["decontaminated"] is False
    assert main(["leaderboard", "--out", str(tmp_path / "site")]) == 0
    pages = [p.read_text() for p in (tmp_path / "site").rglob("*.html") if run.name in p.read_text()]
    assert any("decontaminated: false" in page for page in pages)
    overlap._eval_keys.cache_clear()

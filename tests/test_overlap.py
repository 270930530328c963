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

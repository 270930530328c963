"""The graders against the case files in tasks/cases (input text, gold, expected verdict)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rzoo.tasks import timelimit
from rzoo.tasks.grading import choice_letter, join_thousands, math_verdict
from rzoo.tasks.sympy_check import sympy_verdict

CASES = Path(__file__).resolve().parents[1] / "tasks" / "cases"
MATH = [json.loads(line) for line in (CASES / "math.jsonl").read_text().splitlines() if line.strip()]
CHOICE = [json.loads(line) for line in (CASES / "choice.jsonl").read_text().splitlines() if line.strip()]


def test_enough_cases_in_every_category():
    assert len(MATH) + len(CHOICE) >= 100
    categories = {c["category"] for c in MATH}
    for needed in ("fraction", "decimal", "percent", "interval", "set", "radical", "units", "text", "matrix",
                   "multiple-boxes", "thousands"):
        assert needed in categories
    assert {c["correct"] for c in MATH} == {True, False}


@pytest.mark.parametrize("case", MATH, ids=lambda c: f"{c['category']}:{c['answer'][:40]}")
def test_math_cases(case):
    assert math_verdict(case["answer"], case["gold"]).correct is case["correct"]


@pytest.mark.parametrize("case", CHOICE, ids=lambda c: c["answer"][:40] or "empty")
def test_choice_cases(case):
    assert (choice_letter(case["answer"]) == case["gold"]) is case["correct"]


def test_second_opinion_agrees_on_most_cases():
    """The sympy grader is simpler on purpose; it must still agree on the large majority, or its
    disagreement counts in results.json would be noise."""
    agree = sum(sympy_verdict(c["answer"], c["gold"]) == c["correct"] for c in MATH)
    assert agree / len(MATH) >= 0.85


def test_thousands_separators():
    assert join_thousands(r"1\,000") == "1000"
    assert join_thousands("1{,}000,000") == "1000000"
    assert join_thousands("(1,2)") == "(1,2)" and join_thousands("1,23") == "1,23"


def test_grading_works_in_worker_threads():
    out = []
    t = threading.Thread(target=lambda: out.append(math_verdict(r"\boxed{\frac{1}{2}}", "0.5")))
    t.start()
    t.join(60)
    assert out and out[0].correct


def _spin(seconds):
    import time

    end = time.time() + seconds
    while time.time() < end:
        pass
    return "finished"


def test_time_limit_in_main_thread_and_worker_thread():
    with pytest.raises(timelimit.GradingTimeout):
        timelimit.run(_spin, 5, seconds=0.2)
    errors = []

    def worker():
        try:
            timelimit.run(_spin, 30, seconds=1.0)
        except timelimit.GradingTimeout:
            errors.append("timeout")

    t = threading.Thread(target=worker)
    t.start()
    t.join(30)
    assert errors == ["timeout"]
    assert timelimit.run(_spin, 0.0, seconds=5) == "finished"  # the pool is usable again

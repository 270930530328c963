"""Problem samplers: the prioritised sampler draws what the model fails more often, the curriculum goes
from easy to hard, and both resume exactly from their saved state."""
from __future__ import annotations

from collections import Counter

import pytest

from rzoo.harness.training import samplers
from rzoo.harness.data import Problem


def _problems(n=40):
    return [Problem(f"p{i}", "q", "a", meta={"difficulty": 1 + i % 5}) for i in range(n)]


def test_prioritized_draws_failed_problems_more_often():
    problems = _problems()
    s = samplers.SAMPLERS.get("prioritized")(problems, 0, steps=100)
    # scripted success rates: even problems always solved... almost (0.9), odd ones never (0.0)
    for _ in range(10):
        idx = list(range(len(problems)))
        s.update(idx, [0.9 if i % 2 == 0 else 0.0 for i in idx])
    counts = Counter()
    for step in range(1, 201):
        counts.update(s.draw(8, step))
    failed = sum(c for i, c in counts.items() if i % 2 == 1)
    solved = sum(c for i, c in counts.items() if i % 2 == 0)
    assert failed > 3 * solved  # p ∝ 1 - s: 1.0 vs 0.1, without replacement within a draw
    assert s.stats([1, 3])["drawn_success_rate_mean"] == 0.0


def test_curriculum_orders_draws_by_difficulty():
    problems = _problems()
    s = samplers.SAMPLERS.get("curriculum")(problems, 0, steps=100, curriculum_start=0.2, curriculum_until=0.5)
    means = []
    for step in (1, 10, 20, 30, 40, 60, 90):
        drawn = s.draw(6, step)
        means.append(s.stats(drawn)["difficulty_mean"])
    assert means[0] < 1.5  # the easiest fifth (and a bit) first
    assert means[0] < means[2] < means[4]  # harder as the pool grows
    assert max(samplers.difficulty(problems[i]) for i in s.pool(50)) == 5  # everything by half the run


def test_samplers_resume_from_state():
    problems = _problems()
    for name in ("shuffle", "curriculum_prioritized"):
        make = samplers.SAMPLERS.bind(name, type("C", (), {"steps": 50})())
        a, b = make(problems, 3), make(problems, 3)
        for step in range(1, 6):
            b.update(b.draw(7, step), [0.5] * 7)
            a.update(a.draw(7, step), [0.5] * 7)
        state = a.state_dict()
        c = make(problems, 3)
        c.load_state_dict(state)
        assert [a.draw(7, s) for s in range(6, 9)] == [c.draw(7, s) for s in range(6, 9)]


def test_curriculum_needs_difficulty_labels():
    with pytest.raises(ValueError, match="difficulty"):
        samplers.SAMPLERS.get("curriculum")([Problem("x", "q", "a")], 0, steps=5)

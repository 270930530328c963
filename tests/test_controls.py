"""s1's Control / Scaling / Performance (`harness/evaluation/controls.py`) on hand-made curves."""
from __future__ import annotations

import pytest

from rzoo.harness.evaluation.controls import Point, control, performance, scaling, share_within, summary


def test_a_rising_curve():
    points = [Point(0.2, 1000, 1.0), Point(0.4, 2000, 1.0), Point(0.5, 4000, 1.0)]
    # slopes in points per 1,000 tokens: (40-20)/1 = 20, (50-20)/3 = 10, (50-40)/2 = 5 -> mean 35/3
    assert scaling(points) == pytest.approx(35 / 3)
    assert performance(points) == 0.5 and control(points) == 1.0


def test_a_decreasing_curve_has_negative_scaling():
    """Rejection sampling in s1: longer thinking, lower accuracy (-35 on AIME24)."""
    points = [Point(0.6, 500, 1.0), Point(0.5, 1500, 1.0), Point(0.3, 2500, 1.0)]
    # (50-60)/1 = -10, (30-60)/2 = -15, (30-50)/1 = -20
    assert scaling(points) == pytest.approx(-15.0)
    assert performance(points) == 0.6


def test_control_averages_each_settings_share_and_skips_unbounded_ones():
    assert share_within([3, 5, 9, 2], 5) == 0.75 and share_within([1, 2], None) is None
    points = [Point(0.1, 10, share_within([3, 5, 9, 2], 5)), Point(0.2, 20, 1.0), Point(0.3, 30, None)]
    assert control(points) == pytest.approx((0.75 + 1.0) / 2)
    assert control([Point(0.1, 10), Point(0.2, 20)]) is None


def test_equal_token_means_have_no_slope_and_one_setting_has_no_scaling():
    assert scaling([Point(0.2, 100), Point(0.9, 100)]) is None
    assert scaling([Point(0.2, 100)]) is None
    assert scaling([Point(0.2, 100), Point(0.4, 100), Point(0.3, 1100)]) == pytest.approx((10 - 10) / 2)
    assert summary([]) == {"control": None, "scaling": None, "performance": None, "settings": 0,
                           "scaling_unit": "accuracy points per 1,000 thinking tokens",
                           "control_unit": "share of samples within their setting's bound, averaged over settings"}

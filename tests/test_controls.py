"""s1's Control / Scaling / Performance (`harness/evaluation/controls.py`) on hand-made curves."""
from __future__ import annotations

import pytest

from rzoo.harness.evaluation.controls import (Point, control, control_samples, performance, scaling, share_within,
                                              summary)


def test_a_rising_curve():
    points = [Point(0.2, 1000, 1.0, 1000), Point(0.4, 2000, 1.0, 2000), Point(0.5, 4000, 1.0, 4000)]
    # slopes in points per 1,000 tokens: (40-20)/1 = 20, (50-20)/3 = 10, (50-40)/2 = 5 -> mean 35/3
    assert scaling(points) == pytest.approx(35 / 3)
    assert performance(points) == 0.5 and control(points) == 1.0


def test_a_decreasing_curve_has_negative_scaling():
    """Rejection sampling in s1: longer thinking, lower accuracy (-35 on AIME24)."""
    points = [Point(0.6, 500, 1.0), Point(0.5, 1500, 1.0), Point(0.3, 2500, 1.0)]
    # (50-60)/1 = -10, (30-60)/2 = -15, (30-50)/1 = -20
    assert scaling(points) == pytest.approx(-15.0)
    assert performance(points) == 0.6


def test_control_is_s1_eq_1_counted_per_run_and_skips_unbounded_ones():
    """eq. 1 counts settings (runs) whose mean thinking is within the bound; the per-sample share is a second,
    separately named number. Hand-computed: the shares average to 0.5625, eq. 1 gives 3 of 4 = 0.75."""
    assert share_within([3, 5, 9, 2], 5) == 0.75 and share_within([1, 2], None) is None
    points = [Point(0.1, 1.5, 1.0, 2), Point(0.2, 3.5, 0.5, 4), Point(0.3, 9.0, 0.25, 8), Point(0.4, 12.0, 0.5, 16),
              Point(0.5, 30, None, None)]
    assert control(points) == pytest.approx(0.75)
    assert control_samples(points) == pytest.approx(0.5625)
    assert control([Point(0.1, 10), Point(0.2, 20)]) is None and control_samples([Point(0.1, 10)]) is None
    assert control([Point(0.1, 8.0, 0.5, 8)]) == 1.0  # a mean exactly at the bound is within (a <= a_max)


def test_scaling_counts_tied_pairs_in_its_denominator():
    """s1's Scaling averages over all C(|A|, 2) pairs, summing slopes over b > a only: a tie adds 0 to the sum
    and 1 to the count. Hand-computed: slopes 20, 30, 40/3, 10, 5 (78.33) over 6 pairs = 13.06 (15.67 over the
    5 untied ones)."""
    points = [Point(0.2, 1000), Point(0.4, 2000), Point(0.5, 2000), Point(0.6, 4000)]
    assert scaling(points) == pytest.approx((20 + 30 + 40 / 3 + 10 + 5) / 6)


def test_equal_token_means_have_no_slope_and_one_setting_has_no_scaling():
    assert scaling([Point(0.2, 100), Point(0.9, 100)]) is None
    assert scaling([Point(0.2, 100)]) is None
    assert scaling([Point(0.2, 100), Point(0.4, 100), Point(0.3, 1100)]) == pytest.approx((10 - 10) / 3)
    assert summary([]) == {"control": None, "control_samples": None, "scaling": None, "performance": None,
                           "settings": 0, "scaling_unit": "accuracy points per 1,000 thinking tokens",
                           "control_unit": "share of settings whose mean thinking tokens are within their bound "
                                           "(s1 eq. 1)",
                           "control_samples_unit": "share of samples within their setting's bound, averaged over "
                                                   "settings"}

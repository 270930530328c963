"""How well a way of controlling test-time compute works: s1's three numbers for a curve (Muennighoff et
al. 2025, §3.2 and Table 3), a curve being the settings of one knob swept at fixed other settings.

- Control: the share of samples whose thinking stays within their setting's bound, per setting, then
  averaged over the settings (s1 counts settings: 1(a_min <= a <= a_max), in practice a <= a_max; we count
  samples within each setting, which is the same where every sample of a setting agrees). A setting that
  states no bound (a class prompt without `eval.class_bounds`) is left out; a curve with none has no
  Control (None). A budget's bound is the budget itself, so budget forcing's Control is 1 by construction.
- Scaling: the mean over all pairs of settings, ordered by their mean thinking tokens, of the slope
  (accuracy_b - accuracy_a) / (tokens_b - tokens_a), in accuracy points per 1,000 thinking tokens (s1 does not
  state a unit). Pairs with equal mean tokens have no slope and are left out.
- Performance: the best accuracy of the curve.

Pure functions of per-setting numbers; `evaluation.results` applies them to every curve of a results file.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

UNIT = "accuracy points per 1,000 thinking tokens"


@dataclass(frozen=True)
class Point:
    accuracy: float  # in [0, 1]
    thinking: float  # mean thinking tokens of the setting
    within: float | None = None  # share of its samples within its bound; None: the setting has no bound


def control(points: list[Point]) -> float | None:
    """Mean over settings of the share of samples within the setting's bound; None when no setting has one."""
    shares = [p.within for p in points if p.within is not None]
    return sum(shares) / len(shares) if shares else None


def scaling(points: list[Point]) -> float | None:
    """Mean pairwise slope, accuracy points per 1,000 thinking tokens; None with fewer than two distinct token
    means."""
    slopes = [(b.accuracy - a.accuracy) * 100 / ((b.thinking - a.thinking) / 1000)
              for a, b in itertools.combinations(sorted(points, key=lambda p: p.thinking), 2)
              if b.thinking != a.thinking]
    return sum(slopes) / len(slopes) if slopes else None


def performance(points: list[Point]) -> float | None:
    return max((p.accuracy for p in points), default=None)


def share_within(thinking: list[float], bound: float | None) -> float | None:
    """The share of samples whose thinking is at most `bound` (None: no bound)."""
    if bound is None or not thinking:
        return None
    return sum(t <= bound for t in thinking) / len(thinking)


def summary(points: list[Point]) -> dict:
    return {"control": control(points), "scaling": scaling(points), "performance": performance(points),
            "settings": len(points), "scaling_unit": UNIT,
            "control_unit": "share of samples within their setting's bound, averaged over settings"}

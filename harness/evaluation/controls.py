"""How well a way of controlling test-time compute works: s1's three numbers for a curve (Muennighoff et
al. 2025, §3.2 and Table 3), a curve being the settings of one knob swept at fixed other settings.

- Control (eq. 1): the share of the curve's settings (runs) whose thinking stays within the setting's bound,
  (1/|A|) sum 1(a_min <= a <= a_max), a being the run's mean thinking tokens (s1 uses only a_max; so do we). A
  setting that states no bound (a class prompt without `eval.class_bounds`) is left out; a curve with none has
  no Control (None). A budget's bound is the budget itself, so budget forcing's Control is 1 by construction.
  `control_samples` is a second, separately named number: the share of *samples* within their setting's bound,
  averaged over the settings (it was this project's Control before issue 46; eq. 1 counts runs).
- Scaling: s1's definition, the mean over all C(|A|, 2) pairs of settings, ordered by their mean thinking
  tokens, of the slope (accuracy_b - accuracy_a) / (tokens_b - tokens_a), in accuracy points per 1,000 thinking
  tokens (s1 does not state a unit). The sum runs over pairs with b > a only, so a pair of settings with equal
  mean tokens adds nothing to it but still counts in the C(|A|, 2) of the denominator (the paper's definition;
  the earlier code left tied pairs out of the denominator too: 203.3 instead of 169.4 on the test's example).
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
    bound: float | None = None  # the thinking tokens the setting allows (a_max); None: it states none


def control(points: list[Point]) -> float | None:
    """s1's eq. 1: the share of bounded settings whose mean thinking tokens are at most the bound; None when no
    setting has one."""
    bounded = [p for p in points if p.bound is not None]
    return sum(p.thinking <= p.bound for p in bounded) / len(bounded) if bounded else None


def control_samples(points: list[Point]) -> float | None:
    """Mean over settings of the share of samples within the setting's bound (not s1's eq. 1, which counts
    settings); None when no setting has one."""
    shares = [p.within for p in points if p.within is not None]
    return sum(shares) / len(shares) if shares else None


def scaling(points: list[Point]) -> float | None:
    """Mean pairwise slope over all C(n, 2) pairs (a tied pair adds 0 to the sum), accuracy points per 1,000
    thinking tokens; None with fewer than two distinct token means."""
    pairs = list(itertools.combinations(sorted(points, key=lambda p: p.thinking), 2))
    slopes = [(b.accuracy - a.accuracy) * 100 / ((b.thinking - a.thinking) / 1000) for a, b in pairs
              if b.thinking > a.thinking]
    return sum(slopes) / len(pairs) if slopes else None


def performance(points: list[Point]) -> float | None:
    return max((p.accuracy for p in points), default=None)


def share_within(thinking: list[float], bound: float | None) -> float | None:
    """The share of samples whose thinking is at most `bound` (None: no bound)."""
    if bound is None or not thinking:
        return None
    return sum(t <= bound for t in thinking) / len(thinking)


def summary(points: list[Point]) -> dict:
    return {"control": control(points), "control_samples": control_samples(points), "scaling": scaling(points),
            "performance": performance(points), "settings": len(points), "scaling_unit": UNIT,
            "control_unit": "share of settings whose mean thinking tokens are within their bound (s1 eq. 1)",
            "control_samples_unit": "share of samples within their setting's bound, averaged over settings"}

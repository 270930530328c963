"""Problem samplers for RL: which training problems each rollout draws. Registered by name
(`RLConfig.sampler`); each keeps its own state (RNG, position, success rates), saved in
`trainer_state.pt` so that a resumed run draws what an uninterrupted one would.

- `shuffle`: epochs over a seeded shuffle (R1-Zero, DeepScaleR).
- `curriculum`: easy → hard by `Problem.meta["difficulty"]` (the testbed's n, MATH's level): the pool
  starts with the easiest `curriculum_start` fraction and grows linearly to all problems by
  `curriculum_until` of the run's steps; draws are uniform within the pool (Kimi k1.5 §2.3.4 describes
  "easier tasks first" and gives no schedule: this linear pacing is ours).
- `prioritized`: problem i drawn with probability ∝ 1 − s_i, s_i its running success rate (the mean
  reward-correctness over its attempts so far; unseen problems count as 0) (Kimi k1.5 §2.3.4).
- `curriculum_prioritized`: both: prioritised draws within the curriculum's pool.

Dynamic sampling (DAPO §3.2) is not a sampler but a filter over what a sampler's draws score:
`informative_groups` and `fill_informative` below, called by the RL loop when `dynamic_sampling` is on.

Interface: `draw(n, step) -> indices`, `update(indices, success)` after scoring (success in [0, 1]
per drawn problem: the mean accuracy of its group), `stats(indices)` for `train.jsonl`,
`state_dict()` / `load_state_dict()`.
"""
from __future__ import annotations

import math
import random
from typing import Callable

from ..registry import Registry

SAMPLERS = Registry("sampler")


def difficulty(problem) -> float | None:
    value = problem.meta.get("difficulty") if problem.meta else None
    return float(value) if value is not None else None


class _Base:
    def __init__(self, problems: list, seed: int):
        if not problems:
            raise ValueError("no training problems to sample from")
        self.problems = problems
        self.rng = random.Random(seed)

    def update(self, indices: list[int], success: list[float]) -> None:
        pass

    def stats(self, indices: list[int]) -> dict[str, float]:
        levels = [difficulty(self.problems[i]) for i in indices]
        levels = [x for x in levels if x is not None]
        return {"difficulty_mean": sum(levels) / len(levels)} if levels else {}

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])


@SAMPLERS.register("shuffle")
class ShuffleSampler(_Base):
    """Epochs over a fresh seeded shuffle; a rollout may straddle two epochs."""

    def __init__(self, problems: list, seed: int):
        super().__init__(problems, seed)
        self.order: list[int] = []

    def draw(self, n: int, step: int) -> list[int]:
        while len(self.order) < n:  # reshuffle each epoch over the training problems
            self.order += self.rng.sample(range(len(self.problems)), len(self.problems))
        picked, self.order = self.order[:n], self.order[n:]
        return picked

    def state_dict(self) -> dict:
        return {**super().state_dict(), "order": list(self.order)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.order = list(state["order"])


class _Weighted(_Base):
    """Shared by the curriculum and prioritised samplers: a pool and weights, drawn without replacement."""

    def __init__(self, problems: list, seed: int, steps: int, curriculum: bool, prioritized: bool,
                 curriculum_start: float = 0.25, curriculum_until: float = 0.5):
        super().__init__(problems, seed)
        self.steps = steps
        self.curriculum, self.prioritized = curriculum, prioritized
        self.start, self.until = curriculum_start, curriculum_until
        levels = [difficulty(p) for p in problems]
        if curriculum and any(x is None for x in levels):
            raise ValueError("the curriculum sampler needs Problem.meta['difficulty'] on every training problem")
        # easiest first; ties in a seeded random order so a level is not drawn in file order
        keys = [random.Random(f"{seed}-{i}").random() for i in range(len(problems))]
        self.by_difficulty = sorted(range(len(problems)), key=lambda i: ((levels[i] or 0.0), keys[i]))
        self.attempts = [0.0] * len(problems)
        self.successes = [0.0] * len(problems)

    def pool(self, step: int) -> list[int]:
        if not self.curriculum:
            return list(range(len(self.problems)))
        progress = min(1.0, step / max(1.0, self.until * self.steps))
        fraction = self.start + (1.0 - self.start) * progress
        return self.by_difficulty[:max(1, math.ceil(fraction * len(self.problems)))]

    def success_rate(self, i: int) -> float:
        return self.successes[i] / self.attempts[i] if self.attempts[i] else 0.0

    def weights(self, pool: list[int]) -> list[float]:
        if not self.prioritized:
            return [1.0] * len(pool)
        w = [1.0 - self.success_rate(i) for i in pool]
        return w if sum(w) > 0 else [1.0] * len(pool)  # everything solved: uniform again

    def draw(self, n: int, step: int) -> list[int]:
        pool = self.pool(step)
        weights = self.weights(pool)
        # weighted sampling without replacement (Efraimidis & Spirakis 2006): top-n of u^(1/w);
        # zero-weight problems come last, so they are drawn only when the rest run out
        keyed = [(self.rng.random() ** (1.0 / w) if w > 0 else -1.0, i) for i, w in zip(pool, weights)]
        keyed.sort(reverse=True)
        picked = [i for _, i in keyed[:n]]
        while len(picked) < n:  # a pool smaller than a rollout: draw again (with replacement across rounds)
            picked += [i for _, i in keyed[:n - len(picked)]]
        return picked

    def update(self, indices: list[int], success: list[float]) -> None:
        for i, s in zip(indices, success):
            self.attempts[i] += 1.0
            self.successes[i] += float(s)

    def stats(self, indices: list[int]) -> dict[str, float]:
        out = super().stats(indices)
        if self.prioritized:
            out["drawn_success_rate_mean"] = sum(self.success_rate(i) for i in indices) / len(indices)
        return out

    def state_dict(self) -> dict:
        return {**super().state_dict(), "attempts": list(self.attempts), "successes": list(self.successes)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.attempts, self.successes = list(state["attempts"]), list(state["successes"])


@SAMPLERS.register("curriculum")
def curriculum_sampler(problems: list, seed: int, *, steps: int, curriculum_start: float = 0.25,
                       curriculum_until: float = 0.5) -> _Weighted:
    return _Weighted(problems, seed, steps, True, False, curriculum_start, curriculum_until)


@SAMPLERS.register("prioritized")
def prioritized_sampler(problems: list, seed: int, *, steps: int) -> _Weighted:
    return _Weighted(problems, seed, steps, False, True)


@SAMPLERS.register("curriculum_prioritized")
def curriculum_prioritized_sampler(problems: list, seed: int, *, steps: int, curriculum_start: float = 0.25,
                                   curriculum_until: float = 0.5) -> _Weighted:
    return _Weighted(problems, seed, steps, True, True, curriculum_start, curriculum_until)


def informative_groups(rewards) -> list[bool]:
    """DAPO's dynamic-sampling filter (eq. 11: 0 < |{o_i correct}| < G): a group whose rewards are not all equal.
    rewards (P, G) -> P booleans. Such a group's advantages are all zero: it adds no gradient, only dilutes it."""
    return [bool(row.max() > row.min()) for row in rewards]


def fill_informative(draw: Callable[[int], object], target: int, max_draws: int) -> tuple[list[tuple[int, int]], int]:
    """Dynamic sampling with refill: `draw(k)` rolls out and scores the k-th batch of the step (rewards (P, G));
    batches are drawn until `target` informative groups are in hand or `max_draws` batches were drawn (verl's
    `max_num_gen_batches`). Returns the kept (batch, group) pairs, the first `target` in draw order, and the
    number of batches drawn."""
    if max_draws < 1 or target < 1:
        raise ValueError(f"fill_informative needs target >= 1 and max_draws >= 1, got {target} and {max_draws}")
    kept: list[tuple[int, int]] = []
    k = 0
    while len(kept) < target and k < max_draws:
        kept += [(k, p) for p, ok in enumerate(informative_groups(draw(k))) if ok]
        k += 1
    return kept[:target], k

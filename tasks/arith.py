"""`arith`: procedurally generated one- and two-step arithmetic word problems, fully offline.

The default training and held-out task: a small model can visibly learn it on a CPU in minutes
(SmolLM2-135M-Instruct solves ~20% and almost never writes `\\boxed{}` before training). Problems
come from a seeded generator; the `train` and `test` splits use different seed streams and the
test split drops any question that also occurs in the first 100,000 training problems.
"""
from __future__ import annotations

import random
from pathlib import Path

from .base import Problem, Source, Task, TaskError, sha256_problems

NAMES = ["Ava", "Ben", "Chloe", "Dev", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack", "Lena", "Omar", "Priya", "Sam"]
ITEMS = ["apples", "marbles", "stickers", "books", "pencils", "cookies", "coins", "stamps", "cards", "shells"]


def _one(rng: random.Random) -> tuple[str, int, int]:
    """(question, answer, steps): kinds 0-3 take one operation, kinds 4-5 two (the difficulty)."""
    question, answer = _question(rng)
    return question, answer, 2 if ("then" in question or "already had" in question) else 1


def _question(rng: random.Random) -> tuple[str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    kind = rng.randrange(6)
    a, b = rng.randint(2, 60), rng.randint(2, 40)
    if kind == 0:
        return f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?", a + b
    if kind == 1:
        a, b = max(a, b) + 5, min(a, b)
        return f"{name} has {a} {item} and gives away {b}. How many {item} are left?", a - b
    if kind == 2:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return f"{name} buys {a} bags with {b} {item} in each bag. How many {item} does {name} buy?", a * b
    if kind == 3:
        b, q = rng.randint(2, 9), rng.randint(2, 12)
        return f"{name} shares {b * q} {item} equally among {b} friends. How many {item} does each friend get?", q
    if kind == 4:
        c = rng.randint(1, min(a + b - 1, 30))
        return (f"{name} has {a} {item}, finds {b} more, then loses {c}. How many {item} does {name} have now?",
                a + b - c)
    a, b, c = rng.randint(2, 9), rng.randint(2, 12), rng.randint(1, 20)
    return (f"{name} buys {a} boxes of {b} {item} and already had {c}. How many {item} does {name} have in total?",
            a * b + c)


def generate(split: str, n: int, seed: int = 0) -> list[Problem]:
    if split not in ("train", "test"):
        raise ValueError(f"arith split must be 'train' or 'test', got {split!r}")
    rng = random.Random(f"arith-{split}-{seed}")
    exclude: set[str] = set()
    if split == "test":
        train_rng = random.Random(f"arith-train-{seed}")
        exclude = {_one(train_rng)[0] for _ in range(100_000)}
    problems, seen = [], set()
    while len(problems) < n:
        question, answer, steps = _one(rng)
        if question in exclude or question in seen:
            continue
        seen.add(question)
        problems.append(Problem(f"arith-{split}-{len(problems)}", question, str(answer), meta={"difficulty": steps}))
    return problems


class Arith(Task):
    name = "arith"
    description = "procedural one/two-step arithmetic word problems (offline, seeded; default task)"
    sizes = {"train": 5000, "test": 500}  # eval.limit takes a subset of the test split

    def load(self, data_dir: Path | None = None, split: str = "test"):
        if split not in self.sizes:
            raise TaskError(f"arith has splits {sorted(self.sizes)}, not {split!r}")
        problems = generate(split, self.sizes[split])
        return problems, Source("generated", f"rzoo.tasks.arith split={split} n={len(problems)}",
                                sha256_problems(problems))


TASK = Arith()

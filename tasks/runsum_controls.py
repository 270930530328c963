"""The testbed's reading of s1's test-time controls (s1 §3.2, Appendix E): how its prompts word them, and
the `conditional` traces that teach a testbed model to follow them the way s1 trained its conditional
models (simplescaling/s1 @0eb8493f, data/utils/string_utils.py).

A trace thinks for L tokens, L drawn uniformly from 1..n+4 for a problem of n digits: a chain cut after L
running sums answers the partial sum (a guess) and a longer one re-checks the final sum. One example in four
of each kind:

- plain (no instruction): the minimal chain (budget forcing's curve, and rejection sampling's, read these);
- token-conditional: "Think for up to N tokens." with N the power of two above L (s1's
  `2 ** L.bit_length()`);
- step-conditional: "Think for up to N steps." with the chain in steps of 4 running sums, each step opened
  by the count of steps left (s1: "3 steps left\\n" before each step, counting down from N, the power of two
  above the number of steps); a step is 5 tokens (`STEP_TOKENS`, the `eval.step_tokens` to evaluate with).
  The prompt's digit slots are grouped the same way ("|" before every 4 of 11 slots: the 14 tokens of the
  plain prompt), so that each running sum sits at the plain prompt's distance from the digit it reads. Two
  first builds did not learn the chain (accuracy 0.07-0.13 at every bound): with the countdown alone that
  distance grew by one at every step; with the 14 slots grouped (18 tokens) it was 4 more than the plain
  prompt's, and the model kept reading at the plain distance. A step trace thinks for 1..n+1 tokens (11
  slots: at most one re-check);
- class-conditional: "Think briefly." (L from 1..min(n, 5): cut chains) or "Think thoroughly." (the chain
  and 1-4 re-checks), bounds 5 and 14 (`CLASS_BOUNDS`, the `eval.class_bounds` to evaluate with).

Departures (the testbed's miniature: a character-level 0.44M model with 128 positions): the instruction
goes *before* the digit slots, so that chain step i still reads digit i at a fixed distance (the module
docstring of `runsum.py`; after the question, each bound's width would move it); the class prompts are
short ("Think briefly." / "Think thoroughly."; s1's are 100-200 characters); the countdown is the bare
count ("3", one token), not "3 steps left" on a line of its own.
"""
from __future__ import annotations

import random

STEP = 4  # running sums per step
STEP_TOKENS = STEP + 1  # a step's sums and its countdown token
CLASS_BOUNDS = {"short": 5, "long": 14}
CLASS_TEXT = {"short": "Think briefly.", "long": "Think thoroughly."}
KINDS = ("plain", "token_bound", "step_bound", "think_class")


def instruction(control: str, value) -> str:
    """The testbed's wording of a control's instruction."""
    if control == "token_bound":
        return f"Think for up to {value} tokens."
    if control == "step_bound":
        return f"Think for up to {value} steps."
    if control == "think_class":
        if value not in CLASS_TEXT:
            raise ValueError(f"the testbed's thinking classes are {', '.join(CLASS_TEXT)}, not {value!r}")
        return CLASS_TEXT[value]
    raise ValueError(f"the testbed has no wording for the control {control!r}")


STEP_SLOTS = 11  # slots of a step prompt: with a "|" before every STEP of them, the plain prompt's 14 tokens


def group_slots(slots: str) -> str:
    """The digit slots (" 3 7 _ ...") cut to `STEP_SLOTS` (the dropped ones are always padding: n <= 10) in
    steps of `STEP`, each opened by "|": the layout of a step trace, as long as the plain slots."""
    tokens = slots.split(" ")[1:]
    if any(t != "_" for t in tokens[STEP_SLOTS:]):
        raise ValueError(f"a step prompt holds at most {STEP_SLOTS - 1} digits")
    tokens = tokens[:STEP_SLOTS]
    return "".join("|" + "".join(" " + t for t in tokens[i:i + STEP]) for i in range(0, len(tokens), STEP))


def place(messages: list[dict], control: str, value) -> list[dict]:
    """`messages` with the instruction before the digit slots of the (last) user message (grouped in steps
    for a step bound)."""
    out = [dict(m) for m in messages]
    last = max(i for i, m in enumerate(out) if m["role"] == "user")
    slots = out[last]["content"]
    if control == "step_bound":
        slots = group_slots(slots)
    out[last]["content"] = f"{instruction(control, value)}\n{slots}"
    return out


def power_above(x: int) -> int:
    """s1's bound for a length: the power of two above it (`2 ** x.bit_length()`)."""
    return 2 ** x.bit_length()


def _cut(sums: list[str], length: int) -> tuple[list[str], str]:
    """(the first `length` chain tokens, the answer): a chain cut short answers its last sum, a longer one
    re-checks the final sum."""
    n = len(sums)
    if length <= n:
        return sums[:length], sums[length - 1]
    return sums + [sums[-1]] * (length - n), sums[-1]


def countdown(tokens: list[str], bound: int) -> str:
    """The chain in steps of `STEP` tokens, each opened by the steps left (from `bound`, counting down)."""
    steps = [tokens[i:i + STEP] for i in range(0, len(tokens), STEP)]
    return "".join(str(bound - i) + "".join(" " + t for t in step) for i, step in enumerate(steps))


def trace(sums: list[str], rng: random.Random, recheck_max: int, patience: int):
    """(kind, value, thinking, answer) for one problem's running sums: one of `KINDS`, drawn uniformly."""
    kind = rng.choice(KINDS)
    n = len(sums)
    length = rng.randint(1, n + recheck_max)
    if kind == "plain":
        return kind, None, "".join(" " + s for s in sums), sums[-1]
    if kind == "think_class":
        value = rng.choice(sorted(CLASS_TEXT))
        length = rng.randint(1, min(n, patience)) if value == "short" else n + rng.randint(1, recheck_max)
        tokens, answer = _cut(sums, length)
        return kind, value, "".join(" " + t for t in tokens), answer
    if kind == "token_bound":
        tokens, answer = _cut(sums, length)
        return kind, power_above(length), "".join(" " + t for t in tokens), answer
    tokens, answer = _cut(sums, rng.randint(1, n + 1))  # at most one re-check: the step prompt has 11 slots
    steps = -(-len(tokens) // STEP)
    bound = power_above(steps)
    return kind, bound, countdown(tokens, bound), answer

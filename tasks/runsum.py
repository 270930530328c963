"""`runsum`: the testbed. A procedural task where thinking tokens buy accuracy, and traces to train on.

A problem is n digits (n in 2..10 by default; `n` is its difficulty); the answer is their sum mod 10.
A short written chain of running sums solves it; a direct answer mostly cannot for larger n:

    prompt    3 7 1 _ _ _ _ _ _ _ _ _ _ _      14 digit slots, padded: one token each (" 3", " _")
    thinking  3 0 1                           running sums mod 10, one token each (" 3")
    answer   \\boxed{1}

Why this shape (learnability is a design constraint): chain step i reads digit i at a fixed offset,
because the prompt always has the same number of slots and a slot and a step are one token each
(the space is part of the digit's token). Measured with the testbed model: this layout is learned
(teacher-forced digit accuracy 1.0) by step ~700 of batch 64, while the same chain with the space as a
separate token stayed at 0.33 after 1,000 steps; digits at a varying offset were not learned in
2,500 steps (the s1 issue). What lengthens a chain keeps the offset: a re-check step runs into the
padding slots, where "_" adds 0, so it repeats the final sum. "Wait" (s1's extension) is one token
and does take a slot: after it, each step reads its digit one slot further back, which the
`early_stop` traces teach (they contain Waits mid-chain).

Trace variants from one generator (`examples(variant)`), for the methods that build on the testbed:
- `minimal`: the n running sums (the testbed model's first build).
- `redundant`: the minimal chain followed by 1-4 re-checks of the final sum (what Kimi's length
  penalty and CoT-Valve compress).
- `early_stop`: a thinker with limited patience. A chain longer than 5 steps stops after 5 and
  answers the partial sum (a guess) in 60% of the traces; in the other 40% it writes "Wait" there and
  goes on to the end (the self-correction s1K's traces are full of). A finished chain is followed by
  "Wait" and one re-check of the final sum in 30% of the traces. Greedy decoding of a model trained on
  these stops at 5 steps; budget forcing's "Wait" (s1) makes it go on -- and RL can teach it to.
- `no_chain`: no thinking at all, the answer directly (latent recurrence).
- `conditional`: s1's test-time controls: a bound in tokens or steps, or a thinking class, stated in the
  prompt, with traces of that length (`runsum_controls.py`), beside plain minimal chains.
- `mixed`: R1-Zero's mixed languages (DeepSeek-R1 §2.3). The `early_stop` traces with every chain step
  written in one of two "languages": the running sum as " 3" (the target) or as one letter token "D" (the
  same value in a second, disjoint token set: 0-9 as A-J). A chain starts in the target language and
  changes language before each step with chance 0.25, so the other language comes in runs, the way R1-Zero
  wrote whole sentences in Chinese. The answer is always a digit. `harness/training/language.py` measures
  the share (language `testbed`).
- `mixchain`: CoT-Valve's MixChain, chains of several lengths for the same question: the minimal chain
  and the chain with 1..4 re-checks, five examples per problem (`meta`: `question`, `rechecks`).
A fifth of the examples end with the forced close's cue (`Final Answer:\\boxed{..}`), so the model
answers after budget forcing the way it answers after its own close.

Splits (`train`, `validation`, `test`) are seeded and never share a problem: a problem's split is
fixed by a hash of its digits. The test split has 500 problems.
"""
from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

from rzoo.harness.data import Example, Grade, Problem, SFTData, Source
from rzoo.harness.generation.steps import StepRule

from .base import Task, TaskError, sha256_problems

N_MIN, N_MAX = 2, 10
RECHECKS = 4  # at most this many re-check steps in a redundant chain
PATIENCE = 5  # early_stop traces: where a long chain stops (or writes "Wait")
SLOTS = N_MAX + RECHECKS  # digit slots in every prompt
PAD = "_"
SIZES = {"train": 20000, "validation": 200, "test": 500}
VARIANTS = ("minimal", "redundant", "early_stop", "no_chain", "mixchain", "conditional", "mixed")
SECOND_LANGUAGE = "ABCDEFGHIJ"  # `mixed` traces: the value d written as one letter token, SECOND_LANGUAGE[d]
SWITCH = 0.25  # `mixed` traces: the chance that the next step changes language
FORCED_CUE = "Final Answer:"
_BOX = re.compile(r"\\boxed\{([^{}]*)\}")


def split_of(digits: str) -> str:
    """A problem's split, fixed by its digits: 10% test, 5% validation, the rest train."""
    bucket = int(hashlib.sha256(digits.encode()).hexdigest()[:8], 16) % 20
    return "test" if bucket < 2 else "validation" if bucket == 2 else "train"


def prompt_text(digits: str) -> str:
    return "".join(" " + c for c in list(digits) + [PAD] * (SLOTS - len(digits)))


def chain(sums: list[str]) -> str:
    return "".join(" " + s for s in sums)


def running_sums(digits: str) -> list[int]:
    out, s = [], 0
    for d in digits:
        s = (s + int(d)) % 10
        out.append(s)
    return out


def generate(split: str, size: int, seed: int = 0, n_min: int = N_MIN, n_max: int = N_MAX) -> list[Problem]:
    """`size` problems of `split` (unique within the split), n drawn uniformly from n_min..n_max; a
    length whose share of the split is used up is drawn again (the smallest n have few problems)."""
    if split not in SIZES:
        raise TaskError(f"runsum has splits {', '.join(SIZES)}, not {split!r}")
    rng = random.Random(f"runsum-{split}-{seed}")
    seen: set[str] = set()
    exhausted: set[int] = set()
    problems = []
    while len(problems) < size:
        lengths = [n for n in range(n_min, n_max + 1) if n not in exhausted]
        if not lengths:
            raise TaskError(f"runsum: only {len(problems)} {split} problems exist for n in {n_min}..{n_max}")
        n = rng.choice(lengths)
        for _ in range(200):
            digits = "".join(rng.choice("0123456789") for _ in range(n))
            if digits not in seen and split_of(digits) == split:
                break
        else:
            exhausted.add(n)
            continue
        seen.add(digits)
        problems.append(Problem(f"runsum-{split}-{len(problems)}", prompt_text(digits),
                                str(running_sums(digits)[-1]), meta={"n": n, "difficulty": n, "digits": digits}))
    return problems


def trace(problem: Problem, variant: str, rng: random.Random) -> tuple[str, str]:
    """(thinking, answer) for one problem in one trace variant (see the module docstring)."""
    sums = [str(s) for s in running_sums(problem.meta["digits"])]
    answer = sums[-1]
    if variant == "minimal":
        thinking = chain(sums)
    elif variant == "redundant":
        thinking = chain(sums + [answer] * rng.randint(1, RECHECKS))
    elif variant == "early_stop":
        thinking = chain(sums)
        if len(sums) > PATIENCE:
            if rng.random() < 0.6:  # stop at the limit of patience and guess the partial sum
                thinking, answer = chain(sums[:PATIENCE]), sums[PATIENCE - 1]
            else:  # "Wait", and go on
                thinking = chain(sums[:PATIENCE]) + "Wait" + chain(sums[PATIENCE:])
        if answer == sums[-1] and rng.random() < 0.3:  # a finished chain, re-checked once after "Wait"
            thinking += "Wait" + chain([answer])
    elif variant == "no_chain":
        thinking = ""
    elif variant == "mixed":
        thinking, answer = trace(problem, "early_stop", rng)
        return mix_languages(thinking, rng), answer
    else:
        raise TaskError(f"runsum has trace variants {', '.join(VARIANTS)}, not {variant!r}")
    cue = FORCED_CUE if rng.random() < 0.2 else ""
    return thinking, f"{cue}\\boxed{{{answer}}}"


def mix_languages(thinking: str, rng: random.Random, switch: float = SWITCH) -> str:
    """`thinking` with its chain steps (" 3") written in the second language ("D") in runs: the chain starts in
    the target language and changes language before each step with chance `switch`; "Wait" is kept."""
    out, second = [], False
    for piece in re.findall(r" \d|Wait", thinking):
        if piece == "Wait":
            out.append(piece)
            continue
        if out and rng.random() < switch:
            second = not second
        out.append(SECOND_LANGUAGE[int(piece[1])] if second else piece)
    return "".join(out)


def _cue(rng: random.Random) -> str:
    return FORCED_CUE if rng.random() < 0.2 else ""


class RunSum(Task):
    name = "runsum"
    family = None  # its own prompt format under every protocol
    description = "the testbed: sum mod 10 of n digits (n = difficulty 2-10); running sums buy accuracy"
    steps = StepRule(None, 1)  # a step is one token: a running sum (" 3", or "D" in the second language), or "Wait"

    def load(self, data_dir: Path | None = None, split: str = "test") -> tuple[list[Problem], Source]:
        problems = generate(split, SIZES.get(split, 0))
        return problems, Source("generated", f"rzoo.tasks.runsum split={split} n={len(problems)}",
                                sha256_problems(problems))

    def messages(self, problem: Problem) -> list[dict]:
        return [{"role": "user", "content": problem.question}]

    def instruct(self, messages: list[dict], control: str, value, text: str) -> list[dict]:
        """A control's instruction in the testbed's words, before the digit slots (`runsum_controls.py`; s1's
        `text` is not used: the testbed model reads its own compact form)."""
        from .runsum_controls import place

        return place(messages, control, value)

    def countdown_zero(self, thinking: str) -> int | None:
        """The testbed's countdown is a bare digit token opening each step of 4 running sums (" d" tokens):
        "2 3 7 1 01 5 ..." (`runsum_controls.countdown`). Its zero is a "0" opening a step, after whole steps
        from the start; anything else (a "\\boxed{0" the model writes inside its thinking) is not a countdown."""
        from .runsum_controls import STEP

        steps = re.match(rf"(?:\d(?: \d){{{STEP}}})*", thinking)
        return steps.end() if thinking[steps.end():steps.end() + 1] == "0" else None

    def step_labels(self, problem: Problem, steps: list[str]) -> list[bool]:
        """Exact step labels: the j-th value written (" 3" or its letter "D") must be the running sum of the first
        j + 1 digits (the final sum once every digit is read: a re-check); "Wait" changes nothing; anything else is
        wrong. A step is good while every step up to it is (the chain is still right)."""
        sums = running_sums(problem.meta["digits"])
        out, good, j = [], True, 0
        for step in steps:
            text = step.strip()
            if text != "Wait":
                value = int(text) if len(text) == 1 and text.isdigit() else (
                    SECOND_LANGUAGE.index(text) if len(text) == 1 and text in SECOND_LANGUAGE else None)
                good = good and value == sums[min(j, len(sums) - 1)]
                j += 1
            out.append(good)
        return out

    def grade(self, problem: Problem, answer_text: str) -> Grade:
        boxes = _BOX.findall(answer_text)
        extracted = boxes[-1].strip() if boxes else None
        return Grade(extracted == problem.answer, extracted)

    def score(self, problem: Problem, answer_text: str) -> float:
        return 1.0 if self.grade(problem, answer_text).correct else 0.0

    def state_targets(self, tokenizer, ids: list[int], example: Example) -> list[int]:
        """Intermediate results to supervise inside one tokenized example (latent recurrence's chain
        supervision, `methods/latent.py`): at every position from the first digit slot up to the one before
        the answer digit's prediction, the token of the running sum of the digits read so far (" 3"; the
        final sum past the last digit); -100 elsewhere. Positions count from 0 in `ids`."""
        digits = example.meta.get("digits")
        if not digits:
            raise TaskError(f"runsum example {example.id} has no digits in its meta")
        def find(piece: list[int], last: bool = False) -> int:
            starts = [i for i in range(len(ids) - len(piece) + 1) if ids[i:i + len(piece)] == piece]
            if not starts:
                raise TaskError(f"runsum example {example.id}: {tokenizer.decode(piece)!r} not found in its tokens")
            return starts[-1] if last else starts[0]
        start = find(tokenizer.encode(prompt_text(digits), add_special_tokens=False))
        box = tokenizer.encode("\\boxed{", add_special_tokens=False)
        answer = find(box, last=True) + len(box)  # the answer's first token, predicted at answer - 1
        sums = [tokenizer.encode(f" {s}", add_special_tokens=False) for s in running_sums(digits)]
        if any(len(t) != 1 for t in sums):
            raise TaskError("runsum state targets need one token per running sum (' 3'); this tokenizer splits them")
        out = [-100] * len(ids)
        for p in range(start, answer - 1):
            out[p] = sums[min(p - start, len(sums) - 1)][0]
        return out

    def examples(self, variant: str, split: str = "train", seed: int = 0) -> SFTData:
        """SFT examples of one trace variant over the split's problems (seeded)."""
        if variant not in VARIANTS:
            raise TaskError(f"runsum has trace variants {', '.join(VARIANTS)}, not {variant!r}")
        problems, source = self.load(None, split)
        rng = random.Random(f"runsum-traces-{variant}-{split}-{seed}")
        examples = []
        for p in problems:
            if variant == "mixchain":
                sums = [str(s) for s in running_sums(p.meta["digits"])]
                for r in range(RECHECKS + 1):
                    examples.append(Example(f"{p.id}-r{r}", self.messages(p), chain(sums + [sums[-1]] * r),
                                            f"\\boxed{{{sums[-1]}}}", meta={**p.meta, "question": p.id, "rechecks": r}))
                continue
            if variant == "conditional":
                examples.append(self._conditional(p, rng))
                continue
            thinking, answer = trace(p, variant, rng)
            examples.append(Example(p.id, self.messages(p), thinking, answer, meta=dict(p.meta)))
        blob = "\n".join(f"{e.id}\t{e.messages[-1]['content']}\t{e.thinking}\t{e.answer}"
                         if variant == "conditional" else f"{e.id}\t{e.thinking}\t{e.answer}"
                         for e in examples).encode()
        return SFTData(f"runsum:{variant}", examples,
                       Source("generated", f"rzoo.tasks.runsum traces variant={variant} split={split}",
                              hashlib.sha256(blob).hexdigest()), task=self)


    def _conditional(self, p: Problem, rng: random.Random) -> Example:
        """One `conditional` example (`runsum_controls.trace`): the instruction in the prompt, the trace, and
        the forced close's cue in a fifth of them, as in the other variants."""
        from .runsum_controls import place, trace as conditional_trace

        kind, value, thinking, answer = conditional_trace([str(s) for s in running_sums(p.meta["digits"])], rng,
                                                          RECHECKS, PATIENCE)
        messages = self.messages(p) if value is None else place(self.messages(p), kind, value)
        return Example(p.id, messages, thinking, f"{_cue(rng)}\\boxed{{{answer}}}",
                       meta={**p.meta, "control": kind, "value": value})


TASK = RunSum()

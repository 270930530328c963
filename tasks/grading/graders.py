"""Graders as data of a protocol: which text of a reply is read, how the answer is extracted and how it is
checked, one registered pure function per paper's grader (`harness/evaluation/protocols/*.json` name one per
task family, `graders`). Each takes the reply (`rzoo.harness.data.Reply`: the thinking, the text after the
block, whether the block closed) and the gold, and returns a `Verdict` (correct, what it read).

| name | reads | extraction and check | source |
|---|---|---|---|
| `rzoo` | the text after the block | this project's: `verdict.math_verdict` (answer spans + math-verify) and `choice.choice_letter` | this project |
| `simple_evals` | the text after the block (the API's message content) | the *first* `Answer: X` (`(?i)Answer[ \\t]*:[ \\t]*\\$?([A-D])\\$?`), compared as written with the gold letter; nothing else counts (a bare `\\boxed{B}` is no answer) | openai/simple-evals `common.py` ANSWER_PATTERN_MULTICHOICE, `gpqa_eval.py` (DeepSeek-R1 evaluates GPQA with it) |
| `lighteval` | the whole output: thinking (cut off or not), close and answer | math-verify's `parse` (`LatexExtractionConfig(boxed_match_priority=0)`, `ExprExtractionConfig()`) and `verify` against the gold | huggingface/lighteval @d3da6b9b `metrics/dynamic_metrics.py` (multilingual_extractive_match_metric), the math metrics open-r1 runs |
| `rllm` | the text after the first `</think>` (none: wrong) | the last `\\boxed{}`, then mathd or sympy (`rllm_check.py`); a list of golds: any | agentica-project/rllm `rllm/rewards/math_reward.py`, `math_utils/utils.py` |
| `s1` | the text after the block | plain math-verify (`parse` + `verify`), a **substitute** for s1's gpt-4o-mini judge (no network call) | simplescaling/s1 lm-eval tasks (the judge); math-verify in its place |

Multiple choice where a paper's grader has no rule of its own (`lighteval`'s IndicesExtractionConfig is not
installed here, `rllm` has no choice task, s1's judge) reads letters with this project's `choice_letter`, on the
text the grader reads (`lighteval`: the whole output); each is stated in the grader's `choice_note`.

Every grader never raises and runs under the project's time limit (`timelimit.py`). Case files:
`cases/graders.jsonl` (one line per reply x grader, with the published rule it follows).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from rzoo.harness.data import Reply

from . import timelimit
from .verdict import TIME_LIMIT_S, Verdict


@dataclass(frozen=True)
class Grader:
    name: str
    description: str
    source: str
    math: Callable[[Reply, tuple[str, ...]], Verdict]
    choice: Callable[[Reply, str, str], Verdict]
    choice_note: str = ""


GRADERS: dict[str, Grader] = {}


def register(grader: Grader) -> Grader:
    if grader.name in GRADERS:
        raise ValueError(f"grader {grader.name!r} is already registered")
    GRADERS[grader.name] = grader
    return grader


def get(name: str) -> Grader:
    if name not in GRADERS:
        raise KeyError(f"unknown grader {name!r}; registered: {', '.join(sorted(GRADERS))}")
    return GRADERS[name]


def names() -> list[str]:
    return sorted(GRADERS)


def _limited(fn, *args) -> Verdict:
    try:
        return timelimit.run(fn, *args, seconds=TIME_LIMIT_S)
    except timelimit.GradingTimeout:
        return Verdict(False, None, timed_out=True)
    except Exception:  # noqa: BLE001 - a grader bug must cost one sample, never an evaluation
        return Verdict(False, None)


# ------------------------------------------------------------------------------------------------ rzoo


def rzoo_math(reply: Reply, golds: tuple[str, ...]) -> Verdict:
    from .verdict import math_verdict

    if not reply.closed:
        return Verdict(False, None)
    first = None
    for gold in golds:
        v = math_verdict(reply.answer, gold)
        if v.correct:
            return v
        first = first or v
    return first or Verdict(False, None)


def rzoo_choice(reply: Reply, gold: str, letters: str) -> Verdict:
    from .choice import choice_letter

    if not reply.closed:
        return Verdict(False, None)
    letter = choice_letter(reply.answer, letters)
    return Verdict(letter == gold, letter)


def _letters_of(text: str, gold: str, letters: str) -> Verdict:
    from .choice import choice_letter

    letter = choice_letter(text, letters)
    return Verdict(letter == gold, letter)


# ------------------------------------------------------------------------------------------------ simple-evals

SIMPLE_EVALS_MC = re.compile(r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?")


def simple_evals_choice(reply: Reply, gold: str, letters: str) -> Verdict:
    """The first `Answer: X` of the message; the letter as matched (`answer: c` reads `c`, which is not `C`)."""
    if not reply.closed:
        return Verdict(False, None)
    m = SIMPLE_EVALS_MC.search(reply.answer)
    letter = m.group(1) if m else None
    return Verdict(letter == gold, letter)


def simple_evals_math(reply: Reply, golds: tuple[str, ...]) -> Verdict:
    raise ValueError("simple_evals grades multiple choice only; name another grader for math")


# ------------------------------------------------------------------------------------------------ math-verify


def _math_verify(text: str, golds: tuple[str, ...]) -> Verdict:
    from .verdict import _configs, _parse, _verify, read_gold

    pred_cfg, _ = _configs()
    pred = _parse(text, pred_cfg)
    if not pred:
        return Verdict(False, None)
    extracted = str(pred[-1]) if len(pred) > 1 else str(pred[0])
    for gold in golds:
        parsed = read_gold(gold).parsed  # math-verify's reading of the gold, as a box first (bare LaTeX golds)
        if parsed and _verify(parsed, pred):
            return Verdict(True, extracted)
    return Verdict(False, extracted)


def lighteval_math(reply: Reply, golds: tuple[str, ...]) -> Verdict:
    """math-verify over the whole output, thinking included, closed or cut off."""
    return _limited(_math_verify, reply.whole(), golds)


def lighteval_choice(reply: Reply, gold: str, letters: str) -> Verdict:
    return _letters_of(reply.whole(), gold, letters)


def s1_math(reply: Reply, golds: tuple[str, ...]) -> Verdict:
    """Plain math-verify on the text after the block (the substitute for s1's gpt-4o-mini judge)."""
    if not reply.closed:
        return Verdict(False, None)
    return _limited(_math_verify, reply.answer, golds)


# ------------------------------------------------------------------------------------------------ rllm


def _rllm(reply: Reply, golds: tuple[str, ...]) -> Verdict:
    from .rllm_check import last_box, rllm_equal

    if not reply.closed:
        return Verdict(False, None)
    solution = reply.answer.split("</think>")[0]  # the text after the *first* </think>, up to any second one
    given = last_box(solution)
    return Verdict(rllm_equal(given, list(golds)), given)


def rllm_math(reply: Reply, golds: tuple[str, ...]) -> Verdict:
    return _limited(_rllm, reply, golds)


register(Grader("rzoo", "this project's: answer spans + math-verify after the block; the lenient letter reader",
                "tasks/grading/verdict.py, choice.py", rzoo_math, rzoo_choice))
register(Grader("simple_evals", "simple-evals: the first 'Answer: X' after the block (multiple choice only)",
                "openai/simple-evals common.py ANSWER_PATTERN_MULTICHOICE, gpqa_eval.py", simple_evals_math,
                simple_evals_choice))
register(Grader("lighteval", "lighteval (open-r1): math-verify over the whole output, thinking included",
                "huggingface/lighteval @d3da6b9b metrics (multilingual_extractive_match_metric)", lighteval_math,
                lighteval_choice, choice_note="letters: this project's reader over the whole output (lighteval's "
                "IndicesExtractionConfig is not installed here)"))
register(Grader("rllm", "rllm (DeepScaleR): the last box after the first </think>, mathd or sympy; any gold",
                "agentica-project/rllm rllm/rewards/math_reward.py, math_utils/utils.py", rllm_math, rzoo_choice,
                choice_note="letters: this project's reader (rllm has no multiple-choice task)"))
register(Grader("s1", "s1: math-verify after the block, a substitute for its gpt-4o-mini judge (no network call)",
                "simplescaling/s1 eval (gpt-4o-mini judge); math-verify in its place", s1_math, rzoo_choice,
                choice_note="letters: this project's reader (a substitute for the judge)"))

"""Grading: one pure function per answer kind, used by evaluation and as the RL reward.

`math_verdict(answer_text, gold)` reads the text after the thinking block only. Which span states
the answer, thousands separators and decimal commas are decided first (`answers.py`: the final
run of boxes, then bare LaTeX on the final line, then the whole text); math-verify then parses that
span (`LatexExtractionConfig(boxed_match_priority=0)` + `ExprExtractionConfig()`) and compares it
with the gold. The whole call runs under a time limit that works in any thread (`timelimit.py`;
math-verify's own `signal.alarm` timeouts are off), and it never raises: an answer or gold that
breaks the parser or sympy is graded by exact normalised string, else incorrect. A sympy-based
second opinion (`sympy_check.py`) is computed alongside; evaluation records where the two disagree.

Gold answers may be bare LaTeX (`\\frac{1}{2}`, MATH's `\\$32,\\!348`), LaTeX in `$...$`, or a text
with boxes (a solution, `\\boxed{1}\\boxed{2}`), read with the same rules as answers.

Known behaviour, by design (each has cases in `cases/math.jsonl`):
- several boxes joined only by connectors are one answer (`\\boxed{1}, \\boxed{2}` is {1, 2}, which
  matches a set, list or tuple gold and not a single number); boxes separated by anything else are
  a correction and the last one wins;
- the shape of the gold decides ambiguous number forms: against a list, tuple or interval gold a
  plain comma between digits always separates elements; against a single number `1,22` is 1.22
  and `12,345` is 12345; percentages compare either way (25\\% == 25 == 0.25, math-verify's rule);
- floats are compared after rounding to 6 decimals (math-verify's default), so 0.333 != 1/3 but
  0.3333333 == 1/3;
- letters are not math: multiple choice uses `choice_letter` (`choice.py`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from . import timelimit

from .answers import answer_spans, decimal_comma, final_box_run, join_thousands

TIME_LIMIT_S = 5.0  # per grading call; measured ~1-2 ms typical, 0.6 s worst seen


@dataclass(frozen=True)
class Verdict:
    correct: bool
    extracted: str | None  # what was read from the answer, for audit
    timed_out: bool = False


@lru_cache(maxsize=1)
def _configs():
    import math_verify.grader
    import math_verify.parser
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    # We run math-verify with its signal-based timeouts off and impose our own (timelimit.run), so
    # its one-time "timeout is disabled" warning does not apply.
    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True

    pred = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
    gold = (LatexExtractionConfig(), ExprExtractionConfig())
    return pred, gold


def _parse(text: str, config) -> list:
    from math_verify import parse

    try:
        return parse(text, extraction_config=config, parsing_timeout=None)
    except Exception:  # noqa: BLE001 - latex2sympy / sympy raise anything on odd input; unparsed it is
        return []


@dataclass(frozen=True)
class Gold:
    text: str  # the gold as read (delimiters and boxes removed)
    parsed: list  # math-verify's reading, [] when it has none
    single_number: bool  # one number: decimal commas and plain thousands commas apply to the answer
    collection: bool  # a list, tuple, set or interval: plain commas in the answer separate elements


def _unwrap(gold: str) -> str:
    """The gold's LaTeX without surrounding `$`, `$$`, `\\(..\\)`, `\\[..\\]`, or its final box run."""
    gold = gold.strip()
    run = final_box_run(gold)
    if run:
        return ", ".join(run)
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        inner = gold[len(left):-len(right)] if len(gold) > len(left) + len(right) else ""
        if gold.startswith(left) and gold.endswith(right) and left not in inner and "$" not in inner:
            return inner.strip()
    return gold


@lru_cache(maxsize=4096)
def read_gold(gold: str) -> Gold:
    """Gold answers are read as a boxed answer, then in math mode, then as plain text; the first
    form that parses wins. A gold with several `$...$` pieces ("$1$ and $2$") is read as written."""
    import sympy

    _, gold_cfg = _configs()
    text = join_thousands(_unwrap(gold))
    parsed: list = []
    has_math_mode = re.search(r"(?<!\\)\$", text) is not None  # "$1$ and $2$" (not MATH's `\$5`)
    tries = (text,) if has_math_mode else (f"\\boxed{{{text}}}", f"${text}$", text)
    for attempt in tries:
        parsed = _parse(attempt, gold_cfg)
        if parsed:
            break
    value = parsed[0] if parsed else None
    single = isinstance(value, sympy.Number) or (
        isinstance(value, sympy.Mul) and all(isinstance(a, sympy.Number) for a in value.args))  # 25\%
    collection = isinstance(value, (sympy.Tuple, sympy.Set)) and not (
        isinstance(value, sympy.FiniteSet) and len(value) == 1)
    return Gold(text, parsed, bool(single), bool(collection))


def _normalise(text: str) -> str:
    return "".join(text.split()).strip("$.").lower()


def _verify(gold: list, pred: list) -> bool:
    from math_verify import verify

    try:
        return bool(verify(gold, pred, timeout_seconds=None))
    except Exception:  # noqa: BLE001 - sympy raises on odd comparisons (`!=` golds): not equal
        return False


# An escaped dollar sign before a number is a currency sign (MATH's `\\$32,\\!348`, "She pays \\$10.50"), not
# math mode: it goes, so the number is read
_CURRENCY = re.compile(r"\\\$\s*(?=[\d.])")


def _math_verdict_unlimited(answer_text: str, gold: str) -> Verdict:
    pred_cfg, _ = _configs()
    g = read_gold(gold)
    answer_text = _CURRENCY.sub("", answer_text)
    text, pred = "", []
    for span in answer_spans(answer_text):  # the first span math-verify can read is the answer
        text = join_thousands(span.text, plain_commas=not g.collection)
        if g.single_number and span.source in ("boxed", "final-line"):
            text = decimal_comma(text)
        pred = _parse(text, pred_cfg)
        if pred:
            break
    if not pred:
        return Verdict(False, None)
    extracted = str(pred[-1]) if len(pred) > 1 else str(pred[0])
    if _normalise(extracted) == _normalise(g.text):
        return Verdict(True, extracted)
    if not g.parsed:  # math-verify cannot read the gold: the exact normalised string decides
        return Verdict(False, extracted)
    if _verify(g.parsed, pred):
        return Verdict(True, extracted)
    # Second readings of number forms that only the pair decides, never of which span is the answer:
    if _PERCENT.search(text) or _PERCENT.search(g.text):
        # MATH's convention, "12.5\\%" answers a gold of 12.5 (math-verify reads 0.125 only), and the
        # fraction, "50\\%" answers 0.5 (spelt out: latex2sympy's reading of `\\%` varies with antlr)
        for convert in (lambda t: _PERCENT.sub("", t), _percent_as_fraction):
            gold_alt = read_gold(convert(g.text))
            pred_alt = _parse(convert(text), pred_cfg)
            if gold_alt.parsed and pred_alt and _verify(gold_alt.parsed, pred_alt):
                return Verdict(True, extracted)
    if decimal_comma(g.text) != g.text and _is_number(pred[0]):
        # a gold written with a decimal comma ("1,22") against a single number: 1.22, not {1, 22}
        if _verify(read_gold(decimal_comma(g.text)).parsed, pred):
            return Verdict(True, extracted)
    return Verdict(False, extracted)


_PERCENT_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\\?%|\s*\b(?:percent(?:age)?|pct)\b)")


def _percent_as_fraction(text: str) -> str:
    return _PERCENT_NUMBER.sub(r"\\frac{\1}{100}", text)


def _is_number(value) -> bool:
    import sympy

    return isinstance(value, sympy.Number)


_PERCENT = re.compile(r"\\?%|\s*\b(?:percent(?:age)?|pct)\b")


def math_verdict(answer_text: str, gold: str, seconds: float = TIME_LIMIT_S) -> Verdict:
    """Is the math answer in `answer_text` equal to `gold`? Never raises (module doc)."""
    try:
        return timelimit.run(_math_verdict_unlimited, answer_text, gold, seconds=seconds)
    except timelimit.GradingTimeout:
        return Verdict(False, None, timed_out=True)
    except Exception:  # noqa: BLE001 - a grader bug must cost one sample, never an evaluation or RL run
        return Verdict(False, None)


def math_score(answer_text: str, gold: str) -> float:
    return 1.0 if math_verdict(answer_text, gold).correct else 0.0

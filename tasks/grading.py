"""Grading: one pure function per answer kind, used by evaluation and as the RL reward.

`math_verdict(answer_text, gold)` reads the text after the thinking block only, with math-verify.
Extraction order: the last `\\boxed{}` first, then a final-answer phrase, then the last expression
(`LatexExtractionConfig(boxed_match_priority=0)` + `ExprExtractionConfig()`). The whole call runs
under a time limit that works in any thread (`timelimit.py`; math-verify's own `signal.alarm`
timeouts are switched off). A sympy-based second opinion (`sympy_verdict`) is computed alongside;
evaluation counts and records where the two disagree.

Known behaviour, by design or left alone (each has a case in `cases/math.jsonl`):
- thousands separators `1\\,000`, `1{,}000`, `32,\\!348` are joined before parsing (math-verify
  otherwise reads `1\\,000` as a product), and `\\%` is dropped (MATH's convention);
- with several `\\boxed{}`, the last one is the answer (math-verify would join them into a tuple);
- floats are compared after rounding to 6 decimals (math-verify's default), so 0.333 != 1/3 but
  0.3333333 == 1/3;
- letters (A-D) are not math: multiple choice uses `choice_letter`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from . import timelimit

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

    pred = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    gold = [LatexExtractionConfig(), ExprExtractionConfig()]
    return pred, gold


_THOUSANDS = re.compile(r"(?<=\d)(?:\\,|\{,\}|,\\!|\\!|,)(?=\d{3}(?!\d))")


def join_thousands(text: str) -> str:
    """`1\\,000` / `1{,}000` / `32,\\!348` / `1,000` -> digits only (a comma before exactly three
    digits is read as a separator; `(1,2)` and `1,23` are left alone)."""
    previous = None
    while previous != text:  # 1,000,000 needs two passes
        previous, text = text, _THOUSANDS.sub("", text)
    return text


def _normalise_number_forms(text: str) -> str:
    """Applied to gold and answer alike: thousands separators joined, `\\%` dropped."""
    return join_thousands(text).replace("\\%", "")


def _parse(text: str, config):
    from math_verify import parse

    return parse(text, extraction_config=config, parsing_timeout=None)


@lru_cache(maxsize=4096)
def _parse_gold(gold: str):
    """Gold answers are bare LaTeX (`\\frac{1}{2}`, `\\$32,\\!348`): read them as a boxed answer,
    then in math mode, then as plain text; the first form that parses wins."""
    _, gold_cfg = _configs()
    gold = _normalise_number_forms(gold)
    for text in (f"\\boxed{{{gold}}}", f"${gold}$", gold):
        parsed = _parse(text, gold_cfg)
        if parsed:
            return parsed
    return []


def _normalise(text: str) -> str:
    return "".join(text.split()).strip("$.").lower()


def prepare_answer(answer_text: str) -> str:
    """What math-verify reads: from the last `\\boxed` on (it otherwise joins several boxes into a
    tuple), thousands separators joined, `\\%` dropped (MATH convention: 25\\% == 25)."""
    last = answer_text.rfind("\\boxed")
    if last > 0 and answer_text.count("\\boxed") > 1:
        answer_text = answer_text[last:]
    return _normalise_number_forms(answer_text)


def _math_verdict_unlimited(answer_text: str, gold: str) -> Verdict:
    from math_verify import verify

    pred_cfg, _ = _configs()
    gold_parsed = _parse_gold(gold)
    pred = _parse(prepare_answer(answer_text), pred_cfg)
    if not pred:
        return Verdict(False, None)
    extracted = str(pred[-1]) if len(pred) > 1 else str(pred[0])
    if not gold_parsed:  # math-verify cannot read the gold: compare the extracted string exactly
        return Verdict(_normalise(extracted) == _normalise(gold), extracted)
    return Verdict(bool(verify(gold_parsed, pred, timeout_seconds=None)), extracted)


def math_verdict(answer_text: str, gold: str, seconds: float = TIME_LIMIT_S) -> Verdict:
    try:
        return timelimit.run(_math_verdict_unlimited, answer_text, gold, seconds=seconds)
    except timelimit.GradingTimeout:
        return Verdict(False, None, timed_out=True)


def math_score(answer_text: str, gold: str) -> float:
    return 1.0 if math_verdict(answer_text, gold).correct else 0.0


# Multiple choice. math-verify's string extraction misses "(C)" and `\boxed{C}`, so letters get
# their own extractor. Order of trust: the last `\boxed{X}`; else the last "answer is / answer: X"
# style statement; else the last "(X)" / "X)" option reference; else a reply that is just a letter.
_BOXED_LETTER = re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?\(?([A-D])\)?\s*\}?\s*\}")
_STATED_LETTER = re.compile(
    r"(?:answer|choice|option)(?:\s*(?:is|:|=))*\s*(?:option\s*|choice\s*)?[\(\[]?\*{0,2}([A-D])\b(?![a-z])",
    re.IGNORECASE,
)
_PAREN_LETTER = re.compile(r"(?:^|[\s\(\[])\(?([A-D])\)(?=[\s.,;:!]|$)")
_ONLY_LETTER = re.compile(r"^\s*\**\(?([A-D])\)?\**[\s.]*$")


def choice_letter(answer_text: str) -> str | None:
    """The option letter (A-D) an answer states, or None. The final stated choice wins."""
    for pattern in (_BOXED_LETTER, _STATED_LETTER, _PAREN_LETTER, _ONLY_LETTER):
        found = pattern.findall(answer_text)
        if found:
            return found[-1].upper()
    return None

"""A second opinion on math answers, independent of math-verify: Hendrycks-style string
normalisation, then sympy equivalence on a small LaTeX-to-Python translation.

It is deliberately simple (no latex2sympy, which math-verify uses) so that where the two graders
disagree, one of them is probably wrong and a reader can look: evaluation counts disagreements and
writes them to `results.json`.
"""
from __future__ import annotations

import re

from . import timelimit


def braced(text: str, start: int) -> str | None:
    """Content of the first `{...}` at or after `start` (braces matched), or None when there is none or it is
    unclosed."""
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (braces matched), or None."""
    start = text.rfind("\\boxed")
    return braced(text, start) if start >= 0 else None


_LAST_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


def candidate(answer_text: str) -> str | None:
    """What the answer states: the last boxed content, else the last number."""
    boxed = last_boxed(answer_text)
    if boxed is not None:
        return boxed
    numbers = _LAST_NUMBER.findall(answer_text.replace(",", ""))
    return numbers[-1] if numbers else None


_DROP = [r"\\left", r"\\right", r"\\!", r"\\,", r"\\;", r"\\:", r"\\displaystyle", r"\^\{?\\circ\}?", r"\\%", "%",
         r"\\\$", r"\$", r"\\quad"]


def normalise(s: str) -> str:
    s = s.strip().replace("{,}", ",")
    for pattern in _DROP:
        s = re.sub(pattern, "", s)
    s = re.sub(r"\\text\{\s*([^}]*)\}", r"\1", s)
    s = re.sub(r"\\(?:mbox|mathrm|textbf)\{([^}]*)\}", r"\1", s)
    s = s.replace("dfrac", "frac").replace("tfrac", "frac")
    s = re.sub(r"^[a-zA-Z]\s*=\s*", "", s)  # "x = 5" -> "5"
    for _ in range(3):  # 1,000,000
        s = re.sub(r"(\d),(\d{3})(?!\d)", r"\1\2", s)
    s = re.sub(r"(?<![\d.])0+(?=\d)", "", s)  # 042 -> 42 (AIME answers are zero-padded)
    s = re.sub(r"\s+", "", s).rstrip(".")
    s = re.sub(r"(?<=\d)(?:units?|degrees?|cm|m|km|inches|feet|dollars|cents)$", "", s)
    return s


def _to_python(s: str) -> str:
    for _ in range(10):  # innermost first, until nothing changes
        before = s
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\frac(\d)(\d)", r"((\1)/(\2))", s)
        s = re.sub(r"\\sqrt\[([^{}]*)\]\{([^{}]*)\}", r"((\2)**(1/(\1)))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
        s = re.sub(r"\\sqrt(\d+)", r"sqrt(\1)", s)
        if s == before:
            break
    s = s.replace("\\pi", "pi").replace("\\infty", "oo").replace("\\cdot", "*").replace("\\times", "*")
    s = s.replace("^", "**").replace("{", "(").replace("}", ")")
    return s


def _equal_unlimited(pred: str, gold: str) -> bool:
    from sympy import N, simplify
    from sympy.parsing.sympy_parser import (convert_xor, implicit_multiplication_application, parse_expr,
                                            standard_transformations)

    a, b = normalise(pred), normalise(gold)
    if a == b:
        return True
    parts_a, parts_b = _split_top(a), _split_top(b)
    if len(parts_a) != len(parts_b):
        return False
    transformations = standard_transformations + (implicit_multiplication_application, convert_xor)
    for x, y in zip(parts_a, parts_b):
        if x == y:
            continue
        try:
            ex = parse_expr(_to_python(x), transformations=transformations)
            ey = parse_expr(_to_python(y), transformations=transformations)
            diff = simplify(ex - ey)
        except Exception:  # noqa: BLE001 - any parse failure of a free-form answer means "not equal"
            return False
        if diff == 0:
            continue
        try:
            if abs(complex(N(diff))) <= 1e-6 * max(1.0, abs(complex(N(ey)))):
                continue
        except Exception:  # noqa: BLE001 - relations (`x != 3`), sets, booleans have no number: not equal
            pass
        return False
    return True


def _split_top(s: str) -> list[str]:
    """Split "(1,2)" / "1,2" / "\\{1,2\\}" at top-level commas (ordered comparison)."""
    s = s.strip()
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        s = s[1:-1]
    s = s.replace("\\{", "").replace("\\}", "")
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def sympy_verdict(answer_text: str, gold: str, seconds: float = 5.0) -> bool:
    """True if the answer's stated value equals the gold by normalised string or sympy."""
    pred = candidate(answer_text)
    if pred is None:
        return False
    try:
        return bool(timelimit.run(_equal_unlimited, pred, gold, seconds=seconds))
    except timelimit.GradingTimeout:
        return False
    except Exception:  # noqa: BLE001 - the second opinion must never stop an evaluation
        return False

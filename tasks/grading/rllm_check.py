"""rllm's math check (DeepScaleR's reward and evaluation grader), written from its published rules:
agentica-project/rllm `rllm/rewards/math_reward.py` and `rllm/rewards/math_utils/utils.py`, which combine
Hendrycks' MATH normalisation (`mathd`) with PRM800K's sympy grader.

- The answer: the text after the *first* `</think>` (a reply without one is wrong), its *last* `\\boxed{}`
  (`\\fbox{}` where there is no box; `\\boxed X` up to a `$`), unwrapped; no box: wrong. A gold that holds a
  box is read the same way. A list of golds: right when any matches.
- `mathd_equal`: both sides through Hendrycks' `_strip_string` rules (a whole `\\text{...}` unwrapped, line
  breaks, `\\!`, `\\left` / `\\right`, degrees, `\\$`, one unit after `\\text{ `, `\\%` removed (a plain `%` stays);
  `tfrac` / `dfrac` to `frac`; a leading `x = ` (two characters at most) dropped; `\\sqrt3` -> `\\sqrt{3}`,
  `\\frac12` -> `\\frac{1}{2}`, `a/b` -> `\\frac{a}{b}`, `0.5` -> `\\frac{1}{2}`, `.5` -> `0.5`; spaces removed),
  then equal strings.
- `sympy_equal` (PRM800K's `grade_answer`, after the mathd comparison as rllm's `grade_answer_sympy` does):
  both normalised (`$`, `%`, units, `\\text{}`, thousands `,\\!` and `1,000`, "or"/"and" to commas, integral
  floats to integers, LaTeX to plain maths, digit-space-digit to `+` (mixed numbers), braces and spaces
  removed, lower case); equal strings are right; else a bracketed comma list with no bracket inside is split
  into elements (a several-element gold's brackets must be the answer's), the same count, and per element:
  two fractions `a/b` must be the same string (an unreduced fraction is not its value), an integer never
  equals a non-integer, else sympy must simplify `(gold) - (answer)` to 0 (not tried with more than two
  unknown letters, a `^{` / `^(`, or a power of two digits or more).

Departure: PRM800K's LaTeX-to-text step uses `pylatexenc`, not installed here: `_latex_to_text` below
covers what answers hold (`\\frac`, `\\sqrt`, `\\pi`, `\\infty`, `\\cdot`, `\\times`, `^`, `\\left`/`\\right`).
"""
from __future__ import annotations

import re

from .sympy_check import braced

THINK_END = "</think>"


def last_box(text: str) -> str | None:
    """rllm's `last_boxed_only_string` + `remove_boxed`: the content of the last `\\boxed{...}` (braces
    matched; `\\fbox{...}` only where there is no `\\boxed`), or, where the text writes `\\boxed X`, what follows
    the last `\\boxed ` up to a `$`; None when there is none or it is unclosed."""
    if "\\boxed " in text:
        return text.split("\\boxed ")[-1].split("$")[0]
    i = text.rfind("\\boxed")
    if i < 0:
        i = text.rfind("\\fbox")
    if i < 0:
        return None
    return braced(text, i)


def extract(response: str) -> str | None:
    """rllm's answer of a whole response: the last box of the text after the first `</think>`."""
    if THINK_END not in response:
        return None
    return last_box(response.split(THINK_END)[1])


# ------------------------------------------------------------------------------------------------ mathd


def _fix_fracs(s: str) -> str:
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part[:1] == "{" or len(part) < 2:
            out += part
            continue
        a, b, rest = part[0], part[1], part[2:]
        out += f"{{{a}}}{b}{rest}" if b == "{" else f"{{{a}}}{{{b}}}{rest}"
    return out


def _fix_a_slash_b(s: str) -> str:
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    return f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}" if m else s


def _fix_sqrt(s: str) -> str:
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)


def strip_string(s: str) -> str:
    """Hendrycks' MATH `_strip_string` rules (module doc)."""
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "")
    if "\\text{ " in s:  # units: "5 \\text{ cm}" (Hendrycks asserts one; more: the answer is left as it is)
        parts = s.split("\\text{ ")
        if len(parts) != 2:
            raise ValueError("several units")
        s = parts[0]
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if s.startswith("."):
        s = "0" + s
    halves = s.split("=")
    if len(halves) == 2 and len(halves[0]) <= 2:  # "k = 5", "x=5"
        s = halves[1]
    s = _fix_sqrt(s).replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def mathd_normalize(answer: str | None) -> str | None:
    if answer is None:
        return None
    answer = answer.strip()
    m = re.fullmatch(r"\\text\{(?P<text>.+?)\}", answer)
    if m:
        answer = m.group("text").strip()
    try:
        return strip_string(answer)
    except ValueError:  # Hendrycks' asserts: the answer as it is
        return answer


def mathd_equal(given: str | None, gold: str) -> bool:
    a = mathd_normalize(given)
    return a is not None and a == mathd_normalize(gold)


# ------------------------------------------------------------------------------------------------ sympy

_UNITS = ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week", "month",
          "year", "foot", "feet", "inch", "yard")


def _frac_part(x: str) -> str:
    return x if re.fullmatch(r"[\w.]+", x) else f"({x})"  # pylatexenc writes \\frac{1}{2} as 1/2, \\frac{a+b}{c} as (a+b)/c


def _latex_to_text(s: str) -> str:
    """What PRM800K's `_parse_latex` makes of LaTeX through pylatexenc (not installed here), for answers."""
    s = s.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\left", "").replace("\\right", "")
    for _ in range(10):  # innermost first
        before = s
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", lambda m: f"{_frac_part(m.group(1))}/{_frac_part(m.group(2))}", s)
        s = re.sub(r"\\frac(\d)(\d)", r"\1/\2", s)
        s = re.sub(r"\\sqrt\[([^{}]*)\]\{([^{}]*)\}", r"(\2)^(1/(\1))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
        s = re.sub(r"\\sqrt(\w)", r"sqrt(\1)", s)
        if s == before:
            break
    for latex, text in (("\\pi", "pi"), ("\\infty", "inf"), ("\\cdot", "*"), ("\\times", "*"), ("\\cup", "U")):
        s = s.replace(latex, text)
    return re.sub(r"\\(?:mathrm|mathbf|text|mbox)\{([^{}]*)\}", r"\1", s).strip()


def _strip_number_commas(s: str) -> str:
    """PRM800K's `_strip_properly_formatted_commas`: 1,000,000 -> 1000000."""
    pattern = re.compile(r"(\d)(,)(\d\d\d)($|\D)")
    while True:
        after = pattern.sub(r"\1\3\4", s)
        if after == s:
            return s
        s = after


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _str_is_int(s: str) -> bool:
    try:
        s = _strip_number_commas(s)
        return abs(float(s) - int(round(float(s)))) <= 1e-7
    except ValueError:
        return False


def _is_frac(s: str) -> bool:
    return re.search(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$", s) is not None


def normalize(expr: str | None) -> str | None:
    """PRM800K's `_normalize` (module doc)."""
    if expr is None:
        return None
    m = re.fullmatch(r"\\text\{(?P<text>.+?)\}", expr.strip())
    if m:
        expr = m.group("text")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    expr = expr.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12")
    for unit in _UNITS:
        expr = re.sub(rf"{unit}(es)?(s)? *(\^[0-9]+)?", "", expr)
    expr = re.sub(r"\^ *\\circ", "", expr)
    if len(expr) > 0 and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = re.sub(r",\\! *", "", expr)
    if _is_float(expr) and float(expr).is_integer():
        expr = str(int(round(float(expr))))
    if "\\" in expr:
        expr = _latex_to_text(expr)
    expr = re.sub(r"- *", "-", expr)
    expr = re.sub(r"([0-9]) +([0-9])", r"\1+\2", expr)  # mixed numbers: "7 3/4" -> "7+3/4"
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    if _str_is_int(expr):
        expr = str(int(round(float(_strip_number_commas(expr)))))
    return expr


def split_tuple(expr: str) -> list[str]:
    """PRM800K's `split_tuple`: a bracketed comma list with no bracket inside, element by element; anything
    else one element."""
    expr = _strip_number_commas(expr)
    if not expr:
        return []
    if len(expr) > 2 and expr[0] in "()[]" and expr[-1] in "()[]" and not any(ch in expr[1:-1] for ch in "()[]"):
        return [e.strip() for e in expr[1:-1].split(",")]
    return [expr]


def _sympy_zero(gold: str, given: str) -> bool:
    """PRM800K's `are_equal_under_sympy`, behind its `should_allow_eval`."""
    from sympy import simplify
    from sympy.parsing import sympy_parser

    expr = f"({gold})-({given})"
    letters = {ch for ch in expr.replace("sqrt", "").replace("frac", "") if ch.isalpha()}
    if len(letters) > 2 or "^{" in expr or "^(" in expr or re.search(r"\^[0-9]+\^|\^[0-9][0-9]+", expr):
        return False  # too many unknowns, or powers sympy may take forever over
    transformations = sympy_parser.standard_transformations + (sympy_parser.implicit_multiplication_application,)
    try:
        return simplify(sympy_parser.parse_expr(expr.replace("^", "**"), transformations=transformations)) == 0
    except Exception:  # noqa: BLE001 - an expression sympy cannot read is not equal (PRM800K's rule)
        return False


def sympy_equal(given: str | None, gold: str) -> bool:
    """PRM800K's `grade_answer` as rllm runs it (mathd's normalisation first, module doc)."""
    if given is None:
        return False
    if mathd_normalize(given) == mathd_normalize(gold):
        return True
    a, b = normalize(given), normalize(gold)
    if a is None or b is None or not a:
        return a is not None and a == b
    if a == b:
        return True
    gold_elems, given_elems = split_tuple(b), split_tuple(a)
    if len(gold_elems) > 1 and (b[0] != a[0] or b[-1] != a[-1]):
        return False
    if len(gold_elems) != len(given_elems):
        return False
    for g, x in zip(gold_elems, given_elems):
        if _is_frac(g) and _is_frac(x):
            ok = g == x
        elif _str_is_int(g) != _str_is_int(x):
            ok = False
        else:
            ok = _sympy_zero(g, x)
        if not ok:
            return False
    return True


def gold_text(gold: str) -> str | None:
    """A gold as rllm reads it: the box's content when it holds one, else as written."""
    return last_box(gold) if "\\boxed" in gold else gold


def rllm_equal(given: str | None, golds: list[str]) -> bool:
    """Right when the answer matches any gold by mathd or sympy (rllm's list of ground truths)."""
    if given is None:
        return False
    for gold in golds:
        g = gold_text(str(gold))
        if g is not None and (mathd_equal(given, g) or sympy_equal(given, g)):
            return True
    return False

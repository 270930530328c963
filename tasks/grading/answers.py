"""Where a math answer is in a reply, and how to read its number forms, before math-verify parses it.

math-verify finds and parses LaTeX well but decides three things in ways that mark right answers
wrong (or wrong ones right), so they are decided here, in plain string code:

1. Which span is the answer (`answer_spans`), in this order of trust:
   - a final-answer statement after the last box ("The final answer is $10,455$"), when it states
     something math-verify can read;
   - the final run of `\\boxed{}` / `\\fbox{}`: the last box, together with the boxes before it that
     only connectors separate (`,` `;` "and" "or" `\\quad`, `$`, a short `\\text{...}`, a label such as
     `x =`), so `\\boxed{1}, \\boxed{2}` is the answer "1, 2", while `\\boxed{3} ... wait ... \\boxed{4}`
     is 4 (a correction: the last box wins);
   - else bare LaTeX on the final line (no box, no `$`): "Thus the answer is \\frac{\\sqrt3}{2}";
     only when what follows the answer cue looks like math (no English words left once LaTeX
     commands are removed), so a closing sentence is never read as the answer;
   - else the whole text, where math-verify's own order applies ("final answer is", "answer:", the
     last LaTeX environment, the last expression).
2. Thousands separators (`join_thousands`): `1{,}000`, `1\\,000`, `32,\\!348` are always joined; a
   plain comma only in a well-formed group (`12,345,678`: one to three digits, then groups of
   exactly three) that is not inside brackets, so `(12,102)` and `(2,12) \\cup (12,102)` stay
   intervals, and never when the gold is itself a list, tuple or interval.
3. Decimal commas (`decimal_comma`): `1,22` is 1.22 when the gold is a single number and the comma
   cannot be a thousands separator (not exactly three digits after it, or a leading `0,`).

Everything here is pure and cheap (regular expressions and brace matching); the time limit around a
grading call (`timelimit.py`) covers it anyway.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# boxes


@dataclass(frozen=True)
class Box:
    start: int  # index of the backslash
    end: int  # index after the closing brace
    content: str


_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")


def boxes(text: str) -> list[Box]:
    """Every closed `\\boxed{...}` / `\\fbox{...}` (braces matched), in order; nested boxes count once
    (the outer one). An unclosed box is left to math-verify."""
    out: list[Box] = []
    pos = 0
    while True:
        m = _BOX_START.search(text, pos)
        if not m:
            return out
        depth, i = 0, m.end() - 1
        end = None
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
                i += 2  # an escaped brace (`\\{`) does not open or close the box
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
            i += 1
        if end is None:
            return out
        out.append(Box(m.start(), end, text[m.end():end - 1].strip()))
        pos = end


# What may stand between two boxes that state one answer together. Anything else (a sentence, "wait",
# "no", a full stop) separates a correction from what it corrects.
_GAP = re.compile(
    r"(?:\s+|[,;&]|\$\$?|\\[()\[\]]|\\q?quad\b|\\[,;:! ]|~|\\\\"
    r"|\\(?:text|textnormal|mathrm|mbox)\s*\{(?:\s|[,;:]|(?i:and|or|for|parts?|respectively)\b|\(?[a-z]{1,3}\))*\}"
    r"|(?i:\band\b|\bor\b|\bas well as\b|\bet\b|\bund\b|\by\b)"
    r"|(?!(?i:no|not|wait|actually|sorry|oops|hmm|but|instead|rather|correction|maybe|perhaps)\b)"
    r"[A-Za-z]{1,12}(?=\s*(?:,|\band\b))"  # a unit before the connector: "\\boxed{1} papers and \\boxed{2}"
    r"|(?i:part\s*)?\(?[a-z]{1,3}\)[:.]?"  # part labels: (a), b), (ii)
    r"|\\?[A-Za-z]{1,6}(?:_\{?\w{1,4}\}?)?(?:\([^()]{0,8}\))?\s*=)*",  # labels: x =, a_{37} =, f(x) =
)


def _final_run(text: str) -> list[Box]:
    found = [b for b in boxes(text) if b.content]
    if not found:
        return []
    run = [found[-1]]
    for prev in reversed(found[:-1]):
        if not _GAP.fullmatch(text[prev.end:run[0].start]):
            break
        run.insert(0, prev)
    return run


def final_box_run(text: str) -> list[str]:
    """The contents of the final run of boxes that together state the answer (see module doc);
    empty boxes are ignored, a repeated box ("\\boxed{5} and \\boxed{5}") counts once. [] when
    there is no box."""
    contents: list[str] = []
    for b in _final_run(text):
        if b.content not in contents:
            contents.append(b.content)
    return contents


# ---------------------------------------------------------------------------------------------
# bare LaTeX on the final line

_DELIMITERS = re.compile(r"(?<!\\)\$|\\[()\[\]]")
# LaTeX, or plain-text algebra: an operator between a variable or number and a variable ("2*x + 1",
# "(x-2)(x+2)", "x/y"); prose with numbers only ("3-4 days") is dropped by the word check below
_LATEX_SIGNS = re.compile(r"\\[A-Za-z]+|[\^_]\{?|\{|[A-Za-z0-9)]\s*[*/+\-]\s*[A-Za-z(]|\)\s*\(")
_CLOSING = re.compile(r"(?i)\s*(?:I hope (?:it|this) is correct\.?|\.+)\s*$")
# Where the math starts on a line of prose: a command, a digit, a sign or bracket, or `x =`.
_MATH_START = re.compile(r"[\\\d(\[{+\-]|(?<![A-Za-z])[A-Za-z](?:_\{?\w+\}?)?\s*(?:=|\\in\b|\\le|\\ge|<|>)"
                         r"|(?<![A-Za-z])[A-Za-z](?=\s*(?:[\^*/]|[+\-]\s*[\w(]))")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mbox|textnormal|operatorname)\s*\{[^{}]*\}")


def bare_latex_final_line(text: str) -> str | None:
    """The final line's LaTeX when it has no box and no math delimiters ("Thus \\frac{1}{2}."),
    wrapped in `$...$` for math-verify; None when the line is not like that or reads as prose
    (English words left once the leading prose and the LaTeX commands are removed)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    line = _CLOSING.sub("", lines[-1])
    if _DELIMITERS.search(line) or "\\boxed" in line or not _LATEX_SIGNS.search(line):
        return None
    start = _MATH_START.search(line)
    if start is None:
        return None
    line = re.sub(r"\s+(?:and|or)\s+", ", ", line[start.start():].strip().strip(",;:"))
    words = re.sub(r"\\(?:begin|end)\{\w+\*?\}|\\[A-Za-z]+", " ", _TEXT_WRAP.sub(" ", line))
    if not line or re.search(r"[A-Za-z]{3,}", words):
        return None
    return f"${line}$"


# ---------------------------------------------------------------------------------------------
# number forms

# Digits joined by separators: LaTeX ones (`{,}`, `,\!` as in MATH, `\,`, `\!`) or a plain comma
# without a space (`12,345`, `12,102`, `1,22`, `1,2,3`).
_LATEX_SEP = re.compile(r"\{,\}|,\\!\s*|\\,|\\!")
_CHAIN = re.compile(r"(?<![\d.])(?<!\d,)\d+(?:(?:\{,\}|,\\!\s*|\\,|\\!|,)\d+)+(?!\d)(?!,\d)")
_LATEX_THOUSANDS = re.compile(r"(?:\{,\}|,\\!\s*|\\,|\\!)(?=\d{3}(?!\d))")
_THOUSANDS_FORM = re.compile(r"[1-9]\d{0,2}(?:,\d{3})+")
_REACH = 80  # how far around a number its enclosing brackets are looked for


def inside_brackets(text: str, start: int, end: int) -> bool:
    """Is `text[start:end]` inside a bracket pair (`(..)`, `[..)`, `\\{..\\}`) of the same formula?
    Looked for nearby only (same line, no `$` crossed), so one stray bracket far away does not count."""
    def opener(i: int) -> bool:
        return text[i] in "([" or (text[i] == "{" and i > 0 and text[i - 1] == "\\")

    def closer(i: int) -> bool:
        return text[i] in ")]" or (text[i] == "}" and i > 0 and text[i - 1] == "\\")

    depth, found_open = 0, False
    for i in range(start - 1, max(-1, start - 1 - _REACH), -1):
        if text[i] in "$\n":
            break
        if closer(i):
            depth += 1
        elif opener(i):
            if depth == 0:
                found_open = True
                break
            depth -= 1
    if not found_open:
        return False
    depth = 0
    for i in range(end, min(len(text), end + _REACH)):
        if text[i] in "$\n":
            return False
        if opener(i):
            depth += 1
        elif closer(i):
            if depth == 0:
                return True
            depth -= 1
    return False


def join_thousands(text: str, plain_commas: bool = True) -> str:
    """Digit groups joined: a LaTeX separator before three digits always (`1\\,000`, `1{,}000`,
    `32,\\!348`); a plain comma only when `plain_commas` and the whole run is a well-formed thousands
    number (`12,345,678`, `1{,}000,000`) outside brackets. `(12,102)`, `1,22`, `0,111` stay as written."""
    def fix(m: re.Match) -> str:
        chain = m.group(0)
        if plain_commas and _THOUSANDS_FORM.fullmatch(_LATEX_SEP.sub(",", chain)) \
                and not inside_brackets(text, m.start(), m.end()):
            return re.sub(r"\D", "", chain)
        return _LATEX_THOUSANDS.sub("", chain)

    return _CHAIN.sub(fix, text)


_LONE_NUMBER = re.compile(r"\s*(-?)\s*(\d+),(\d+)\s*")


def decimal_comma(span: str) -> str:
    """`1,22` -> `1.22` when the span is one number whose comma cannot be a thousands separator
    (not three digits after it, or a leading `0,`, or more than three digits before it)."""
    inner = span.strip().strip("$")
    box = re.fullmatch(r"\\boxed\{(.*)\}", inner)
    m = _LONE_NUMBER.fullmatch(box.group(1) if box else inner)
    if not m:
        return span
    sign, whole, frac = m.groups()
    if len(frac) == 3 and not whole.startswith("0") and len(whole) <= 3:
        return span  # `1,222`: a thousands separator (join_thousands reads it)
    number = f"{sign}{whole}.{frac}"
    return f"\\boxed{{{number}}}" if box else number


# ---------------------------------------------------------------------------------------------
# the span


@dataclass(frozen=True)
class Span:
    text: str  # what math-verify parses
    source: str  # "answer-after-box", "boxed", "final-line" or "text"


# A final-answer statement: "Final Answer: The final answer is $10,455$. I hope it is correct."
_ANSWER_CUE = re.compile(r"(?i)\b(?:final\s+answer|the\s+answer|answer)\b\s*(?:is\b|:|=)")


def answer_spans(answer_text: str) -> list[Span]:
    """Where the answer may be, most trusted first (module doc, point 1); grading takes the first one
    math-verify can read. A final-answer statement after the last box comes before the box (a reply
    that boxes intermediate results, then states "The final answer is $10,455$")."""
    spans: list[Span] = []
    run = _final_run(answer_text)
    if run:
        cues = [m for m in _ANSWER_CUE.finditer(answer_text) if m.start() >= run[-1].end]
        if cues:
            spans.append(Span(answer_text[cues[-1].start():], "answer-after-box"))
        spans.append(Span(f"\\boxed{{{', '.join(final_box_run(answer_text))}}}", "boxed"))
        return spans
    line = bare_latex_final_line(answer_text)
    if line is not None:
        spans.append(Span(line, "final-line"))
    spans.append(Span(answer_text, "text"))
    return spans

"""Multiple choice: which option letter a reply chooses (`choice_letter`), or None.

Valid letters are the task's (`letters`, default A-J as in MMLU-Pro; GPQA passes "ABCD", so "E"
there is no answer). The text is normalised first: full-width forms (`Ｃ`, `（C）`, `：`), the
Arabic and Bengali option letters and Cyrillic look-alikes standing alone (as simple-evals maps
them), LaTeX formatting (`\\text{C}`, `\\textbf{(C)}`, `$\\mathrm{C}$`, `\\(C\\)`) and Markdown (`**C**`)
are reduced to the letter.

What counts, in order of trust:
1. Statements, and the last one wins (so a self-correction, "the answer is B... wait, actually C",
   gives C, and `\\boxed{A} ... \\boxed{B}` gives B):
   - a box, `\\boxed{C}` / `\\boxed{(C) 42}` / `\\boxed{\\text{Option C}}`;
   - an answer cue then a letter: "answer is / answer: / ANSWER: / correct option is / I choose /
     I'd go with / it must be", and the same in other languages ("La respuesta es (B)", "答案是 C",
     "Antwort: D", "Réponse : A", "Ответ: B", "정답: C", ...);
   - a conclusion or correction cue then a letter standing alone ("so C.", "therefore (B)",
     "which leaves C", "actually, D", "wait, no: C"): standing alone means in brackets or followed
     by punctuation or the end of a line, so "so A is wrong" is not a statement for A;
   - a letter then a verdict: "C is correct", "(B) is the answer", "D remains".
   A note, remark or postscript after the last box is commentary: its letters are not statements
   (`\\boxed{B}` then "Note: the answer would be D if ..." gives B).
   A statement lists its letters: "The answer is A and C", "A, C", "A or C", `\\boxed{AC}` name more
   than one, which is no single answer (None), never the first of them. A list stops where a
   letter starts a new clause ("C, D is wrong") or is negated ("C, not D"), so an option mentioned
   after the chosen one is never picked instead of it. A statement is void when its letters are
   negated later ("The answer is B. Hmm, no, B is wrong. ...").
2. Without statements: a reply that is only a letter ("C", "(C)", "C.", "**B**", "(C) 42", "C) 42"),
   else the last bracketed letter "(C)" that is not negated, else elimination: every valid letter
   but one negated ("not A", "B is wrong", "rule out D", "A, B and D are incorrect") leaves that one.
A letter that is negated ("not D", "rather than D", "instead of D", "D is wrong") is never chosen
by rule 2. Lower-case letters count in brackets or right after an answer cue ("answer: c"); an
upper-case "A" or "I" followed by a lower-case word is an article or a pronoun, not an option.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LETTERS = "ABCDEFGHIJ"

# ---------------------------------------------------------------------------------------------
# normalisation

_FORMAT = re.compile(
    r"\\(?:text|textbf|textrm|textsf|texttt|textit|textup|textnormal|mathrm|mathbf|mathit|mathsf|"
    r"mathtt|mathbb|mathcal|boldsymbol|bm|emph|underline|mbox|operatorname)\s*\{([^{}]*)\}")
_OLD_FORMAT = re.compile(r"\{\\(?:bf|rm|it|sf|tt|em)\s+([^{}]*)\}")
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad\b|~|\\left\b|\\right\b")
# simple-evals' option letters in other scripts, and Cyrillic look-alikes, when standing alone
_OTHER_SCRIPTS = {"أ": "A", "ب": "B", "ج": "C", "د": "D", "অ": "A", "ব": "B", "ড": "C", "ঢ": "D",
                  "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H"}
_STANDALONE_OTHER = re.compile(rf"(?<!\w)([{''.join(_OTHER_SCRIPTS)}])(?!\w)")


def normalise(text: str) -> str:
    """The reply with formatting reduced to plain letters (module doc)."""
    text = unicodedata.normalize("NFKC", text)
    text = _STANDALONE_OTHER.sub(lambda m: _OTHER_SCRIPTS[m.group(1)], text)
    previous = None
    while previous != text:  # nested: \textbf{\text{C}}
        previous = text
        text = _FORMAT.sub(r"\1", text)
        text = _OLD_FORMAT.sub(r"\1", text)
    text = _SPACING.sub(" ", text)
    text = re.sub(r"\\[()\[\]]|(?<!\\)\$", " ", text)  # math delimiters
    text = re.sub(r"\*\*|__|`", "", text)  # Markdown emphasis and code
    return text


_BOXED_ONLY = re.compile(r"^\\boxed\s*\{(.*)\}$", re.S)


def gold_letter(gold: str, letters: str = LETTERS) -> str | None:
    """The option letter a gold names, however it is written: `C`, `(C)`, `c`, `$\\text{E}$`,
    `\\(\\boxed{\\text{C}}\\).`, `**D**`; None unless what is left is one valid letter (a gold is never guessed at)."""
    text = normalise(str(gold)).strip().rstrip(".。").strip()
    previous = None
    while previous != text:
        previous = text
        box = _BOXED_ONLY.match(text)
        text = (box.group(1) if box else text).strip().strip("()[]{}").strip()
    text = text.upper()
    return text if len(text) == 1 and text in letters else None


# ---------------------------------------------------------------------------------------------
# letter lists

# Words that may follow a bare "A" or "I" as an option ("A because ..."); any other lower-case word
# makes it an article or a pronoun ("A good choice", "I think").
_FOLLOWERS = {"and", "or", "is", "are", "was", "were", "because", "since", "as", "would", "will", "should",
              "must", "seems", "looks", "not", "but", "nor", "which", "with", "from", "remains", "since",
              "then", "here", "there", "too", "also", "only", "instead", "rather", "over", "vs", "versus"}

_ONE = re.compile(r"[ \t]*(?:(?i:the\s+)?(?i:option|choice|letter|answer)\s+)?(?P<open>[(\[])?[ \t]*"
                  r"(?P<l>[A-Za-z])(?:[ \t]*(?P<close>[)\]]))?")
_SEP = re.compile(r"\s*(?:,\s*(?:and|or)\s+|,|/|&|\+|\band\b|\bor(?:\s+(?:maybe|perhaps|possibly))?\b|\bas well as\b)"
                  r"\s*", re.IGNORECASE)


@dataclass(frozen=True)
class _Letters:
    start: int
    end: int
    letters: tuple[str, ...]  # upper case, in order, possibly outside the valid set
    standalone: bool  # bracketed or followed by punctuation / end of line


def _ascii_word(ch: str) -> bool:
    """Part of a Latin word or number (CJK characters around a letter do not make it a word: "答案是C")."""
    return bool(ch) and (ch.isascii() and (ch.isalnum() or ch == "_"))


def _token(text: str, pos: int, lower_ok: bool) -> tuple[str, int, bool] | None:
    """One option letter at `pos` (spaces, "option" allowed before): (letter, end, standalone)."""
    m = _ONE.match(text, pos)
    if not m:
        return None
    letter, bracketed = m.group("l"), bool(m.group("open") and m.group("close"))
    if m.group("open") and not m.group("close"):
        return None  # "(Ca" and similar: a word in brackets, not a letter
    if letter.upper() not in LETTERS:
        return None
    start_letter = m.start("l")
    if start_letter > 0 and (_ascii_word(text[start_letter - 1]) or text[start_letter - 1] in "\\'’"):
        return None  # inside a word ("vitamin" / "\frac" / "don't")
    rest = text[m.end():]
    if not bracketed and m.group("close") is None and _ascii_word(rest[:1]):
        return None  # "Carbon", "C2"
    if letter.islower() and not (bracketed or lower_ok):
        return None
    after = re.match(r"[ \t]*(\S*)", rest).group(1)
    standalone = bracketed or bool(m.group("close")) or not rest.strip() or rest[:1] in "\n" or \
        after[:1] in tuple(".,;:!?)]}\"'”’。，；：！？") or after == ""
    if letter.islower() and not bracketed and not standalone:
        return None  # "answer is a bit" (a lower-case word)
    if not bracketed and not m.group("close") and letter in "AI":
        word = re.match(r"[ \t]+([a-z]+)", rest)
        if word and word.group(1) not in _FOLLOWERS:
            return None  # "A good idea", "I think"
    return letter.upper(), m.end(), standalone


def _letter_list(text: str, pos: int, lower_ok: bool = False) -> _Letters | None:
    """Letters listed from `pos`: "C", "(C) 42", "A and C", "A, B, and D"."""
    first = _token(text, pos, lower_ok)
    if first is None:
        return None
    letters, end, standalone = [first[0]], first[1], first[2]
    while True:
        sep = _SEP.match(text, end)
        if not sep:
            break
        nxt = _token(text, sep.end(), lower_ok)
        if nxt is None or re.match(r"\s+(?:is|was)\b", text[nxt[1]:]):
            break  # "C, not D" / "C, D is wrong": the list ends with C
        letters.append(nxt[0])
        end, standalone = nxt[1], standalone and nxt[2]
    return _Letters(pos, end, tuple(letters), standalone)


# ---------------------------------------------------------------------------------------------
# statements and negations

_I = re.IGNORECASE
_ANSWER_CUE = re.compile(
    r"(?:\b(?:final|correct|right|best|my|the)\s+)?\b(?:answer|choice|option|selection|response)s?\b"
    r"(?:\s+(?:is|would\s+be|will\s+be|should\s+be|must\s+be|has\s+to\s+be)|\s*[:=\-–—]|\s*is\s*:)+"
    r"\s*(?:(?:for\s+sure|definitely|clearly|certainly|probably|likely|obviously|indeed|therefore|thus)\s*,?\s*)?"
    r"(?:option|choice|letter)?"
    r"|\banswer\s*(?=[(\[])"  # "Answer (C)"
    r"|\b(?:I\s+(?:would\s+|will\s+|'d\s+|'ll\s+)?|let'?s\s+)?(?:choose|chose|pick|select|go\s+with|opt\s+for)\b"
    r"\s*(?:option|choice|answer)?"
    r"|\b(?:it|this|that)(?:'s|\s+is|\s+must\s+be|\s+has\s+to\s+be|\s+should\s+be|\s+would\s+be)\s+(?:option\s+)?"
    r"(?=[(\[]?[A-J]\b)"
    # other languages: Spanish, Portuguese, French, Italian, German, Dutch, Russian, Polish, Turkish,
    # Indonesian, Vietnamese, Swahili, Scandinavian, Finnish; then Chinese, Japanese, Korean, Hindi,
    # Bengali, Arabic
    r"|\b(?:la\s+|a\s+|die\s+|het\s+)?(?:respuesta|resposta|réponse|risposta|antwort|antwoord|ответ|odpowiedź|"
    r"cevap|jawaban|câu\s+trả\s+lời|đáp\s+án|jibu|svar(?:et)?|vastaus)"
    r"(?:\s+(?:correcta|correta|correcte|corretta|richtige|korrekte|правильный|poprawna|doğru|yang\s+benar|"
    r"đúng|sahihi|final|finale))?"
    r"(?:\s*(?:(?:es|é|est|è|ist|is|je|jest|är|on|adalah|là|ni)(?![A-Za-z])|[:\-—]))*\s*"
    r"(?:la\s+|le\s+|die\s+|a\s+|l')?(?:opción|opção|option|opzione|lettre|letra|variant|вариант)?"
    r"|(?:正确答案|正確答案|答案|正解|答え|回答|解答|정답|답|उत्तर|উত্তর|الإجابة\s+الصحيحة|الإجابة|الجواب)"
    r"\s*(?:是|为|為|は|은|는|:|=|选|選|应该是|應該是|应选|應選)*\s*(?:选项|選項)?"
    r"|(?:选择|選擇|选|選)\s*",
    _I)
_CONCLUSION_CUE = re.compile(
    r"\b(?:so|thus|therefore|hence|consequently|leaving(?:\s+only)?|leaves(?:\s+only)?|left\s+with|"
    r"(?:left|remaining)(?:\s+(?:is|are))?|by\s+elimination|actually|instead|rather|wait|no|correction|I\s+mean|"
    r"(?:must|has\s+to|would|should|will)\s+be|only|final(?:ly)?|then|(?:I\s+)?(?:believe|think|guess|say)|"
    r"clearly|obviously|definitely|certainly|corresponds\s+to|matches|consistent\s+with|agrees\s+with)\b[,:]?\s*"
    r"(?:it\s*'?s|it\s+is|it\s+must\s+be|we\s+get|the\s+answer\s+is)?\s*(?:option|choice)?\s*", _I)
_VERDICT_AFTER = re.compile(
    r"\s*(?:is|are|must\s+be|seems|appears)\s+(?:the\s+)?(?:correct|right|best|true|answer|valid|one)\b"
    r"|\s+(?:remains|is\s+left|is\s+the\s+only\s+(?:one|option)|is\s+what\s+remains)\b", _I)
_NEGATION_BEFORE = re.compile(
    r"\b(?:not|n't(?:\s+be)?|isn't|cannot\s+be|can't\s+be|rule\s+out|ruled\s+out|ruling\s+out|"
    r"eliminate|eliminated|eliminating|excluding|exclude|except|rather\s+than|instead\s+of|other\s+than|"
    r"neither|nor|reject|rejecting|non|nicht|pas|no\s+es|não\s+é)\s*(?:option|choice|answer)?\s*"
    r"|(?:不是|并非|並非|不选|不選|排除)\s*", _I)
_NEGATION_AFTER = re.compile(
    r"\s*(?:is|are|was|were|seems?|looks?|appears?)\s+(?:also\s+|clearly\s+|definitely\s+|therefore\s+|"
    r"all\s+|both\s+)?(?:wrong|incorrect|false|out|invalid|not|too|eliminated|ruled\s+out|impossible|"
    r"unlikely|excluded|a\s+distractor|inconsistent|off)\b"
    r"|\s*(?::|-|–|—)\s*(?:wrong|incorrect|false|no)\b|\s*[✗✘❌]", _I)


@dataclass(frozen=True)
class _Statement:
    pos: int
    letters: tuple[str, ...]


def _statements(text: str) -> tuple[list[_Statement], list[tuple[int, str]]]:
    """Every statement of a choice (module doc, rule 1) and every negated letter (position, letter)."""
    statements: list[_Statement] = []
    negated: list[tuple[int, str]] = []
    for m in _NEGATION_BEFORE.finditer(text):
        found = _letter_list(text, m.end())
        if found:
            negated.extend((m.start(), letter) for letter in found.letters)
    covered = 0  # letters already read as part of a list ("(A) and (C) are correct") start no new one
    for pos in range(len(text)):
        if pos >= covered and (text[pos] in LETTERS or text[pos] in "(["):
            found = _token(text, pos, lower_ok=False)
            if found is None or (pos > 0 and text[pos - 1] in "(["):
                continue
            listed = _letter_list(text, pos)
            if listed:
                covered = listed.end
            if listed and _NEGATION_AFTER.match(text, listed.end):
                negated.extend((pos, letter) for letter in listed.letters)
            elif listed and _VERDICT_AFTER.match(text, listed.end):
                statements.append(_Statement(pos, listed.letters))
    for m in _ANSWER_CUE.finditer(text):
        found = _letter_list(text, m.end(), lower_ok=True)
        if found and not _NEGATION_AFTER.match(text, found.end):
            statements.append(_Statement(m.start(), found.letters))
    for m in _CONCLUSION_CUE.finditer(text):
        found = _letter_list(text, m.end())
        if found and (found.standalone or _VERDICT_AFTER.match(text, found.end)) \
                and not _NEGATION_AFTER.match(text, found.end):
            statements.append(_Statement(m.start(), found.letters))
    return statements, negated


def _box_statements(text: str) -> list[_Statement]:
    from .answers import boxes

    out = []
    for box in boxes(text):
        content = box.content.strip()
        if re.fullmatch(r"[A-J]{2,}", content):  # \boxed{AC}
            out.append(_Statement(box.start, tuple(content)))
            continue
        found = _letter_list(content, 0, lower_ok=True)
        if found:
            out.append(_Statement(box.start, found.letters))
    return out


# A first line that opens with an option letter: "C", "(C) 42", "C) 42", "C. because ...", "B:".
_OPENING = re.compile(r"\s*(?:[(\[]\s*([A-J])\s*[)\]]|([A-J])\s*(?:[.:)。，、]|$|(?=[^\x00-\x7f])))")


# A note, remark or postscript: commentary, not an answer.
_NOTE = re.compile(r"(?i)(?:^|(?<=[.!?:)\]}\n]))[ \t]*\(?[ \t]*[*_]*[ \t]*"
                   r"(?:(?:side[ \t]+)?note|n\.[ \t]?b\.|remark|p\.[ \t]?s\.|aside)\b")


def without_notes(text: str) -> str:
    """The reply up to a note that follows its last box (`\\boxed{B}` then "Note: D would be correct if..."):
    a boxed answer is the answer, and letters named in a note after it are commentary."""
    boxes = list(re.finditer(r"\\boxed\s*\{[^{}]*\}", text))
    if not boxes:
        return text
    note = _NOTE.search(text, boxes[-1].end())
    return text[:note.start()] if note else text


def choice_letter(answer_text: str, letters: str = LETTERS) -> str | None:
    """The single option letter the reply chooses, or None (module doc for the rules)."""
    text = without_notes(normalise(answer_text or ""))
    valid = set(letters.upper())
    statements, negated = _statements(text)
    statements += _box_statements(text)
    # a statement is void when one of its letters is negated after it ("The answer is B. No, B is wrong.")
    live = [s for s in statements
            if not any(pos > s.pos and letter in s.letters for pos, letter in negated)]
    if live:
        final = max(live, key=lambda s: s.pos)
        chosen = set(final.letters)
        if len(chosen) != 1 or not chosen <= valid:
            return None  # several letters, or one the task does not have
        return final.letters[0]
    ruled_out = {letter for _, letter in negated}
    stripped = text.strip()
    whole = _letter_list(stripped, 0, lower_ok=True)
    if whole and whole.end == len(stripped):  # the reply is only letters: "C", "(c)", "A, C"
        chosen = set(whole.letters)
        return whole.letters[0] if len(chosen) == 1 and chosen <= valid else None
    first_line = stripped.split("\n", 1)[0]
    opening = _OPENING.match(first_line)
    if opening:
        listed = _letter_list(first_line, 0)
        letter = opening.group(1) or opening.group(2)
        if listed and len(set(listed.letters)) > 1:
            return None  # "A, C: both work"
        return letter if letter in valid else None
    bracketed = [m.group(1) for m in re.finditer(r"[(\[]\s*([A-J])\s*[)\]]", text)
                 if m.group(1) in valid and m.group(1) not in ruled_out]
    if bracketed:
        return bracketed[-1]
    remaining = valid - ruled_out
    if len(remaining) == 1 and len(valid) > 1:
        return remaining.pop()
    return None

"""Language consistency: the share of a chain of thought written in the target language (DeepSeek-R1 §2.3.2).

R1-Zero's chains mixed languages (English with Chinese sentences); R1 adds to the accuracy reward a
language-consistency reward, "the proportion of target language words in the CoT". This module measures it:

    share = (words in the target language) / (words in any language)     in [0, 1]; None when there are none

A language is registered by name (`LANGUAGES`) as a pure function classifying one word: True (the target),
False (another language), None (no language: numbers, symbols, formula letters). Two kinds ship:
- by script, for real text: `en` (Latin letters), `zh` (Han characters). A word is a run of letters of one
  script; every Han character is a word of its own (Chinese is written without spaces, and a character is
  closer to a word than a whole clause is).
- by vocabulary, for the testbed: `testbed`, whose chain steps are written as " 3" (the target language) or
  as the letter "D" (the same value in the testbed's second language, `tasks/runsum.py`).

What is ignored, on purpose (stated because R1 does not say): math and code carry no language, so inline and
display math (`$..$`, `$$..$$`, `\\(..\\)`, `\\[..\\]`), LaTeX commands (`\\frac`) and code (backtick spans and
fenced blocks) are removed before words are counted. An empty or language-free thinking has no share (None);
the reward (`methods/r1.py`) scores it 0, so an empty chain never earns the consistency term.

`token_share` measures the same by tokens through a real tokenizer (each token decoded alone; a token that
holds a word of another language counts against the target).
"""
from __future__ import annotations

import re
import unicodedata

from ..registry import Registry

LANGUAGES = Registry("language")

# Math and code, removed before counting: fenced code, inline code, display and inline math, LaTeX commands.
_NO_LANGUAGE = re.compile(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\\\[.*?\\\]|\\\(.*?\\\)|\\[A-Za-z]+", re.S)
_HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))


def is_han(ch: str) -> bool:
    return any(lo <= ord(ch) <= hi for lo, hi in _HAN_RANGES)


def script(ch: str) -> str | None:
    """'han', 'latin', another script's first word ('cyrillic', 'greek', ...), or None for a non-letter."""
    if is_han(ch):
        return "han"
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ")[0].lower() if name else None


def script_words(text: str) -> list[tuple[str, str]]:
    """(word, script) for every word of `text` outside math and code: maximal runs of letters of one script,
    each Han character alone."""
    out, word, current = [], "", None
    for ch in _NO_LANGUAGE.sub(" ", text):
        s = script(ch)
        if s == "han" or s != current or s is None:
            if word:
                out.append((word, current))
            word, current = "", None
        if s == "han":
            out.append((ch, s))
        elif s is not None:
            word, current = word + ch, s
    if word:
        out.append((word, current))
    return out


def words(text: str, language: str) -> list[bool]:
    """For each word of `text` that has a language: whether it is in `language` (registered name)."""
    fn = LANGUAGES.get(language)
    return [v for v in map(fn, fn.split(text)) if v is not None]


def share(text: str, language: str) -> float | None:
    """The share of `text`'s words in `language`, or None when no word has a language (empty thinking)."""
    marks = words(text, language)
    return sum(marks) / len(marks) if marks else None


def token_share(ids: list[int], tokenizer, language: str) -> float | None:
    """The share of tokens in `language`: each token decoded alone; one holding any word of another language
    counts against it, one holding only target words for it, one with no language (spaces, digits) not at all."""
    marks = []
    for i in ids:
        found = words(tokenizer.decode([i]), language)
        if found:
            marks.append(all(found))
    return sum(marks) / len(marks) if marks else None


def _by_script(target: str):
    def classify(word: str) -> bool | None:
        w, s = word
        return s == target

    classify.split = script_words
    return classify


LANGUAGES.register("en")(_by_script("latin"))
LANGUAGES.register("zh")(_by_script("han"))

# The testbed's two languages (tasks/runsum.py, the `mixed` traces): a chain step is " 3" or its letter "D".
TESTBED_SECOND = "ABCDEFGHIJ"
_TESTBED_STEP = re.compile(rf" \d|[{TESTBED_SECOND}]")
_TESTBED_WORDS = ("Wait", "Final Answer:")


def _testbed_split(text: str) -> list[str]:
    for w in _TESTBED_WORDS:  # the thinking format's words are not chain steps
        text = text.replace(w, " ")
    return _TESTBED_STEP.findall(text)


def _testbed(step: str) -> bool:
    return step.startswith(" ")


_testbed.split = _testbed_split
LANGUAGES.register("testbed")(_testbed)

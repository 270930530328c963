"""Reflection words in a model's thinking: the R1 paper's "aha moment" (DeepSeek-R1 §2.2.4), measured.

`count(text, words)` counts whole-word, case-insensitive occurrences of each word or phrase in the thinking.
The words are data (`reflection_words.txt` beside this file) and a config field (`reflection_words`, RL training
and evaluation), so a study can count its own. On the testbed the only reflection word the model can write is
its "Wait" token, so the count is its number of self-written Waits. Budget forcing's injected Waits are not the
model's: `model_reflections` subtracts them.

Used by the RL loop (`reflection_words_mean` per step in train.jsonl) and by evaluation (`reflections` per sample
in samples.jsonl, `reflections_mean` per setting in results.json, a leaderboard column).
"""
from __future__ import annotations

import functools
import re
from importlib import resources


@functools.lru_cache(maxsize=1)
def default_words() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("reflection_words.txt").read_text(encoding="utf-8")
    return tuple(w.strip().lower() for w in text.splitlines() if w.strip() and not w.startswith("#"))


@functools.lru_cache(maxsize=16)
def _pattern(words: tuple[str, ...]) -> re.Pattern:
    if not words:
        raise ValueError("reflection_words is empty: give at least one word")
    # longest first, so "but wait" is one match, not "wait" inside it
    alternatives = sorted({w.lower() for w in words}, key=len, reverse=True)
    # whole words among letters: "Waiting" is not "wait", but the testbed's "2Wait 4" (its Wait token glued to a
    # digit when decoded) is
    letter = r"[^\W\d_]"
    return re.compile(rf"(?<!{letter})(?<!-)(?:" + "|".join(re.escape(w) for w in alternatives) + rf")(?!{letter})(?!-)",
                      re.IGNORECASE)


def count(text: str, words=None) -> int:
    """Occurrences of the reflection words in `text` (none: the bundled list)."""
    return len(_pattern(tuple(words) if words else default_words()).findall(text or ""))


def model_reflections(completion, words=None, wait: str = "Wait") -> int:
    """Reflection words in a completion's thinking that the model wrote: budget forcing's injected `wait`s
    (`completion.waits` of them) are taken out when the word is counted."""
    n = count(completion.thinking_text, words)
    injected = completion.waits if count(wait, words) else 0
    return max(0, n - injected)

"""The thinking-block chat format, shared by generation, rewards and grading.

An assistant turn is `<think>\\n{thinking}\\n</think>\\n\\n{answer}` (R1 style). The harness
pre-fills `<think>\\n` after the chat template's generation prompt, so every completion starts
inside the thinking block; the model closes it itself, or budget forcing closes it with
`FORCED_CLOSE` (delimiter + the s1 "Final Answer:" cue).
"""
from __future__ import annotations

THINK_OPEN = "<think>\n"
THINK_CLOSE = "</think>"
FORCED_CLOSE = "\n</think>\n\nFinal Answer:"
WAIT = "Wait"

# How the thinking block ended, one word per case across the codebase.
CLOSED = "closed"  # the model wrote </think>
FORCED = "forced"  # the budget was reached; budget forcing closed it
INCOMPLETE = "incomplete"  # never closed: the model ended its turn inside the block, or forcing was off


def build_prompt(tokenizer, messages: list[dict]) -> str:
    """Chat-template text for `messages`, ending inside an open thinking block."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + THINK_OPEN

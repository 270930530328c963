"""Delimiters come from the model's chat template: R1-Distill-style templates that already open
`<think>` get no second opening; s1 / s1.1 templates think between `<|im_start|>think` and
`<|im_start|>answer`."""
from __future__ import annotations

import pytest

from rzoo.harness.generation import thinking as T


class _Tok:
    def __init__(self, template: str, suffix: str):
        self.chat_template = template
        self.suffix = suffix

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return text + (self.suffix if add_generation_prompt else "")


def test_template_that_opens_think_gets_no_second_opening():
    tok = _Tok("{{ '<｜Assistant｜><think>\\n' }}", "<｜Assistant｜><think>\n")
    fmt = T.ThinkingFormat.detect(tok)
    assert fmt.open == "" and fmt.close == "</think>"
    prompt = T.build_prompt(tok, [{"role": "user", "content": "q"}])
    assert prompt.count("<think>") == 1 and prompt.endswith("<think>\n")
    no_newline = _Tok("...", "<｜Assistant｜><think>")
    assert T.ThinkingFormat.detect(no_newline).open == "\n"


def test_s1_delimiters_from_the_template():
    tok = _Tok("{% ... %}<|im_start|>think{% ... %}", "<|im_start|>assistant\n")
    fmt = T.ThinkingFormat.detect(tok)
    assert fmt.open == "<|im_start|>think\n" and fmt.close == "<|im_start|>answer"
    assert fmt.forced_close.startswith("\n<|im_start|>answer") and fmt.forced_close.endswith("Final Answer:")
    assert T.build_prompt(tok, [{"role": "user", "content": "q"}]).endswith("<|im_start|>think\n")
    assert fmt.completion_text("t", "a") == "t\n<|im_start|>answer\na"


def test_plain_templates_get_the_default_format(tokenizer):
    assert T.ThinkingFormat.detect(tokenizer) == T.DEFAULT_FORMAT
    assert T.build_prompt(tokenizer, [{"role": "user", "content": "q"}]).endswith("<think>\n")


def test_budget_validation():
    with pytest.raises(ValueError, match="min_thinking_tokens"):
        T.Budget(4, min_thinking_tokens=5)
    assert T.Budget(8, max_waits=2).wants_wait(7, 0) and not T.Budget(8, max_waits=2).wants_wait(7, 2)
    assert not T.Budget(8, max_waits=2, min_thinking_tokens=4).wants_wait(5, 0)

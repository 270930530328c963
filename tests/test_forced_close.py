"""Budget forcing's cap against s1's published strings, not the module's constants: a model that never closes its
thinking, generated on the engine's production path, must read exactly what s1's code appends at the cap.

s1's evaluation (simplescaling/s1 @77272c6e925d610257a50b520bad15330b513389,
eval/lm-evaluation-harness/lm_eval/models/vllm_causallms.py, `_model_generate`) appends
"<|im_start|>answer\\nFinal Answer:" when the thinking budget is reached; its README's budget-forcing example does
the same. The paper (§3.1): "we append the end-of-thinking token delimiter and optionally 'Final Answer:'".
"""
from __future__ import annotations

import pytest

from scripted import ScriptedLM
from rzoo.harness.engines.hf import HFEngine
from rzoo.harness.generation import forcing as G
from rzoo.harness.generation import thinking as T

S1_CAP = "<|im_start|>answer\nFinal Answer:"  # s1's string, copied from its code (see the docstring)
S1_THINK = "<|im_start|>think"


@pytest.fixture()
def s1_tokenizer(tokenizer_dir):
    """SmolLM2's tokenizer (ChatML, like s1's Qwen) with a chat template that names s1's thinking delimiter."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.chat_template = tok.chat_template + "{# s1 thinks between " + S1_THINK + " and <|im_start|>answer #}"
    return tok


def _capped(tok, budget=3, answer_tokens=2):
    """A model that writes " x" forever, capped at `budget` thinking tokens; the completion's text."""
    word = tok.encode(" x", add_special_tokens=False)
    assert len(word) == 1
    model = ScriptedLM.of(tok, lambda ids: word[0])
    fmt = T.ThinkingFormat.detect(tok)
    prompt = T.build_prompt(tok, [{"role": "user", "content": "What is 3 + 4?"}], fmt)
    (c,) = G.generate(HFEngine(model, tok), [prompt], T.Budget(budget, answer_tokens, force_close=True), fmt=fmt)
    return c, tok.decode(c.completion_ids, skip_special_tokens=False)


def test_s1_cap_appends_s1s_published_string(s1_tokenizer):
    c, text = _capped(s1_tokenizer)
    assert c.thinking_end == T.FORCED and c.thinking_tokens == 3
    assert text == " x x x\n" + S1_CAP + " x x"  # the thinking, s1's cap verbatim, then the answer
    injected = [t for t, sampled in zip(c.completion_ids, c.sampled_mask) if not sampled]
    assert s1_tokenizer.decode(injected, skip_special_tokens=False) == "\n" + S1_CAP  # and it is not trained on


def test_r1_format_cap_is_the_delimiter_then_s1s_cue(tokenizer):
    """Other models: their own delimiter, then s1's answer cue "Final Answer:" (s1 §3.1)."""
    c, text = _capped(tokenizer)
    assert c.thinking_end == T.FORCED
    thinking, _, rest = text.partition("</think>")
    assert thinking == " x x x\n" and rest.lstrip("\n").startswith("Final Answer:") and rest.endswith(" x x")

"""The thinking-block format and the thinking budget, shared by generation, rewards, SFT and grading.

An assistant turn is `<think>\\n{thinking}\\n</think>\\n\\n{answer}` (R1 style). The harness pre-fills
the opening after the chat template's generation prompt, so every completion starts inside the
thinking block; the model closes it itself, or budget forcing closes it with the forced close
(delimiter + s1's "Final Answer:" cue).

Delimiters come from the model (`ThinkingFormat.detect`): s1 / s1.1 checkpoints think between
`<|im_start|>think` and `<|im_start|>answer`; templates that already open `<think>` in their
generation prompt (R1-Distill, DeepScaleR) get no second opening.
"""
from __future__ import annotations

from dataclasses import dataclass

# How the thinking block ended, one word per case across the codebase.
CLOSED = "closed"  # the model wrote the end-of-thinking delimiter
FORCED = "forced"  # the budget was reached; budget forcing closed it
INCOMPLETE = "incomplete"  # never closed: the model ended its turn inside the block, or forcing was off


@dataclass(frozen=True)
class ThinkingFormat:
    open: str = "<think>\n"  # pre-filled after the generation prompt ("" if the template opens it)
    close: str = "</think>"  # the end-of-thinking delimiter, detected in generated text
    forced_close: str = "\n</think>\n\nFinal Answer:"  # budget forcing's cap: delimiter + answer cue
    ended_close: str = "\n</think>\n\n"  # closes a block the model's turn ended in (`Budget.answer_unclosed`)
    wait: str = "Wait"  # budget forcing's extension
    separator: str = "\n\n"  # between the delimiter and the answer, in SFT targets

    @classmethod
    def detect(cls, tokenizer) -> "ThinkingFormat":
        """The format a model's chat template implies (see the module docstring)."""
        template = str(getattr(tokenizer, "chat_template", None) or "")
        if "<|im_start|>think" in template:  # s1 / s1.1 (simplescaling)
            return cls(open="<|im_start|>think\n", close="<|im_start|>answer",
                       forced_close="\n<|im_start|>answer\nFinal Answer:", ended_close="<|im_start|>answer",
                       separator="\n")
        try:
            probe = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                                  add_generation_prompt=True)
        except (ValueError, TypeError, AttributeError):  # no template: plain text prompts
            probe = ""
        if probe.rstrip().endswith("<think>"):  # R1-Distill style: the template already opened the block
            return cls(open="\n" if probe.endswith("<think>") else "")
        return cls()

    def completion_text(self, thinking: str, answer: str) -> str:
        """The assistant text after the pre-filled opening, for SFT targets."""
        return f"{thinking}\n{self.close}{self.separator}{answer}"


DEFAULT_FORMAT = ThinkingFormat()
# Module-level names for the default format (used by tests and rewards that do not carry a format)
THINK_OPEN, THINK_CLOSE, FORCED_CLOSE, WAIT = (DEFAULT_FORMAT.open, DEFAULT_FORMAT.close,
                                               DEFAULT_FORMAT.forced_close, DEFAULT_FORMAT.wait)


@dataclass(frozen=True)
class Budget:
    """s1's budget forcing (Muennighoff et al. 2025, §3.1) for one generation.

    - `max_thinking_tokens`: the cap. On reaching it the block is closed with the forced close and
      the model answers (`force_close`), or left unclosed (`force_close=False`: no answer, as R1-Zero
      and DeepScaleR score truncated rollouts).
    - `max_waits`: the extension. The end-of-thinking delimiter is suppressed and "Wait" appended, up
      to this many times per sample; with `min_thinking_tokens` > 0 only while the thinking is shorter
      than that minimum (s1's "ignore end-of-thinking until the minimum"), otherwise every time.
    - `answer_tokens`: the answer's own budget after the block.
    - `answer_unclosed`: when the model ends its turn inside the block, close it for the model (the
      delimiter alone, no cue) and let it answer, as s1's harness does (its end-of-turn token dropped);
      False: the block stays unclosed and there is no answer (graded wrong).
    """
    max_thinking_tokens: int
    answer_tokens: int = 64
    min_thinking_tokens: int = 0
    max_waits: int = 0
    force_close: bool = True
    answer_unclosed: bool = False

    def __post_init__(self):
        if self.max_thinking_tokens < 1:
            raise ValueError(f"max_thinking_tokens must be >= 1, got {self.max_thinking_tokens}")
        if self.answer_tokens < 1:
            raise ValueError(f"answer_tokens must be >= 1, got {self.answer_tokens}")
        if self.max_waits < 0 or self.min_thinking_tokens < 0:
            raise ValueError("max_waits and min_thinking_tokens must be >= 0")
        if self.min_thinking_tokens > self.max_thinking_tokens:
            raise ValueError(f"min_thinking_tokens ({self.min_thinking_tokens}) > max_thinking_tokens "
                             f"({self.max_thinking_tokens})")

    def wants_wait(self, used: int, waits: int) -> bool:
        """Suppress a close after `used` thinking tokens and `waits` extensions so far?"""
        if waits >= self.max_waits:
            return False
        return self.min_thinking_tokens == 0 or used < self.min_thinking_tokens


def build_prompt(tokenizer, messages: list[dict], fmt: ThinkingFormat | None = None) -> str:
    """Chat-template text for `messages`, ending inside an open thinking block."""
    fmt = fmt or ThinkingFormat.detect(tokenizer)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + fmt.open


S1_ANSWER_ROOM = 100  # s1's "auto" budget leaves 100 tokens for the answer


def s1_auto_thinking(prompt_lengths: list[int], forced_close_tokens: int, max_gen_toks: int,
                     answer_room: int = S1_ANSWER_ROOM) -> int:
    """s1's `max_tokens_thinking=auto` (simplescaling/s1 lm-eval `vllm_causallms.py`): the generation limit less
    the longest prompt of the task (its thinking opening included, as s1 appends it to every prompt), less the
    forced close with its cue (`<|im_start|>answer\nFinal Answer:`), less 100 tokens for the answer."""
    if not prompt_lengths:
        raise ValueError("s1's auto thinking budget needs at least one prompt")
    cap = max_gen_toks - max(prompt_lengths) - forced_close_tokens - answer_room
    if cap < 1:
        raise ValueError(f"s1's auto thinking budget is {cap} tokens: max_gen_toks {max_gen_toks} leaves no room after "
                         f"the longest prompt ({max(prompt_lengths)} tokens)")
    return cap

"""Step-conditional budget forcing as s1 runs it (Muennighoff et al. 2025, §3.2 and Appendix E): the trace counts
its steps down ("3 steps left" before each step, from the bound the prompt states), and forcing stops the
thinking where the countdown reaches 0, closes the block with the forced close and lets the model answer.

Before issue 46 the step bound was forced as a token cap (N steps x `eval.step_tokens`), which cuts a trace whose
steps run long before its countdown ends and lets one whose steps run short go past it.

`cut_at_countdown` does it after generation: each completion whose thinking reaches the countdown's zero (the
task says where, `Task.countdown_zero(thinking text) -> character index or None`) is cut before it, force-closed
and answered from the cut; any other is kept as generated (it closed or stopped before its countdown ran out).
Under greedy decoding this is exactly what stopping there during generation gives (the kept tokens are the
same); sampled, the answer is drawn after the cut like any forced answer.
"""
from __future__ import annotations

from typing import Callable

from .forcing import Completion, _answer_round, _decode, _Ids
from .thinking import ThinkingFormat


def token_index(tokenizer, ids: list[int], char: int) -> int:
    """The number of leading tokens of `ids` whose text ends at or before character `char` of its decoding."""
    lo, hi = 0, len(ids)
    while lo < hi:  # the largest i with len(decode(ids[:i])) <= char (decoded lengths grow with i)
        mid = (lo + hi + 1) // 2
        if len(tokenizer.decode(ids[:mid], skip_special_tokens=True)) <= char:
            lo = mid
        else:
            hi = mid - 1
    return lo


def cut_at_countdown(engine, prompts: list[str], completions: list[Completion], zero: Callable[[str], int | None],
                     answer_tokens: int, fmt: ThinkingFormat, sampling, progress: bool = False) -> list[Completion]:
    """`completions` with every thinking that reaches the countdown's zero cut there, force-closed and answered
    (module doc); the others unchanged (copies)."""
    import copy

    tok = engine.tokenizer
    ids = _Ids.of(tok, fmt)
    out, cut_rows = [], []
    for c in completions:
        where = zero(c.thinking_text)
        if where is None:
            out.append(copy.deepcopy(c))
            continue
        n = token_index(tok, c.thinking_ids, where)
        row = Completion(c.prompt_index, c.sample_index, c.prompt_tokens, thinking_ids=c.thinking_ids[:n],
                         completion_ids=c.completion_ids[:n], sampled_mask=c.sampled_mask[:n],
                         engine_logps=c.engine_logps[:n], waits=c.waits, tries=c.tries)
        row._force_close(ids.forced)
        out.append(row)
        cut_rows.append(row)
    prompt_ids = [tok.encode(p, add_special_tokens=False) for p in prompts]
    _answer_round(engine, cut_rows, prompt_ids, answer_tokens, sampling, "answers at the countdown's end", progress)
    _decode(tok, cut_rows)
    return out

"""Generation with thinking budgets on the Hugging Face backend (batched, KV cache), with s1's
budget forcing (Muennighoff et al. 2025, "s1: Simple test-time scaling", §3.1).

Every completion starts inside an open thinking block (see `thinking.py`). Generation runs in rounds
of batched `model.generate` calls, each row with its own token limit:

- thinking rounds: generate until `</think>`, the end-of-turn token, or the remaining budget.
  * under `min_thinking_tokens`, a close (delimiter or end-of-turn) is suppressed: the delimiter
    tokens are dropped and "Wait" is appended, at most `max_waits` times, then the row goes on;
  * reaching `max_thinking_tokens` closes the block with `</think>` + "Final Answer:" (forced);
  * an end-of-turn inside the block leaves it never closed (incomplete): no answer.
- one answer round: rows whose block is closed (by the model or forced) generate the answer, up to
  `answer_tokens`.

Token accounting is exact because the rows are kept as token ids, never re-tokenised: thinking
tokens are every id inside the block (the model's and the injected "Wait"s), so the cap holds
exactly. Injected ids (Wait, the forced close) are marked in `sampled_mask` so RL never trains on
tokens the model did not choose.

Departure from s1: s1 uses a single-token delimiter and suppresses it in the logits; `</think>` is
several tokens in most tokenizers, so it is detected in text after it is generated and then removed.
Each round re-reads the prompt+prefix (prefill) instead of keeping the KV cache across rounds; a
row sees at most `max_waits + 2` rounds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import thinking as T


@dataclass
class Completion:
    prompt_index: int
    sample_index: int
    prompt_tokens: int = 0  # length of the prompt the completion continues
    thinking_ids: list[int] = field(default_factory=list)  # inside the block, Waits included
    close_ids: list[int] = field(default_factory=list)  # the delimiter as written, or the forced close
    answer_ids: list[int] = field(default_factory=list)  # model-written answer (end-of-turn included)
    completion_ids: list[int] = field(default_factory=list)  # everything after the prompt, in order
    sampled_mask: list[int] = field(default_factory=list)  # 1 = sampled by the model, 0 = injected
    thinking_end: str = T.INCOMPLETE
    waits: int = 0
    answer_truncated: bool = False
    thinking_text: str = ""
    answer_text: str = ""

    @property
    def thinking_tokens(self) -> int:
        return len(self.thinking_ids)

    @property
    def answer_tokens(self) -> int:
        return len(self.answer_ids)

    def _extend(self, ids: list[int], sampled: bool) -> None:
        self.completion_ids.extend(ids)
        self.sampled_mask.extend([int(sampled)] * len(ids))


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    batch_size: int = 8


class _RoundStop:
    """Per-row stopping for one batched generate call; records where and why each row stopped.

    Returns a (B,) bool tensor, so rows stop independently (transformers pads finished rows).
    """

    def __init__(self, tokenizer, prompt_len: int, limits: list[int], stop_text: str | None, eos_ids: set[int]):
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.limits = limits
        self.stop_text = stop_text
        self.eos_ids = eos_ids
        self.events: list[tuple[int, str] | None] = [None] * len(limits)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        n = input_ids.shape[1] - self.prompt_len
        done = []
        for row in range(input_ids.shape[0]):
            if self.events[row] is None and n > 0:
                last = int(input_ids[row, -1])
                if last in self.eos_ids:
                    self.events[row] = (n, "eos")
                elif self.stop_text and self.stop_text in self.tokenizer.decode(input_ids[row, -min(n, 8):]):
                    self.events[row] = (n, "stop")
                elif n >= self.limits[row]:
                    self.events[row] = (n, "length")
            done.append(self.events[row] is not None)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _round(model, tokenizer, prefixes: list[list[int]], limits: list[int], stop_text: str | None,
           sampling: Sampling, eos_ids: set[int], desc: str, progress: bool) -> list[tuple[list[int], str]]:
    """One batched pass: each prefix continues for at most its limit; returns (new ids, reason)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig, StoppingCriteriaList

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    # Sort by length so a batch holds similar lengths (less padding); results go back in order.
    order = sorted(range(len(prefixes)), key=lambda i: len(prefixes[i]))
    results: list[tuple[list[int], str] | None] = [None] * len(prefixes)
    device = next(model.parameters()).device
    chunks = [order[i:i + sampling.batch_size] for i in range(0, len(order), sampling.batch_size)]
    for chunk in tqdm(chunks, desc=desc, disable=None if progress else True, leave=False):
        width = max(len(prefixes[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, i in enumerate(chunk):  # left padding: every row ends at the same column
            ids = prefixes[i]
            input_ids[r, width - len(ids):] = torch.tensor(ids)
            attention[r, width - len(ids):] = 1
        row_limits = [limits[i] for i in chunk]
        stop = _RoundStop(tokenizer, width, row_limits, stop_text, eos_ids)
        config = GenerationConfig(
            max_new_tokens=max(row_limits),
            do_sample=sampling.temperature > 0,
            temperature=sampling.temperature if sampling.temperature > 0 else None,
            top_p=sampling.top_p if sampling.temperature > 0 else None,
            top_k=None,  # no top-k truncation: R1-Zero samples at temperature 1 from the full vocabulary
            pad_token_id=pad,
            eos_token_id=sorted(eos_ids),
        )
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device), generation_config=config,
                stopping_criteria=StoppingCriteriaList([stop]),
            )
        new = out[:, width:].tolist()
        for r, i in enumerate(chunk):
            n, reason = stop.events[r] or (len(new[r]), "length")
            results[i] = (new[r][:n], reason)
    return results  # type: ignore[return-value]


def _delimiter_start(tokenizer, ids: list[int], delimiter: str) -> int:
    """Index of the first token that is part of `delimiter` (which the decoded ids contain)."""
    text = tokenizer.decode(ids)
    pos = text.find(delimiter)
    for i in range(len(ids) - 1, -1, -1):
        if len(tokenizer.decode(ids[:i])) <= pos:
            return i
    return 0


def _eos_ids(model, tokenizer) -> set[int]:
    """End-of-turn ids: the tokenizer's plus any the model's generation config adds."""
    ids = {tokenizer.eos_token_id}
    extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(extra if isinstance(extra, list) else [extra] if extra is not None else [])
    ids.discard(None)
    return ids


def generate(model, tokenizer, prompts: list[str], *, n: int = 1, max_thinking_tokens: int,
             min_thinking_tokens: int = 0, max_waits: int = 0, answer_tokens: int = 64,
             force_close: bool = True, sampling: Sampling = Sampling(), seed: int = 0,
             progress: bool = False) -> list[Completion]:
    """Generate `n` completions per prompt (prompt text must end inside `<think>`, see
    `thinking.build_prompt`). Returns completions ordered by (prompt, sample)."""
    import torch

    if max_thinking_tokens < 1:
        raise ValueError(f"max_thinking_tokens must be >= 1, got {max_thinking_tokens}")
    if min_thinking_tokens > max_thinking_tokens:
        raise ValueError(f"min_thinking_tokens ({min_thinking_tokens}) > max_thinking_tokens ({max_thinking_tokens})")
    torch.manual_seed(seed)
    eos_ids = _eos_ids(model, tokenizer)
    wait_ids = tokenizer.encode(T.WAIT, add_special_tokens=False)
    forced_ids = tokenizer.encode(T.FORCED_CLOSE, add_special_tokens=False)
    prompt_ids = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    rows = [Completion(p, s, len(prompt_ids[p])) for p in range(len(prompts)) for s in range(n)]

    active = list(range(len(rows)))
    round_no = 0
    while active:
        round_no += 1
        prefixes = [prompt_ids[rows[i].prompt_index] + rows[i].completion_ids for i in active]
        limits = [max_thinking_tokens - rows[i].thinking_tokens for i in active]
        outs = _round(model, tokenizer, prefixes, limits, T.THINK_CLOSE, sampling, eos_ids,
                      f"thinking (round {round_no})", progress)
        still = []
        for i, (new, reason) in zip(active, outs):
            row = rows[i]
            if reason == "length":  # the budget is spent
                row.thinking_ids += new
                row._extend(new, True)
                if force_close:
                    row.thinking_end = T.FORCED
                    row.close_ids = list(forced_ids)
                    row._extend(forced_ids, False)
                continue
            cut = _delimiter_start(tokenizer, new, T.THINK_CLOSE) if reason == "stop" else len(new) - 1
            kept, closing = new[:cut], new[cut:]
            used = row.thinking_tokens + len(kept)
            if used < min_thinking_tokens and row.waits < max_waits and used + len(wait_ids) < max_thinking_tokens:
                # s1 "extend": drop the close, append Wait, keep thinking
                row.thinking_ids += kept + wait_ids
                row._extend(kept, True)
                row._extend(wait_ids, False)
                row.waits += 1
                still.append(i)
                continue
            row.thinking_ids += kept
            row._extend(kept, True)
            row._extend(closing, True)
            if reason == "stop":
                row.thinking_end = T.CLOSED
                row.close_ids = closing
            # reason == "eos": the turn ended inside the block -> incomplete, no answer round
        active = still

    answering = [rows[i] for i, r in enumerate(rows) if r.thinking_end in (T.CLOSED, T.FORCED)]
    _answer_round(model, tokenizer, answering, prompt_ids, answer_tokens, sampling, eos_ids, "answer", progress)
    _decode(tokenizer, rows)
    return rows


def _answer_round(model, tokenizer, rows: list[Completion], prompt_ids: list[list[int]], answer_tokens: int,
                  sampling: Sampling, eos_ids: set[int], desc: str, progress: bool) -> None:
    """Generate the answer after each row's closed thinking block, in place."""
    if not rows:
        return
    prefixes = [prompt_ids[r.prompt_index] + r.completion_ids for r in rows]
    outs = _round(model, tokenizer, prefixes, [answer_tokens] * len(rows), None, sampling, eos_ids, desc, progress)
    for row, (new, reason) in zip(rows, outs):
        row.answer_ids = new
        row._extend(new, True)
        row.answer_truncated = reason == "length"


def _decode(tokenizer, rows: list[Completion]) -> None:
    for row in rows:
        row.thinking_text = tokenizer.decode(row.thinking_ids, skip_special_tokens=True)
        row.answer_text = tokenizer.decode(row.answer_ids, skip_special_tokens=True)


def _ended_within(c: Completion, budget: int) -> bool:
    """Would a run capped at `budget` thinking tokens have seen this sample's thinking end the same
    way? The model's own close needs its delimiter tokens inside the budget; an end-of-turn needs its
    token inside it."""
    if c.thinking_end == T.CLOSED:
        return c.thinking_tokens + len(c.close_ids) <= budget
    if c.thinking_end == T.INCOMPLETE and len(c.completion_ids) > c.thinking_tokens:
        return c.thinking_tokens + 1 <= budget  # ended by an end-of-turn token
    return False


def generate_sweep(model, tokenizer, prompts: list[str], *, budgets: list[int], n: int = 1,
                   min_thinking_tokens: int = 0, max_waits: int = 0, answer_tokens: int = 64,
                   force_close: bool = True, sampling: Sampling = Sampling(), seed: int = 0,
                   progress: bool = False, timings: dict[int, float] | None = None) -> dict[int, list[Completion]]:
    """Completions at every budget from one generation at the largest.

    A sample whose thinking ended within a smaller budget is the same at that budget. Any other is
    cut after `budget` thinking tokens (its own first tokens, exactly what a run capped there would
    have produced under greedy decoding), closed with the forced cue, and only the answer is
    generated (batched; the HF backend re-reads the prompt+thinking prefix, vLLM's prefix cache
    reuses it). With sampling, smaller budgets are truncations of the same samples, as in s1.
    Approximation: with `min_thinking_tokens`, a "Wait" a capped run would have skipped near its cap
    is kept. `timings`, if given, receives the generation seconds per budget (the largest: the full
    generation; the others: their answer round).
    """
    import copy
    import time

    import torch

    budgets = sorted(set(budgets))
    top = budgets[-1]
    timings = {} if timings is None else timings
    t0 = time.time()
    full = generate(model, tokenizer, prompts, n=n, max_thinking_tokens=top,
                    min_thinking_tokens=min_thinking_tokens, max_waits=max_waits, answer_tokens=answer_tokens,
                    force_close=force_close, sampling=sampling, seed=seed, progress=progress)
    out = {top: full}
    timings[top] = time.time() - t0
    forced_ids = tokenizer.encode(T.FORCED_CLOSE, add_special_tokens=False)
    wait_len = len(tokenizer.encode(T.WAIT, add_special_tokens=False))
    prompt_ids = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    eos_ids = _eos_ids(model, tokenizer)
    for budget in budgets[:-1]:
        t0 = time.time()
        rows, cut = [], []
        for c in full:
            if _ended_within(c, budget):
                rows.append(copy.deepcopy(c))
                continue
            row = Completion(c.prompt_index, c.sample_index, c.prompt_tokens,
                             thinking_ids=c.completion_ids[:budget], completion_ids=c.completion_ids[:budget],
                             sampled_mask=c.sampled_mask[:budget])
            row.waits = (budget - sum(row.sampled_mask)) // wait_len if wait_len else 0
            if force_close:
                row.thinking_end = T.FORCED
                row.close_ids = list(forced_ids)
                row._extend(forced_ids, False)
                cut.append(len(rows))
            rows.append(row)
        if cut:
            torch.manual_seed(seed + budget)
            _answer_round(model, tokenizer, [rows[i] for i in cut], prompt_ids, answer_tokens, sampling, eos_ids,
                          f"answers at budget {budget}", progress)
        _decode(tokenizer, rows)
        out[budget] = rows
        timings[budget] = time.time() - t0
    return out


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
row sees at most `max_waits + 2` rounds. Budget sweeps (`generate_sweep`) do keep it: the smaller
budgets' forced answers continue the thinking round's cache, cut at each budget.
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

    def _set_answer(self, ids: list[int], reason: str) -> None:
        """Append the model-written answer; `reason` "length" = cut at the answer budget."""
        self.answer_ids = ids
        self._extend(ids, True)
        self.answer_truncated = reason == "length"


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


def _generation_config(sampling: Sampling, max_new_tokens: int, pad: int, eos_ids: set[int]):
    from transformers import GenerationConfig

    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampling.temperature > 0,
        temperature=sampling.temperature if sampling.temperature > 0 else None,
        top_p=sampling.top_p if sampling.temperature > 0 else None,
        top_k=None,  # no top-k truncation: R1-Zero samples at temperature 1 from the full vocabulary
        pad_token_id=pad,
        eos_token_id=sorted(eos_ids),
    )


def _round(model, tokenizer, prefixes: list[list[int]], limits: list[int], stop_text: str | None,
           sampling: Sampling, eos_ids: set[int], desc: str, progress: bool,
           after_chunk=None) -> list[tuple[list[int], str]]:
    """One batched pass: each prefix continues for at most its limit; returns (new ids, reason), reason
    "eos" | "stop" | "length", the end-of-turn or stop-completing token last. An engine object with
    `round_batch` (vLLM, `vllm_engine.py`) runs the round itself; everything above is shared.

    `after_chunk(chunk, sequences, attention, cache, width, outs)`, if given, sees each batch's
    left-padded sequences (B, width + new), prompt mask (B, width), KV cache and per-row (new ids,
    reason) before they are dropped (answers continue from that cache, see `_answers_from_cache`)."""
    if hasattr(model, "round_batch"):
        return model.round_batch(tokenizer, prefixes, limits, stop_text, sampling, eos_ids, desc, progress)
    import torch
    from tqdm.auto import tqdm
    from transformers import StoppingCriteriaList

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
        config = _generation_config(sampling, max(row_limits), pad, eos_ids)
        config.return_dict_in_generate = after_chunk is not None  # the hook needs the KV cache
        attention = attention.to(device)
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids.to(device), attention_mask=attention, generation_config=config,
                stopping_criteria=StoppingCriteriaList([stop]),
            )
        sequences = out.sequences if after_chunk is not None else out
        new = sequences[:, width:].tolist()
        for r, i in enumerate(chunk):
            n, reason = stop.events[r] or (len(new[r]), "length")
            results[i] = (new[r][:n], reason)
        if after_chunk is not None:
            after_chunk(chunk, sequences, attention, out.past_key_values, width, [results[i] for i in chunk])
    return results  # type: ignore[return-value]


def _slice_cache(cache, rows, length: int):
    """A new KV cache with batch rows `rows` and the first `length` positions of `cache` (left intact),
    or None for a cache kind this does not know how to cut (the caller then re-reads the prefix)."""
    import copy

    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:  # a transformers without per-layer caches
        return None
    if type(cache) is not DynamicCache or not all(type(layer) is DynamicLayer for layer in cache.layers):
        return None
    new = copy.copy(cache)
    new.layers = []
    for layer in cache.layers:
        part = copy.copy(layer)
        part.keys = layer.keys[rows, :, :length]  # (rows, heads, length, head_dim); indexing copies
        part.values = layer.values[rows, :, :length]
        new.layers.append(part)
    return new


def _answers_from_cache(model, tokenizer, sequences, attention, cache, width: int, rows: list[int],
                        keep: list[int], suffixes: list[list[int]], answer_tokens: int, sampling: Sampling,
                        eos_ids: set[int]):
    """Continue batch rows `rows` of a finished round from its KV cache: row r keeps its first `keep[r]`
    generated tokens (their KV is reused), then reads `suffixes[r]` and generates an answer.

    Layout, per row: [left-padded prompt | keep[r] tokens | holes up to max(keep) | left-padded suffix].
    Every row's generated tokens start at column `width`, so one cut of the cache serves the batch;
    holes and suffix padding are masked out (positions come from the mask, so they stay exact), and
    the last column is always a real token. Returns [(new ids, reason)] per row, or None if the cache
    cannot be cut (the caller then re-reads the prefixes)."""
    import torch
    from transformers import StoppingCriteriaList

    device = sequences.device
    index = torch.tensor(rows, device=device)
    kept = max(keep)
    prefix = _slice_cache(cache, index, width + kept)
    if prefix is None:
        return None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    n_suffix = max(len(x) for x in suffixes)
    tail = torch.full((len(rows), n_suffix), pad, dtype=sequences.dtype, device=device)
    tail_mask = torch.zeros((len(rows), n_suffix), dtype=attention.dtype, device=device)
    body_mask = torch.zeros((len(rows), kept), dtype=attention.dtype, device=device)
    for j, (k, suffix) in enumerate(zip(keep, suffixes)):
        body_mask[j, :k] = 1
        if suffix:
            tail[j, n_suffix - len(suffix):] = torch.tensor(suffix, dtype=sequences.dtype)
            tail_mask[j, n_suffix - len(suffix):] = 1
    input_ids = torch.cat([sequences[index, :width + kept], tail], dim=1)
    mask = torch.cat([attention[index], body_mask, tail_mask], dim=1)
    stop = _RoundStop(tokenizer, input_ids.shape[1], [answer_tokens] * len(rows), None, eos_ids)
    with torch.no_grad():
        out = model.generate(input_ids=input_ids, attention_mask=mask, past_key_values=prefix,
                             generation_config=_generation_config(sampling, answer_tokens, pad, eos_ids),
                             stopping_criteria=StoppingCriteriaList([stop]))
    new = out[:, input_ids.shape[1]:].tolist()
    return [(new[r][:n], reason) for r, (n, reason) in
            ((r, stop.events[r] or (len(new[r]), "length")) for r in range(len(rows)))]


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
             progress: bool = False, first_round_hook=None) -> list[Completion]:
    """Generate `n` completions per prompt (prompt text must end inside `<think>`, see
    `thinking.build_prompt`). Returns completions ordered by (prompt, sample). `first_round_hook` is
    `_round`'s `after_chunk` for the first thinking round (whose row i is completion i)."""
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

    # With one thinking round (no Wait extensions), answers continue each batch's KV cache right
    # after that round instead of re-reading prompt + thinking in a separate answer round.
    answered: dict[int, tuple[list[int], str]] = {}
    from_cache = max_waits == 0 and not hasattr(model, "round_batch")

    def after_first_round(chunk, sequences, attention, cache, width, outs):
        if first_round_hook is not None:
            first_round_hook(chunk, sequences, attention, cache, width, outs)
        picked, keep, suffixes = [], [], []
        for r, (new, reason) in enumerate(outs):
            if reason == "stop" or (reason == "length" and force_close):  # closed by the model / forced
                picked.append(r)
                keep.append(len(new) - 1)  # the last sampled token is not in the cache yet: re-read it
                suffixes.append(new[-1:] + (forced_ids if reason == "length" else []))
        if picked:
            answers = _answers_from_cache(model, tokenizer, sequences, attention, cache, width, picked, keep,
                                          suffixes, answer_tokens, sampling, eos_ids)
            for r, answer in zip(picked, answers or []):
                answered[chunk[r]] = answer

    hook = after_first_round if from_cache else first_round_hook
    active = list(range(len(rows)))
    round_no = 0
    while active:
        round_no += 1
        prefixes = [prompt_ids[rows[i].prompt_index] + rows[i].completion_ids for i in active]
        limits = [max_thinking_tokens - rows[i].thinking_tokens for i in active]
        outs = _round(model, tokenizer, prefixes, limits, T.THINK_CLOSE, sampling, eos_ids,
                      f"thinking (round {round_no})", progress, hook if round_no == 1 else None)
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

    for i, (new, reason) in answered.items():
        rows[i]._set_answer(new, reason)
    answering = [r for i, r in enumerate(rows) if r.thinking_end in (T.CLOSED, T.FORCED) and i not in answered]
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
        row._set_answer(new, reason)


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
    generated, reusing the prompt+thinking prefix: on the HF backend each batch's KV cache from the
    thinking round is cut at the budget and continued with the forced close (no re-read of the
    prefix; needs max_waits=0, else the prefix is re-read); vLLM's prefix cache does the same. With sampling, smaller budgets are truncations of the same samples, as in s1.
    Approximation: with `min_thinking_tokens`, a "Wait" a capped run would have skipped near its cap
    is kept. `timings`, if given, receives the generation seconds per budget (the largest: the full
    generation; the others: their share of the one answer round they have together, by rows).
    """
    import copy
    import time

    import torch

    budgets = sorted(set(budgets))
    top = budgets[-1]
    timings = {} if timings is None else timings
    forced_ids = tokenizer.encode(T.FORCED_CLOSE, add_special_tokens=False)
    eos_ids = _eos_ids(model, tokenizer)
    smaller = budgets[:-1]
    # (completion index, budget) -> (answer ids, reason), from the thinking round's KV cache
    early: dict[tuple[int, int], tuple[list[int], str]] = {}
    early_seconds = dict.fromkeys(smaller, 0.0)

    def answer_smaller_budgets(chunk, sequences, attention, cache, width, outs):
        # a row is cut at budget b iff its first round produced more than b tokens (with one round,
        # that is exactly `not _ended_within(row, b)`)
        for b in smaller:
            rows = [r for r, (new, _) in enumerate(outs) if len(new) > b]
            if not rows:
                continue
            t = time.time()
            torch.manual_seed(seed + b)
            answers = _answers_from_cache(model, tokenizer, sequences, attention, cache, width, rows, [b] * len(rows),
                                          [forced_ids] * len(rows), answer_tokens, sampling, eos_ids)
            early_seconds[b] += time.time() - t
            if answers is None:  # a cache kind we cannot cut: the rows take the re-reading path below
                return
            for r, answer in zip(rows, answers):
                early[(chunk[r], b)] = answer

    reuse = smaller and force_close and max_waits == 0 and not hasattr(model, "round_batch")
    t0 = time.time()
    full = generate(model, tokenizer, prompts, n=n, max_thinking_tokens=top,
                    min_thinking_tokens=min_thinking_tokens, max_waits=max_waits, answer_tokens=answer_tokens,
                    force_close=force_close, sampling=sampling, seed=seed, progress=progress,
                    first_round_hook=answer_smaller_budgets if reuse else None)
    out = {top: full}
    timings[top] = time.time() - t0 - sum(early_seconds.values())
    wait_len = len(tokenizer.encode(T.WAIT, add_special_tokens=False))
    prompt_ids = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    t0 = time.time()
    cut: list[tuple[int, Completion]] = []  # (budget, row) still needing a forced answer
    for budget in smaller:
        rows = []
        for i, c in enumerate(full):
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
                if (i, budget) in early:
                    row._set_answer(*early[(i, budget)])
                else:
                    cut.append((budget, row))
            rows.append(row)
        out[budget] = rows
    if cut:
        # the rows not answered from a cache: one answer round for all smaller budgets, re-reading
        # each prompt+thinking prefix
        torch.manual_seed(seed + 1)
        _answer_round(model, tokenizer, [row for _, row in cut], prompt_ids, answer_tokens, sampling, eos_ids,
                      "forced answers (smaller budgets)", progress)
    elapsed = time.time() - t0
    for budget in smaller:
        _decode(tokenizer, out[budget])
        # early answers were timed per budget; a shared round is split by each budget's share of its rows
        share = sum(b == budget for b, _ in cut) / len(cut) if cut else 0.0
        timings[budget] = early_seconds[budget] + elapsed * share
    return out

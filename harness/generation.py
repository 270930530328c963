"""Generation with thinking budgets: s1's budget forcing (Muennighoff et al. 2025, "s1: Simple
test-time scaling", §3.1) over any engine (`engine.py`: transformers or vLLM).

Every completion starts inside an open thinking block (`thinking.py`). Generation runs in rounds,
each row with its own token limit:

- thinking rounds: generate until the end-of-thinking delimiter, the end-of-turn token, or the
  remaining budget.
  * the extension (`Budget.max_waits`): a close is suppressed (the delimiter tokens are dropped) and
    "Wait" appended, at most `max_waits` times, then the row goes on; with `min_thinking_tokens` only
    while the thinking is shorter than that;
  * reaching `max_thinking_tokens` closes the block with the forced close + "Final Answer:" (forced);
  * an end-of-turn inside the block leaves it never closed (incomplete): no answer.
- the answer: a row whose block is closed (by the model or forced) generates its answer, up to
  `answer_tokens`, continuing the round's own KV cache (`Chunk.continue_rows`); where an engine
  cannot, a separate round re-reads prompt + thinking. Greedy rounds without the extension go one
  step further where the engine can (`hf_compact.think_then_answer`): a row answers as soon as its
  thinking stops, in the same batch as the rows still thinking, and a sweep's smaller caps are answered
  by copies of a row made when it passes them, so no second batch runs at all.

Token accounting is exact because rows are kept as token ids, never re-tokenised: thinking tokens are
every id inside the block (the model's and the injected "Wait"s), so the cap holds exactly. Injected
ids (Wait, the forced close) are marked in `sampled_mask` so RL never trains on tokens the model did
not choose.

Budget sweeps (`sweep`) cost about one generation: each sample is generated once at the largest
budget; for a smaller budget, a sample whose thinking ended within it is the same, and any other is
cut after that many thinking tokens (its own first tokens, exactly what a run capped there produces
under greedy decoding), force-closed, and only its answer is generated, continuing the first round's
cache cut at the budget.

Departure from s1: s1 uses a single-token delimiter and suppresses it in the logits; `</think>` is
several tokens in most tokenizers, so it is detected in text after it is generated and then removed.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from . import thinking as T
from .engine import EOS, LENGTH, STOP, Engine, RoundOutput, Sampling, run_round
from .thinking import Budget, ThinkingFormat

__all__ = ["Budget", "Completion", "Sampling", "generate", "sweep"]


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

    def _set_answer(self, out: RoundOutput) -> None:
        """Append the model-written answer; a LENGTH stop means it was cut at the answer budget."""
        self.answer_ids = list(out.ids)
        self._extend(self.answer_ids, True)
        self.answer_truncated = out.reason == LENGTH

    def _force_close(self, forced_ids: list[int]) -> None:
        self.thinking_end = T.FORCED
        self.close_ids = list(forced_ids)
        self._extend(forced_ids, False)


@dataclass
class _Ids:
    """The format's strings as token ids, once per call."""
    wait: list[int]
    forced: list[int]

    @classmethod
    def of(cls, tokenizer, fmt: ThinkingFormat) -> "_Ids":
        enc = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
        return cls(enc(fmt.wait), enc(fmt.forced_close))


def _delimiter_start(tokenizer, ids: list[int], delimiter: str) -> int:
    """Index of the first token that is part of `delimiter` (which the decoded ids contain)."""
    text = tokenizer.decode(ids)
    pos = text.find(delimiter)
    for i in range(len(ids) - 1, -1, -1):
        if len(tokenizer.decode(ids[:i])) <= pos:
            return i
    return 0


# What a thinking round left a row needing.
_WAIT, _ANSWER, _DONE = "wait", "answer", "done"


def _advance(row: Completion, out: RoundOutput, budget: Budget, ids: _Ids, tokenizer, fmt: ThinkingFormat) -> str:
    """Apply one thinking round's output to `row` (in place): the cap, the extension, or the close."""
    new, reason = out
    if reason == LENGTH:  # the budget is spent
        row.thinking_ids += new
        row._extend(new, True)
        if budget.force_close:
            row._force_close(ids.forced)
            return _ANSWER
        return _DONE
    cut = _delimiter_start(tokenizer, new, fmt.close) if reason == STOP else len(new) - 1
    kept, closing = new[:cut], new[cut:]
    used = row.thinking_tokens + len(kept)
    if budget.wants_wait(used, row.waits) and used + len(ids.wait) < budget.max_thinking_tokens:
        # s1's extension: drop the close, append Wait, keep thinking
        row.thinking_ids += kept + ids.wait
        row._extend(kept, True)
        row._extend(ids.wait, False)
        row.waits += 1
        return _WAIT
    row.thinking_ids += kept
    row._extend(kept, True)
    row._extend(closing, True)
    if reason == STOP:
        row.thinking_end = T.CLOSED
        row.close_ids = closing
        return _ANSWER
    return _DONE  # EOS: the turn ended inside the block -> incomplete, no answer


def _ended_within(c: Completion, budget: int) -> bool:
    """Would a run capped at `budget` thinking tokens have seen this sample's thinking end the same
    way? The model's own close needs its delimiter tokens inside the budget; an end-of-turn needs its
    token inside it."""
    if c.thinking_end == T.CLOSED:
        return c.thinking_tokens + len(c.close_ids) <= budget
    if c.thinking_end == T.INCOMPLETE and len(c.completion_ids) > c.thinking_tokens:
        return c.thinking_tokens + 1 <= budget  # ended by an end-of-turn token
    return False


def _answer_round(engine: Engine, rows: list[Completion], prompt_ids: list[list[int]], answer_tokens: int,
                  sampling: Sampling, desc: str, progress: bool) -> None:
    """Generate the answer after each row's closed thinking block, re-reading its prefix; in place."""
    if not rows:
        return
    prefixes = [prompt_ids[r.prompt_index] + r.completion_ids for r in rows]
    outs = run_round(engine, prefixes, [answer_tokens] * len(rows), None, sampling, desc, progress)
    for row, out in zip(rows, outs):
        row._set_answer(out)


def _decode(tokenizer, rows: list[Completion]) -> None:
    for row in rows:
        row.thinking_text = tokenizer.decode(row.thinking_ids, skip_special_tokens=True)
        row.answer_text = tokenizer.decode(row.answer_ids, skip_special_tokens=True)


def sweep(engine: Engine, prompts: list[str], budget: Budget, budgets: list[int] | tuple[int, ...] = (), *,
          n: int = 1, sampling: Sampling = Sampling(), seed: int = 0, progress: bool = False,
          fmt: ThinkingFormat | None = None, timings: dict[int, float] | None = None) -> dict[int, list[Completion]]:
    """Completions at `budget.max_thinking_tokens` and at each smaller cap in `budgets`, from one
    generation (see the module docstring). Prompts must end inside the thinking block
    (`thinking.build_prompt`). Returns {cap: completions ordered by (prompt, sample)}.

    Approximation: with Wait extensions, a "Wait" a capped run would have skipped near its cap is kept,
    and the smaller caps' answers re-read their prefixes. `timings`, if given, receives the generation
    seconds per cap (the largest: the full generation; the others: their forced answers)."""
    import torch

    tok = engine.tokenizer
    fmt = fmt or ThinkingFormat.detect(tok)
    top = budget.max_thinking_tokens
    if any(b < 1 or b > top for b in budgets):
        raise ValueError(f"sweep caps must be in 1..{top} (the budget's max_thinking_tokens), got {list(budgets)}")
    smaller = sorted(set(budgets) - {top})
    timings = {} if timings is None else timings
    ids = _Ids.of(tok, fmt)
    torch.manual_seed(seed)
    prompt_ids = [tok.encode(p, add_special_tokens=False) for p in prompts]
    rows = [Completion(p, s, len(prompt_ids[p])) for p in range(len(prompts)) for s in range(n)]
    early: dict[tuple[int, int], RoundOutput] = {}  # (row, smaller cap) -> its forced answer
    early_seconds = dict.fromkeys(smaller, 0.0)
    unanswered: list[int] = []  # rows whose answer could not continue a cache
    t_start = time.time()
    active, round_no = list(range(len(rows))), 0
    # greedy and no Wait extension: a row's next step after its thinking is known in advance, so an engine
    # that can may write the answers (and the smaller caps' forced answers) inside the thinking round
    follow = None
    if sampling.temperature == 0 and budget.max_waits == 0:
        from .hf_compact import Follow

        follow = Follow(ids.forced, budget.answer_tokens, budget.force_close,
                        tuple(smaller) if budget.force_close else ())
    while active:
        round_no += 1
        prefixes = [prompt_ids[rows[i].prompt_index] + rows[i].completion_ids for i in active]
        limits = [top - rows[i].thinking_tokens for i in active]
        still = []
        t_chunk = time.time()
        for chunk in engine.rounds(prefixes, limits, fmt.close, sampling, f"thinking (round {round_no})", progress,
                                   **({"follow": follow} if follow is not None else {})):
            members = [active[j] for j in chunk.indices]
            answered = getattr(chunk, "answers", None)
            if answered is not None:
                # answered in the round; the forks' share of the chunk's row-steps is the smaller caps' time
                spent = time.time() - t_chunk
                for r, i in enumerate(members):
                    state = _advance(rows[i], chunk.outputs[r], budget, ids, tok, fmt)
                    if state == _ANSWER:
                        rows[i]._set_answer(answered[(r, None)])
                forked = [(r, b) for (r, b) in answered if b is not None]
                for r, b in forked:
                    early[(members[r], b)] = answered[(r, b)]
                for b in smaller:
                    share = chunk.steps["forks"] / chunk.steps["rows"] if chunk.steps["rows"] else 0.0
                    early_seconds[b] += spent * share * (sum(x == b for _, x in forked) / len(forked) if forked else 0)
                t_chunk = time.time()
                continue
            if round_no == 1 and smaller and budget.force_close:
                # a row is cut at cap b iff its first round produced more than b tokens; every cap's cut
                # rows are answered in one batch (a row appears once per cap it is cut at)
                pairs = [(r, b) for b in smaller for r, out in enumerate(chunk.outputs) if len(out.ids) > b]
                if pairs:
                    t = time.time()
                    torch.manual_seed(seed + 1)
                    answers = chunk.continue_rows([r for r, _ in pairs], [b for _, b in pairs],
                                                  [ids.forced] * len(pairs), budget.answer_tokens, sampling)
                    spent = time.time() - t
                    if answers is not None:  # else the engine cannot continue: these rows re-read below
                        for (r, b), answer in zip(pairs, answers):
                            early[(members[r], b)] = answer
                    for b in smaller:  # the batch's time, split by each cap's share of its rows
                        early_seconds[b] += spent * sum(x == b for _, x in pairs) / len(pairs)
            finals = []
            for r, (i, out) in enumerate(zip(members, chunk.outputs)):
                state = _advance(rows[i], out, budget, ids, tok, fmt)
                if state == _WAIT:
                    still.append(i)
                elif state == _ANSWER:
                    finals.append(r)
            if finals:
                # the last sampled token is not in the cache yet: it is re-read with the suffix
                outs = [chunk.outputs[r] for r in finals]
                answers = chunk.continue_rows(
                    finals, [len(o.ids) - 1 for o in outs],
                    [o.ids[-1:] + (ids.forced if o.reason == LENGTH else []) for o in outs],
                    budget.answer_tokens, sampling)
                if answers is None:
                    unanswered += [members[r] for r in finals]
                else:
                    for r, answer in zip(finals, answers):
                        rows[members[r]]._set_answer(answer)
            t_chunk = time.time()
        active = sorted(still)
    _answer_round(engine, [rows[i] for i in sorted(unanswered)], prompt_ids, budget.answer_tokens, sampling,
                  "answer", progress)
    _decode(tok, rows)
    out = {top: rows}
    timings[top] = time.time() - t_start - sum(early_seconds.values())

    t_start = time.time()
    queued: list[tuple[int, Completion]] = []  # (cap, row) still needing a forced answer
    for b in smaller:
        at_b = []
        for i, c in enumerate(rows):
            if _ended_within(c, b):
                at_b.append(copy.deepcopy(c))
                continue
            row = Completion(c.prompt_index, c.sample_index, c.prompt_tokens, thinking_ids=c.completion_ids[:b],
                             completion_ids=c.completion_ids[:b], sampled_mask=c.sampled_mask[:b])
            row.waits = (b - sum(row.sampled_mask)) // len(ids.wait) if ids.wait else 0
            if budget.force_close:
                row._force_close(ids.forced)
                if (i, b) in early:
                    row._set_answer(early[(i, b)])
                else:
                    queued.append((b, row))
            at_b.append(row)
        out[b] = at_b
    if queued:
        # the rows not answered from a cache: one answer round for all smaller caps, re-reading prefixes
        torch.manual_seed(seed + 1)
        _answer_round(engine, [row for _, row in queued], prompt_ids, budget.answer_tokens, sampling,
                      "forced answers (smaller budgets)", progress)
    elapsed = time.time() - t_start
    for b in smaller:
        _decode(tok, out[b])
        # early answers were timed per cap; a shared round is split by each cap's share of its rows
        share = sum(x == b for x, _ in queued) / len(queued) if queued else 0.0
        timings[b] = early_seconds[b] + elapsed * share
    return out


def generate(engine: Engine, prompts: list[str], budget: Budget, *, n: int = 1, sampling: Sampling = Sampling(),
             seed: int = 0, progress: bool = False, fmt: ThinkingFormat | None = None) -> list[Completion]:
    """`n` completions per prompt under `budget`, ordered by (prompt, sample)."""
    return sweep(engine, prompts, budget, n=n, sampling=sampling, seed=seed, progress=progress,
                 fmt=fmt)[budget.max_thinking_tokens]

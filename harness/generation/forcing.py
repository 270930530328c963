"""Generation with thinking budgets: s1's budget forcing (Muennighoff et al. 2025, "s1: Simple
test-time scaling", §3.1) over any engine (`engine.py`'s protocol: transformers or vLLM).

Every completion starts inside an open thinking block (`thinking.py`). Generation runs in rounds,
each row with its own token limit:

- thinking rounds: generate until the end-of-thinking delimiter, the end-of-turn token, or the
  remaining budget.
  * the extension (`Budget.max_waits`): a close is suppressed (the delimiter tokens are dropped) and
    "Wait" appended, at most `max_waits` times, then the row goes on; with `min_thinking_tokens` only
    while the thinking is shorter than that;
  * reaching `max_thinking_tokens` closes the block with the forced close + "Final Answer:" (forced);
  * an end-of-turn inside the block leaves it never closed (incomplete): no answer; or, with
    `Budget.answer_unclosed` (s1's harness), the end-of-turn token is dropped, the block closed for the
    model (`ThinkingFormat.ended_close`, injected) and the row answers (counted as forced; `turn_ended`).
- the answer: a row whose block is closed (by the model or forced) generates its answer, up to
  `answer_tokens`, continuing the round's own KV cache (`Chunk.continue_rows`); where an engine
  cannot, a separate round re-reads prompt + thinking. Greedy rounds without the extension go one
  step further where the engine can (`Engine.answers_in_round`, `engine.Follow`): a row answers as soon
  as its thinking stops, in the same batch as the rows still thinking, and a sweep's smaller caps are
  answered by copies of a row made when it passes them, so no second batch runs at all.

Token accounting is exact (rows are token ids, never re-tokenised): thinking tokens are every id inside
the block, injected "Wait"s included, so the cap holds exactly. Injected ids are marked in `sampled_mask`
(RL never trains on tokens the model did not choose); `engine_logps` keeps the engine's own log-probs.

Budget sweeps (`sweep`) cost about one generation: each sample is generated once at the largest
budget; for a smaller budget, a sample whose thinking ended within it is the same, and any other is
cut after that many thinking tokens (its own first tokens, exactly what a run capped there produces
under greedy decoding), force-closed, and only its answer is generated, continuing the first round's
cache cut at the budget.

Departure from s1: s1 uses a single-token delimiter and suppresses it in the logits; `</think>` is several tokens in
most tokenizers, so it is detected in text after it is generated and then removed.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

from . import thinking as T
from .engine import EOS, LENGTH, STOP, Engine, Follow, RoundOutput, Sampling, mix_seed, run_round
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
    # the engine's log-prob of each completion token where it reported one (`Sampling.logprobs`), NaN elsewhere
    # (injected tokens, engines that do not report them)
    engine_logps: list[float] = field(default_factory=list)
    thinking_end: str = T.INCOMPLETE
    turn_ended: bool = False  # the model ended its turn inside the block and the harness closed it
    waits: int = 0
    tries: int | None = None  # rejection sampling: the samples drawn until this one was kept
    answer_truncated: bool = False
    thinking_text: str = ""
    answer_text: str = ""
    search: dict | None = None  # a step-level search's spending and tree size (`search.py`); None: one sample

    @property
    def thinking_tokens(self) -> int:
        return len(self.thinking_ids)

    @property
    def answer_tokens(self) -> int:
        return len(self.answer_ids)

    def _extend(self, ids: list[int], sampled: bool, logps: list[float] | None = None) -> None:
        self.completion_ids.extend(ids)
        self.sampled_mask.extend([int(sampled)] * len(ids))
        self.engine_logps.extend(logps if logps is not None else [math.nan] * len(ids))

    def _set_answer(self, out: RoundOutput) -> None:
        """Append the model-written answer; a LENGTH stop means it was cut at the answer budget."""
        self.answer_ids = list(out.ids)
        self._extend(self.answer_ids, True, out.logps)
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
    ended: list[int]

    @classmethod
    def of(cls, tokenizer, fmt: ThinkingFormat) -> "_Ids":
        enc = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
        return cls(enc(fmt.wait), enc(fmt.forced_close), enc(fmt.ended_close))


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
    new, reason = out.ids, out.reason
    lp = (lambda a, b: out.logps[a:b]) if out.logps is not None else (lambda a, b: None)  # noqa: E731
    if reason == LENGTH:  # the budget is spent
        row.thinking_ids += new
        row._extend(new, True, lp(0, len(new)))
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
        row._extend(kept, True, lp(0, cut))
        row._extend(ids.wait, False)
        row.waits += 1
        return _WAIT
    if reason == EOS and budget.answer_unclosed:  # s1's harness: drop the end of turn, close, answer
        row.thinking_ids += kept
        row._extend(kept, True, lp(0, cut))
        row._force_close(ids.ended)
        row.turn_ended = True
        return _ANSWER
    row.thinking_ids += kept
    row._extend(kept, True, lp(0, cut))
    row._extend(closing, True, lp(cut, len(new)))
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
    if c.turn_ended:  # its end-of-turn token (dropped) came right after its thinking
        return c.thinking_tokens + 1 <= budget
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


class _Sweep:
    """One `sweep` call in named steps: `think` runs the thinking rounds (answering rows as their thinking
    ends, and the smaller caps' cut rows from the first round's cache), `answer_leftovers` re-reads the rows
    no cache could answer, `derive_caps` builds the smaller caps' completions from the largest one's."""

    def __init__(self, engine: Engine, prompts: list[str], budget: Budget, budgets, n: int, sampling: Sampling,
                 seed: int, progress: bool, fmt: ThinkingFormat | None, row_seeds: list[int] | None = None):
        tok = engine.tokenizer
        self.engine, self.tok, self.budget, self.sampling = engine, tok, budget, sampling
        self.seed, self.progress = seed, progress
        self.fmt = fmt or ThinkingFormat.detect(tok)
        self.top = budget.max_thinking_tokens
        if any(b < 1 or b > self.top for b in budgets):
            raise ValueError(f"sweep caps must be in 1..{self.top} (the budget's max_thinking_tokens), got "
                             f"{list(budgets)}")
        self.smaller = sorted(set(budgets) - {self.top})
        self.ids = _Ids.of(tok, self.fmt)
        self.prompt_ids = [tok.encode(p, add_special_tokens=False) for p in prompts]
        self.rows = [Completion(p, s, len(self.prompt_ids[p])) for p in range(len(prompts)) for s in range(n)]
        self.early: dict[tuple[int, int], RoundOutput] = {}  # (row, smaller cap) -> its forced answer
        self.early_seconds = dict.fromkeys(self.smaller, 0.0)
        self.unanswered: list[tuple[int, int]] = []  # (row, round) whose answer could not continue a cache
        # per-row streams (sampled evaluation): a call's seeds are the rows' own, mixed with what the call is,
        # so an answer re-read from its prefix draws what the same answer continued from a cache draws
        self.row_seeds = row_seeds
        # greedy and no Wait extension: a row's next step after its thinking is known in advance, so an engine
        # that can writes the answers (and the smaller caps' forced answers) inside the thinking round
        self.follow = None
        if sampling.temperature == 0 and budget.max_waits == 0 and getattr(engine, "answers_in_round", False):
            self.follow = Follow(self.ids.forced, budget.answer_tokens, budget.force_close,
                                 tuple(self.smaller) if budget.force_close else (),
                                 tuple(self.ids.ended) if budget.answer_unclosed else None)

    def _sampling(self, rows: list[int], tags: list[tuple]) -> Sampling:
        """The call's sampling, with each row's stream (`mix_seed(row seed, tag)`) where rows are seeded."""
        if self.row_seeds is None or self.sampling.temperature == 0:
            return self.sampling
        import dataclasses

        return dataclasses.replace(self.sampling, seeds=tuple(mix_seed(self.row_seeds[i], *tag)
                                                              for i, tag in zip(rows, tags, strict=True)))

    # -- the thinking rounds ----------------------------------------------------------------------
    def think(self) -> None:
        active, round_no = list(range(len(self.rows))), 0
        while active:
            round_no += 1
            prefixes = [self.prompt_ids[self.rows[i].prompt_index] + self.rows[i].completion_ids for i in active]
            limits = [self.top - self.rows[i].thinking_tokens for i in active]
            still = []
            t_chunk = time.time()
            extra = {"follow": self.follow} if self.follow is not None else {}
            sampling = self._sampling(active, [("think", round_no)] * len(active))
            for chunk in self.engine.rounds(prefixes, limits, self.fmt.close, sampling,
                                            f"thinking (round {round_no})", self.progress, **extra):
                members = [active[j] for j in chunk.indices]
                if getattr(chunk, "answers", None) is not None:
                    self.take_answered(chunk, members, time.time() - t_chunk)
                else:
                    if round_no == 1 and self.smaller and self.budget.force_close:
                        self.answer_cut_rows(chunk, members)
                    still += self.advance_chunk(chunk, members, round_no)
                t_chunk = time.time()
            active = sorted(still)

    def take_answered(self, chunk, members: list[int], spent: float) -> None:
        """A chunk whose rows were answered in the round; the forks' share of its row-steps is the smaller
        caps' time."""
        answered = chunk.answers
        for r, i in enumerate(members):
            state = _advance(self.rows[i], chunk.outputs[r], self.budget, self.ids, self.tok, self.fmt)
            if state == _ANSWER:
                self.rows[i]._set_answer(answered[(r, None)])
        forked = [(r, b) for (r, b) in answered if b is not None]
        for r, b in forked:
            self.early[(members[r], b)] = answered[(r, b)]
        for b in self.smaller:
            share = chunk.steps["forks"] / chunk.steps["rows"] if chunk.steps["rows"] else 0.0
            self.early_seconds[b] += spent * share * (sum(x == b for _, x in forked) / len(forked) if forked else 0)

    def answer_cut_rows(self, chunk, members: list[int]) -> None:
        """First round: a row is cut at cap b iff it produced more than b tokens; every cap's cut rows are
        answered in one batch from the chunk's cache (a row appears once per cap it is cut at)."""
        import torch

        pairs = [(r, b) for b in self.smaller for r, out in enumerate(chunk.outputs) if len(out.ids) > b]
        if not pairs:
            return
        t = time.time()
        torch.manual_seed(self.seed + 1)
        sampling = self._sampling([members[r] for r, _ in pairs], [("cut", b) for _, b in pairs])
        answers = chunk.continue_rows([r for r, _ in pairs], [b for _, b in pairs], [self.ids.forced] * len(pairs),
                                      self.budget.answer_tokens, sampling)
        spent = time.time() - t
        if answers is not None:  # else the engine cannot continue: these rows re-read in derive_caps
            for (r, b), answer in zip(pairs, answers):
                self.early[(members[r], b)] = answer
        for b in self.smaller:  # the batch's time, split by each cap's share of its rows
            self.early_seconds[b] += spent * sum(x == b for _, x in pairs) / len(pairs)

    def advance_chunk(self, chunk, members: list[int], round_no: int) -> list[int]:
        """Apply a chunk's round to its rows; answer the closed ones from the chunk's cache. Returns the rows
        that go on thinking (after a Wait)."""
        still, finals = [], []
        for r, (i, out) in enumerate(zip(members, chunk.outputs)):
            state = _advance(self.rows[i], out, self.budget, self.ids, self.tok, self.fmt)
            if state == _WAIT:
                still.append(i)
            elif state == _ANSWER:
                finals.append(r)
        if finals:
            # the last sampled token is not in the cache yet: it is re-read with the suffix (an end of turn the
            # harness closed is not: the close replaces it)
            outs = [chunk.outputs[r] for r in finals]
            sampling = self._sampling([members[r] for r in finals], [("answer", round_no)] * len(finals))
            answers = chunk.continue_rows(
                finals, [len(o.ids) - 1 for o in outs], [self._suffix(o) for o in outs],
                self.budget.answer_tokens, sampling)
            if answers is None:
                self.unanswered += [(members[r], round_no) for r in finals]
            else:
                for r, answer in zip(finals, answers):
                    self.rows[members[r]]._set_answer(answer)
        return still

    def _suffix(self, out: RoundOutput) -> list[int]:
        """What a closed row reads after its kept tokens before answering."""
        if out.reason == EOS:
            return list(self.ids.ended)
        return out.ids[-1:] + (self.ids.forced if out.reason == LENGTH else [])

    def answer_leftovers(self) -> None:
        left = sorted(self.unanswered)
        sampling = self._sampling([i for i, _ in left], [("answer", r) for _, r in left])
        _answer_round(self.engine, [self.rows[i] for i, _ in left], self.prompt_ids,
                      self.budget.answer_tokens, sampling, "answer", self.progress)
        _decode(self.tok, self.rows)

    # -- the smaller caps -------------------------------------------------------------------------
    def derive_caps(self, timings: dict[int, float]) -> dict[int, list[Completion]]:
        """Each smaller cap's completions: a row whose thinking ended within the cap as it is, any other cut
        there and force-closed, with its answer from the cache or, failing that, one shared answer round."""
        import torch

        t_start = time.time()
        out: dict[int, list[Completion]] = {}
        queued: list[tuple[int, int, Completion]] = []  # (cap, row index, row) still needing a forced answer
        for b in self.smaller:
            out[b] = [self.cut(i, c, b, queued) for i, c in enumerate(self.rows)]
        if queued:
            torch.manual_seed(self.seed + 1)
            sampling = self._sampling([i for _, i, _ in queued], [("cut", b) for b, _, _ in queued])
            _answer_round(self.engine, [row for _, _, row in queued], self.prompt_ids, self.budget.answer_tokens,
                          sampling, "forced answers (smaller budgets)", self.progress)
        elapsed = time.time() - t_start
        for b in self.smaller:
            _decode(self.tok, out[b])
            # early answers were timed per cap; a shared round is split by each cap's share of its rows
            share = sum(x == b for x, _, _ in queued) / len(queued) if queued else 0.0
            timings[b] = self.early_seconds[b] + elapsed * share
        return out

    def cut(self, i: int, c: Completion, b: int, queued: list) -> Completion:
        """Row `i` (completion `c`) as a run capped at `b` thinking tokens would have ended it."""
        if _ended_within(c, b):
            return copy.deepcopy(c)
        ids = self.ids
        row = Completion(c.prompt_index, c.sample_index, c.prompt_tokens, thinking_ids=c.completion_ids[:b],
                         completion_ids=c.completion_ids[:b], sampled_mask=c.sampled_mask[:b],
                         engine_logps=c.engine_logps[:b])
        row.waits = (b - sum(row.sampled_mask)) // len(ids.wait) if ids.wait else 0
        if self.budget.force_close:
            row._force_close(ids.forced)
            if (i, b) in self.early:
                row._set_answer(self.early[(i, b)])
            else:
                queued.append((b, i, row))
        return row


def sweep(engine: Engine, prompts: list[str], budget: Budget, budgets: list[int] | tuple[int, ...] = (), *,
          n: int = 1, sampling: Sampling = Sampling(), seed: int = 0, progress: bool = False,
          fmt: ThinkingFormat | None = None, timings: dict[int, float] | None = None,
          row_seeds: list[int] | None = None) -> dict[int, list[Completion]]:
    """Completions at `budget.max_thinking_tokens` and at each smaller cap in `budgets`, from one
    generation (see the module docstring). Prompts must end inside the thinking block
    (`thinking.build_prompt`). Returns {cap: completions ordered by (prompt, sample)}.

    Approximation: with Wait extensions, a "Wait" a capped run would have skipped near its cap is kept,
    and the smaller caps' answers re-read their prefixes. `timings`, if given, receives the generation
    seconds per cap (the largest: the full generation; the others: their forced answers). `row_seeds` (one
    per prompt x sample, in that order): sampled rows draw from their own streams, so a row's completion does
    not depend on the other rows of the call (else one stream, seeded by `seed`)."""
    import torch

    timings = {} if timings is None else timings
    run = _Sweep(engine, prompts, budget, budgets, n, sampling, seed, progress, fmt, row_seeds)
    torch.manual_seed(seed)
    t_start = time.time()
    run.think()
    run.answer_leftovers()
    timings[run.top] = time.time() - t_start - sum(run.early_seconds.values())
    return {run.top: run.rows, **run.derive_caps(timings)}


def generate(engine: Engine, prompts: list[str], budget: Budget, *, n: int = 1, sampling: Sampling = Sampling(),
             seed: int = 0, progress: bool = False, fmt: ThinkingFormat | None = None,
             row_seeds: list[int] | None = None) -> list[Completion]:
    """`n` completions per prompt under `budget`, ordered by (prompt, sample)."""
    return sweep(engine, prompts, budget, n=n, sampling=sampling, seed=seed, progress=progress,
                 fmt=fmt, row_seeds=row_seeds)[budget.max_thinking_tokens]

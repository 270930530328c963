"""Decoding that drops finished rows from the batch and its KV cache (row compaction).

`generate` keeps a finished row in the batch until the chunk's longest row ends, feeding it padding. In an
evaluation's thinking round most rows close early (`bench/hf_rounds.py` measured 22% useful row-steps on
MATH-500), so most of a batched step's work is on idle rows. Here a row leaves the batch one step after it
stops: that step puts its last token's keys and values in the cache, as `generate`'s next step would, so
the chunk's cache, reassembled at the end, lets answers continue from it exactly as after `generate`
(`HFChunk.continue_rows`). Columns a row never reached are zeros and masked, as `generate`'s padding is.

Both loops run on one skeleton (`_Batch`: the cache, mask and positions of the rows still decoding).
Sampled rounds draw exactly what `generate` draws: each step samples the whole chunk's (B, V) distribution in
one `torch.multinomial` call, as `generate` does (a finished row's distribution is a placeholder and its draw
is discarded; `generate` discards it too). For one sample per row torch draws B x V exponentials whatever
the probabilities are (argmax of p / q), so a row's token depends only on its own distribution and the
random stream, which advances as in `generate` (tested: same tokens at T = 1, top-p < 1).

`think_then_answer` (greedy; `engine.Follow`) also keeps a row whose thinking stopped: it writes its answer in the same loop,
and copies of a row made as it passes smaller caps write those caps' answers (budget sweeps).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..generation.engine import EOS, LENGTH, STOP, Follow, RoundOutput
from ..models.hf_compat import with_cache
from .hf_cache import grow, stack, take_rows, used


class _Batch:
    """The decoding state both loops share: the KV cache (appends in place), the attention mask (A, W + t)
    and each row's next position (A,), for the A rows still in the batch."""

    def __init__(self, model, attention, prefix):
        self.model = model
        self.cache = prefix
        grow(self.cache)  # appends write in place (no whole-cache copy per step)
        self.mask = attention.clone()
        self.position = attention.long().sum(-1) - 1  # the position of the column fed next

    def logits(self, feed):
        """Next-token logits (A, V) after feeding one token per row, feed (A, 1)."""
        with torch.no_grad():
            return self.model(input_ids=feed, attention_mask=self.mask, position_ids=self.position[:, None],
                              use_cache=True, **with_cache(self.cache)).logits[:, -1]

    def keep(self, index: list[int]) -> None:
        """Rows `index` of the batch go on (a repeated row is copied, its cache row included)."""
        if index != list(range(len(self.mask))):
            pick = torch.tensor(index, device=self.mask.device)
            take_rows(self.cache, pick)
            self.mask, self.position = self.mask[pick], self.position[pick]

    def advance(self) -> None:
        """Every row's next token takes the next column."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.mask), 1))], dim=1)
        self.position = self.position + 1


def warpers(sampling):
    """`generate`'s own warpers for `sampling`, in its order: temperature, then top-p (`generation_config`
    turns every other one off)."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    out = LogitsProcessorList([TemperatureLogitsWarper(sampling.temperature)])
    if sampling.top_p < 1.0:
        out.append(TopPLogitsWarper(sampling.top_p))
    return out


def _picker(sampling):
    """tokens (B,) from the chunk's next-token logits (B, V), fp32: argmax, or `generate`'s sampling."""
    if sampling is None or sampling.temperature == 0:
        return lambda logits: logits.argmax(-1)
    warp = warpers(sampling)
    return lambda logits: torch.multinomial(torch.softmax(warp(None, logits), dim=-1), num_samples=1)[:, 0]


class RowSeeded:
    """Sampling where each batch row draws from its own generator (`Sampling.seeds`): `pick(logits, rows)`
    for the batch rows still decoding, or, as a logits processor for `generate`, the drawn token as the only
    finite score (greedy decoding then takes it)."""

    def __init__(self, sampling):
        self.warp = warpers(sampling)
        self.generators = [torch.Generator().manual_seed(int(s)) for s in sampling.seeds]

    def pick(self, logits, rows: list[int]) -> list[int]:
        probs = torch.softmax(self.warp(None, logits.float()), dim=-1)  # (A, V)
        return [int(torch.multinomial(probs[j].cpu(), 1, generator=self.generators[b])) for j, b in enumerate(rows)]

    def __call__(self, input_ids, scores):
        chosen = self.pick(scores, list(range(scores.shape[0])))
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(chosen)), torch.tensor(chosen)] = 0.0
        return out


def compact_round(model, input_ids, attention, prefix, stop, max_new: int, pad_id: int, sampling=None,
                  want_cache: bool = True):
    """What `generate` returns with `stop` as its stopping criterion (greedy, or `sampling`'s temperature and
    top-p), computed with finished rows dropped: (sequences (B, W + N), cache over W + N - 1 columns), N the
    steps run.

    input_ids, attention: (B, W) left-padded; prefix: the KV cache of every column but the last
    (`HFEngine.shared_prefill(..., always=True)`), consumed; stop: a `RoundStop` (its events are set here);
    want_cache=False: the cache is not reassembled (None; an answer round continues from nothing)."""
    B, W = input_ids.shape
    device = input_ids.device
    batch = _Batch(model, attention, prefix)
    active = torch.arange(B, device=device)  # batch rows still in the batch
    feed = input_ids[:, -1:]  # (A, 1)
    generated: list[list[int]] = [[] for _ in range(B)]
    parked: dict[int, tuple[list, list]] = {}  # row -> its keys / values per used layer when it left
    pick = _picker(sampling)
    sampled = sampling is not None and sampling.temperature > 0
    seeded = RowSeeded(sampling) if sampled and sampling.seeds is not None else None
    for t in range(max_new):
        logits = batch.logits(feed).float()
        if seeded is not None:  # each row from its own stream: batch-independent
            tokens = seeded.pick(logits, active.tolist())
        elif sampled and len(active) < B:  # sample the whole chunk, as generate does: a finished row's are zeros
            full = logits.new_zeros(B, logits.shape[-1])
            full[active] = logits
            tokens = pick(full)[active].tolist()
        else:
            tokens = pick(logits).tolist()
        done_before = [stop.events[b] is not None for b in active.tolist()]
        for j, b in enumerate(active.tolist()):
            if not done_before[j]:
                generated[b].append(tokens[j])
                stop.check(b, generated[b][-8:], len(generated[b]))
        if all(event is not None for event in stop.events) or t == max_new - 1:
            break
        # rows that stopped before this step were fed their last token now: they leave
        for j, d in enumerate(done_before):
            if d:
                layers = [layer for layer in batch.cache.layers if used(layer)]
                parked[int(active[j])] = ([layer.keys[j:j + 1] for layer in layers],
                                          [layer.values[j:j + 1] for layer in layers])
        stay = [j for j, d in enumerate(done_before) if not d]
        batch.keep(stay)
        active = active[torch.tensor(stay, device=device)] if len(stay) < len(done_before) else active
        feed = torch.tensor([[generated[int(b)][-1]] for b in active], dtype=input_ids.dtype, device=device)
        batch.advance()
    n = max(len(g) for g in generated)
    sequences = torch.full((B, W + n), pad_id, dtype=input_ids.dtype, device=device)
    sequences[:, :W] = input_ids
    for b, g in enumerate(generated):
        sequences[b, W:W + len(g)] = torch.tensor(g, dtype=input_ids.dtype)
    if not want_cache:
        return sequences, None
    # reassemble: every row over W + n - 1 columns (what generate's cache holds), zeros where a row left
    layers = [layer for layer in batch.cache.layers if used(layer)]
    parts = [(active.tolist(), [layer.keys for layer in layers], [layer.values for layer in layers])]
    parts += [([b], ks, vs) for b, (ks, vs) in parked.items()]
    return sequences, stack(batch.cache, parts, B, W + n - 1, right=False)


_THINK, _ANSWER = "think", "answer"


@dataclass
class _Slot:
    row: int  # the chunk row it belongs to
    cap: int | None  # None: the row itself; b: its fork at thinking length b
    phase: str
    queue: list[int]  # tokens still to feed, in order; the head is fed next
    answer: list[int] = field(default_factory=list)


def think_then_answer(model, input_ids, attention, prefix, stop, follow: Follow, eos: set[int]):
    """A thinking round and the answers after it in one greedy decoding loop: a row whose thinking stops
    (its own close, or its limit and then the forced close, fed one token per step) writes its answer in the
    same batch as the rows still thinking, instead of in a second batch after the longest one ends; a row
    cut at a fork length b is copied (its cache row included) and the copy answers as a run capped at b
    would. A row added to a step that runs anyway costs its own arithmetic (~7 ms for SmolLM2 on the AVX2
    host in a wide batch; more when it turns a 1-row step into a 2-row one), where a separate answer batch
    costs its own steps, their fixed per-step overhead and a prefill.

    input_ids, attention: (B, W) left-padded; prefix: the KV cache of every column but the last, consumed;
    stop: the thinking round's `RoundStop` (its events are set here). Returns (thinking: B lists of new
    token ids, answers: {(row, None or b): RoundOutput}, steps: {"rows": slot-steps, "forks": fork slot-steps}).
    Finished slots leave the batch at once (no cache is reassembled: nothing continues from it).
    Greedy only: a sampled round's draws would depend on which answers run beside it."""
    B = input_ids.shape[0]
    batch = _Batch(model, attention, prefix)
    run = _Answering(follow, stop, eos, B)
    slots = [_Slot(b, None, _THINK, [int(input_ids[b, -1])]) for b in range(B)]
    while slots:
        feed = torch.tensor([[s.queue.pop(0)] for s in slots], dtype=input_ids.dtype, device=input_ids.device)
        tokens = batch.logits(feed).argmax(-1).tolist()
        run.steps["rows"] += len(slots)
        run.steps["forks"] += sum(s.cap is not None for s in slots)
        stay, born = [], []  # slots that go on; forks made this step (their parent's index)
        for j, (s, token) in enumerate(zip(slots, tokens)):
            if run.goes_on(s, token, j, born):
                stay.append(j)
        index = stay + [j for j, _ in born]
        if not index:
            break
        slots = [slots[j] for j in stay] + [fork for _, fork in born]
        batch.keep(index)
        batch.advance()
    return run.thinking, run.answers, run.steps


class _Answering:
    """`think_then_answer`'s bookkeeping: what one slot does with the token it just predicted."""

    def __init__(self, follow: Follow, stop, eos: set[int], rows: int):
        self.follow, self.stop, self.eos = follow, stop, eos
        self.forks = set(follow.forks)
        self.thinking: list[list[int]] = [[] for _ in range(rows)]
        self.answers: dict = {}
        self.steps = {"rows": 0, "forks": 0}

    def answered(self, slot: _Slot, reason: str) -> None:
        self.answers[(slot.row, slot.cap)] = RoundOutput(list(slot.answer), reason)

    def start_answer(self, slot: _Slot, feed: list[int]) -> bool:
        if self.follow.answer_tokens <= 0:
            self.answered(slot, LENGTH)
            return False
        slot.phase, slot.queue = _ANSWER, feed
        return True

    def goes_on(self, s: _Slot, token: int, j: int, born: list) -> bool:
        """Apply `token`, predicted for slot `s` (batch row j); forks it spawns go to `born`. Does `s` stay?"""
        follow = self.follow
        if s.queue:  # still reading forced tokens: this prediction is not used
            return True
        if s.phase == _ANSWER:
            s.answer.append(token)
            if token in self.eos or len(s.answer) >= follow.answer_tokens:
                self.answered(s, EOS if token in self.eos else LENGTH)
                return False
            s.queue = [token]
            return True
        new = self.thinking[s.row]
        new.append(token)
        if not self.stop.check(s.row, new[-8:], len(new)):
            s.queue = [token]
            if len(new) in self.forks:  # the fork reads the same last token, then the forced close
                fork = _Slot(s.row, len(new), _ANSWER, [token] + list(follow.forced))
                if follow.answer_tokens <= 0:
                    self.answered(fork, LENGTH)
                else:
                    born.append((j, fork))
            return True
        reason = self.stop.events[s.row][1]
        if reason == STOP:
            return self.start_answer(s, [token])
        if reason == LENGTH and follow.force_close:
            return self.start_answer(s, [token] + list(follow.forced))
        if reason == EOS and follow.unclosed is not None:  # the end of turn is not fed: the close replaces it
            return self.start_answer(s, list(follow.unclosed))
        return False

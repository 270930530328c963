"""Decoding that drops finished rows from the batch and its KV cache (row compaction).

`generate` keeps a finished row in the batch until the chunk's longest row ends, feeding it padding. In an
evaluation's thinking round most rows close early (`bench/hf_rounds.py` measured 22% useful row-steps on
MATH-500), so most of a batched step's work is on idle rows. Here a row leaves the batch one step after it
stops: that step puts its last token's keys and values in the cache, as `generate`'s next step would, so
the chunk's cache, reassembled at the end, lets answers continue from it exactly as after `generate`
(`HFChunk.continue_rows`). Columns a row never reached are zeros and masked, as `generate`'s padding is.

Sampled rounds draw exactly what `generate` draws: each step samples the whole chunk's (B, V) distribution in
one `torch.multinomial` call, as `generate` does (a finished row's distribution is a placeholder and its draw
is discarded; `generate` discards it too). For one sample per row torch draws B x V exponentials whatever
the probabilities are (argmax of p / q), so a row's token depends only on its own distribution and the
random stream, which advances as in `generate` (tested: same tokens at T = 1, top-p < 1).

`think_then_answer` (greedy) also keeps a row whose thinking stopped: it writes its answer in the same loop,
and copies of a row made as it passes smaller caps write those caps' answers (budget sweeps).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .hf_compat import with_cache


def _take(cache, index) -> None:
    """Keep batch rows `index` of every layer of `cache` (in place)."""
    for layer in cache.layers:
        if getattr(layer, "is_initialized", True) and layer.keys is not None:
            layer.keys, layer.values = layer.keys[index], layer.values[index]


def _picker(sampling):
    """tokens (B,) from the chunk's next-token logits (B, V), fp32: argmax, or `generate`'s sampling (its
    own warpers, in its order: temperature, then top-p; `generation_config` turns every other one off)."""
    if sampling is None or sampling.temperature == 0:
        return lambda logits: logits.argmax(-1)
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    warpers = LogitsProcessorList([TemperatureLogitsWarper(sampling.temperature)])
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    return lambda logits: torch.multinomial(torch.softmax(warpers(None, logits), dim=-1), num_samples=1)[:, 0]


def compact_round(model, input_ids, attention, prefix, stop, max_new: int, pad_id: int, sampling=None,
                  want_cache: bool = True):
    """What `generate` returns with `stop` as its stopping criterion (greedy, or `sampling`'s temperature and
    top-p), computed with finished rows dropped: (sequences (B, W + N), cache over W + N - 1 columns), N the
    steps run.

    input_ids, attention: (B, W) left-padded; prefix: the KV cache of every column but the last
    (`HFEngine.shared_prefill(..., always=True)`), consumed; stop: a `RoundStop` (its events are set here);
    want_cache=False: the cache is not reassembled (None; an answer round continues from nothing)."""
    import copy

    from .kv_buffer import grow

    B, W = input_ids.shape
    device = input_ids.device
    cache = prefix
    grow(cache)  # appends write in place (no whole-cache copy per step)
    active = torch.arange(B, device=device)  # batch rows still in the batch
    mask = attention.clone()  # (A, W + t)
    position = attention.long().sum(-1) - 1  # (A,) the position of the column fed next
    feed = input_ids[:, -1:]  # (A, 1)
    generated: list[list[int]] = [[] for _ in range(B)]
    parked: dict[int, tuple[list, list]] = {}  # row -> its keys / values per layer when it left
    layers = [k for k, layer in enumerate(cache.layers)
              if getattr(layer, "is_initialized", True) and layer.keys is not None]
    pick = _picker(sampling)
    sampled = sampling is not None and sampling.temperature > 0
    for t in range(max_new):
        with torch.no_grad():
            logits = model(input_ids=feed, attention_mask=mask, position_ids=position[:, None],
                           use_cache=True, **with_cache(cache)).logits[:, -1].float()
        if sampled and len(active) < B:  # sample the whole chunk, as generate does: a finished row's are zeros
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
        stay = [j for j, d in enumerate(done_before) if not d]
        for j, d in enumerate(done_before):
            if d:
                b = int(active[j])
                parked[b] = ([cache.layers[k].keys[j:j + 1] for k in layers],
                             [cache.layers[k].values[j:j + 1] for k in layers])
        keep = torch.tensor(stay, device=device)
        if len(stay) < len(done_before):
            _take(cache, keep)
            active, mask, position = active[keep], mask[keep], position[keep]
        feed = torch.tensor([[generated[int(b)][-1]] for b in active], dtype=input_ids.dtype, device=device)
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        position = position + 1
    n = max(len(g) for g in generated)
    sequences = torch.full((B, W + n), pad_id, dtype=input_ids.dtype, device=device)
    sequences[:, :W] = input_ids
    for b, g in enumerate(generated):
        sequences[b, W:W + len(g)] = torch.tensor(g, dtype=input_ids.dtype)
    if not want_cache:
        return sequences, None
    # reassemble: every row over W + n - 1 columns (what generate's cache holds), zeros where a row left
    whole = copy.copy(cache)
    whole.layers = [copy.copy(layer) for layer in cache.layers]
    for i, k in enumerate(layers):
        layer = cache.layers[k]
        _, H, _, D = layer.keys.shape
        keys = layer.keys.new_zeros(B, H, W + n - 1, D)
        values = layer.values.new_zeros(B, H, W + n - 1, layer.values.shape[-1])
        keys[active, :, :layer.keys.shape[2]] = layer.keys
        values[active, :, :layer.values.shape[2]] = layer.values
        for b, (ks, vs) in parked.items():
            keys[b, :, :ks[i].shape[2]] = ks[i][0]
            values[b, :, :vs[i].shape[2]] = vs[i][0]
        whole.layers[k].keys, whole.layers[k].values = keys, values
    return sequences, whole


@dataclass
class Follow:
    """What a row does once its thinking stops, inside the same decoding loop (`think_then_answer`)."""
    forced: list[int]  # fed after a row reaches its thinking limit (the forced close), when force_close
    answer_tokens: int  # the answer's cap
    force_close: bool = True
    forks: tuple[int, ...] = ()  # thinking lengths b: a row still thinking after b tokens also gets the
    # answer a run capped at b would write (its first b tokens, the forced close, the answer)


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
    from .engine import EOS, LENGTH, STOP, RoundOutput

    from .kv_buffer import grow

    B, W = input_ids.shape
    device = input_ids.device
    cache = prefix
    grow(cache)  # appends write in place (no whole-cache copy per step)
    slots = [_Slot(b, None, _THINK, [int(input_ids[b, -1])]) for b in range(B)]
    mask = attention.clone()  # (A, W + t)
    position = attention.long().sum(-1) - 1  # (A,)
    thinking: list[list[int]] = [[] for _ in range(B)]
    answers: dict = {}
    steps = {"rows": 0, "forks": 0}
    forks = set(follow.forks)

    def answered(slot, reason):
        answers[(slot.row, slot.cap)] = RoundOutput(list(slot.answer), reason)

    def start_answer(slot, feed):
        if follow.answer_tokens <= 0:
            answered(slot, LENGTH)
            return False
        slot.phase, slot.queue = _ANSWER, feed
        return True

    while slots:
        feed = torch.tensor([[s.queue.pop(0)] for s in slots], dtype=input_ids.dtype, device=device)
        with torch.no_grad():
            logits = model(input_ids=feed, attention_mask=mask, position_ids=position[:, None],
                           use_cache=True, **with_cache(cache)).logits[:, -1]
        tokens = logits.argmax(-1).tolist()
        steps["rows"] += len(slots)
        steps["forks"] += sum(s.cap is not None for s in slots)
        stay, born = [], []  # slots that go on; forks made this step (their parent's index)
        for j, (s, token) in enumerate(zip(slots, tokens)):
            if s.queue:  # still reading forced tokens: this prediction is not used
                stay.append(j)
            elif s.phase == _ANSWER:
                s.answer.append(token)
                if token in eos or len(s.answer) >= follow.answer_tokens:
                    answered(s, EOS if token in eos else LENGTH)
                else:
                    s.queue = [token]
                    stay.append(j)
            else:
                new = thinking[s.row]
                new.append(token)
                if not stop.check(s.row, new[-8:], len(new)):
                    s.queue = [token]
                    stay.append(j)
                    if len(new) in forks:  # the fork reads the same last token, then the forced close
                        fork = _Slot(s.row, len(new), _ANSWER, [token] + list(follow.forced))
                        if follow.answer_tokens <= 0:
                            answered(fork, LENGTH)
                        else:
                            born.append((j, fork))
                    continue
                reason = stop.events[s.row][1]
                if reason == STOP and start_answer(s, [token]):
                    stay.append(j)
                elif reason == LENGTH and follow.force_close and start_answer(s, [token] + list(follow.forced)):
                    stay.append(j)
        index = stay + [j for j, _ in born]
        if not index:
            break
        slots = [slots[j] for j in stay] + [fork for _, fork in born]
        pick = torch.tensor(index, device=device)
        if index != list(range(len(tokens))):
            _take(cache, pick)
            mask, position = mask[pick], position[pick]
        mask = torch.cat([mask, mask.new_ones((len(slots), 1))], dim=1)
        position = position + 1
    return thinking, answers, steps

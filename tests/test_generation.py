"""Budget forcing, token-exact.

`scripted` wraps a tiny real Llama so that its next token follows a script (a logits processor
masks every other token); transformers' generate, the KV cache and the tokenizer are real. The
script thinks in single-token words, closes the block with `</think>` after `close_after` words
(counted since the last "Wait"), then answers `\\boxed{7}` and ends the turn.
"""
from __future__ import annotations

import random

import pytest
import torch
from transformers import LlamaForCausalLM, LogitsProcessor, LogitsProcessorList

from conftest import build_tiny_model
from scripted import ScriptedLM
from rzoo.harness.generation import forcing as G
from rzoo.harness.engines import hf as hf_engine
from rzoo.harness.generation import thinking as T
from rzoo.harness.engines.hf import HFEngine


def generate(model, tok, prompts, *, max_thinking_tokens, answer_tokens=64, min_thinking_tokens=0, max_waits=0,
             force_close=True, answer_unclosed=False, **kw):
    budget = T.Budget(max_thinking_tokens, answer_tokens, min_thinking_tokens, max_waits, force_close, answer_unclosed)
    return G.generate(HFEngine(model, tok), prompts, budget, **kw)


def sweep(model, tok, prompts, *, budgets, answer_tokens=64, min_thinking_tokens=0, max_waits=0, answer_unclosed=False,
          **kw):
    budget = T.Budget(max(budgets), answer_tokens, min_thinking_tokens, max_waits, answer_unclosed=answer_unclosed)
    return G.sweep(HFEngine(model, tok), prompts, budget, budgets, **kw)


class Script(LogitsProcessor):
    def __init__(self, tok, prompt_lens, close_after: int, eos_after: int | None = None):
        self.tok = tok
        self.close_after = close_after
        self.eos_after = eos_after
        self.word = tok.encode(" x", add_special_tokens=False)
        self.close = tok.encode(T.THINK_CLOSE, add_special_tokens=False)
        self.answer = tok.encode("\n\nThe answer is \\boxed{7}.", add_special_tokens=False) + [tok.eos_token_id]
        assert len(self.word) == 1

    def next_token(self, completion: list[int]) -> int:
        text = self.tok.decode(completion)
        if T.THINK_CLOSE in text:  # answering: continue the scripted answer after the close
            tail = self.tok.decode(completion).split(T.THINK_CLOSE, 1)[1]
            done = len(self.tok.encode(tail, add_special_tokens=False)) if tail else 0
            if "Final Answer:" in tail:
                done = len(self.tok.encode(tail.split("Final Answer:", 1)[1], add_special_tokens=False))
            return self.answer[min(done, len(self.answer) - 1)]
        segment = text.rsplit(T.WAIT, 1)[-1]
        words = segment.count(" x")
        if self.eos_after is not None and words >= self.eos_after:
            return self.tok.eos_token_id
        if words < self.close_after:
            return self.word[0]
        # emit the delimiter token by token
        written = 0
        for n in range(len(self.close), 0, -1):
            if completion[-n:] == self.close[:n]:
                written = n
                break
        return self.close[written]

    def __call__(self, input_ids, scores):
        out = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            ids = input_ids[row].tolist()
            start = _completion_start(ids, self.tok)
            out[row, self.next_token(ids[start:])] = 0.0
        return out


def _completion_start(ids: list[int], tok, strict: bool = True) -> int | None:
    """Index just after the last `<think>\\n` of the prompt (None, unless `strict`, when there is none)."""
    open_ids = tok.encode(T.THINK_OPEN, add_special_tokens=False)
    for i in range(len(ids) - len(open_ids), -1, -1):
        if ids[i:i + len(open_ids)] == open_ids:
            return i + len(open_ids)
    if strict:
        raise AssertionError("prompt does not end inside <think>")
    return None


class Scripted(torch.nn.Module):
    """The tiny model with its generate() driven by a Script: not a transformers model, so the engine falls
    back to `model.generate()` (the path for wrappers that customise generation)."""

    def __init__(self, model, script):
        super().__init__()
        self.model = model
        self.script = script
        self.generation_config = model.generation_config

    def generate(self, **kwargs):
        return self.model.generate(**kwargs, logits_processor=LogitsProcessorList([self.script]))


@pytest.fixture(scope="module")
def tiny(tokenizer):
    return build_tiny_model(tokenizer)


def _prompts(tok, n=2):
    return [T.build_prompt(tok, [{"role": "user", "content": f"What is {i}+{i}?"}]) for i in range(n)]


class ProductionOnly(ScriptedLM):
    """A scripted real model that fails the test if the engine falls back to `generate()`: its own prefill,
    compaction and cache continuation must carry it."""

    def generate(self, *args, **kwargs):
        raise AssertionError("the engine fell back to model.generate(); the production path was not tested")


def scripted_model(tok, script, path: str = "production"):
    """`script` (a `Script`) as a model the engine drives on `path`: "production" (a real transformers model:
    shared prefill, row compaction, answers from the cache) or "generate" (a wrapper: `model.generate()`)."""
    if path == "generate":
        return Scripted(build_tiny_model(tok), script)
    def next_token(ids):
        start = _completion_start(ids, tok, strict=False)
        return None if start is None else script.next_token(ids[start:])  # None: a prefill position

    return ProductionOnly.of(tok, next_token)


PATHS = ["production", "generate"]


def _run(tiny, tok, close_after, eos_after=None, path="production", **kw):
    model = scripted_model(tok, Script(tok, None, close_after, eos_after), path)
    out = generate(model, tok, _prompts(tok), **kw)
    if path == "production":
        assert model.forwards > 0
    return out


@pytest.mark.parametrize("max_waits", [1, 3])
@pytest.mark.parametrize("path", PATHS)
def test_max_waits_alone_extends_that_many_times(tiny, tokenizer, path, max_waits):
    """s1's extension on its own: with no minimum, every close is suppressed max_waits times."""
    wait = tokenizer.encode(T.WAIT, add_special_tokens=False)
    out = _run(tiny, tokenizer, path=path, close_after=3, max_thinking_tokens=200, max_waits=max_waits, answer_tokens=20)
    for c in out:
        assert c.waits == max_waits and c.thinking_text.count(T.WAIT) == max_waits
        assert c.thinking_tokens == 3 * (max_waits + 1) + len(wait) * max_waits
        assert c.thinking_end == T.CLOSED and "\\boxed{7}" in c.answer_text


@pytest.mark.parametrize("path", PATHS)
def test_model_closes_block_itself(tiny, tokenizer, path):
    out = _run(tiny, tokenizer, path=path, close_after=5, max_thinking_tokens=50, answer_tokens=20)
    for c in out:
        assert c.thinking_end == T.CLOSED
        assert c.thinking_tokens == 5 and c.waits == 0
        assert c.thinking_text.count("x") == 5
        assert "\\boxed{7}" in c.answer_text
        assert not c.answer_truncated
        assert all(c.sampled_mask)  # nothing injected


@pytest.mark.parametrize("path", PATHS)
def test_cap_forces_close_exactly_at_budget(tiny, tokenizer, path):
    forced = tokenizer.encode(T.FORCED_CLOSE, add_special_tokens=False)
    for cap in (1, 7, 16):
        out = _run(tiny, tokenizer, path=path, close_after=10_000, max_thinking_tokens=cap, answer_tokens=20)
        for c in out:
            assert c.thinking_end == T.FORCED
            assert c.thinking_tokens == cap
            assert c.close_ids == forced
            assert c.completion_ids == c.thinking_ids + c.close_ids + c.answer_ids
            # the forced close is injected, the rest was sampled
            assert c.sampled_mask == [1] * cap + [0] * len(forced) + [1] * len(c.answer_ids)
            assert "\\boxed{7}" in c.answer_text


@pytest.mark.parametrize("max_waits", [1, 2, 3])
@pytest.mark.parametrize("path", PATHS)
def test_min_thinking_appends_wait_the_configured_number_of_times(tiny, tokenizer, path, max_waits):
    wait = tokenizer.encode(T.WAIT, add_special_tokens=False)
    out = _run(tiny, tokenizer, path=path, close_after=3, max_thinking_tokens=200, min_thinking_tokens=100,
               max_waits=max_waits, answer_tokens=20)
    for c in out:
        assert c.waits == max_waits
        assert c.thinking_text.count(T.WAIT) == max_waits
        assert T.THINK_CLOSE not in c.thinking_text  # suppressed closes left no trace
        assert c.thinking_tokens == 3 * (max_waits + 1) + len(wait) * max_waits
        assert c.thinking_end == T.CLOSED  # after the last allowed Wait, the close is accepted
        injected = [i for i, m in enumerate(c.sampled_mask) if m == 0]
        assert len(injected) == len(wait) * max_waits


@pytest.mark.parametrize("path", PATHS)
def test_wait_stops_when_minimum_reached(tiny, tokenizer, path):
    out = _run(tiny, tokenizer, path=path, close_after=4, max_thinking_tokens=200, min_thinking_tokens=6, max_waits=10,
               answer_tokens=20)
    wait = tokenizer.encode(T.WAIT, add_special_tokens=False)
    for c in out:
        assert c.waits == 1  # 4 words < 6 -> Wait; then 4 + len(Wait) + 4 >= 6 -> accept the close
        assert c.thinking_tokens == 8 + len(wait)


@pytest.mark.parametrize("path", PATHS)
def test_wait_never_pushes_past_the_cap(tiny, tokenizer, path):
    out = _run(tiny, tokenizer, path=path, close_after=3, max_thinking_tokens=10, min_thinking_tokens=10, max_waits=5,
               answer_tokens=8)
    for c in out:
        assert c.thinking_tokens <= 10
        assert c.thinking_end in (T.CLOSED, T.FORCED)


@pytest.mark.parametrize("path", PATHS)
def test_end_of_turn_inside_block_is_incomplete(tiny, tokenizer, path):
    out = _run(tiny, tokenizer, path=path, close_after=10_000, eos_after=4, max_thinking_tokens=50, answer_tokens=20)
    for c in out:
        assert c.thinking_end == T.INCOMPLETE
        assert c.thinking_tokens == 4
        assert c.answer_ids == [] and c.answer_text == ""


@pytest.mark.parametrize("path", PATHS)
def test_an_ended_turn_is_closed_and_answered_when_asked(tiny, tokenizer, path):
    """`answer_unclosed` (s1's harness): an end of turn inside the block is dropped, the block closed for the
    model with the delimiter alone (injected), and the model answers; the sample counts as forced."""
    ended = tokenizer.encode(T.DEFAULT_FORMAT.ended_close, add_special_tokens=False)
    out = _run(tiny, tokenizer, path=path, close_after=10_000, eos_after=4, max_thinking_tokens=50, answer_tokens=20,
               answer_unclosed=True)
    for c in out:
        assert c.thinking_end == T.FORCED and c.turn_ended
        assert c.thinking_tokens == 4 and c.close_ids == ended
        assert c.completion_ids == c.thinking_ids + ended + c.answer_ids  # the end-of-turn token is gone
        assert c.sampled_mask == [1] * 4 + [0] * len(ended) + [1] * len(c.answer_ids)
        assert "\\boxed{7}" in c.answer_text and c.answer_ids[-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("path", PATHS)
def test_no_force_close_leaves_block_incomplete(tiny, tokenizer, path):
    out = _run(tiny, tokenizer, path=path, close_after=10_000, max_thinking_tokens=6, answer_tokens=20, force_close=False)
    for c in out:
        assert c.thinking_end == T.INCOMPLETE and c.thinking_tokens == 6 and c.answer_ids == []


def test_random_model_never_exceeds_cap_and_accounts_exactly(tiny, tokenizer):
    rng = random.Random(0)
    prompts = _prompts(tokenizer, 3)
    for _ in range(3):
        cap = rng.randint(1, 24)
        out = generate(tiny, tokenizer, prompts, n=2, max_thinking_tokens=cap, answer_tokens=5,
                         min_thinking_tokens=rng.randint(0, cap), max_waits=2,
                         sampling=G.Sampling(temperature=1.0, batch_size=4), seed=rng.randint(0, 99))
        assert [(c.prompt_index, c.sample_index) for c in out] == [(p, s) for p in range(3) for s in range(2)]
        for c in out:
            assert c.thinking_tokens <= cap
            assert len(c.completion_ids) == len(c.sampled_mask)
            assert c.completion_ids[:c.thinking_tokens] == c.thinking_ids
            assert c.answer_tokens <= 5


def test_generation_is_seeded(tiny, tokenizer):
    kw = dict(n=2, max_thinking_tokens=12, answer_tokens=4, sampling=G.Sampling(temperature=1.0), seed=3)
    a = generate(tiny, tokenizer, _prompts(tokenizer), **kw)
    b = generate(tiny, tokenizer, _prompts(tokenizer), **kw)
    assert [c.completion_ids for c in a] == [c.completion_ids for c in b]


def test_bad_budgets_are_rejected(tiny, tokenizer):
    with pytest.raises(ValueError, match="min_thinking_tokens"):
        generate(tiny, tokenizer, _prompts(tokenizer), max_thinking_tokens=4, min_thinking_tokens=5)
    with pytest.raises(ValueError, match="sweep caps"):
        G.sweep(HFEngine(tiny, tokenizer), _prompts(tokenizer), T.Budget(8), [4, 16])


def _same(a: G.Completion, b: G.Completion):
    assert (a.completion_ids, a.thinking_end, a.thinking_tokens, a.answer_text, a.waits, a.sampled_mask) == \
           (b.completion_ids, b.thinking_end, b.thinking_tokens, b.answer_text, b.waits, b.sampled_mask)


@pytest.mark.parametrize("close_after,eos_after,unclosed", [(5, None, False), (10_000, None, False),
                                                             (10_000, 4, False), (10_000, 4, True)])
def test_sweep_equals_separate_runs(tiny, tokenizer, close_after, eos_after, unclosed):
    """One generation at the largest budget + short answers == one generation per budget (greedy).
    Budgets 4/7/8/16 around a close after 5 words (+3 delimiter tokens) cover: cut before the close,
    cut inside the delimiter, close exactly at the budget, close well inside; an end of turn after 4
    words, left unanswered or closed and answered (`answer_unclosed`)."""
    model = scripted_model(tokenizer, Script(tokenizer, None, close_after, eos_after))
    budgets = [4, 7, 8, 16]
    swept = sweep(model, tokenizer, _prompts(tokenizer), budgets=budgets, answer_tokens=12, answer_unclosed=unclosed)
    assert sorted(swept) == budgets
    for b in budgets:
        separate = generate(model, tokenizer, _prompts(tokenizer), max_thinking_tokens=b, answer_tokens=12,
                            answer_unclosed=unclosed)
        for x, y in zip(swept[b], separate, strict=True):
            _same(x, y)


def test_sweep_on_random_model_matches_separate_runs(tiny, tokenizer):
    budgets = [3, 6, 12]
    swept = sweep(tiny, tokenizer, _prompts(tokenizer, 3), budgets=budgets, answer_tokens=5)
    for b in budgets:
        separate = generate(tiny, tokenizer, _prompts(tokenizer, 3), max_thinking_tokens=b, answer_tokens=5)
        for x, y in zip(swept[b], separate, strict=True):
            _same(x, y)


def test_sweep_answers_smaller_budgets_from_the_kv_cache(tiny, tokenizer, monkeypatch):
    """Without answers inside the thinking round (sampled rounds, Wait extensions, or switched off as
    here): answers (the smaller budgets' forced ones and the largest budget's own) continue the thinking
    round's KV cache (no prefix re-read), and still equal separate runs; when the engine cannot continue
    a cache, the rows re-read their prefixes instead."""
    real_init = HFEngine.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        self.answer_in_round = False

    monkeypatch.setattr(HFEngine, "__init__", init)
    calls, from_cache = [], []
    answer_round, continue_rows = G._answer_round, hf_engine.HFChunk.continue_rows

    def spy_round(engine, rows, *args, **kwargs):
        if rows:  # rows that re-read their prompt + thinking
            calls.append(args[-2])  # desc
        return answer_round(engine, rows, *args, **kwargs)

    def spy_continue(self, rows, *args, **kwargs):
        out = continue_rows(self, rows, *args, **kwargs)
        from_cache.append(len(out))
        return out

    monkeypatch.setattr(G, "_answer_round", spy_round)
    monkeypatch.setattr(hf_engine.HFChunk, "continue_rows", spy_continue)
    budgets = [2, 5, 12]
    prompts = _prompts(tokenizer, 3)
    swept = sweep(tiny, tokenizer, prompts, budgets=budgets, answer_tokens=5)
    assert calls == []  # no answer re-read its prefix: every budget's answers continued a KV cache
    assert sum(from_cache) >= len(prompts)  # budget 2 cuts every row that did not end within 2 tokens
    for b in budgets:
        for x, y in zip(swept[b], generate(tiny, tokenizer, prompts, max_thinking_tokens=b, answer_tokens=5), strict=True):
            _same(x, y)
    calls.clear()
    monkeypatch.setattr(hf_engine.HFChunk, "continue_rows", lambda self, *a, **k: None)
    reread = sweep(tiny, tokenizer, prompts, budgets=budgets, answer_tokens=5)
    assert "forced answers (smaller budgets)" in calls and "answer" in calls
    for b in budgets:
        for x, y in zip(reread[b], swept[b], strict=True):
            _same(x, y)


@pytest.mark.parametrize("close_after,eos_after", [(5, None), (10_000, None), (10_000, 4), (None, None)])
def test_answers_from_the_cache_equal_answers_from_a_reread_prefix(tiny, tokenizer, close_after, eos_after):
    """Answers from the thinking round's cache (rows closed by the model: holes after their close; forced
    rows: the forced cue appended) equal the re-reading answer round (the engine refusing to continue).
    Same tokens, same accounting. `None`: the random model itself (ragged closes, ends and caps in one
    batch)."""
    model = tiny if close_after is None else scripted_model(tokenizer, Script(tokenizer, None, close_after, eos_after))
    prompts = _prompts(tokenizer, 4)
    for budget in (3, 9):
        cached = generate(model, tokenizer, prompts, max_thinking_tokens=budget, answer_tokens=7)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(hf_engine.HFChunk, "continue_rows", lambda self, *a, **k: None)
            reread = generate(model, tokenizer, prompts, max_thinking_tokens=budget, answer_tokens=7)
        for x, y in zip(cached, reread, strict=True):
            _same(x, y)
            assert x.answer_truncated == y.answer_truncated


class ThinkThenFree(LogitsProcessor):
    """Scripted thinking that closes after a different number of words per row (so the rows of one
    batch close at different steps, leaving holes in the cache layout), then the real model writes
    the answer: its tokens depend on the KV cache, which is what is under test."""

    def __init__(self, tok):
        self.tok = tok
        self.word = tok.encode(" x", add_special_tokens=False)[0]
        self.close = tok.encode(T.THINK_CLOSE, add_special_tokens=False)

    def __call__(self, input_ids, scores):
        for row in range(input_ids.shape[0]):
            ids = input_ids[row].tolist()
            start = _completion_start(ids, self.tok)
            # masked padding (holes and suffix padding of the cache layout) is not text the model reads
            completion = [t for t in ids[start:] if t != self.tok.pad_token_id]
            if T.THINK_CLOSE in self.tok.decode(completion):
                continue  # answering: the real model's own scores
            words = 1 + sum(ids[:start]) % 7  # per-prompt thinking length, 1..7 words
            if completion.count(self.word) < words:
                nxt = self.word
            else:
                written = next((n for n in range(len(self.close), 0, -1) if completion[-n:] == self.close[:n]), 0)
                nxt = self.close[written]
            scores[row] = float("-inf")
            scores[row, nxt] = 0.0
        return scores


def test_cached_answers_with_ragged_closes_equal_reread_answers(tiny, tokenizer):
    model = Scripted(tiny, ThinkThenFree(tokenizer))
    prompts = [T.build_prompt(tokenizer, [{"role": "user", "content": f"Add {i} and {3 * i + 1}."}])
               for i in range(6)]
    cached = generate(model, tokenizer, prompts, max_thinking_tokens=6, answer_tokens=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_engine.HFChunk, "continue_rows", lambda self, *a, **k: None)
        reread = generate(model, tokenizer, prompts, max_thinking_tokens=6, answer_tokens=8)
    ends = {c.thinking_end for c in cached}
    assert ends == {T.CLOSED, T.FORCED}, ends  # both kinds of row in one batch
    assert len({c.thinking_tokens for c in cached}) >= 3  # closes at different steps
    for x, y in zip(cached, reread, strict=True):
        _same(x, y)


def _with_and_without_prefill(tiny, tokenizer, monkeypatch, prompts, budget, **kw):
    """Generate with the engine's own prefill, then with `generate`'s (shared_prefill off); returns both
    completions and how many prompt + generated tokens each read. Compaction is off in both, so the
    difference in tokens read is the prefill's alone."""
    read = []
    hook = tiny.model.embed_tokens.register_forward_hook(lambda m, args, out: read.append(args[0].numel()))
    try:
        engine = HFEngine(tiny, tokenizer)
        engine.compact = False
        ours = G.generate(engine, prompts, budget, **kw)
        ours_read = sum(read)
        read.clear()
        monkeypatch.setattr(HFEngine, "shared_prefill", lambda self, *a, **k: None)
        plain = G.generate(HFEngine(tiny, tokenizer), prompts, budget, **kw)
        plain_read = sum(read)
    finally:
        hook.remove()
    for x, y in zip(ours, plain, strict=True):
        _same(x, y)
    return ours_read, plain_read


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_k_samples_read_their_prompt_once(tiny, tokenizer, monkeypatch, temperature):
    """n samples of one prompt share its prefill: the prompt is read once per distinct prompt, not once
    per sample (prefix caching), and every completion is what the unshared path samples."""
    prompts, n = _prompts(tokenizer, 2), 3
    shared_read, plain_read = _with_and_without_prefill(
        tiny, tokenizer, monkeypatch, prompts, T.Budget(6, answer_tokens=4),
        n=n, sampling=G.Sampling(temperature=temperature, batch_size=8), seed=5)
    width = max(len(tokenizer.encode(p, add_special_tokens=False)) for p in prompts)
    # the thinking round's prefill: 2 distinct rows x (width - 1) columns instead of 6 rows x (width - 1)
    assert plain_read - shared_read == (len(prompts) * n - len(prompts)) * (width - 1)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_prompts_of_different_lengths_prefill_in_groups(tiny, tokenizer, monkeypatch, temperature):
    """One long prompt among short ones: the short ones are prefilled in their own group, as wide as they
    are, not padded to the long one's width; every completion is what the one-batch prefill gives."""
    long = T.build_prompt(tokenizer, [{"role": "user", "content": "Add these numbers " + " + ".join(map(str, range(40)))}])
    prompts = _prompts(tokenizer, 3) + [long]
    grouped_read, plain_read = _with_and_without_prefill(
        tiny, tokenizer, monkeypatch, prompts, T.Budget(6, answer_tokens=4),
        sampling=G.Sampling(temperature=temperature, batch_size=8), seed=3)
    lengths = [len(tokenizer.encode(p, add_special_tokens=False)) for p in prompts]
    width = max(lengths)
    assert max(lengths[:3]) * 2 < width  # the case: padding would dominate the short rows' prefill
    # the one-batch prefill reads 4 rows x (width - 1) columns; grouped: the short rows at their own width
    assert plain_read - grouped_read == 3 * (width - 1) - 3 * (max(lengths[:3]) - 1)


@pytest.mark.parametrize("temperature,top_p", [(0.0, 1.0), (1.0, 1.0), (0.8, 0.9)])
def test_rounds_drop_finished_rows(tiny, tokenizer, temperature, top_p):
    """Rows that stop early (here at their length limits, at four different steps) leave the batch: fewer
    row-steps are computed, and the round's tokens, stop reasons and the answers continued from its KV
    cache are exactly `generate`'s, greedy and sampled (same seed: the same draws)."""
    prompts = _prompts(tokenizer, 4)
    prefixes = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    limits = [3, 12, 6, 9]
    sampling = G.Sampling(temperature=temperature, top_p=top_p, batch_size=8)

    def run(compact: bool):
        engine = HFEngine(tiny, tokenizer)
        engine.compact = compact
        rows = []
        hook = tiny.model.embed_tokens.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
        torch.manual_seed(7)
        try:
            chunk = next(engine.rounds(prefixes, limits, None, sampling))
            decode_rows = sum(rows[1:])  # every forward after the prefill's
            keep = [len(o.ids) for o in chunk.outputs]
            suffix = tokenizer.encode("\n</think>\n\n", add_special_tokens=False)
            answers = chunk.continue_rows(list(range(len(prompts))), keep, [suffix] * len(prompts), 5, sampling)
        finally:
            hook.remove()
        ordered = sorted(zip(chunk.indices, chunk.outputs, answers))
        return [(o.ids, o.reason, a.ids, a.reason) for _, o, a in ordered], decode_rows

    plain, plain_rows = run(False)
    compact, compact_rows = run(True)
    assert compact == plain
    lengths = [len(ids) for ids, *_ in plain]
    assert lengths == limits  # the tiny model does not end its turn within 12 tokens, even sampled
    assert len({tuple(ids) for ids, *_ in plain}) == len(prompts)
    # generate: its prefill makes token 1, then every row is fed until the longest stops. Compaction: the
    # prefill stops a column short, step t feeds token t (t = 0: the prompt's last), and a row is fed
    # once after its last token, then leaves
    assert plain_rows == len(prompts) * (max(limits) - 1)
    assert compact_rows == sum(min(n + 1, max(limits)) for n in limits) < plain_rows


class PositionScripted(LlamaForCausalLM):
    """A plain transformers model (the engine drives its forward: prefill, compaction, answers in the round)
    whose next token is scripted from the fed token and its position: think " x" until position `close_at`,
    then the delimiter token by token, then an answer ending the turn; after the forced close's last token,
    the answer. Prompts of different lengths close after different numbers of thinking tokens (or hit the
    cap), so one batch has ragged closes, forced closes and answers that end at different steps. The real
    Llama forward still runs (KV cache, masks, positions)."""

    @classmethod
    def of(cls, tiny, tok, close_at: int):
        model = cls(tiny.config)
        model.load_state_dict(tiny.state_dict())
        model.eval()
        model.close_at = close_at
        model.word = tok.encode(" x", add_special_tokens=False)[0]
        model.close = tok.encode(T.THINK_CLOSE, add_special_tokens=False)
        forced = tok.encode(T.FORCED_CLOSE, add_special_tokens=False)
        answer = tok.encode(" The answer is 7", add_special_tokens=False) + [tok.eos_token_id]
        model.follows = {}
        for seq in (model.close + [answer[0]], [forced[-1], answer[0]], answer):
            for a, b in zip(seq, seq[1:]):
                assert model.follows.setdefault(a, b) == b, "the script's token sequences collide"
        return model

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
        n = out.logits.shape[1]
        assert position_ids is not None
        ids, pos = input_ids[:, -n:].tolist(), position_ids.expand(len(input_ids), -1)[:, -n:].tolist()
        logits = torch.full_like(out.logits, float("-inf"))
        for b in range(len(ids)):
            for t in range(n):
                nxt = self.follows.get(ids[b][t])
                if nxt is None:
                    nxt = self.word if pos[b][t] + 1 < self.close_at else self.close[0]
                logits[b, t, nxt] = 0.0
        out.logits = logits
        return out


def _lengthy_prompts(tok):
    words = ["one", "one two three", "one two three four five six", "one two three four five six seven eight nine"]
    return [T.build_prompt(tok, [{"role": "user", "content": w}]) for w in words]


@pytest.mark.parametrize("scripted", [True, False])
def test_answers_inside_the_thinking_round_equal_the_two_round_path(tiny, tokenizer, monkeypatch, scripted):
    """Greedy, no Wait: answers are written in the thinking round's own loop (a closed row answers beside the
    rows still thinking; a row cut at a smaller cap is copied and the copy answers), with no second batch.
    Every cap's completions equal the two-round path's (`generate`, then answers continued from its cache).
    Scripted: ragged closes, forced closes and ended answers in one batch; random: caps and forks."""
    prompts = _lengthy_prompts(tokenizer)
    lengths = [len(tokenizer.encode(p, add_special_tokens=False)) for p in prompts]
    model = PositionScripted.of(tiny, tokenizer, close_at=min(lengths) + 9) if scripted else tiny
    budgets = [2, 5, 8]
    budget = T.Budget(max(budgets), answer_tokens=6)
    continued = []
    real = hf_engine.HFChunk.continue_rows
    monkeypatch.setattr(hf_engine.HFChunk, "continue_rows",
                        lambda self, *a, **k: continued.append(1) or real(self, *a, **k))
    inside = G.sweep(HFEngine(model, tokenizer), prompts, budget, budgets,
                     sampling=G.Sampling(batch_size=8))
    assert continued == []  # no answer batch after the round
    two = HFEngine(model, tokenizer)
    two.compact = False
    reference = G.sweep(two, prompts, budget, budgets, sampling=G.Sampling(batch_size=8))
    assert continued  # the reference did continue rows
    for b in budgets:
        for x, y in zip(inside[b], reference[b], strict=True):
            _same(x, y)
            assert x.answer_truncated == y.answer_truncated
    if scripted:
        top = inside[max(budgets)]
        assert {c.thinking_end for c in top} == {T.CLOSED, T.FORCED}
        assert len({c.thinking_tokens for c in top}) >= 3
        assert any(c.answer_ids and c.answer_ids[-1] == tokenizer.eos_token_id for c in top)

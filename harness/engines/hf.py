"""The transformers engine: batched decoding with a per-row stop rule, and continuation from the
round's KV cache (the protocol is `generation/engine.py`).

Prompts are sorted by length and left-padded, so every row's generated tokens start at the same
column of a chunk; that is what lets one cut of the KV cache serve a whole chunk when some rows
continue (`HFChunk.continue_rows`): budget sweeps answer smaller budgets, and answers follow their
thinking, without re-reading prompt and thinking. Where the model's forward can be driven directly (a
plain transformers model), the engine prefills shared prompts once, decodes with finished rows dropped
and, in greedy rounds, writes answers inside the thinking round (`hf_decode.py`, cache surgery in
`hf_cache.py`); otherwise it calls `generate`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..generation.engine import EOS, LENGTH, STOP, Follow, RoundOutput, Sampling, eos_ids
from ..models.hf_compat import cache_of, with_cache
from .hf_cache import assemble_cache, slice_cache


class RoundStop:
    """Per-row stopping for one batched generate call; records where and why each row stopped.

    Returns a (B,) bool tensor, so rows stop independently (transformers pads finished rows).
    """

    def __init__(self, tokenizer, prompt_len: int, limits: list[int], stop_text: str | None, eos: set[int]):
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.limits = limits
        self.stop_text = stop_text
        self.eos = eos
        self.events: list[tuple[int, str] | None] = [None] * len(limits)

    def check(self, row: int, tail: list[int], n: int) -> bool:
        """Record whether `row`, having generated n tokens ending in `tail` (its last few), stops now; return
        whether it has stopped."""
        if self.events[row] is None and n > 0:
            if tail[-1] in self.eos:
                self.events[row] = (n, EOS)
            elif self.stop_text and self.stop_text in self.tokenizer.decode(tail[-min(n, 8):]):
                self.events[row] = (n, STOP)
            elif n >= self.limits[row]:
                self.events[row] = (n, LENGTH)
        return self.events[row] is not None

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        n = input_ids.shape[1] - self.prompt_len
        tails = input_ids[:, -min(max(n, 1), 8):].tolist()
        done = [self.check(row, tails[row], n) for row in range(input_ids.shape[0])]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def outputs(self, new: list[list[int]]) -> list[RoundOutput]:
        return [RoundOutput(ids[:n], reason) for ids, (n, reason) in
                ((ids, self.events[r] or (len(ids), LENGTH)) for r, ids in enumerate(new))]


def generation_config(sampling: Sampling, max_new_tokens: int, pad: int, eos: set[int]):
    """Every parameter that shapes the distribution set explicitly, so that nothing from the model's own
    `generation_config.json` (Qwen-style: top_k 20, repetition_penalty 1.05) or a library default applies:
    RL's log-probs assume the full softmax at `temperature`."""
    from transformers import GenerationConfig

    sample = sampling.temperature > 0
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        temperature=sampling.temperature if sample else None,
        top_p=sampling.top_p if sample else None,
        # off: R1-Zero samples at temperature 1 from the full vocabulary. Greedy applies no warper (transformers
        # warns of a top_k set with do_sample=False, once per run): left unset there
        top_k=0 if sample else None,
        min_p=None, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0,
        repetition_penalty=1.0, no_repeat_ngram_size=0, encoder_repetition_penalty=1.0,
        pad_token_id=pad,
        eos_token_id=sorted(eos),
    )


def generate_sampling(sampling: Sampling, max_new_tokens: int, pad: int, eos: set[int]) -> dict:
    """`generate` arguments for `sampling`: its generation config, and for per-row seeds a logits processor
    that draws each row's token from its own generator (greedy decoding then takes it)."""
    if sampling.seeds is None or sampling.temperature == 0:
        return {"generation_config": generation_config(sampling, max_new_tokens, pad, eos)}
    import dataclasses

    from transformers import LogitsProcessorList

    from .hf_decode import RowSeeded

    greedy = generation_config(dataclasses.replace(sampling, temperature=0.0), max_new_tokens, pad, eos)
    return {"generation_config": greedy, "logits_processor": LogitsProcessorList([RowSeeded(sampling)])}


@dataclass
class HFChunk:
    engine: "HFEngine"
    indices: list[int]
    outputs: list[RoundOutput]
    sequences: object  # (B, width + new) left-padded prompts and generated tokens
    attention: object  # (B, width) prompt mask
    cache: object  # the round's KV cache
    width: int
    answers: dict | None = None  # {(row, None or fork length): RoundOutput} when answered in the round
    steps: dict | None = None  # slot-steps of an answered round: {"rows": all, "forks": forks'}

    def continue_rows(self, rows: list[int], keep: list[int], suffixes: list[list[int]], limit: int,
                      sampling: Sampling) -> list[RoundOutput] | None:
        """Layout, per row: [left-padded prompt | keep[r] tokens | holes up to max(keep) | left-padded
        suffix]. Every row's generated tokens start at column `width`, so one cut of the cache serves
        the chunk; holes and suffix padding are masked out (positions come from the mask, so they stay
        exact), and the last column is always a real token."""
        import torch
        from transformers import StoppingCriteriaList

        eng = self.engine
        device = self.sequences.device
        index = torch.tensor(rows, device=device)
        kept = max(keep)
        prefix = slice_cache(self.cache, index, self.width + kept)
        if prefix is None:
            return None
        dtype, mdtype = self.sequences.dtype, self.attention.dtype
        n_suffix = max(len(x) for x in suffixes)
        tail = torch.full((len(rows), n_suffix), eng.pad_id, dtype=dtype, device=device)
        tail_mask = torch.zeros((len(rows), n_suffix), dtype=mdtype, device=device)
        body_mask = torch.zeros((len(rows), kept), dtype=mdtype, device=device)
        for j, (k, suffix) in enumerate(zip(keep, suffixes)):
            body_mask[j, :k] = 1
            if suffix:
                tail[j, n_suffix - len(suffix):] = torch.tensor(suffix, dtype=dtype)
                tail_mask[j, n_suffix - len(suffix):] = 1
        input_ids = torch.cat([self.sequences[index, :self.width + kept], tail], dim=1)
        mask = torch.cat([self.attention[index], body_mask, tail_mask], dim=1)
        stop = RoundStop(eng.tokenizer, input_ids.shape[1], [limit] * len(rows), None, eng.eos_ids)
        if eng.compact and eng.plain_forward():
            from .hf_decode import compact_round

            # read the uncached columns but the last (the suffix), then decode with finished rows dropped
            start = prefix.get_seq_length()
            if start < input_ids.shape[1] - 1:
                positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
                with torch.no_grad():
                    eng.model(input_ids=input_ids[:, start:-1], attention_mask=mask[:, :-1],
                              position_ids=positions[:, start:-1], use_cache=True, **with_cache(prefix),
                              logits_to_keep=1)
            sequences, _ = compact_round(eng.model, input_ids, mask, prefix, stop, limit, eng.pad_id, sampling,
                                         want_cache=False)
            return stop.outputs(sequences[:, input_ids.shape[1]:].tolist())
        with torch.no_grad():
            out = eng.model.generate(input_ids=input_ids, attention_mask=mask, **with_cache(prefix),
                                     **generate_sampling(sampling, limit, eng.pad_id, eng.eos_ids),
                                     stopping_criteria=StoppingCriteriaList([stop]), **eng.generate_kwargs)
        return stop.outputs(out[:, input_ids.shape[1]:].tolist())


class HFEngine:
    """A transformers causal LM (or a peft model around one) and its tokenizer."""

    def __init__(self, model, tokenizer, fast_head: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids(tokenizer, getattr(model, "generation_config", None))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.generate_kwargs: dict = {}  # test-time knobs that travel as generate() arguments
        self.compact = True  # rounds drop finished rows (hf_decode.py); False: generate() as is
        self.answer_in_round = True  # greedy rounds write their answers in the same loop (engine.Follow)
        self.cuttable_cache = True  # until a prefill finds the model's cache cannot be cut row-wise
        from ..generation import knobs
        from . import head_matmul

        self.knobs = knobs.supported(model)
        # decoding batches' LM head in the faster orientation, where measured faster here (CPU only).
        # `fast_head=False` keeps `linear`: the choice is timed, so it may differ from run to run, and the
        # other orientation rounds differently (training rollouts want the same numbers every run).
        self.head_speedup = head_matmul.install(model) if fast_head else None

    @property
    def dtype(self) -> str:
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    @property
    def answers_in_round(self) -> bool:
        """Greedy rounds can write each row's answer in the thinking round itself (rounds' `follow`)."""
        return self.answer_in_round and self.compact

    @property
    def flops_shape(self):
        """The FLOPs shape; for a recurrent-depth model, at the mean iterations run since `reset_stats()`."""
        from ..models import flops

        mean = self.model.mean_iterations() if hasattr(self.model, "mean_iterations") else None
        return self.model.flops_shape_at(mean) if mean else flops.shape_of(self.model)

    def reset_stats(self) -> None:
        if hasattr(self.model, "reset_iterations"):
            self.model.reset_iterations()

    def stats(self) -> dict:
        mean = self.model.mean_iterations() if hasattr(self.model, "mean_iterations") else None
        return {"iterations_mean": mean} if mean is not None else {}

    def plain_forward(self) -> bool:
        """Whether this engine may drive the model's forward itself (prefill, compaction) rather than through
        `generate`: a transformers model (not a wrapper that customises `generate`), no test-time knob
        travelling as a `generate` argument, not a recurrent-depth model (its forward counts iterations)."""
        from transformers import PretrainedConfig

        return (not self.generate_kwargs and not getattr(self.model, "supports_recurrence", False)
                and isinstance(getattr(self.model, "config", None), PretrainedConfig))

    def shared_prefill(self, input_ids, attention, slack: float = 1.25, always: bool = False):
        """The KV cache of every column but the last, or None when `generate`'s own prefill does as well. Two
        savings: each distinct row is read once and its cache copied to its duplicates (k samples of one
        prompt: the prompt is read once, not k times); and rows are read in groups of similar length, each
        group only as wide as its longest row, not the batch's (left padding costs as much as a token: one
        long prompt in a batch of short ones tripled a MATH-500 prefill). A group grows while its padded
        size stays within `slack` x its real tokens. `generate` then reads only the last column. `always`: the
        cache even when it saves nothing (for `hf_decode.compact_round`), None only where it cannot be made.

        Positions are what `generate` derives from a left-padded mask (cumsum - 1, padding at 1), so the
        cache equals the one `generate` would build itself (columns a row does not fill are masked). Not for
        recurrent-depth models (their forward counts iterations and takes `num_steps`): they prefill as usual."""
        import torch

        if input_ids.shape[1] < 2 or not self.plain_forward() or not self.cuttable_cache:
            return None
        rows = [tuple(r) for r in input_ids.tolist()]  # padding included: duplicates are whole-row equal
        first: dict[tuple, int] = {}
        inverse = [first.setdefault(r, len(first)) for r in rows]
        distinct = [rows.index(r) for r in first]  # (U,) batch rows, in order of first appearance
        width = input_ids.shape[1] - 1  # every column but the last
        lengths = attention[:, :-1].sum(-1).tolist()
        groups, group = [], []
        for i in sorted(range(len(distinct)), key=lambda i: lengths[distinct[i]]):
            n = lengths[distinct[i]]  # the longest so far: sorted ascending
            if group and n * (len(group) + 1) > slack * (n + sum(lengths[distinct[j]] for j in group)):
                groups.append(group)
                group = []
            group.append(i)
        groups.append(group)
        if len(distinct) == len(rows) and len(groups) == 1 and not always:
            return None
        positions = (attention.long().cumsum(-1) - 1).masked_fill(attention == 0, 1)
        parts = []
        with torch.no_grad():
            for group in groups:
                w = max(lengths[distinct[i]] for i in group)
                if w == 0:  # rows of one token: nothing to prefill
                    continue
                pick = torch.tensor([distinct[i] for i in group], device=input_ids.device)
                cols = slice(width - w, width)  # logits_to_keep=1: the cache is wanted, not (G, w, vocab) logits
                out = self.model(input_ids=input_ids[pick, cols], attention_mask=attention[pick, cols],
                                 position_ids=positions[pick, cols], use_cache=True, logits_to_keep=1)
                parts.append((group, w, cache_of(out)))
        if not parts:
            return None
        cache = assemble_cache(parts, len(distinct), width, torch.tensor(inverse, device=input_ids.device))
        self.cuttable_cache = cache is not None  # a sliding-window or quantised cache: do not prefill again
        return cache

    def rounds(self, prefixes: list[list[int]], limits: list[int], stop_text: str | None, sampling: Sampling,
               desc: str = "", progress: bool = False, follow: Follow | None = None) -> Iterator[HFChunk]:
        """`follow` (greedy rounds): rows answer inside the round (`chunk.answers`),
        with finished rows dropped; else (or where the model's forward cannot be driven here) `chunk.answers`
        is None and the caller continues rows itself."""
        import torch
        from tqdm.auto import tqdm
        from transformers import StoppingCriteriaList

        # Sort by length so a batch holds similar lengths (less padding); chunks say which rows they hold.
        order = sorted(range(len(prefixes)), key=lambda i: len(prefixes[i]))
        device = next(self.model.parameters()).device
        chunks = [order[i:i + sampling.batch_size] for i in range(0, len(order), sampling.batch_size)]
        for chunk in tqdm(chunks, desc=desc, disable=None if progress else True, leave=False):
            width = max(len(prefixes[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):  # left padding: every row ends at the same column
                ids = prefixes[i]
                input_ids[r, width - len(ids):] = torch.tensor(ids)
                attention[r, width - len(ids):] = 1
            row_limits = [limits[i] for i in chunk]
            stop = RoundStop(self.tokenizer, width, row_limits, stop_text, self.eos_ids)
            rows_sampling = sampling.for_rows(chunk)
            gen = generate_sampling(rows_sampling, max(row_limits), self.pad_id, self.eos_ids)
            gen["generation_config"].return_dict_in_generate = True  # the KV cache, for continue_rows
            attention = attention.to(device)
            input_ids = input_ids.to(device)
            shared = self.shared_prefill(input_ids, attention, always=self.compact)
            answers = steps = None
            if (follow is not None and self.answer_in_round and self.compact and shared is not None
                    and sampling.temperature == 0):
                from .hf_decode import think_then_answer

                thinking, answers, steps = think_then_answer(self.model, input_ids, attention, shared, stop, follow,
                                                             self.eos_ids)
                n = max(len(t) for t in thinking)
                sequences = torch.full((len(chunk), width + n), self.pad_id, dtype=torch.long, device=device)
                sequences[:, :width] = input_ids
                for r, t in enumerate(thinking):
                    sequences[r, width:width + len(t)] = torch.tensor(t, dtype=torch.long)
                cache = None  # nothing continues from an answered round
            elif self.compact and shared is not None:  # finished rows leave the batch (hf_decode.py)
                from .hf_decode import compact_round

                sequences, cache = compact_round(self.model, input_ids, attention, shared, stop, max(row_limits),
                                                 self.pad_id, rows_sampling)
            else:
                prefix = {} if shared is None else with_cache(shared)
                with torch.no_grad():
                    out = self.model.generate(input_ids=input_ids, attention_mask=attention, **prefix, **gen,
                                              stopping_criteria=StoppingCriteriaList([stop]), **self.generate_kwargs)
                sequences, cache = out.sequences, cache_of(out)
            outputs = stop.outputs(sequences[:, width:].tolist())
            yield HFChunk(self, list(chunk), outputs, sequences, attention, cache, width, answers, steps)

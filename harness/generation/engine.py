"""The generation-engine protocol: what budget forcing (`forcing.py`) asks of a backend.

An engine runs *rounds*: continue each token-id prefix for at most its own limit, stop a row at a stop
text (the end-of-thinking delimiter) or an end-of-turn token, and say which. Rounds come back in
chunks (a batch of rows); while a chunk is in hand, `Chunk.continue_rows` can continue some of its
rows from where they stand, keeping the first `keep` generated tokens and reading a suffix first:
the HF engine reuses the chunk's KV cache for that, vLLM its prefix cache. Budget forcing, token
accounting and sweeps are written once, against this protocol.

Engines (`harness/engines/`): `hf.HFEngine` (transformers) and `vllm.VllmEngine` (vLLM). Both also carry
what evaluation needs to know of the model (`flops_shape`), which test-time knobs they can set, and
their capabilities (`answers_in_round`), so that code written against the protocol never asks which
engine it holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple, Protocol

# Why a row of a round stopped.
EOS, STOP, LENGTH = "eos", "stop", "length"


class RoundOutput(NamedTuple):
    ids: list[int]  # new tokens; the end-of-turn token or the one completing the stop text is last
    reason: str  # EOS | STOP | LENGTH
    logps: list[float] | None = None  # the engine's log-prob of each new token (`Sampling.logprobs`), else None


@dataclass(frozen=True)
class Sampling:
    """Every sampling parameter, set explicitly on each engine so that neither a model's
    `generation_config` nor a library default changes the distribution sampled from (RL log-probs
    assume the full softmax at `temperature`).

    `seeds`: one per row of a call (a round's prefixes, or the rows `continue_rows` continues): each row
    draws from its own generator, so its tokens depend on its seed alone, not on which rows share its batch,
    chunk or process (reproducible sampled evaluation). None: one stream for the whole call (the global
    RNG, seeded by the caller)."""
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    batch_size: int = 8  # rows per batched call (HF); memory/speed only
    seeds: tuple[int, ...] | None = None
    # ask the engine for each sampled token's log-prob at `temperature` (RL rollouts on vLLM: the mismatch with
    # the policy's own, and the truncated importance weight); engines that cannot leave `RoundOutput.logps` None
    logprobs: bool = False

    def for_rows(self, rows) -> "Sampling":
        """This sampling for a subset of the call's rows (their seeds, in `rows` order)."""
        if self.seeds is None:
            return self
        import dataclasses

        return dataclasses.replace(self, seeds=tuple(self.seeds[i] for i in rows))


def mix_seed(*parts) -> int:
    """A 63-bit seed from any parts (stable across runs and machines): per (problem, sample, round...)."""
    import hashlib

    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class Follow:
    """What a row does once its thinking stops, for an engine that writes answers inside the thinking round
    (`Engine.answers_in_round`; greedy rounds without the Wait extension, whose next tokens are known)."""
    forced: list[int]  # fed after a row reaches its thinking limit (the forced close), when force_close
    answer_tokens: int  # the answer's cap
    force_close: bool = True
    forks: tuple[int, ...] = ()  # thinking lengths b: a row still thinking after b tokens also gets the
    # answer a run capped at b would write (its first b tokens, the forced close, the answer)
    unclosed: tuple[int, ...] | None = None  # a row whose turn ends inside the block is fed these (the close)
    # instead of its end-of-turn token and answers (`Budget.answer_unclosed`); None: it stops unanswered


class Chunk(Protocol):
    indices: list[int]  # which of the round's prefixes these rows are
    outputs: list[RoundOutput]  # one per row, in `indices` order
    answers: dict | None  # answered in the round (`follow`): {(row, None or fork length): RoundOutput}; else None
    steps: dict | None  # with `answers`: slot-steps {"rows": all, "forks": the forks' share}

    def continue_rows(self, rows: list[int], keep: list[int], suffixes: list[list[int]], limit: int,
                      sampling: Sampling) -> list[RoundOutput] | None:
        """Continue chunk rows `rows` (positions in this chunk): row r keeps its first `keep[r]` new
        tokens, reads `suffixes[r]`, then generates up to `limit` tokens (no stop text). None when the
        engine cannot continue here (the caller then re-reads the prefixes in a new round)."""


class Engine(Protocol):
    tokenizer: object
    eos_ids: set[int]
    knobs: frozenset[str]  # test-time knobs this engine's model can take (`knobs.apply` sets them)
    answers_in_round: bool  # can write answers inside a greedy thinking round (`rounds(..., follow=)`)

    def rounds(self, prefixes: list[list[int]], limits: list[int], stop_text: str | None, sampling: Sampling,
               desc: str, progress: bool, follow: Follow | None = None) -> Iterator[Chunk]:
        """One round in chunks. `follow` asks for the answers after the thinking in the same pass (only given
        to an engine with `answers_in_round`; a chunk's `answers` is None where it could not)."""

    def reset_stats(self) -> None: ...

    def stats(self) -> dict: ...  # per-chunk statistics for sample rows (e.g. mean core iterations)

    @property
    def flops_shape(self): ...


def run_round(engine: Engine, prefixes: list[list[int]], limits: list[int], stop_text: str | None,
              sampling: Sampling, desc: str = "", progress: bool = False) -> list[RoundOutput]:
    """A whole round, in prefix order (chunks consumed and dropped)."""
    out: list[RoundOutput | None] = [None] * len(prefixes)
    for chunk in engine.rounds(prefixes, limits, stop_text, sampling, desc, progress):
        for i, o in zip(chunk.indices, chunk.outputs):
            out[i] = o
    return out  # type: ignore[return-value]


def eos_ids(tokenizer, generation_config=None) -> set[int]:
    """End-of-turn ids: the tokenizer's plus any the model's generation config adds."""
    ids = {tokenizer.eos_token_id}
    extra = getattr(generation_config, "eos_token_id", None)
    ids |= set(extra if isinstance(extra, list) else [extra] if extra is not None else [])
    ids.discard(None)
    return ids

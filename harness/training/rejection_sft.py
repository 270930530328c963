"""Rejection sampling to an SFT set (DeepSeek-R1 §2.3.3): sample k completions per training problem from a
checkpoint, keep the correct ones that pass the readability filters, and say why the rest were dropped.

    harness train+eval method=r1          (its third stage: sampled from the reasoning-RL checkpoint,
                                           fine-tuning the base model on what is kept)

R1 keeps "only the correct responses" and filters out "chain-of-thought with mixed languages, long
paragraphs, and code blocks". The filters here, in the order a sample is judged (the first that fails is its
reason; `REASONS`):
    unclosed     the thinking never closed on its own (a truncated sample has no answer of its own: a
                 readable SFT example must); with `require_closed=False` sampling force-closes at the cap and
                 a forced close is judged by its answer like any other
    wrong        the task's scorer gives it 0 (the same scorer as evaluation and the reward)
    language     its thinking's share in the target language (`language.share`) is below `min_language_share`
                 (an empty thinking has none and fails, unless the minimum is 0)
    length       more than `max_thinking_tokens` thinking tokens (R1's "long paragraphs"; ours: a token cap)
    code         a fenced code block in the thinking
    repetition   more than `max_repetition` of its thinking's token n-grams repeat an earlier one (degenerate
                 loops; R1 is silent on this filter's form: ours)
    duplicate    the same thinking and answer as a sample of the same problem kept before it
`samples.jsonl` (every sample, with its reason or "kept"), `data.jsonl` (the SFT set) and `report.json`
(counts by reason, kept share) are written into the stage's folder, and read back on resume.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..generation import thinking as T
from . import language as L

REASONS = ("unclosed", "wrong", "language", "length", "code", "repetition", "duplicate")
KEPT = "kept"


@dataclass(frozen=True)
class Filters:
    language: str = "en"  # the target language (`language.LANGUAGES`)
    min_language_share: float = 1.0
    max_thinking_tokens: int | None = None
    max_repetition: float = 0.5
    ngram: int = 4
    require_closed: bool = True


def repetition(ids: list[int], n: int) -> float:
    """The share of a sequence's n-grams that repeat an earlier n-gram of it (0 for fewer than 2 n-grams)."""
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    if len(grams) < 2:
        return 0.0
    seen, repeats = set(), 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


def judge(*, closed: bool, correct: bool, thinking: str, thinking_ids: list[int], filters: Filters) -> str:
    """`KEPT` or the first filter the sample fails (pure: the reasons' order is `REASONS`)."""
    if not closed:
        return "unclosed"
    if not correct:
        return "wrong"
    share = L.share(thinking, filters.language)
    if filters.min_language_share > 0 and (share is None or share < filters.min_language_share):
        return "language"
    if filters.max_thinking_tokens is not None and len(thinking_ids) > filters.max_thinking_tokens:
        return "length"
    if "```" in thinking:
        return "code"
    if repetition(thinking_ids, filters.ngram) > filters.max_repetition:
        return "repetition"
    return KEPT


@dataclass(frozen=True)
class Sample:
    problem_id: str
    index: int
    thinking: str
    answer: str
    thinking_tokens: int
    language_share: float | None
    reason: str  # KEPT or one of REASONS


def report(samples: list[Sample], problems: int, k: int) -> dict:
    """What was kept and why the rest was dropped."""
    counts = {r: sum(s.reason == r for s in samples) for r in (KEPT, *REASONS)}
    kept_problems = len({s.problem_id for s in samples if s.reason == KEPT})
    return {"problems": problems, "samples_per_problem": k, "samples": len(samples), "kept": counts[KEPT],
            "kept_share": counts[KEPT] / len(samples) if samples else 0.0, "problems_with_a_kept_sample": kept_problems,
            "dropped": {r: counts[r] for r in REASONS}}


def sample(model, task, problems, *, k: int, max_thinking_tokens: int, answer_tokens: int, temperature: float,
           filters: Filters, seed: int, dtype: str, batch_size: int, folder: Path, progress: bool = True):
    """Sample, judge and write; returns (kept examples as `data.Example`, the report). Reads back a folder that
    already holds them (a resumed stage)."""
    from ..data import Example
    from ..runstore import atomic_write_json, atomic_write_jsonl

    folder = Path(folder)
    if (folder / "report.json").is_file() and (folder / "data.jsonl").is_file():
        return read(folder), json.loads((folder / "report.json").read_text(encoding="utf-8"))
    print(f"[rejection] sampling {len(problems)} problems x {k} from {model.spec}", flush=True)
    # force_close=False (R1): a sample that runs out of thinking budget stays unclosed (and is dropped as such)
    budget = T.Budget(max_thinking_tokens, answer_tokens, force_close=not filters.require_closed)
    rows, fmt, messages = sample_problems(model, task, problems, k=k, budget=budget, temperature=temperature,
                                          seed=seed, dtype=dtype, batch_size=batch_size, tag="rejection",
                                          progress=progress)
    samples, seen, kept = [], set(), []
    for c in rows:
        problem = problems[c.prompt_index]
        thinking, answer = split(c, fmt)
        ids = list(c.thinking_ids)  # as generated (a re-encoding of the text may split it otherwise)
        closed = c.thinking_end == T.CLOSED or (not filters.require_closed and c.thinking_end != T.INCOMPLETE)
        reason = judge(closed=closed, correct=closed and task.score(problem, c.answer_text) == 1.0,
                       thinking=thinking, thinking_ids=ids, filters=filters)
        if reason == KEPT and (problem.id, thinking, answer) in seen:
            reason = "duplicate"
        if reason == KEPT:
            seen.add((problem.id, thinking, answer))
            kept.append(Example(f"{problem.id}#{c.sample_index}", messages[c.prompt_index], thinking, answer,
                                meta={"problem": problem.id}))
        samples.append(Sample(problem.id, c.sample_index, thinking, answer, len(ids), L.share(thinking, filters.language),
                              reason))
    summary = report(samples, len(problems), k)
    atomic_write_jsonl(folder / "samples.jsonl", [asdict(s) for s in samples])
    atomic_write_jsonl(folder / "data.jsonl", [{"id": e.id, "messages": e.messages, "thinking": e.thinking,
                                                "answer": e.answer, "meta": e.meta} for e in kept])
    atomic_write_json(folder / "report.json", summary)  # last: its presence marks the step done
    return read(folder), summary


def read(folder: Path) -> list:
    """The SFT set a rejection-sampling step wrote (`data.jsonl`)."""
    from ..data import Example
    from ..runstore import read_jsonl

    return [Example(r["id"], r["messages"], r["thinking"], r["answer"], meta=r.get("meta") or {})
            for r in read_jsonl(Path(folder) / "data.jsonl")]


def split(c, fmt) -> tuple[str, str]:
    """A completion's thinking and answer as an SFT example's parts: the format adds the newline before the close
    and the separator after it when it renders an example (`ThinkingFormat.completion_text`), so they are not kept."""
    return c.thinking_text.removesuffix("\n"), c.answer_text.removeprefix(fmt.separator)


def sample_problems(model, task, problems, *, k: int, budget, temperature: float, seed: int, dtype: str,
                    batch_size: int, tag: str, progress: bool = True, engine=None):
    """`k` completions of each problem from `model` (the transformers engine), each row seeded by (seed, problem id,
    sample index, `tag`), so a repeated or resumed step draws the same samples; returns (completions, the thinking
    format, each problem's prompt messages)."""
    from .. import engines
    from ..generation import forcing as G
    from ..generation.engine import mix_seed

    engine = engine or engines.load(model, "hf", dtype, seed)  # a caller that goes on using it passes its own
    fmt = T.ThinkingFormat.detect(engine.tokenizer)
    messages = [task.messages(p) for p in problems]
    prompts = [T.build_prompt(engine.tokenizer, m, fmt) for m in messages]
    rows = G.generate(engine, prompts, budget, n=k, sampling=G.Sampling(temperature=temperature, batch_size=batch_size),
                      seed=seed, fmt=fmt, progress=progress,
                      row_seeds=[mix_seed(seed, p.id, j, tag) for p in problems for j in range(k)])
    return rows, fmt, messages

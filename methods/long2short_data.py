"""What long2short's variants start from (`long2short.py`): the long model's own samples, the choices Kimi k1.5
§2.4 makes among them, and the weight average.

- `sample_long`: `samples_per_prompt` completions per training problem from the long model (its budget, the
  rollout temperature; per-row seeds), each scored by the task's scorer; saved once per run
  (`<run>/long2short/samples.jsonl`, written atomically), so a resumed run reads them instead of sampling again.
- `shortest_correct`: the shortest correct sample of a problem ("shortest rejection sampling").
- `dpo_pairs`: the shortest correct sample as the chosen one; rejected: the *longer* responses, as §2.4 takes
  them ("wrong longer responses ... and correct longer responses (1.5 times longer than the positive)"): every
  wrong sample longer than the chosen, and every correct one at least `ratio` (1.5) times longer. A wrong sample
  as short as the chosen or shorter is no negative (such a pair teaches correctness, not brevity: 10.2% of the
  pairs in 2,000 random groups of 8 under the earlier rule, which took every wrong sample). Duplicate texts
  count once; every rejected sample makes one pair with the chosen (ours: how many pairs a problem gives is
  not stated).
- `average_weights`: w * long + (1 - w) * short over every tensor, for the same architecture.

A sample's length is its completion tokens (thinking, close and answer), as Kimi's length penalty counts it;
a sample is correct when its thinking closed and its answer scores 1.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    problem_id: str
    index: int
    thinking: str
    answer: str
    length: int  # completion tokens
    correct: bool


def shortest_correct(samples: list[Sample]) -> Sample | None:
    """The shortest correct sample (the first drawn among equals), or None."""
    correct = [s for s in samples if s.correct]
    return min(correct, key=lambda s: (s.length, s.index)) if correct else None


def dpo_pairs(samples: list[Sample], ratio: float = 1.5) -> list[tuple[Sample, Sample]]:
    """(chosen, rejected) pairs of one problem's samples (see the module docstring)."""
    chosen = shortest_correct(samples)
    if chosen is None:
        return []
    seen, out = {(chosen.thinking, chosen.answer)}, []
    for s in sorted(samples, key=lambda s: s.index):
        longer = s.length >= ratio * chosen.length if s.correct else s.length > chosen.length
        if longer and (s.thinking, s.answer) not in seen:
            seen.add((s.thinking, s.answer))
            out.append((chosen, s))
    return out


def to_sample(task, problem, c, fmt) -> Sample:
    """A completion as an SFT example's parts (`rejection_sft.split`); correct = closed and scored 1."""
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.training.rejection_sft import split

    closed = c.thinking_end != T.INCOMPLETE
    thinking, answer = split(c, fmt)
    return Sample(problem.id, c.sample_index, thinking, answer, len(c.completion_ids),
                  closed and task.score(problem, c.answer_text) == 1.0)


def by_problem(samples: list[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.problem_id, []).append(s)
    return out


def sample_long(cfg, ctx, progress: bool = True) -> list[Sample]:
    """The long model's samples of the run's training problems (read back when the run already has them)."""
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.runstore import atomic_write_jsonl
    from rzoo.harness.training.rejection_sft import sample_problems

    path = Path(ctx.run.path) / "long2short" / "samples.jsonl"
    if path.is_file():
        return [Sample(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]
    task, problems = ctx.data.task, ctx.data.problems[:cfg.sample_problems]
    n = cfg.samples_per_prompt
    print(f"[long2short] sampling {len(problems)} problems x {n} from the long model", flush=True)
    rows, fmt, _ = sample_problems(ctx.model, task, problems, k=n,
                                   budget=T.Budget(cfg.max_thinking_tokens, cfg.answer_tokens,
                                                   force_close=cfg.force_close),
                                   temperature=cfg.temperature, seed=cfg.seed, dtype=cfg.dtype,
                                   batch_size=cfg.generation_batch_size, tag="long2short", progress=progress)
    out = [to_sample(task, problems[c.prompt_index], c, fmt) for c in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(path, [asdict(s) for s in out])
    return out


def average_weights(long_state: dict, short_state: dict, weight: float) -> dict:
    """w * long + (1 - w) * short, tensor by tensor (a clear error where the architectures differ)."""
    from rzoo.harness.models import ModelError

    if long_state.keys() != short_state.keys():
        missing = sorted(set(long_state) ^ set(short_state))[:5]
        raise ModelError(f"long2short merge: the two models have different weights (e.g. {missing}); merging "
                         "needs one architecture")
    out = {}
    for name, a in long_state.items():
        b = short_state[name]
        if a.shape != b.shape:
            raise ModelError(f"long2short merge: {name} is {tuple(a.shape)} in the long model and "
                             f"{tuple(b.shape)} in the short one")
        out[name] = weight * a.float() + (1 - weight) * b.float() if a.is_floating_point() else a
    return out

"""Rejection sampling as a control of thinking length (s1 §3.2 and Appendix E, the baseline budget forcing
is compared with): sample at temperature 1 until a sample's thinking fits under the budget.

Each (problem, sample) row is drawn with a cap of the budget B plus the end-of-thinking delimiter's tokens
(room to close right at B): a draw whose thinking the model closed (or ended its turn in, whether the block is
then left open or closed for it by `eval.answer_unclosed`) within B tokens is kept; a longer one (force-closed at the cap) is rejected and the row drawn again, from its own stream
(`mix_seed(row, try)`), so a row's outcome does not depend on the others. After `eval.rejection_tries`
draws the last one is kept as it is (force-closed, over the bound: it counts against Control, which is then
measured, not 100% by construction). Every row records `tries`.

Departure from s1: s1 resampled until every sample fit (655 tries on average at 3.5k tokens); ours caps the
tries so an evaluation ends, and says how often the cap was reached (Control < 1).
"""
from __future__ import annotations

from . import thinking as T
from .engine import Sampling, mix_seed
from .forcing import Completion, generate
from .thinking import Budget


def fits(c: Completion, bound: int) -> bool:
    """Did the model stop thinking on its own within `bound` tokens? It did when it closed the block, and when
    it ended its turn inside the block: with `eval.answer_unclosed` (the s1 protocol) the harness then closes
    the block for it, which marks the row forced (`turn_ended`), but the cap did not stop it, so the draw is
    kept (before issue 46 it was rejected)."""
    stopped_itself = c.thinking_end != T.FORCED or c.turn_ended
    return stopped_itself and c.thinking_tokens <= bound


def sample(engine, prompts: list[str], bound: int, *, problems: list, k: int, cfg, fmt=None,
           progress: bool = False) -> list[Completion]:
    """`k` kept completions per prompt, ordered by (prompt, sample), each with `tries` set."""
    sampling = Sampling(temperature=cfg.rejection_temperature, top_p=cfg.top_p, batch_size=cfg.batch_size)
    fmt = fmt or T.ThinkingFormat.detect(engine.tokenizer)
    room = len(engine.tokenizer.encode(fmt.close, add_special_tokens=False))
    budget = Budget(bound + room, cfg.answer_tokens, 0, 0, True, cfg.answer_unclosed)
    rows = [(p, j) for p in range(len(prompts)) for j in range(k)]
    kept: list[Completion | None] = [None] * len(rows)
    pending = list(range(len(rows)))
    for attempt in range(1, cfg.rejection_tries + 1):
        seeds = [mix_seed(cfg.seed, problems[rows[i][0]].id, rows[i][1], "rejection", attempt) for i in pending]
        drawn = generate(engine, [prompts[rows[i][0]] for i in pending], budget, sampling=sampling, fmt=fmt,
                         row_seeds=seeds, progress=progress, seed=cfg.seed + attempt)
        left = []
        for i, c in zip(pending, drawn, strict=True):
            c.prompt_index, c.sample_index, c.tries = rows[i][0], rows[i][1], attempt
            kept[i] = c
            if not fits(c, bound):
                left.append(i)
        pending = left
        if not pending:
            break
    return kept

"""CoT-Valve's MixChain built from the model itself (Ma et al. 2025, §3): a plain length direction Δθ is
trained on the given long and short chains, then θ + αΔθ at each α in `mixchain_alphas` writes a chain for
every training question (greedy, budget forcing's generator); the chains the model closed itself and whose
answer is right join their question's chains (a chain cut at `mixchain_budget` and forced to answer is dropped,
right or not: it is not a chain the model wrote to its end, which MixChain's chains are). `methods/cot_valve.py` then trains ++ or +P on the result, starting from Δθ.

Files, in the run folder: `mixchain/direction/` (the first phase's run: checkpoint, train.jsonl) and
`mixchain/chains.jsonl` (the generated chains, written once, atomically). Both are reused when the run is
resumed in its second phase.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from rzoo.harness.data import Example, Problem

_BOX = re.compile(r"\\boxed\{([^{}]*)\}")


def gold_of(example: Example) -> str:
    """The gold answer of a chain's question: the last `\\boxed{}` of its answer text, else the text."""
    boxes = _BOX.findall(example.answer)
    return boxes[-1].strip() if boxes else example.answer.strip()


def keep_chain(thinking_end: str, score: float) -> bool:
    """A generated chain joins MixChain when the model closed its thinking itself and the answer scores 1; a
    chain the budget cut and forced to answer (or never closed) does not."""
    from rzoo.harness.generation import thinking as T

    return thinking_end == T.CLOSED and score == 1.0


def direction(cfg, ctx, adapter, examples, length) -> Path:
    """The plain direction's adapter checkpoint (trained now, or found complete from an earlier attempt)."""
    from rzoo.harness.runstore import Run, atomic_write_json
    from rzoo.harness.training import sft
    from rzoo.harness.training.trainer import TrainContext

    from .cot_valve import VALVES

    run = Run(ctx.run.path / "mixchain" / "direction")
    meta = run.checkpoint_dir / "method.json"
    first = dataclasses.replace(cfg, valve="plain", max_steps=cfg.mixchain_steps or cfg.max_steps)
    steps = sft.SFTTrainer(first, ctx, examples=VALVES.get("plain")(examples, length)).total_steps()
    if meta.is_file() and json.loads(meta.read_text(encoding="utf-8")).get("step") == steps:
        return run.checkpoint_dir
    run.path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run.path / "config.json", {"phase": "plain direction for MixChain", **dataclasses.asdict(first)})
    phase = TrainContext(ctx.method, run, ctx.model, ctx.data, ctx.job, ctx.progress, resume=False)
    return sft.train(first, phase, adapter=adapter, examples=VALVES.get("plain")(examples, length))


def generate_chains(cfg, ctx, checkpoint: Path, examples, length) -> list[Example]:
    """Each question's chain at each alpha, kept where the model closed it itself and its answer is right."""
    from rzoo.harness import engines, models
    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation import knobs
    from rzoo.harness.generation import thinking as T

    from .cot_valve import mixchain

    task = getattr(ctx.data, "task", None)
    if task is None:
        raise ValueError(f"mixchain_alphas needs training data whose task can grade answers; {ctx.data.name!r} has "
                         "none: set mixchain_alphas=[] to train on the given chains")
    engine = engines.load(models.ResolvedModel(str(checkpoint), str(checkpoint), f"local:{checkpoint}"), "hf", cfg.dtype)
    questions = list(mixchain(examples, length).items())[:cfg.mixchain_questions]
    prompts = [T.build_prompt(engine.tokenizer, chains[0].messages) for _, chains in questions]
    budget = T.Budget(cfg.mixchain_budget, cfg.mixchain_answer_tokens)
    out = []
    for alpha in cfg.mixchain_alphas:
        knobs.apply(engine, "alpha", alpha)
        completions = G.generate(engine, prompts, budget, sampling=G.Sampling(batch_size=cfg.micro_batch_size),
                                 progress=ctx.progress)
        for (key, chains), c in zip(questions, completions, strict=True):
            problem = Problem(chains[0].id, key, gold_of(chains[0]))
            if keep_chain(c.thinking_end, task.score(problem, c.answer_text)):
                out.append(Example(f"{chains[0].id}-alpha{alpha:g}", chains[0].messages, c.thinking_text.strip(),
                                   c.answer_text.strip(), meta={**chains[0].meta, "question": key, "alpha": alpha}))
    return out


def self_mixchain(cfg, ctx, adapter, examples, length) -> tuple[list[Example], Path]:
    """(the given chains plus the model's correct ones, the direction to start the variant from)."""
    from rzoo.harness import distributed
    from rzoo.harness.runstore import atomic_write_jsonl, read_jsonl

    checkpoint = direction(cfg, ctx, adapter, examples, length)
    path = ctx.run.path / "mixchain" / "chains.jsonl"
    if not path.is_file() and distributed.rank_and_world()[0] == 0:
        rows = [dataclasses.asdict(e) for e in generate_chains(cfg, ctx, checkpoint, examples, length)]
        atomic_write_jsonl(path, rows)
        print(f"[cot_valve] MixChain: {len(rows)} chains written by the model at alpha "
              f"{', '.join(f'{a:g}' for a in cfg.mixchain_alphas)} ({path})", flush=True)
    distributed.barrier()
    return examples + [Example(**row) for row in read_jsonl(path)], checkpoint

"""Row compaction (`harness/engines/hf_decode.py`) against `generate` on the same rounds: wall time and whether
the tokens are the same, greedy or sampled (same seed), side by side in one process on a real model and task.

    .venv/bin/python bench/compaction.py --task math500 --limit 4 --samples 4 --temperature 0.7 --budget 96

Prints each repeat's wall time and thinking tokens, then `ratio compact/generate ... wall X` (the best
of the repeats for each). On a shared machine timings swing: compare the ratio of one run.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="math500")
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--budget", type=int, default=96)
    parser.add_argument("--answer-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    from rzoo import tasks
    from rzoo.harness.generation import forcing as G
    from rzoo.harness import models
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.engines.hf import HFEngine
    from rzoo.tasks.base import find_data_dir

    models.set_cpu_threads()
    engine = HFEngine(*models.load(models.resolve(args.model), dtype=args.dtype))
    task = tasks.get(args.task)
    problems = task.load(find_data_dir())[0][:args.limit]
    prompts = [T.build_prompt(engine.tokenizer, task.messages(p)) for p in problems]
    kw = dict(n=args.samples, sampling=G.Sampling(temperature=args.temperature, batch_size=args.batch_size), seed=1)
    times: dict[bool, list[float]] = {True: [], False: []}
    tokens: dict[bool, list] = {}
    for _ in range(args.repeats):
        for compact in (True, False):
            engine.compact = compact
            t = time.time()
            out = G.generate(engine, prompts, G.Budget(args.budget, answer_tokens=args.answer_tokens), **kw)
            times[compact].append(time.time() - t)
            tokens[compact] = [(c.completion_ids, c.answer_ids) for c in out]
            print(f"{'compact ' if compact else 'generate'} {times[compact][-1]:6.1f} s, thinking tokens "
                  f"{sum(c.thinking_tokens for c in out)}", flush=True)
    print(f"model={args.model} task={args.task} problems={len(prompts)} x {args.samples} samples, "
          f"T={args.temperature}, budget {args.budget} + {args.answer_tokens}, dtype={engine.dtype}")
    print(f"same tokens: {tokens[True] == tokens[False]}")
    kind = "sampled" if args.temperature > 0 else "greedy"
    print(f"ratio compact/generate {kind} wall {min(times[True]) / min(times[False]):.2f}")


if __name__ == "__main__":
    main()

"""What the HF backend's ways of writing answers cost, side by side in one process.

One evaluation-shaped generation (real task prompts, a thinking budget, short answers, greedy), run
three ways on the same model:

- `two rounds`: the thinking round, then one answer batch continuing its KV cache (what sampled rounds
  and Wait extensions still do);
- `in the round`: each row writes its answer as soon as its thinking stops, in the thinking round's own
  loop (`hf_compact.think_then_answer`, the greedy default);
- `+ head`: as above, with the LM head's product in the orientation measured faster here
  (`harness/engines/head_matmul.py`; not installed where it is not faster).

Prints wall seconds, generated tokens and whether the answers are identical, and `ratio` lines.

    .venv/bin/python bench/hf_rounds.py [--task math500] [--limit 8] [--budget 128] [--batch-size 8]
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="math500")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--budget", type=int, default=128)
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dtype", default="auto", help="auto: bf16 where measured faster here, else fp32")
    args = parser.parse_args()

    from rzoo import tasks
    from rzoo.harness.generation import forcing as G
    from rzoo.harness.engines import head_matmul
    from rzoo.harness import models
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.engines.hf import HFEngine
    from rzoo.tasks.base import find_data_dir

    models.set_cpu_threads()
    model, tok = models.load(models.resolve(args.model), dtype=args.dtype)
    task = tasks.get(args.task)
    problems = task.load(find_data_dir())[0][:args.limit]
    prompts = [T.build_prompt(tok, task.messages(p)) for p in problems]
    budget = G.Budget(args.budget, answer_tokens=args.answer_tokens)
    sampling = G.Sampling(batch_size=args.batch_size)

    results = {}
    for name, in_round, head in (("two rounds", False, False), ("in the round", True, False),
                                 ("in the round + head", True, True)):
        engine = HFEngine(model, tok)  # installs the head routing where measured faster
        speedup = engine.head_speedup
        if not head:
            head_matmul.uninstall(model)
        engine.answer_in_round = in_round
        t = time.perf_counter()
        rows = G.generate(engine, prompts, budget, sampling=sampling)
        seconds = time.perf_counter() - t
        head_matmul.uninstall(model)
        tokens = sum(sum(c.sampled_mask) for c in rows)
        results[name] = (seconds, [c.completion_ids for c in rows])
        note = f" (head routed: measured {speedup:.2f}x)" if head and speedup else (" (head not routed here)" if head else "")
        print(f"{name:22s} {seconds:7.1f} s  {tokens} generated tokens{note}", flush=True)

    base_s, base_ids = results["two rounds"]
    print(f"\n{args.task} x {len(prompts)}, budget {args.budget}+{args.answer_tokens}, batch {args.batch_size}, "
          f"dtype {str(model.dtype).removeprefix('torch.')}")
    for name in ("in the round", "in the round + head"):
        seconds, ids = results[name]
        same = sum(x == y for x, y in zip(ids, base_ids))
        print(f"{name}: identical completions {same}/{len(prompts)}")
    print(f"ratio in-round/two-rounds wall {results['in the round'][0] / base_s:.2f}")
    print(f"ratio in-round+head/two-rounds wall {results['in the round + head'][0] / base_s:.2f}")


if __name__ == "__main__":
    main()

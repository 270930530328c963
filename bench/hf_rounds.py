"""Where the HF backend's evaluation time goes, and what answering from the KV cache saves.

Runs one evaluation-shaped generation (real task prompts, thinking budget, short answers) twice in
one process: answers continuing the thinking round's KV cache (the default), and answers in a
separate round that re-reads prompt + thinking (what `max_waits` > 0 still does; forced here with
max_waits=1 and no minimum, which never inserts a Wait). Prints each generate round's rows, longest
prefix, new tokens and seconds, and the totals.

    .venv/bin/python bench/hf_rounds.py [--task math500] [--limit 32] [--budget 256] [--batch-size 32]
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="math500")
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()

    from rzoo import tasks
    from rzoo.harness import generation as G
    from rzoo.harness import models
    from rzoo.harness import thinking as T
    from rzoo.tasks.base import find_data_dir

    models.set_cpu_threads()
    model, tok = models.load(models.resolve(args.model), dtype=args.dtype)
    task = tasks.get(args.task)
    problems = task.load(find_data_dir())[0][:args.limit]
    prompts = [T.build_prompt(tok, task.messages(p)) for p in problems]

    original = G._round

    def timed(model, tokenizer, prefixes, limits, *rest, **kw):
        t = time.perf_counter()
        out = original(model, tokenizer, prefixes, limits, *rest, **kw)
        new = [len(ids) for ids, _ in out]
        print(f"  round: {len(prefixes)} rows, longest prefix {max(map(len, prefixes))}, new tokens "
              f"{sum(new)} (longest {max(new)}), {time.perf_counter() - t:.1f} s", flush=True)
        return out

    G._round = timed
    totals = {}
    for name, waits in (("answers from the KV cache", 0), ("answers re-read the prefix", 1)):
        print(f"{name}:")
        t = time.perf_counter()
        rows = G.generate(model, tok, prompts, max_thinking_tokens=args.budget, answer_tokens=args.answer_tokens,
                          max_waits=waits, sampling=G.Sampling(batch_size=args.batch_size))
        seconds = time.perf_counter() - t
        tokens = sum(sum(c.sampled_mask) for c in rows)
        totals[name] = (seconds, tokens, [c.answer_text for c in rows])
        print(f"  total {seconds:.1f} s, {tokens} generated tokens, {tokens / seconds:.1f} tok/s")
    (a, ta, xa), (b, tb, xb) = totals.values()
    same = sum(x == y for x, y in zip(xa, xb))
    print(f"\n{args.task} x {len(prompts)}, budget {args.budget}+{args.answer_tokens}, batch {args.batch_size}, "
          f"{args.dtype}: re-read {b:.1f} s -> from cache {a:.1f} s = {b / a:.2f}x faster; "
          f"identical answers {same}/{len(prompts)}")


if __name__ == "__main__":
    main()

"""What a budget sweep costs: one generation at the largest budget + short forced answers (written by
copies of a row inside the thinking round, greedy), against one max-budget run and against the naive
sweep (one full generation per budget), side by side in one process on the default model and a real
task; and whether the two sweeps agree under greedy decoding. `--two-rounds` also times both with the
answers in a second batch (the earlier path).

    .venv/bin/python bench/sweep_cost.py --task math500 --limit 16 --budgets 16,32,64,128,256,512

Prints wall times, the ratios (target: sweep <= 1.1x one max-budget run) and the agreement. On a
shared machine timings swing: compare the ratios of one run, not absolute seconds across runs.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="math500")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--budgets", default="16,32,64,128,256,512")
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="auto", help="auto: bf16 where measured faster here, else fp32")
    parser.add_argument("--two-rounds", action="store_true",
                        help="also time one run and the sweep with answers in a second batch (the path before "
                             "answers were written inside the thinking round), side by side")
    parser.add_argument("--skip-naive", action="store_true", help="skip the one-run-per-budget sweep")
    args = parser.parse_args()
    budgets = sorted(int(b) for b in args.budgets.split(","))

    from rzoo import tasks
    from rzoo.harness.generation import forcing as G
    from rzoo.harness import models
    from rzoo.harness.generation import thinking as T
    from rzoo.tasks.base import find_data_dir

    from rzoo.harness.engines.hf import HFEngine

    models.set_cpu_threads()
    engine = HFEngine(*models.load(models.resolve(args.model), dtype=args.dtype))
    tok = engine.tokenizer
    args.dtype = engine.dtype
    task = tasks.get(args.task)
    problems = task.load(find_data_dir())[0][:args.limit]
    prompts = [T.build_prompt(tok, task.messages(p)) for p in problems]
    kw = dict(sampling=G.Sampling(temperature=0.0, batch_size=args.batch_size))
    budget = lambda b: G.Budget(b, answer_tokens=args.answer_tokens)  # noqa: E731

    def one_and_sweep():
        """Seconds of one max-budget run, seconds of the sweep, the sweep's completions."""
        t = time.time()
        G.generate(engine, prompts, budget(budgets[-1]), **kw)
        one = time.time() - t
        t = time.time()
        sweep = G.sweep(engine, prompts, budget(budgets[-1]), budgets, **kw)
        return one, time.time() - t, sweep

    one, swept, sweep = one_and_sweep()
    if args.two_rounds:
        engine.answer_in_round = False
        one_two, swept_two, sweep_two = one_and_sweep()
        engine.answer_in_round = True
    naive = None
    if not args.skip_naive:
        t = time.time()
        naive = {b: G.generate(engine, prompts, budget(b), **kw) for b in budgets}
        separate = time.time() - t

    print(f"model={args.model} task={args.task} problems={len(prompts)} budgets={budgets} dtype={args.dtype}")
    print(f"one max-budget run   {one:8.1f} s")
    print(f"sweep (ours)         {swept:8.1f} s   = {swept / one:.2f}x one run")
    print(f"ratio sweep-{len(budgets)}-budgets/one-max-budget-run wall {swept / one:.2f}")
    if args.two_rounds:
        same = sum(x.completion_ids == y.completion_ids for b in budgets for x, y in zip(sweep[b], sweep_two[b]))
        print(f"two rounds: one run {one_two:8.1f} s, sweep {swept_two:8.1f} s = {swept_two / one_two:.2f}x its one run; "
              f"identical tokens {same}/{len(prompts) * len(budgets)}")
        print(f"ratio sweep-in-round/sweep-two-rounds wall {swept / swept_two:.2f}")
        print(f"ratio one-run-in-round/one-run-two-rounds wall {one / one_two:.2f}")
    if naive is None:
        return
    print(f"naive sweep          {separate:8.1f} s   = {separate / one:.2f}x one run, {separate / swept:.2f}x ours")
    for b in budgets:
        same_ids = sum(x.completion_ids == y.completion_ids for x, y in zip(sweep[b], naive[b]))
        same_answer = sum(x.answer_text == y.answer_text for x, y in zip(sweep[b], naive[b]))
        verdicts = sum(task.score(p, x.answer_text) == task.score(p, y.answer_text)
                       for p, x, y in zip(problems, sweep[b], naive[b]))
        print(f"budget {b:5d}: identical tokens {same_ids}/{len(prompts)}, identical answers "
              f"{same_answer}/{len(prompts)}, same verdicts {verdicts}/{len(prompts)}")


if __name__ == "__main__":
    main()

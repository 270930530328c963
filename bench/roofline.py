"""How close decoding gets to this machine's limit.

1. The limit: dense matmul FLOP/s on this CPU (torch, the threads this process has), fp32 and bf16.
2. The decode roofline for the model: every generated token costs ~2 x N FLOPs (N = matmul
   parameters, `harness/models/flops.py`), so tokens/s <= peak FLOP/s / (2 N) at any batch size.
3. Measured decode tokens/s at batch 1, 8, 32 (fixed prompt, exactly --new-tokens new tokens, greedy)
   for transformers' `generate` as is, for our HF generation round (greedy: our own decode loop with
   the per-row stop check, `harness/engines/hf_decode.py`, which is what evaluation runs) and, with --vllm,
   for vLLM; each as a fraction of the roofline.

    .venv/bin/python bench/roofline.py [--dtype auto|float32|bfloat16] [--batches 1,8,32] [--new-tokens 64]
    .venv-vllm/bin/python bench/roofline.py --vllm          # and vLLM, in its environment

Timings on a shared machine swing: the script runs everything side by side; quote ratios.
"""
from __future__ import annotations

import argparse
import time


def matmul_flops(dtype, n: int = 1024, seconds: float = 3.0) -> float:
    """Best sustained FLOP/s of an n x n @ n x n matmul over ~`seconds`."""
    import torch

    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best, end = 0.0, time.time() + seconds
    while time.time() < end:
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - t))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--dtype", default="auto", help="auto: bf16 where measured faster here, else fp32")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--vllm", action="store_true", help="also measure our vLLM engine (needs vLLM)")
    args = parser.parse_args()

    import torch
    from transformers import GenerationConfig

    from rzoo.harness.models import flops, precision
    from rzoo.harness import models
    from rzoo.harness.generation import forcing as G

    models.set_cpu_threads()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    peaks = {name: matmul_flops(dt) for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16))}
    for name, peak in peaks.items():
        print(f"matmul peak {name:9s} {peak / 1e9:7.1f} GFLOP/s")

    args.dtype = precision.resolve(args.dtype, "cuda" if torch.cuda.is_available() else "cpu")
    model, tok = models.load(models.resolve(args.model), dtype=args.dtype)
    shape = flops.shape_of(model)
    peak = peaks["bfloat16" if args.dtype == "bfloat16" else "float32"]
    roof = peak / (2 * shape.matmul_params)
    print(f"model {args.model}: N = {shape.matmul_params / 1e6:.1f}M matmul parameters, {args.dtype}; "
          f"decode roofline {roof:.0f} tokens/s (peak / 2N)")

    engine = None
    if args.vllm:
        from rzoo.harness.engines.vllm import VllmEngine

        engine = VllmEngine(models.resolve(args.model).path, tok, dtype=args.dtype)
    text = "The history of mathematics is a long story. " * 40
    prompt = tok.encode(text, add_special_tokens=False)[:args.prompt_tokens]
    from rzoo.harness.engines.hf import HFEngine

    ours_engine = HFEngine(model, tok)
    eos = sorted(ours_engine.eos_ids)
    ours_engine.eos_ids = set()  # our round below: no end-of-turn, every row runs the full length
    print(f"\n{'batch':>5} {'path':<28} {'tokens/s':>9} {'of roofline':>11}")
    for batch in (int(b) for b in args.batches.split(",")):
        ids = torch.tensor([prompt] * batch)
        config = GenerationConfig(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False,
                                  pad_token_id=tok.pad_token_id, eos_token_id=eos)
        with torch.no_grad():
            model.generate(input_ids=ids[:, :8], attention_mask=torch.ones_like(ids[:, :8]),
                           generation_config=GenerationConfig(max_new_tokens=2, do_sample=False,
                                                              pad_token_id=tok.pad_token_id))  # warm-up
            t = time.perf_counter()
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
            raw = batch * args.new_tokens / (time.perf_counter() - t)
        # our round: the same prompts; a stop text that never appears and no end-of-turn, so every row
        # runs the full length while the per-row stop check runs at every step
        t = time.perf_counter()
        chunks = ours_engine.rounds([prompt] * batch, [args.new_tokens] * batch, "\x00never\x00",
                                    G.Sampling(batch_size=batch))
        new = sum(len(out.ids) for chunk in chunks for out in chunk.outputs)  # counted: a row may end early
        ours = new / (time.perf_counter() - t)
        rates = [("transformers generate", raw), ("ours (HF round + stop check)", ours)]
        if engine is not None:  # vLLM: the same prompts, exactly new-tokens each, end-of-turn ignored
            from vllm import SamplingParams
            from vllm.inputs import TokensPrompt

            params = SamplingParams(max_tokens=args.new_tokens, min_tokens=args.new_tokens, ignore_eos=True,
                                    temperature=0.0)
            engine.llm.reset_prefix_cache()  # identical prompts: do not let the cache skip their prefill
            t = time.perf_counter()
            outs = engine.llm.generate([TokensPrompt(prompt_token_ids=prompt)] * batch, params, use_tqdm=False)
            rates.append(("vLLM", sum(len(o.outputs[0].token_ids) for o in outs) / (time.perf_counter() - t)))
        for name, rate in rates:
            print(f"{batch:>5} {name:<28} {rate:9.1f} {rate / roof:10.1%}")


if __name__ == "__main__":
    main()

"""One layer's attention with grouped key/value heads: transformers' copy of each key/value head to its
query heads (`repeat_kv`, what its sdpa path does under a mask) against torch's own grouped call
(`enable_gqa=True`, `harness/models/attention.py`), on the CPU, for decoding and for prefill-shaped chunks.

    .venv/bin/python bench/attention_gqa.py [--heads 9 --kv-heads 3 --head-dim 64 --batch 8]

Prints ms per call for each shape and `ratio gqa/copy <shape> wall X`. Defaults: SmolLM2-135M's heads.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", type=int, default=9)
    parser.add_argument("--kv-heads", type=int, default=3)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    B, H, KV, D = args.batch, args.heads, args.kv_heads, args.head_dim
    for cached, q in ((200, 1), (600, 1), (300, 64), (300, 300)):
        query, key, value = torch.randn(B, H, q, D), torch.randn(B, KV, cached, D), torch.randn(B, KV, cached, D)
        mask = torch.ones(B, 1, q, cached, dtype=torch.bool).tril(cached - q)
        mask[0, ..., :cached // 4] = False  # a left-padded row

        def copy():
            def rep(x):
                return x[:, :, None].expand(B, KV, H // KV, cached, D).reshape(B, H, cached, D)
            return F.scaled_dot_product_attention(query, rep(key), rep(value), attn_mask=mask)

        def grouped():
            return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, enable_gqa=True)

        assert torch.allclose(copy(), grouped(), atol=1e-5)
        n = max(3, 300 // q)
        best = {}
        for f in (copy, grouped, copy, grouped):
            t = time.perf_counter()
            for _ in range(n):
                f()
            best[f.__name__] = min(best.get(f.__name__, 1e9), (time.perf_counter() - t) / n * 1e3)
        shape = f"q{q}-k{cached}"
        print(f"{shape:10s} copy {best['copy']:7.3f} ms   grouped {best['grouped']:7.3f} ms")
        print(f"ratio gqa/copy {shape} wall {best['grouped'] / best['copy']:.2f}")


if __name__ == "__main__":
    main()

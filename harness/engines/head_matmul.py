"""The LM head's product on CPU, in whichever orientation is faster for decoding batches (measured).

A decoding step multiplies a few rows x (B, H) by the head's weight W (V, H), V ~ 49k for SmolLM2.
`linear` computes x @ W^T; on an AVX2 host with MKL it took 22 ms for B = 2 and 24 ms for B = 4, against
11 ms for W @ x^T (the same product, transposed), while for B = 1 both are one matrix-vector product
(9 ms). That head is a fifth of a 135M model's decoding step, and the B = 1 -> 2 jump in step time
(66 -> 101 ms at 100 cached tokens) was mostly it. Which orientation wins depends on the BLAS and the
CPU, so `install` times both on the model's own head and routes inputs of at most `max_rows` rows
through the transposed product only where it measured faster; longer inputs (prefill, training) keep
`linear`. Same arithmetic, another summation order: logits differ by float rounding (~1e-6 relative).
Because the choice is timed, it can differ between two runs on one machine; training rollouts therefore
keep `linear` (`HFEngine(..., fast_head=False)` in rl.py), so that a run repeats, and resumes, exactly.
"""
from __future__ import annotations

import time
import types


def _best_of(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def install(model, max_rows: int = 16, rows: int = 4, margin: float = 0.9) -> float | None:
    """Route the output head's small inputs through W @ x^T where that measured faster on this machine by
    at least 1 / `margin`, timing both at `rows` rows. Returns the measured speed ratio (linear time /
    transposed time) when installed, else None (not a CPU model, no plain linear head, or not faster). Measured
    once per head: later calls return the first answer."""
    import torch

    get = getattr(model, "get_output_embeddings", None)
    head = get() if get else None
    if not isinstance(head, torch.nn.Linear) or head.weight.device.type != "cpu":
        return None  # no plain linear head on CPU
    if "measured_speedup" in vars(head):  # measured before (an engine per RL step must not re-time it)
        return head.measured_speedup
    weight, bias = head.weight, head.bias
    x = torch.randn(rows, weight.shape[1], generator=torch.Generator().manual_seed(0)).to(weight.dtype)
    with torch.no_grad():
        plain = _best_of(lambda: torch.nn.functional.linear(x, weight, bias))
        turned = _best_of(lambda: torch.mm(weight, x.t()).t())
    head.measured_speedup = None
    if turned > margin * plain:
        return None
    head.measured_speedup = plain / turned
    head.decode_rows = max_rows
    head.forward = types.MethodType(_forward, head)  # a bound method: a deep copy of the model rebinds it
    return head.measured_speedup


def _forward(self, hidden):
    import torch

    if 1 < hidden.shape[:-1].numel() <= self.decode_rows:  # (..., H) -> (..., V)
        flat = hidden.reshape(-1, hidden.shape[-1])
        out = torch.mm(self.weight, flat.t()).t()
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*hidden.shape[:-1], out.shape[-1])
    return torch.nn.functional.linear(hidden, self.weight, self.bias)


def uninstall(model) -> None:
    """Back to the plain `linear` head (e.g. to time another library's generation on the same model)."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if get else None
    if head is not None and "forward" in vars(head):
        del head.forward
    if head is not None and "measured_speedup" in vars(head):
        del head.measured_speedup

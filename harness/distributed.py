"""The process group, when a launcher (`torchrun`, `accelerate launch`) started several processes.

Training gets its process group from accelerate (`Accelerator`); evaluation and the run store use these
helpers so that a single process (the usual case) needs no process group at all."""
from __future__ import annotations

import os


def launched() -> bool:
    """Started by a launcher with more than one process (WORLD_SIZE > 1)?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> None:
    """Join the launcher's process group (accelerate's state: gloo on CPU, NCCL on GPUs)."""
    if launched():
        import torch
        from accelerate import PartialState

        # cpu=True is what makes accelerate use gloo across CPU processes (MULTI_CPU); without it a CPU
        # torchrun would run N independent single-process jobs
        PartialState(cpu=not torch.cuda.is_available())


def rank_and_world() -> tuple[int, int]:
    if not launched():
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        init()
    return dist.get_rank(), dist.get_world_size()


def barrier() -> None:
    if launched():
        import torch.distributed as dist

        dist.barrier()


def shutdown() -> None:
    """Leave the process group once every rank is done. Without this, a rank that exits first tears down
    gloo's threads at interpreter exit ("terminate called without an active exception", SIGABRT), and the
    launcher then kills the others mid-save: a finished run reported as failed."""
    if launched():
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def broadcast(obj):
    """Rank 0's `obj` on every rank."""
    if not launched():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]

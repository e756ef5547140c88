"""Data-parallel training under PyTorch's own launcher: `torchrun --nproc_per_node N -m edgefit train ...`.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; `Dist.from_env` joins the process group (NCCL on GPUs, one
per local rank; gloo on CPUs). `--batch-size` stays the global batch: each rank takes batch/world images of
it through a DistributedSampler, and DistributedDataParallel averages the gradients, so a step on N ranks
is the step one process would take on the whole batch (tests/test_distributed.py checks the weights).
Batch-norm statistics are each rank's own in training mode (on CUDA they are synchronised with
SyncBatchNorm). Every decision that steers the loop (a diverged loss, validation top-1, early stop,
augmentation) is taken from reduced or rank-0 values shared with all ranks, so ranks never disagree;
only rank 0 logs and writes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import BadInput


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: a single process
    owned: bool = False  # this Dist joined the group (and leaves it in close)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls, device: str = "auto") -> Dist:
        """The process group torchrun describes in the environment (joined once), or a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch
        import torch.distributed as dist

        cuda = device != "cpu" and torch.cuda.is_available()
        if device == "cuda" and not cuda:
            raise BadInput("--device cuda but no CUDA device is available; use --device cpu")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if cuda else "gloo"
        if cuda:
            torch.cuda.set_device(local)
        owned = not dist.is_initialized()
        if owned:
            dist.init_process_group(backend=backend)
        return cls(dist.get_rank(), dist.get_world_size(), local, backend, owned)

    def device(self, requested):
        """This rank's device: its own GPU (LOCAL_RANK) under NCCL."""
        import torch

        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return requested

    def per_rank_batch(self, batch_size: int) -> int:
        if batch_size % self.world:
            raise BadInput(f"--batch-size {batch_size} does not split evenly over {self.world} processes; "
                           f"use a multiple of {self.world} (it is the global batch)")
        return batch_size // self.world

    def wrap(self, model):
        """DistributedDataParallel over the parameters that train now (call again when they change)."""
        if not self.on:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        if not any(p.requires_grad for p in model.parameters()):
            return model
        ids = [self.local_rank] if self.backend == "nccl" else None
        return DDP(model, device_ids=ids, broadcast_buffers=False)

    def sync_batchnorm(self, model):
        """Batch-norm statistics over the global batch where torch supports it (CUDA); unchanged on CPU."""
        import torch

        if self.backend == "nccl":
            return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def sum(self, values: list[float], device) -> list[float]:
        """Element-wise sums over the ranks."""
        if not self.on:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def all_ok(self, ok: bool, device) -> bool:
        """True only when every rank says so (a non-finite loss on one rank stops the step on all)."""
        return ok if not self.on else self.sum([0.0 if ok else 1.0], device)[0] == 0

    def share(self, obj):
        """Rank 0's value of `obj` on every rank."""
        if not self.on:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.on:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.on:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.on:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

"""Training on several processes (GPUs or CPU workers) started by torchrun or --gpus.

`torchrun --nproc_per_node=N train.py ...` sets RANK, WORLD_SIZE and LOCAL_RANK; each
process then trains on its slice of every global minibatch, and after each phase the
gradients are averaged with one all-reduce, so every process takes the same step (as in
NVlabs' loop: several phases per minibatch rule out DistributedDataParallel's
one-backward-per-step hooks). NCCL on GPUs, gloo on CPUs. Without torchrun everything here
is a no-op for a single process.
"""

import datetime
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from cstylegan.runtime.devices import pick_device
from cstylegan.runtime.errors import UserError

# A process that reaches the next collective first waits here for the others, e.g. while rank 0
# writes a snapshot to a slow disk; allow for long waits rather than kill days of training.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=4)


@dataclass
class Processes:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Only the main process writes logs, pictures and snapshots."""
        return self.rank == 0

    def share(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's slice of a global minibatch (the first dimension)."""
        size = batch.shape[0] // self.world
        return batch[self.rank * size : (self.rank + 1) * size]

    def all_finite(self, losses: torch.Tensor) -> torch.Tensor:
        """1.0 if every process's losses are finite, else 0.0, so that all skip or all step
        together; a 0-dim tensor left on the device (no wait for it)."""
        finite = torch.isfinite(losses).all().to(torch.float32)
        if self.world > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return finite

    def average_gradients(self, params) -> None:
        """Every gradient becomes its mean over the processes; one flat all-reduce."""
        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        for param, piece in zip(params, flat.split([g.numel() for g in grads])):
            param.grad = piece.view_as(param)

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of every process's `value`, on every process."""
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value)
        return value

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        return self.sum(value) / self.world if self.world > 1 else value

    def any(self, flag: bool, device) -> bool:
        """True on every process if it is True on any (e.g. a stop signal seen by one)."""
        if self.world == 1:
            return flag
        value = torch.tensor(float(flag), device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value)

    def shard(self, count: int) -> range:
        """This process's contiguous part of `count` items (e.g. the images a metric generates)."""
        per = -(-count // self.world)
        return range(min(count, self.rank * per), min(count, (self.rank + 1) * per))

    def gather_rows(self, rows: np.ndarray, count: int, device) -> np.ndarray:
        """Every process's `shard(count)` rows, joined in order, on every process."""
        if self.world == 1:
            return rows
        per = -(-count // self.world)
        padded = torch.zeros([per, *rows.shape[1:]], dtype=torch.from_numpy(rows).dtype, device=device)
        padded[: len(rows)] = torch.from_numpy(rows)
        pieces = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(pieces, padded)
        return torch.cat(pieces)[:count].cpu().numpy()

    def broadcast_modules(self, *modules) -> None:
        """Start every process from rank 0's weights and buffers."""
        if self.world > 1:
            for module in modules:
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor.data, src=0)


def start_processes(device_name: str) -> tuple:
    """(Processes, device): joins the torchrun group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world == 1:
        return Processes(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return Processes(rank, world), device


def in_started_processes(wanted: int) -> bool:
    """True inside processes that torchrun (or --gpus) started; refuses a --gpus that disagrees with them."""
    world = os.environ.get("WORLD_SIZE")
    if world is None:
        return False
    if int(world) != wanted:
        raise UserError(f"--gpus {wanted}, but torchrun started {world} processes; drop --gpus under torchrun")
    return True


def start_on_this_machine(processes: int, argv: list) -> int:
    """Run `argv` (this very command) in `processes` processes, as `torchrun --standalone
    --nproc_per_node N` would; return the exit code. Each process prints its own errors."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise UserError(f"--gpus {processes}, but this machine has {torch.cuda.device_count()} GPUs; "
                        f"give --gpus {torch.cuda.device_count()} or fewer")
    cpus = os.cpu_count() or 1
    if not torch.cuda.is_available() and processes > cpus:
        raise UserError(f"--gpus {processes} starts {processes} CPU processes, but this machine has {cpus} CPU "
                        f"cores and no GPU; give --gpus {cpus} or fewer")
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the children speak for themselves
    try:
        run(get_args_parser().parse_args(["--standalone", "--nproc_per_node", str(processes), *argv]))
    except ChildFailedError as error:
        return max((failure.exitcode for failure in error.failures.values()), default=1) or 1
    return 0


def stop_processes() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

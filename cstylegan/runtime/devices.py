"""Which device to run on, and how much memory a run has used there."""

import resource

import torch

from cstylegan.runtime.errors import UserError


class DeviceError(UserError):
    """A --device this machine does not have."""


def pick_device(name: str) -> torch.device:
    """`auto` is the first GPU when torch sees one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {name} asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def peak_memory_gb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

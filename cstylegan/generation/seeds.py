"""Seeds as NVlabs' tools read them, so that seed 7 means the same picture everywhere."""

import re

import numpy as np
import torch

from cstylegan.runtime.errors import UserError


MAX_SEED = 2**32 - 1  # numpy's RandomState takes seeds up to this
MAX_SEEDS = 1_000_000  # more images than this in one command is a typo, not a plan


def parse_seeds(text: str) -> list:
    """`0-63`, `1,5,9` or a mix such as `0-3,10` -> list of ints."""
    seeds = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise UserError(f"--seeds {text!r} is not a seed list; write e.g. 0-63 or 1,5,9")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last > MAX_SEED:
            raise UserError(f"--seeds {text!r}: seeds go up to {MAX_SEED} (2^32 - 1), as numpy's RandomState takes")
        if len(seeds) + last - first + 1 > MAX_SEEDS:
            raise UserError(f"--seeds {text!r} asks for more than {MAX_SEEDS:,} images; give a shorter range")
        seeds.extend(range(first, last + 1))
    return seeds


def z_from_seeds(seeds, z_dim: int, device="cpu") -> torch.Tensor:
    """[len(seeds), z_dim] float32: row i is np.random.RandomState(seeds[i]).randn(z_dim), the
    official mapping from seed to latent (NVlabs' generate.py), the one every tool here uses."""
    return torch.from_numpy(np.stack([np.random.RandomState(seed).randn(z_dim) for seed in seeds])).float().to(device)

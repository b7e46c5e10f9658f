"""Kernel Inception Distance: the unbiased MMD^2 estimate with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, over 100 random subsets of up to 1000 images each side, as
clean-fid computes it. The spread over subsets is kept, so a table can say how sure a KID is."""

import numpy as np

from cstylegan.metrics.errors import MetricError

NUM_SUBSETS = 100
MAX_SUBSET_SIZE = 1000


def kid_subsets(real, fake, seed: int = 0, num_subsets: int = NUM_SUBSETS, max_subset_size: int = MAX_SUBSET_SIZE):
    """The unbiased MMD^2 of each subset pair. Subsets are drawn as clean-fid draws them (fake
    subset, then real subset, from a generator seeded with `seed`), so the mean equals its KID."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if min(len(real), len(fake)) < 2:
        raise MetricError("KID needs at least 2 images on each side; generate or give more")
    dim, size = real.shape[1], min(len(real), len(fake), max_subset_size)
    rng = np.random.RandomState(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = fake[rng.choice(len(fake), size, replace=False)]
        y = real[rng.choice(len(real), size, replace=False)]
        within = (x @ x.T / dim + 1) ** 3 + (y @ y.T / dim + 1) ** 3
        across = (x @ y.T / dim + 1) ** 3
        values[i] = ((within.sum() - np.trace(within)) / (size - 1) - 2 * across.sum() / size) / size
    return values


def kid_from_features(real, fake, seed: int = 0) -> float:
    return float(kid_subsets(real, fake, seed).mean())


def kid_with_spread(real, fake, seed: int = 0) -> tuple:
    """(KID, standard deviation over the subsets)."""
    values = kid_subsets(real, fake, seed)
    return float(values.mean()), float(values.std())

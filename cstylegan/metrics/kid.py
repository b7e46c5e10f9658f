"""Kernel Inception Distance: clean-fid's unbiased MMD^2 estimate with the cubic polynomial
kernel, averaged over 100 random subsets of up to 1000 images each side."""

import numpy as np

from cstylegan.metrics.errors import MetricError


def kid_from_features(features1, features2, seed: int = 0) -> float:
    """clean-fid draws its subsets from numpy's global generator; we seed it and put it back.

    cleanfid.fid is imported here, not at the top: it pulls in torchvision (2 s), and only KID needs it.
    """
    from cleanfid.fid import kernel_distance

    if min(len(features1), len(features2)) < 2:
        raise MetricError("KID needs at least 2 images on each side; generate or give more")
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return float(kernel_distance(np.asarray(features1), np.asarray(features2)))
    finally:
        np.random.set_state(state)

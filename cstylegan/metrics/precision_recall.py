"""Improved precision and recall (Kynkäänniemi et al. 2019) with k = 3 nearest neighbours.

Each set's manifold is the union of balls around its points, of radius the distance to the
point's k-th nearest neighbour in the same set. Precision: the fraction of generated points
inside the real manifold (are fakes realistic?). Recall: the fraction of real points inside
the generated manifold (is the data's variety covered?).

The paper embeds images with VGG16; we use the same 2048-d Inception features as FID,
because no VGG16 weights can be had offline. Values are therefore not comparable to
numbers computed with VGG16 features (e.g. NVlabs' pr50k3).
"""

import numpy as np
import torch

from cstylegan.metrics.errors import MetricError

NEIGHBOURS = 3


def _radii(points: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point (k+1: a point is its own nearest)."""
    return torch.cat([torch.cdist(rows, points).kthvalue(k + 1, dim=1).values for rows in points.split(batch)])


def _inside(probes: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch: int) -> float:
    """Fraction of probes within the radius of at least one centre."""
    hits = [(torch.cdist(rows, centres) <= radii).any(dim=1) for rows in probes.split(batch)]
    return torch.cat(hits).float().mean().item()


def precision_recall(real, fake, k: int = NEIGHBOURS, batch: int = 1024) -> tuple:
    """(precision, recall) of fake features against real features."""
    if min(len(real), len(fake)) <= k:
        raise MetricError(f"precision/recall needs more than k={k} images on each side; generate or give more")
    real = torch.as_tensor(np.asarray(real), dtype=torch.float32)
    fake = torch.as_tensor(np.asarray(fake), dtype=torch.float32)
    precision = _inside(fake, real, _radii(real, k, batch), batch)
    recall = _inside(real, fake, _radii(fake, k, batch), batch)
    return precision, recall

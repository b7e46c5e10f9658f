"""Class consistency: does `--class ghibli_male` give Ghibli men? A linear classifier
(multinomial logistic regression) on the Inception features of the real images says which
class an image looks like; the metric is the fraction of class-k fakes it assigns to k.

Its accuracy on real images it was not trained on is reported beside it: a fake class
cannot be judged more reliably than the classifier tells real classes apart.
"""

import numpy as np
import torch

from cstylegan.metrics.errors import MetricError

HELDOUT = 0.2  # fraction of each class's real images kept out of training
WEIGHT_DECAY = 1e-3
STEPS = 100


class LinearProbe:
    """Standardised features -> class scores; calling it gives predicted class indices."""

    def __init__(self, mean, std, layer):
        self.mean, self.std, self.layer = mean, std, layer

    def __call__(self, features) -> np.ndarray:
        x = (torch.as_tensor(np.asarray(features), dtype=torch.float32) - self.mean) / self.std
        with torch.no_grad():
            return self.layer(x).argmax(dim=1).numpy()


def split_heldout(labels, seed: int = 0) -> tuple:
    """(train, heldout) indices, HELDOUT of each class held out (at least one image when a class has two)."""
    rng = np.random.default_rng(seed)
    train, heldout = [], []
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        count = max(1, round(HELDOUT * len(members))) if len(members) >= 2 else 0
        heldout.extend(members[:count])
        train.extend(members[count:])
    return np.sort(train), np.sort(heldout)


def fit_probe(features, labels, num_classes: int, seed: int = 0) -> tuple:
    """Train on most of the real images; return (probe, accuracy on the held-out rest)."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise MetricError("class_acc needs real images of at least two classes")
    train, heldout = split_heldout(labels, seed)
    x = torch.as_tensor(np.asarray(features)[train], dtype=torch.float32)
    y = torch.as_tensor(labels[train])
    mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    x = (x - mean) / std
    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], num_classes)
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=STEPS, line_search_fn="strong_wolfe")

    def loss_fn():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x), y) + WEIGHT_DECAY * layer.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(loss_fn)
    probe = LinearProbe(mean, std, layer.requires_grad_(False))
    accuracy = float((probe(np.asarray(features)[heldout]) == labels[heldout]).mean()) if len(heldout) else float("nan")
    return probe, accuracy


def class_agreement(probe: LinearProbe, features, class_index: int) -> float:
    """Fraction of images (meant to be of class `class_index`) that the probe assigns to it."""
    return float((probe(features) == class_index).mean())

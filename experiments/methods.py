"""Each method of a comparison as something that draws any class: (z, c) -> uint8 images.

The per-style baselines are several unconditional models, one per class; `PerClassModels`
routes each image to the model of its class, so every method is measured by the same
metric code, with the same seeds, as one conditional generator is.
"""

from dataclasses import dataclass
from typing import Callable

import torch

from cstylegan.metrics.compute import image_function
from cstylegan.snapshots.blend import blend_generators
from cstylegan.snapshots.checkpoint import generator_from, load_snapshot, open_for_inference


class ConditionalModel:
    """One conditional generator; `labels` (its LabelSpace) gives each class its label."""

    def __init__(self, G, labels=None):
        self.G, self.labels, self.z_dim, self.models = G, labels, G.z_dim, [G]
        self._draw = image_function(G)[0]

    @staticmethod
    def open(path, device) -> "ConditionalModel":
        opened = open_for_inference(path, device)
        return ConditionalModel(opened.G, opened.labels)

    def __call__(self, z, c):
        return self._draw(z, c)


class PerClassModels:
    """Class k's images come from models[k], an unconditional generator."""

    labels = None  # one-hot data classes

    def __init__(self, models: list):
        self.models, self.z_dim = models, models[0].z_dim
        self._draws = [image_function(G)[0] for G in models]

    def __call__(self, z, c):
        classes = c.argmax(dim=1)
        images = None
        for k in classes.unique().tolist():
            chosen = classes == k
            drawn = self._draws[k](z[chosen], torch.zeros([int(chosen.sum()), 0], device=z.device))
            if images is None:
                images = torch.empty([len(z), *drawn.shape[1:]], dtype=torch.uint8, device=z.device)
            images[chosen] = drawn
        return images


def parameter_count(method) -> int:
    """Generator parameters needed to draw every class (all per-class models together)."""
    return sum(p.numel() for G in method.models for p in G.parameters())


@dataclass
class Point:
    """One place on a method's FID curve: the total training kimg spent and how to build the method there."""

    kimg: float
    build: Callable  # device -> ConditionalModel or PerClassModels


def transfer_points(base: dict, finetunes: list) -> list:
    """Fine-tune snapshot j of every class together; x = base kimg + every fine-tune's kimg so far."""
    common = sorted(set.intersection(*({kimg for kimg, _ in run["snapshots"]} for run in finetunes)))

    def build(kimg):
        paths = [dict(run["snapshots"])[kimg] for run in finetunes]
        return lambda device: PerClassModels([open_for_inference(path, device).G for path in paths])

    return [Point(base["kimg"] + len(finetunes) * kimg, build(kimg)) for kimg in common]


def swap_point(base: dict, finetunes: list, split_res: int, lower: str) -> Point:
    """The final fine-tunes, each blended with the base: layers up to `split_res` from `lower`."""
    def build(device):
        base_snapshot = load_snapshot(base["snapshots"][-1][1])
        models = []
        for run in finetunes:
            tuned = load_snapshot(run["snapshots"][-1][1])
            pair = (base_snapshot, tuned) if lower == "base" else (tuned, base_snapshot)
            models.append(generator_from(blend_generators(*pair, split_res=split_res), device))
        return PerClassModels(models)

    return Point(base["kimg"] + sum(run["kimg"] for run in finetunes), build)


def conditional_points(run: dict) -> list:
    return [Point(kimg, lambda device, path=path: ConditionalModel.open(path, device))
            for kimg, path in run["snapshots"]]

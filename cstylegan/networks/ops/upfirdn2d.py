"""Upsample, pad, FIR-filter and downsample 2D images (the official `upfirdn2d` semantics).

For every channel, `upfirdn2d` does, in order:
  1. insert `up - 1` zeros after each pixel,
  2. pad with zeros (a negative amount crops), `padding` = int or [x0, x1, y0, y1],
  3. convolve with the filter, keeping only outputs whose footprint lies inside,
  4. keep every `down`-th pixel.
The filter is a true convolution kernel (flipped before the correlation that
F.conv2d computes) unless `flip_filter=True`. Filters are prepared by `setup_filter`;
a 1-D filter is separable and applied along x then y.

`upfirdn2d_reference` does exactly the four steps. `upfirdn2d_strided` gives the same
numbers without the wasted work: it never multiplies the inserted zeros (a strided
transposed convolution) and never computes the pixels step 4 throws away (a strided
convolution). `upfirdn2d` takes the strided path unless CSTYLEGAN_OPS=reference.
"""

from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .ops_switch import use_fast

Padding = Union[int, Sequence[int]]


def parse_padding(padding: Padding) -> Tuple[int, int, int, int]:
    """Return padding as (x0, x1, y0, y1) from an int, [x, y] or [x0, x1, y0, y1]."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) != 4:
        raise ValueError(f"padding must have 1, 2 or 4 entries, got {padding}")
    return tuple(padding)


def filter_size(f) -> Tuple[int, int]:
    """(width, height) of a prepared filter; None is the 1x1 identity."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def setup_filter(f, normalize: bool = True, flip_filter: bool = False, gain: float = 1,
                 separable=None, device=None) -> torch.Tensor:
    """Turn a list / array / tensor of taps into a float32 filter for `upfirdn2d`.

    A 1-D filter stays 1-D (separable) when it has 8 or more taps, else becomes its
    outer product; `normalize` makes it sum to 1 so a constant image stays constant.
    `gain` scales the whole 2-D response, i.e. each separable factor by sqrt(gain).
    """
    f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"filter must be 1-D or 2-D and non-empty, got shape {tuple(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("a 2-D filter cannot be made separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device) if device is not None else f


def _as_pair(v) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def upfirdn2d(x: torch.Tensor, f, up=1, down=1, padding: Padding = 0,
              flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch of images [N, C, H, W] (see module doc).

    `up` / `down` are an int or (x, y); `gain` scales the filter by gain**(f.ndim/2).
    """
    run = upfirdn2d_strided if use_fast() else upfirdn2d_reference
    return run(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


def _arguments(x: torch.Tensor, f, up, down, padding) -> tuple:
    """(filter, (upx, upy), (downx, downy), (px0, px1, py0, py1)), checked; None is the identity."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if f.requires_grad:
        raise ValueError("upfirdn2d filters are constants and must not require grad")
    return f, _as_pair(up), _as_pair(down), parse_padding(padding)


def upfirdn2d_reference(x: torch.Tensor, f, up=1, down=1, padding: Padding = 0,
                        flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """The four steps of the module doc, literally."""
    f, (upx, upy), (downx, downy), (px0, px1, py0, py1) = _arguments(x, f, up, down, padding)
    n, c, h, w = x.shape

    # 1. Zero-stuffing: put each pixel in the corner of an up x up cell of zeros.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # 2. Zero padding, then cropping for negative amounts.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    fw, fh = filter_size(f)
    if x.shape[3] < fw or x.shape[2] < fh:
        raise ValueError("padded image is smaller than the filter")

    # 3. Depthwise filtering; flip so that F.conv2d's correlation becomes a convolution.
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].expand(c, 1, fh, fw), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].expand(c, 1, 1, fw), groups=c)
        x = F.conv2d(x, f[None, None, :, None].expand(c, 1, fw, 1), groups=c)

    # 4. Decimation.
    return x[:, :, ::downy, ::downx]


def upfirdn2d_strided(x: torch.Tensor, f, up=1, down=1, padding: Padding = 0,
                      flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """The same result as `upfirdn2d_reference`, computing only the pixels that are kept."""
    f, (upx, upy), (downx, downy), (px0, px1, py0, py1) = _arguments(x, f, up, down, padding)
    fw, fh = filter_size(f)
    if x.shape[3] * upx + px0 + px1 < fw or x.shape[2] * upy + py0 + py1 < fh:
        raise ValueError("padded image is smaller than the filter")
    # A true convolution kernel: the reference correlates with the flipped filter.
    kernel = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    kernel = kernel.flip(list(range(f.ndim))) if flip_filter else kernel
    if f.ndim == 2:
        return _fir_pass(x, kernel, (upy, upx), (downy, downx), (py0, py1, px0, px1))
    x = _fir_pass(x, kernel[None, :], (1, upx), (1, downx), (0, 0, px0, px1))
    return _fir_pass(x, kernel[:, None], (upy, 1), (downy, 1), (py0, py1, 0, 0))


def _pad(x: torch.Tensor, pad: list) -> torch.Tensor:
    """F.pad, without its copy when there is nothing to pad."""
    return x if not any(pad) else F.pad(x, pad)


def _fir_pass(x: torch.Tensor, kernel: torch.Tensor, up: tuple, down: tuple, pad: tuple) -> torch.Tensor:
    """One upfirdn2d with a 2-D true-convolution `kernel` [kh, kw]; up/down (y, x), pad (y0, y1, x0, x1)."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    (upy, upx), (downy, downx), (py0, py1, px0, px1) = up, down, pad
    if upx == upy == 1:
        weight = kernel.flip([0, 1])[None, None].expand(c, 1, kh, kw)
        if py0 == py1 >= 0 and px0 == px1 >= 0:  # the convolution pads by itself, without a padded copy
            return F.conv2d(x, weight, stride=(downy, downx), padding=(py0, px0), groups=c)
        x = _pad(x, [px0, px1, py0, py1])  # negative amounts crop, as in the reference
        return F.conv2d(x, weight, stride=(downy, downx), groups=c)
    # A strided transposed convolution is the full convolution of the zero-stuffed input
    # without multiplying the zeros (it lacks the last up - 1 rows / columns, which are zero).
    y = F.conv_transpose2d(x, kernel[None, None].expand(c, 1, kh, kw), stride=(upy, upx), groups=c)
    # y is the full convolution of the zero-stuffed input; the reference's output i is y[i + k - 1 - pad0].
    out_h, out_w = h * upy + py0 + py1 - kh + 1, w * upx + px0 + px1 - kw + 1
    y0, x0 = kh - 1 - py0, kw - 1 - px0
    y = _pad(y, [max(-x0, 0), max(x0 + out_w - y.shape[3], 0), max(-y0, 0), max(y0 + out_h - y.shape[2], 0)])
    y0, x0 = max(y0, 0), max(x0, 0)
    return y[:, :, y0 : y0 + out_h : downy, x0 : x0 + out_w : downx]


def filter2d(x: torch.Tensor, f, padding: Padding = 0, flip_filter: bool = False,
             gain: float = 1) -> torch.Tensor:
    """Filter images, padded so the output has the input's size (plus `padding`)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)


def upsample2d(x: torch.Tensor, f, up=2, padding: Padding = 0, flip_filter: bool = False,
               gain: float = 1) -> torch.Tensor:
    """Upsample by `up` with filter `f`; output is exactly `up` times the input size.

    The extra gain up_x*up_y restores the energy lost to the inserted zeros.
    """
    upx, upy = _as_pair(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2,
           py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x: torch.Tensor, f, down=2, padding: Padding = 0, flip_filter: bool = False,
                 gain: float = 1) -> torch.Tensor:
    """Low-pass filter with `f` and downsample by `down`; output is input size / down."""
    downx, downy = _as_pair(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2,
           py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain)

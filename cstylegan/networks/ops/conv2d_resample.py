"""2D convolution fused with FIR up/downsampling, as StyleGAN's resampling layers use it.

Mathematically the result is always: upsample by zero-stuffing (scaled by up**2), pad
once, filter with `f`, convolve with `w`, filter with `f` and keep every `down`-th
pixel. The code picks a cheaper but equivalent order where one exists (strided
convolution for down=2, transposed strided convolution for up=2, 1x1 convolutions
applied at the lower resolution).
"""

import torch
import torch.nn.functional as F

from .upfirdn2d import Padding, filter_size, parse_padding, upfirdn2d


def _conv(x, w, stride=1, padding=(0, 0), groups=1, transpose=False, flip_weight=True):
    """F.conv2d / F.conv_transpose2d; flip_weight=False flips w to get a true convolution."""
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f=None, up: int = 1, down: int = 1,
                    padding: Padding = 0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """Convolve [N, C, H, W] with w [O, C/groups, kh, kw], resampling with filter `f`.

    padding is relative to the upsampled image (int, [x, y] or [x0, x1, y0, y1]).
    flip_weight=True is correlation (what F.conv2d does), False a true convolution.
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError("x and w must be 4-D")
    if up < 1 or down < 1 or groups < 1:
        raise ValueError("up, down and groups must be >= 1")
    out_ch, in_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)

    # Extra padding so the filter footprint fits exactly around the resampled image.
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    pad = [px0, px1, py0, py1]

    # A 1x1 kernel commutes with resampling: run it at the low resolution.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)

    # Downsampling: filter, then a strided convolution skips the discarded pixels.
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: a strided transposed convolution does zero-stuffing and the
    # convolution at once; the filter then runs on its output.
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_ch // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        # Cropping that both sides need is done by the transposed conv's own padding.
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        # conv_transpose2d already is a true convolution, hence the inverted flip.
        x = _conv(x, w, stride=up, padding=(pyt, pxt), groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt],
                      gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    # No resampling: F.conv2d's symmetric padding suffices when it is non-negative.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=pad)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)

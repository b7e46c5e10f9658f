"""ADA: the differentiable augmentation pipeline of Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data".

Both real and generated images pass through the same random augmentations before D.
Every op is applied to each image independently with probability `multiplier * p`;
`p` is a buffer that the training loop adapts (see docs/augment.md). Because R1 takes
the gradient of D(augment(x)) with respect to x and then back-propagates through that
gradient, every step below is differentiable twice with respect to the images.

Order of the stages, as in the paper:
  1. geometry   one 3x3 matrix per image (flip, 90-degree turns, integer shift, scale,
                rotation, anisotropic scale, fractional shift); executed once by
                reflect padding, 2x upsampling, `grid_sample` and downsampling
  2. colour     one 4x4 matrix per image (brightness, contrast, luma flip, hue, saturation)
  3. filtering  per-image gains of 4 frequency bands
  4. corruption additive RGB noise, cutout
Images are NCHW in [-1, 1], RGB or grey.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from cstylegan.networks.ops.upfirdn2d import downsample2d, setup_filter, upsample2d

__all__ = ["AugmentPipe", "AUGPIPE_PRESETS", "OP_NAMES", "augment_pipe", "reflect_pad"]

# The ops in the order they act; each is a probability multiplier of AugmentPipe.
OP_NAMES = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
            "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")

# Low-pass filters of two Daubechies symlets (orthogonal wavelets), as published.
SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
_FILTER = dict(imgfilter=1)
_NOISE = dict(noise=1)
_CUTOUT = dict(cutout=1)

# NVlabs' --augpipe choices: which probability multipliers are switched on (to 1).
AUGPIPE_PRESETS = {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": _COLOR,
    "filter": _FILTER,
    "noise": _NOISE,
    "cutout": _CUTOUT,
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, **_FILTER},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE, **_CUTOUT},
}

# Relative power of the 4 filter bands in a typical image (a 1/f spectrum); gains are
# normalised against it so that amplifying one band does not change the overall energy.
_BAND_POWER = [10 / 13, 1 / 13, 1 / 13, 1 / 13]


def augment_pipe(name: str, **overrides) -> "AugmentPipe":
    """The pipe of a preset name ('bgc', ...); keyword arguments change its settings."""
    if name not in AUGPIPE_PRESETS:
        raise ValueError(f"unknown augment pipe {name!r}; choose one of {', '.join(AUGPIPE_PRESETS)}")
    return AugmentPipe(**{**AUGPIPE_PRESETS[name], **overrides})


# ---- small helpers ---------------------------------------------------------------------


def _matrices(rows, like: torch.Tensor) -> torch.Tensor:
    """A batch of matrices [N, R, C] from rows of numbers and/or per-image tensors [N]."""
    entries = [torch.as_tensor(e, dtype=like.dtype, device=like.device).expand(like.shape)
               for row in rows for e in row]
    return torch.stack(entries, dim=-1).reshape(*like.shape, len(rows), len(rows[0]))


def _translate2d(tx, ty):
    return _matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _scale2d(sx, sy):
    return _matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate2d(theta):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrices([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def _translate3d(t):
    return _matrices([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def _scale3d(s):
    return _matrices([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


def _rotate3d(axis, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by `theta` [N] around the unit vector `axis` (x, y, z) (Rodrigues), as homogeneous 4x4."""
    x, y, z = axis
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    return _matrices([
        [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
        [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
        [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
        [0, 0, 0, 1],
    ], theta)


def _gate(value: torch.Tensor, identity: float, probability: torch.Tensor) -> torch.Tensor:
    """Keep each image's `value` with `probability`, otherwise use the no-op value."""
    keep = torch.rand(value.shape[:1], device=value.device) < probability
    keep = keep.reshape([-1] + [1] * (value.ndim - 1))
    return torch.where(keep, value, torch.full_like(value, identity))


def _mirror_indices(size: int, before: int, after: int, device) -> torch.Tensor:
    """Source index of each pixel of a mirror-extended (edge pixel not repeated) line."""
    index = torch.arange(-before, size + after, device=device)
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index < size, index, period - index)


def reflect_pad(x: torch.Tensor, pad) -> torch.Tensor:
    """`F.pad(x, pad, mode='reflect')` for NCHW, also when a pad is as large as the image
    (the mirror image is then repeated), which small test images and the 43-tap filter need."""
    x0, x1, y0, y1 = (int(p) for p in pad)
    height, width = x.shape[-2:]
    if max(x0, x1) < width and max(y0, y1) < height:
        return F.pad(x, [x0, x1, y0, y1], mode="reflect")
    x = x.index_select(-1, _mirror_indices(width, x0, x1, x.device))
    return x.index_select(-2, _mirror_indices(height, y0, y1, x.device))


def _filter_bank(lowpass, num_bands: int = 4) -> np.ndarray:
    """Zero-phase filters [num_bands, taps] that split an image into octaves, lowest first.

    |H(z)|^2/2 and |H(-z)|^2/2 of an orthogonal wavelet sum to an all-pass, so each step
    splits the current low band into a half-band high part and a low part; zero-stuffing
    the earlier rows moves them one octave down. The rows therefore sum to a unit impulse.
    """
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bands = [np.ones(1)]
    for _ in range(num_bands - 1):
        stuffed = []
        for row in bands:
            up = np.zeros(2 * row.size - 1)
            up[::2] = row
            stuffed.append(np.convolve(up, lo2))
        margin = (stuffed[0].size - hi2.size) // 2
        bands = stuffed + [np.pad(hi2, margin)]
    return np.stack(bands)


# ---- the pipe ---------------------------------------------------------------------------


class AugmentPipe(torch.nn.Module):
    """The ADA pipeline; every op is off (multiplier 0) unless switched on.

    Names and defaults are NVlabs', so their pickles' settings and buffers (`p`, `Hz_geom`,
    `Hz_fbank`) load by name. Multipliers scale `p` per op; `*_std` are standard deviations
    (log2 for the scalings, relative to the image size for translations), `*_max` ranges
    (1 = a full circle, or for xint the largest shift as a fraction of the image size).
    """

    def __init__(self,
                 xflip=0, rotate90=0, xint=0, xint_max=0.125,
                 scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,
                 brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,
                 imgfilter=0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1,
                 noise=0, cutout=0, noise_std=0.1, cutout_size=0.5):
        settings = {name: value for name, value in locals().items() if name not in ("self", "__class__")}
        super().__init__()
        for name, value in settings.items():  # plain attributes, as in NVlabs' pipe
            setattr(self, name, [float(v) for v in value] if name == "imgfilter_bands" else float(value))
        self.register_buffer("p", torch.ones([]))  # overall probability, set by the training loop
        if len(self.imgfilter_bands) != len(_BAND_POWER):
            raise ValueError(f"imgfilter_bands needs {len(_BAND_POWER)} entries, got {self.imgfilter_bands}")
        # An orthogonal low-pass: upsampling with it and downsampling with its mirror image is
        # an exact identity, so an image the warp leaves in place comes back unchanged.
        self.register_buffer("Hz_geom", setup_filter(SYM6))
        self.register_buffer("Hz_fbank", torch.as_tensor(_filter_bank(SYM2), dtype=torch.float32))

    def extra_repr(self) -> str:
        on = [name for name in OP_NAMES if getattr(self, name) > 0]
        return f"ops={','.join(on) or 'none'}, p={float(self.p):.4f}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Augment a batch [N, C, H, W] (C = 1 or 3); with p = 0 the input itself is returned."""
        if images.ndim != 4:
            raise ValueError(f"expected images [N, C, H, W], got shape {tuple(images.shape)}")
        if float(self.p) <= 0:
            return images
        images = self._geometry(images)
        images = self._colour(images)
        if self.imgfilter > 0:
            images = self._filter(images)
        return self._corrupt(images)

    # ---- 1. geometry ------------------------------------------------------------------

    def _geometry_matrix(self, n: int, height: int, width: int, like: torch.Tensor):
        """G_inv [N, 3, 3]: output pixel -> input pixel, centred coordinates; None if no op is on.

        Ops are drawn in the order they act on the image. Each contributes its inverse
        (flip, -angle, -shift, 1/scale) on the right, so the first op is undone last.
        """
        device, dtype = like.device, like.dtype
        p = self.p.to(device)
        inverses = []

        def uniform(*shape):  # in [-1, 1)
            return torch.rand(shape, device=device, dtype=dtype) * 2 - 1

        def normal(*shape):
            return torch.randn(shape, device=device, dtype=dtype)

        if self.xflip > 0:
            flip = _gate(torch.floor(torch.rand(n, device=device, dtype=dtype) * 2), 0, self.xflip * p)
            inverses.append(_scale2d(1 - 2 * flip, torch.ones_like(flip)))
        if self.rotate90 > 0:
            quarter = _gate(torch.floor(torch.rand(n, device=device, dtype=dtype) * 4), 0, self.rotate90 * p)
            inverses.append(_rotate2d(math.pi / 2 * quarter))
        if self.xint > 0:
            shift = _gate(uniform(n, 2) * self.xint_max, 0, self.xint * p)
            inverses.append(_translate2d(-torch.round(shift[:, 0] * width), -torch.round(shift[:, 1] * height)))
        if self.scale > 0:
            s = _gate(torch.exp2(normal(n) * self.scale_std), 1, self.scale * p)
            inverses.append(_scale2d(1 / s, 1 / s))
        # Rotation is drawn twice, around the anisotropic scaling (so that the scaling axis
        # varies too); each half has the probability that makes "either one" equal rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))
        if self.rotate > 0:
            inverses.append(_rotate2d(_gate(uniform(n) * math.pi * self.rotate_max, 0, p_rot)))
        if self.aniso > 0:
            s = _gate(torch.exp2(normal(n) * self.aniso_std), 1, self.aniso * p)
            inverses.append(_scale2d(1 / s, s))
        if self.rotate > 0:
            inverses.append(_rotate2d(_gate(uniform(n) * math.pi * self.rotate_max, 0, p_rot)))
        if self.xfrac > 0:
            shift = _gate(normal(n, 2) * self.xfrac_std, 0, self.xfrac * p)
            inverses.append(_translate2d(-shift[:, 0] * width, -shift[:, 1] * height))
        if not inverses:
            return None
        g_inv = inverses[0]
        for inverse in inverses[1:]:
            g_inv = g_inv @ inverse
        return g_inv

    def _geometry(self, images: torch.Tensor) -> torch.Tensor:
        n, c, height, width = images.shape
        g_inv = self._geometry_matrix(n, height, width, images)
        if g_inv is None:
            return images
        device, dtype = images.device, images.dtype
        pad = self.Hz_geom.shape[0] // 4  # filter reach in input pixels, per side

        # Where the corners of the output come from: pad the input enough (mirroring) that
        # the warp, plus the filter's reach, reads no pixel outside it.
        cx, cy = (width - 1) / 2, (height - 1) / 2
        corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=device, dtype=dtype)
        source = (g_inv @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, N * 4]
        reach = torch.cat([-source, source]).amax(dim=1)  # [left, top, right, bottom]
        reach = reach + torch.tensor([2 * pad - cx, 2 * pad - cy] * 2, device=device, dtype=dtype)
        limit = torch.tensor([width - 1, height - 1] * 2, device=device, dtype=dtype)
        mx0, my0, mx1, my1 = reach.clamp(min=0).minimum(limit).ceil().int().tolist()
        images = reflect_pad(images, [mx0, mx1, my0, my1])
        g_inv = _translate2d(*_like(g_inv, (mx0 - mx1) / 2, (my0 - my1) / 2)) @ g_inv

        # Work at twice the resolution, so that bilinear sampling of the smooth upsampled
        # image approximates band-limited interpolation. Sample k of the 2x image lies on
        # input pixel k / 2, half a 2x pixel off a centred grid: hence the 0.5 shifts.
        images = upsample2d(images, self.Hz_geom, up=2)
        g_inv = (_translate2d(*_like(g_inv, -0.5, -0.5)) @ _scale2d(*_like(g_inv, 2, 2)) @ g_inv
                 @ _scale2d(*_like(g_inv, 0.5, 0.5)) @ _translate2d(*_like(g_inv, 0.5, 0.5)))

        # Sample the output (with a margin the downsampling filter eats) in grid_sample's
        # normalised coordinates, where -1 and 1 are the outer edges of the image.
        out_h, out_w = (height + 2 * pad) * 2, (width + 2 * pad) * 2
        to_norm = _scale2d(*_like(g_inv, 2 / images.shape[3], 2 / images.shape[2]))
        from_norm = _scale2d(*_like(g_inv, out_w / 2, out_h / 2))
        theta = (to_norm @ g_inv @ from_norm)[:, :2, :]
        grid = F.affine_grid(theta, [n, c, out_h, out_w], align_corners=False)
        # Native grid_sample is twice differentiable in PyTorch 2.x (tests/test_augment.py checks
        # it), so R1 through this op needs no custom autograd function.
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return downsample2d(images, self.Hz_geom, down=2, padding=-2 * pad, flip_filter=True)

    # ---- 2. colour --------------------------------------------------------------------

    def _colour_matrix(self, n: int, channels: int, like: torch.Tensor):
        """C [N, 4, 4] acting on homogeneous (r, g, b, 1); None if no colour op is on."""
        device, dtype = like.device, like.dtype
        p = self.p.to(device)
        eye = torch.eye(4, device=device, dtype=dtype)
        luma = torch.tensor([1, 1, 1, 0], device=device, dtype=dtype) / math.sqrt(3)
        on_luma = torch.outer(luma, luma)  # projection onto the grey axis
        colour = None

        def normal():
            return torch.randn(n, device=device, dtype=dtype)

        def uniform():  # in [0, 1)
            return torch.rand(n, device=device, dtype=dtype)

        def then(m):
            nonlocal colour
            colour = m if colour is None else m @ colour

        if self.brightness > 0:
            b = _gate(normal() * self.brightness_std, 0, self.brightness * p)
            then(_translate3d(b))
        if self.contrast > 0:
            s = _gate(torch.exp2(normal() * self.contrast_std), 1, self.contrast * p)
            then(_scale3d(s))
        if self.lumaflip > 0:
            # Householder reflection: negates the grey component, keeps the chroma.
            flip = _gate(torch.floor(uniform() * 2), 0, self.lumaflip * p)
            then(eye - 2 * on_luma * flip[:, None, None])
        if self.hue > 0 and channels > 1:
            theta = _gate((uniform() * 2 - 1) * math.pi * self.hue_max, 0, self.hue * p)
            then(_rotate3d([1 / math.sqrt(3)] * 3, theta))
        if self.saturation > 0 and channels > 1:
            s = _gate(torch.exp2(normal() * self.saturation_std), 1, self.saturation * p)
            then(on_luma + (eye - on_luma) * s[:, None, None])
        return colour

    def _colour(self, images: torch.Tensor) -> torch.Tensor:
        n, c, height, width = images.shape
        colour = self._colour_matrix(n, c, images)
        if colour is None:
            return images
        flat = images.reshape(n, c, height * width)
        if c == 3:
            flat = colour[:, :3, :3] @ flat + colour[:, :3, 3:]
        elif c == 1:
            # A grey image is (v, v, v): apply the matrix and average the three outputs.
            grey = colour[:, :3, :].mean(dim=1, keepdim=True)
            flat = flat * grey[:, :, :3].sum(dim=2, keepdim=True) + grey[:, :, 3:]
        else:
            raise ValueError(f"colour augmentations need RGB or grey images, got {c} channels")
        return flat.reshape(n, c, height, width)

    # ---- 3. filtering -----------------------------------------------------------------

    def _filter(self, images: torch.Tensor) -> torch.Tensor:
        """Amplify or attenuate each frequency band by a random log-normal gain per image."""
        n, c, height, width = images.shape
        device, dtype = images.device, images.dtype
        p = self.p.to(device)
        power = torch.tensor(_BAND_POWER, device=device, dtype=dtype)
        bands = len(_BAND_POWER)
        gains = torch.ones(n, bands, device=device, dtype=dtype)
        for band, strength in enumerate(self.imgfilter_bands):
            boost = _gate(torch.exp2(torch.randn(n, device=device, dtype=dtype) * self.imgfilter_std), 1,
                          self.imgfilter * p * strength)
            step = torch.ones(n, bands, device=device, dtype=dtype)
            step[:, band] = boost
            gains = gains * step / (power * step.square()).sum(dim=1, keepdim=True).sqrt()

        # One separable filter per image: the bands' filters weighted by the gains.
        taps = gains @ self.Hz_fbank.to(dtype)  # [N, taps]
        weight = taps.repeat_interleave(c, dim=0)[:, None, None, :]  # [N*C, 1, 1, taps]
        reach = self.Hz_fbank.shape[1] // 2
        x = reflect_pad(images.reshape(1, n * c, height, width), [reach] * 4)
        x = F.conv2d(x, weight, groups=n * c)
        x = F.conv2d(x, weight.transpose(2, 3), groups=n * c)
        return x.reshape(n, c, height, width)

    # ---- 4. corruptions ---------------------------------------------------------------

    def _corrupt(self, images: torch.Tensor) -> torch.Tensor:
        n, c, height, width = images.shape
        device, dtype = images.device, images.dtype
        p = self.p.to(device)
        if self.noise > 0:
            sigma = _gate(torch.randn(n, 1, 1, 1, device=device, dtype=dtype).abs() * self.noise_std, 0, self.noise * p)
            images = images + torch.randn_like(images) * sigma
        if self.cutout > 0:
            # Zero a size x size square (relative to the image) around a uniform centre,
            # clipped by the image border.
            size = _gate(torch.full([n, 1, 1], self.cutout_size, device=device, dtype=dtype), 0, self.cutout * p)
            centre = torch.rand(n, 2, 1, 1, device=device, dtype=dtype)
            xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
            ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
            outside_x = (xs[None, None, :] - centre[:, 0]).abs() >= size / 2
            outside_y = (ys[None, :, None] - centre[:, 1]).abs() >= size / 2
            images = images * (outside_x | outside_y).to(dtype)[:, None]
        return images


def _like(ref: torch.Tensor, *values):
    """Per-image tensors [N] filled with constants, on ref's device and dtype."""
    return [torch.full(ref.shape[:1], float(v), device=ref.device, dtype=ref.dtype) for v in values]


"""EQ-T, EQ-T frac and EQ-R: how exactly a StyleGAN3 picture follows its moved input grid, in dB.

The StyleGAN3 paper's definitions (its appendix E): draw w and render the picture twice, once
as it is and once with the input grid translated or rotated through the generator's
`synthesis.input.transform`. Apply the same translation or rotation to the first picture as
an image operation, and take the PSNR between the two over the pixels both define. The peak
is 2, since images span [-1, 1]. Each transform is drawn at random: translations up to
1/8 of the width on each axis, rotations by any angle.

- Integer translation moves pixels.
- Fractional translation resamples with a Lanczos kernel (a = 3).
- Rotation resamples through a band-limited filter on a 4x finer grid. The re-rendered
  picture gets the same band limit without being rotated (the "pseudo-rotation"), so that
  both keep only the frequencies a rotation can keep.

As in NVlabs' code, one transform serves a batch of 4 latents. One PSNR comes from the
squared errors summed over all samples. StyleGAN2 has a learned constant input and no grid
to move; NVlabs' code refuses it, and so does ours.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from cstylegan.generation.seeds import z_from_seeds
from cstylegan.metrics.errors import MetricError
from cstylegan.networks.ops.upfirdn2d import filter2d, upsample2d
from cstylegan.networks.stylegan3 import make_transform

EQUIVARIANCE_METRICS = ("eqt_int", "eqt_frac", "eqr")
LATENTS_PER_TRANSFORM = 4  # NVlabs' batch: one random transform per 4 latents
MAX_TRANSLATION = 0.125  # of the image width, on each axis
LANCZOS_A = 3
UPSAMPLING = 4  # the finer grid a rotation resamples on


def lanczos(x: torch.Tensor, a: int) -> torch.Tensor:
    """The Lanczos window of half-width `a`: sinc(x / a) inside, 0 outside."""
    return torch.where(x.abs() < a, torch.sinc(x / a), torch.zeros_like(x))


def shift_whole_pixels(x: torch.Tensor, dx: int, dy: int) -> tuple:
    """(x moved dx pixels right and dy down, mask of the pixels that came from inside x)."""
    height, width = x.shape[-2:]
    moved, mask = torch.zeros_like(x), torch.zeros_like(x)
    if abs(dx) < width and abs(dy) < height:
        rows_to, cols_to = slice(max(dy, 0), height + min(dy, 0)), slice(max(dx, 0), width + min(dx, 0))
        rows_from, cols_from = slice(max(-dy, 0), height + min(-dy, 0)), slice(max(-dx, 0), width + min(-dx, 0))
        moved[..., rows_to, cols_to] = x[..., rows_from, cols_from]
        mask[..., rows_to, cols_to] = 1
    return moved, mask


def shift_fractional(x: torch.Tensor, dx: float, dy: float, a: int = LANCZOS_A) -> tuple:
    """(x moved by dx, dy pixels of any size, mask). Each output pixel is 2a input pixels per
    axis weighted by the Lanczos-windowed sinc; the mask keeps the pixels whose taps all lie
    inside x."""
    moved = _shift_along(_shift_along(x, dx, a, horizontal=True), dy, a, horizontal=False)
    height, width = x.shape[-2:]
    mask = torch.zeros_like(x)
    whole_x, whole_y = math.floor(dx), math.floor(dy)
    mask[..., max(whole_y + a, 0) : height + min(whole_y - a + 1, 0), max(whole_x + a, 0) : width + min(whole_x - a + 1, 0)] = 1
    return moved, mask


def _shift_along(x: torch.Tensor, shift: float, a: int, horizontal: bool) -> torch.Tensor:
    """x moved `shift` pixels along one axis: sum over taps k of L(k - fraction) x moved floor(shift) + k."""
    whole = math.floor(shift)
    taps = torch.arange(-(a - 1), a + 1, dtype=torch.float64)
    weights = torch.sinc(taps - (shift - whole)) * lanczos(taps - (shift - whole), a)
    moved = torch.zeros_like(x)
    for k, weight in zip(taps.long().tolist(), (weights / weights.sum()).tolist()):
        step = whole + k
        moved += weight * shift_whole_pixels(x, *((step, 0) if horizontal else (0, step)))[0]
    return moved


def _circular_convolution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifftn(torch.fft.fftn(a) * torch.fft.fftn(b)).real


def bandlimit_filter(matrix: torch.Tensor, up: int, a: int = LANCZOS_A, support: int = 2 * LANCZOS_A,
                     extent: int = 64) -> torch.Tensor:
    """A 2-D FIR filter on a grid `up` times finer than the pixels, keeping the frequencies below
    Nyquist both in the image and after the linear map `matrix` (2x2): an axis-aligned sinc
    convolved with the mapped one, windowed by the same convolution of Lanczos windows. It is
    built on a periodic grid of +-`extent` pixels (wide, so the wrap-around is negligible), cut
    to +-`support` pixels, and each of its up x up phases sums to 1 / up^2. Odd size."""
    n = 2 * extent * up - 1
    offsets = ((torch.arange(n) + 1) / up - extent).roll(1 - extent * up)  # 0 first, as the FFT wants
    y_in, x_in = torch.meshgrid(offsets, offsets, indexing="ij")
    x_out, y_out = (torch.stack([x_in, y_in], dim=2) @ matrix[:2, :2].t().float()).unbind(2)
    sincs = _circular_convolution(torch.sinc(x_in) * torch.sinc(y_in), torch.sinc(x_out) * torch.sinc(y_out))
    windows = _circular_convolution(lanczos(x_in, a) * lanczos(y_in, a), lanczos(x_out, a) * lanczos(y_out, a))
    f = (sincs * windows).roll([extent * up - 1] * 2, dims=[0, 1])  # centred again
    cut = (extent - support) * up
    f = F.pad(f[cut:-cut, cut:-cut], [0, 1, 0, 1]).reshape(2 * support, up, 2 * support, up)
    f = f / f.sum(dim=[0, 2], keepdim=True) / up**2
    return f.reshape(2 * support * up, 2 * support * up)[:-1, :-1]


def rotate_bandlimited(x: torch.Tensor, matrix: torch.Tensor) -> tuple:
    """(x resampled as the input transform `matrix` (3x3, output -> input coordinates in units of
    the image width, see stylegan3.make_transform) moves a picture, mask of the defined pixels).
    The image is upsampled 4x through bandlimit_filter, then read bilinearly at the moved positions."""
    height, width = x.shape[-2:]
    f = bandlimit_filter(torch.linalg.inv(matrix), up=UPSAMPLING).to(x.device)
    pad = f.shape[0] // 2
    fine = upsample2d(x, f, up=UPSAMPLING, padding=pad)
    theta = matrix.clone().float()
    theta[:2, 2] *= 2  # affine_grid's coordinates span [-1, 1]: twice the image width
    theta[0, 2] += 1 / UPSAMPLING / width  # the odd filter puts the fine grid half a fine pixel off
    theta[1, 2] += 1 / UPSAMPLING / height
    theta[0] *= width / (width + 2 * pad / UPSAMPLING)  # the fine image is wider by its padding
    theta[1] *= height / (height + 2 * pad / UPSAMPLING)
    grid = F.affine_grid(theta[:2].unsqueeze(0).repeat(x.shape[0], 1, 1).to(x.device), list(x.shape),
                         align_corners=False)
    rotated = F.grid_sample(fine, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    defined = torch.zeros_like(fine)
    edge = 2 * pad + 1
    defined[:, :, edge:-edge, edge:-edge] = 1
    mask = F.grid_sample(defined, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return rotated, mask


def pseudo_rotate(x: torch.Tensor, matrix: torch.Tensor) -> tuple:
    """(x filtered to the band a rotation by `matrix` keeps, but not moved; mask without the filter's border)."""
    f = bandlimit_filter(matrix, up=1).to(x.device)
    filtered = filter2d(x, f)
    mask = torch.zeros_like(filtered)
    edge = f.shape[0] // 2
    mask[:, :, edge:-edge, edge:-edge] = 1
    return filtered, mask


def _translation(rng: np.random.Generator) -> tuple:
    return tuple(rng.uniform(-MAX_TRANSLATION, MAX_TRANSLATION, size=2))


def move_grid(G, translate=(0.0, 0.0), rotate_deg: float = 0.0) -> torch.Tensor:
    """Set G's input transform so that its picture moves by `translate` (image widths) and turns
    by `rotate_deg`; returns that transform (the inverse of the picture's motion, 3x3 float64)."""
    matrix = torch.from_numpy(np.linalg.inv(make_transform(translate, rotate_deg)))
    G.synthesis.input.transform.copy_(matrix)
    return matrix


def _compare_integer_shift(G, ws, picture, rng) -> tuple:
    size = picture.shape[-1]
    tx, ty = (round(t * size) / size for t in _translation(rng))
    move_grid(G, translate=(tx, ty))
    moved, mask = shift_whole_pixels(picture, round(tx * size), round(ty * size))
    return G.synthesis(ws, noise_mode="const"), moved, mask


def _compare_fractional_shift(G, ws, picture, rng) -> tuple:
    tx, ty = _translation(rng)
    move_grid(G, translate=(tx, ty))
    moved, mask = shift_fractional(picture, tx * picture.shape[-1], ty * picture.shape[-2])
    return G.synthesis(ws, noise_mode="const"), moved, mask


def _compare_rotation(G, ws, picture, rng) -> tuple:
    matrix = move_grid(G, rotate_deg=math.degrees(rng.uniform(-math.pi, math.pi)))
    rotated, rotated_mask = rotate_bandlimited(picture, matrix)
    rendered, rendered_mask = pseudo_rotate(G.synthesis(ws, noise_mode="const"), matrix)
    return rendered, rotated, rotated_mask * rendered_mask


COMPARISONS = {"eqt_int": _compare_integer_shift, "eqt_frac": _compare_fractional_shift, "eqr": _compare_rotation}


def psnr(squared_error_sum: float, count: float) -> float:
    """dB, with a peak-to-peak of 2 (images in [-1, 1]); infinite for pictures that agree exactly."""
    if squared_error_sum == 0:
        return math.inf
    return 20 * math.log10(2) - 10 * math.log10(squared_error_sum / count)


def check_transformable(G) -> None:
    """One line unless G can move its input grid (a StyleGAN3 generator)."""
    if not hasattr(getattr(getattr(G, "synthesis", None), "input", None), "transform"):
        raise MetricError(f"{', '.join(EQUIVARIANCE_METRICS)} need a StyleGAN3 generator, whose input grid can be "
                          "moved (synthesis.input.transform); StyleGAN2 starts from a learned constant, and NVlabs' "
                          "code refuses it too")


@torch.no_grad()
def equivariance(G, names, num_gen: int, class_vectors: torch.Tensor, classes: np.ndarray, seed: int = 0,
                 device="cpu", processes=None, progress=None) -> dict:
    """{name: PSNR in dB} for `names` among EQUIVARIANCE_METRICS, from `num_gen` latents: latent i
    has seed `seed + i` and the label row classes[i] of class_vectors. Each group of
    LATENTS_PER_TRANSFORM latents gets its own random transforms, drawn from (seed, group), so
    the result does not depend on how many processes share the work."""
    check_transformable(G)
    groups = range(-(-num_gen // LATENTS_PER_TRANSFORM))
    mine = groups if processes is None else [groups[i] for i in processes.shard(len(groups))]
    sums = torch.zeros([len(names), 2], dtype=torch.float64, device=device)
    try:
        for group in (progress(mine) if progress else mine):
            numbers = range(group * LATENTS_PER_TRANSFORM, min(num_gen, (group + 1) * LATENTS_PER_TRANSFORM))
            c = class_vectors[torch.as_tensor(classes[numbers.start : numbers.stop])].to(device)
            ws = G.mapping(z_from_seeds([seed + i for i in numbers], G.z_dim, device), c)
            move_grid(G)
            picture = G.synthesis(ws, noise_mode="const")
            rng = np.random.default_rng([seed, group])
            for row, name in enumerate(names):
                rendered, reference, mask = COMPARISONS[name](G, ws, picture, rng)
                sums[row, 0] += ((rendered - reference).square() * mask).double().sum()
                sums[row, 1] += mask.double().sum()
    finally:
        move_grid(G)
    if processes is not None:
        sums = processes.sum(sums)
    return {name: psnr(float(error), float(count)) for name, (error, count) in zip(names, sums.cpu())}

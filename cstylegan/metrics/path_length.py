"""Perceptual path length (the StyleGAN papers): how much the picture changes per small step of the latent.

NVlabs' recipe, 'end' sampling: for each pair of latents, a step of epsilon = 1e-4 from the
first toward the second (a straight line in w, a great circle in z), the squared
perceptual distance between the two pictures divided by epsilon^2, and the mean of those
values between their 1st and 99th percentiles. `ppl_zend` crops the picture's centre
first (a face crop on FFHQ); `ppl2_wend` does not. Their distance is LPIPS on VGG16, whose
weights no installable package ships: lpips' wheel holds only its linear heads and fetches
VGG16 from torchvision's servers. Ours is the Inception-feature distance of
feature_distance.py, so the metrics are named `ppl2_wend_inception` / `ppl_zend_inception`
(`ppl_w_inception` / `ppl_z_inception` with --num-gen): compare them with each other,
never with a published PPL.
"""

import numpy as np
import torch

from cstylegan.generation.seeds import z_from_seeds
from cstylegan.metrics.feature_distance import InceptionFeatures, feature_distance

PATH_LENGTH_METRICS = {"ppl_w_inception": ("w", False), "ppl_z_inception": ("z", True)}  # space, centre crop
EPSILON = 1e-4
MAX_SIDE = 256  # larger pictures are average-pooled to this, as NVlabs do before VGG16


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The point a fraction t along the great circle from a's direction to b's, on the unit sphere."""
    a, b = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    towards = b - cos * a
    towards = towards / towards.norm(dim=-1, keepdim=True)
    angle = t * torch.acos(cos)
    point = a * torch.cos(angle) + towards * torch.sin(angle)
    return point / point.norm(dim=-1, keepdim=True)


def centre_crop(pictures: torch.Tensor) -> torch.Tensor:
    """NVlabs' crop for ppl_zend: rows 3/8 to 7/8 and columns 2/8 to 6/8 of the picture."""
    eighth = pictures.shape[-1] // 8
    return pictures[:, :, 3 * eighth : 7 * eighth, 2 * eighth : 6 * eighth]


def step_distances(G, z0, z1, c, space: str, crop: bool, distance) -> torch.Tensor:
    """distance(picture at the first latent, picture a step EPSILON toward the second) / EPSILON^2, per pair."""
    if space == "w":
        w0, w1 = G.mapping(torch.cat([z0, z1]), torch.cat([c, c])).chunk(2)
        ws = torch.cat([w0, w0.lerp(w1, EPSILON)])
    else:
        ws = G.mapping(torch.cat([slerp(z0, z1, 0.0), slerp(z0, z1, EPSILON)]), torch.cat([c, c]))
    pictures = G.synthesis(ws, noise_mode="const")
    if crop:
        pictures = centre_crop(pictures)
    factor = pictures.shape[-1] // MAX_SIDE
    if factor > 1:
        pictures = torch.nn.functional.avg_pool2d(pictures, factor)
    start, stepped = pictures.float().chunk(2)
    return distance(start, stepped) / EPSILON**2


def mean_without_outliers(values: np.ndarray) -> float:
    """The mean of the values between the 1st and 99th percentiles (NVlabs' lower / higher ones)."""
    low, high = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    return float(values[(values >= low) & (values <= high)].mean())


@torch.no_grad()
def path_length(G, names, num_gen: int, class_vectors: torch.Tensor, classes: np.ndarray, seed: int = 0,
                device="cpu", processes=None, progress=None, distance=None, batch: int = 8) -> dict:
    """{name: PPL} for `names` among PATH_LENGTH_METRICS, from `num_gen` pairs: pair i has seeds
    seed + 2i and seed + 2i + 1 and the label row classes[i]. `distance(a, b)` -> one value per
    picture pair; the Inception-feature distance by default."""
    if distance is None:
        inception = InceptionFeatures(device)
        distance = lambda a, b: feature_distance(inception(a), inception(b))  # noqa: E731
    pairs = range(num_gen) if processes is None else processes.shard(num_gen)
    results = {}
    for name in names:
        space, crop = PATH_LENGTH_METRICS[name]
        values = []
        starts = range(pairs.start, pairs.stop, batch)
        for start in (progress(starts) if progress else starts):
            numbers = range(start, min(pairs.stop, start + batch))
            z0 = z_from_seeds([seed + 2 * i for i in numbers], G.z_dim, device)
            z1 = z_from_seeds([seed + 2 * i + 1 for i in numbers], G.z_dim, device)
            c = class_vectors[torch.as_tensor(classes[numbers.start : numbers.stop])].to(device)
            values.append(step_distances(G, z0, z1, c, space, crop, distance).double().cpu().numpy())
        mine = np.concatenate(values) if values else np.zeros(0)
        if processes is not None:
            mine = processes.gather_rows(mine, num_gen, device)
        results[name] = mean_without_outliers(mine)
    return results

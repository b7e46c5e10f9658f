"""Find the w whose image looks like a given picture (a user's face), as NVlabs' projector does.

Their recipe, kept here with its constants: start at the average w (of the class, for a
conditional network), add noise to w that fades out over the first 3/4 of the run, let
Adam's learning rate ramp up over the first 5 % and down along a cosine over the last
25 %, and optimise the network's constant noise maps too, with a penalty on their
autocorrelation at every scale (weight 1e5) so that the noise cannot paint the picture
in on its own. After every step the noise maps are renormalised to zero mean, unit variance.
What differs: the distance (see perceptual.py: no VGG can be downloaded), and an option
to optimise one w per layer (w+), which reconstructs more closely and edits less cleanly.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cstylegan.data.image_prep import center_crop, load_rgb
from cstylegan.projection.perceptual import PerceptualDistance

W_AVG_SAMPLES = 10000
INITIAL_LEARNING_RATE = 0.1
INITIAL_NOISE_FACTOR = 0.05
LR_RAMPDOWN_LENGTH = 0.25
LR_RAMPUP_LENGTH = 0.05
NOISE_RAMP_LENGTH = 0.75
REGULARIZE_NOISE_WEIGHT = 1e5


@dataclass
class Projection:
    """ws [1, num_ws, w_dim] at the end and its picture in [-1, 1]; per step, the distance and the
    ws [steps, num_ws, w_dim] (for a progress strip or video)."""
    ws: torch.Tensor
    image: torch.Tensor
    distances: list
    history: torch.Tensor


def load_target(image, resolution: int) -> torch.Tensor:
    """A PIL image or a file -> [1, 3, R, R] in [-1, 1]: the centred square, resized to the network's size."""
    if not hasattr(image, "convert"):
        image = load_rgb(image)
    pixels = np.asarray(center_crop(image.convert("RGB"), resolution), dtype=np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1


def w_statistics(G, class_index=None, samples: int = W_AVG_SAMPLES, seed: int = 123, class_vectors=None) -> tuple:
    """(mean w [1, w_dim], scalar spread) of `samples` random z, in one class or across all classes.

    class_vectors [classes, c_dim] holds each class's label (default: one-hot classes)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn([samples, G.z_dim], generator=generator)
    c = torch.zeros([samples, G.c_dim])
    if G.c_dim:
        vectors = torch.eye(G.c_dim) if class_vectors is None else torch.as_tensor(class_vectors, dtype=torch.float32)
        labels = (torch.full([samples], class_index) if class_index is not None
                  else torch.randint(len(vectors), [samples], generator=generator))
        c = vectors[labels]
    device = G.mapping.w_avg.device
    with torch.no_grad():
        w = G.mapping(z.to(device), c.to(device))[:, 0].float()
    mean = w.mean(dim=0, keepdim=True)
    return mean, ((w - mean).square().sum() / samples).sqrt().item()


def noise_maps(G) -> list:
    """The synthesis network's constant noise buffers (StyleGAN2; StyleGAN3 has none)."""
    return [buffer for name, buffer in G.synthesis.named_buffers() if name.endswith("noise_const")]


def noise_penalty(maps: list) -> torch.Tensor:
    """Squared autocorrelation of each map with itself shifted by one pixel, at every scale down to 8 px."""
    penalty = 0.0
    for noise in maps:
        noise = noise[None, None]
        while True:
            penalty = penalty + (noise * torch.roll(noise, shifts=1, dims=3)).mean().square()
            penalty = penalty + (noise * torch.roll(noise, shifts=1, dims=2)).mean().square()
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return penalty


def learning_rate(step: int, steps: int) -> float:
    """Ramp up over the first LR_RAMPUP_LENGTH, cosine down over the last LR_RAMPDOWN_LENGTH."""
    t = step / steps
    ramp = min(1.0, (1.0 - t) / LR_RAMPDOWN_LENGTH)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return INITIAL_LEARNING_RATE * ramp * min(1.0, t / LR_RAMPUP_LENGTH)


def project(G, target: torch.Tensor, *, steps: int = 500, class_index=None, distance=None, w_plus: bool = False,
            optimize_noise: bool = True, on_step=None, seed: int = 0, class_vectors=None) -> Projection:
    """Optimise w (or w+) so that G draws `target` ([1, 3, R, R] in [-1, 1]).

    distance(images, targets) -> [N] (default: pixel MSE); on_step(step, distance) after each
    step. G's noise buffers are optimised in place when optimize_noise and restored at the end:
    the returned image was drawn with the optimised noise, as NVlabs' proj.png is.
    """
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if target.shape[-2:] != (G.img_resolution, G.img_resolution):
        raise ValueError(f"target is {tuple(target.shape[-2:])}, the network draws {G.img_resolution} px")
    distance = distance or PerceptualDistance()
    device = G.mapping.w_avg.device
    target = target.to(device)
    torch.manual_seed(seed)
    w_avg, w_std = w_statistics(G, class_index, class_vectors=class_vectors)
    w_opt = w_avg.to(device).unsqueeze(1).repeat(1, G.num_ws if w_plus else 1, 1).requires_grad_(True)
    maps = noise_maps(G) if optimize_noise else []
    originals = [noise.clone() for noise in maps]
    for noise in maps:
        noise.normal_().requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *maps], betas=(0.9, 0.999), lr=INITIAL_LEARNING_RATE)

    distances, history = [], []
    try:
        for step in range(steps):
            t = step / steps
            noise_scale = w_std * INITIAL_NOISE_FACTOR * max(0.0, 1.0 - t / NOISE_RAMP_LENGTH) ** 2
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, steps)
            ws = (w_opt + torch.randn_like(w_opt) * noise_scale).expand(1, G.num_ws, -1)
            image = G.synthesis(ws, noise_mode="const")
            image_distance = distance(image, target).sum()
            loss = image_distance + noise_penalty(maps) * REGULARIZE_NOISE_WEIGHT
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for noise in maps:
                    noise -= noise.mean()
                    noise *= noise.square().mean().rsqrt()
            distances.append(image_distance.item())
            history.append(w_opt.detach()[0].expand(G.num_ws, -1).cpu().clone())
            if on_step is not None:
                on_step(step, distances[-1])
        ws = w_opt.detach().expand(1, G.num_ws, -1).clone()
        with torch.no_grad():
            image = G.synthesis(ws, noise_mode="const")
    finally:
        with torch.no_grad():
            for noise, original in zip(maps, originals):
                noise.requires_grad_(False).copy_(original)
    return Projection(ws=ws, image=image, distances=distances, history=torch.stack(history))

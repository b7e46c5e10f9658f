"""How each conditional StyleGAN3 model's picture follows its moved input grid, as a picture.

The StyleGAN3 paper shows equivariance in videos: the same latent under slow sub-pixel
translation and rotation. Here one seed of the first class is drawn with the input grid
moved by a sweep of sub-pixel shifts and small turns (the top row of a model's strip). Below
each frame is its difference from the first frame moved by the same amount as an image,
4x brighter, black where the moved first frame is undefined (the metric's mask). A model
that is equivariant shows dark differences. StyleGAN2 has no input grid to move.
"""

import numpy as np
import torch

from cstylegan.generation.image_grid import make_grid
from cstylegan.generation.seeds import z_from_seeds
from cstylegan.metrics.equivariance import move_grid, rotate_bandlimited, shift_fractional

SHIFTS_PX = (0.25, 0.5, 0.75, 1.0)
TURNS_DEG = (2.0, 4.0, 8.0)
DIFFERENCE_GAIN = 4
TILE_SCALE = 4  # 32 px frames shown at 128 px


def motion_labels() -> list:
    return ["unmoved", *(f"{px:g} px right" for px in SHIFTS_PX), *(f"{deg:g} deg" for deg in TURNS_DEG)]


@torch.no_grad()
def motion_tiles(G, seed: int, class_vector: torch.Tensor, device) -> np.ndarray:
    """[2 x frames, H, W, C] uint8: the moved frames, then each one's amplified difference."""
    ws = G.mapping(z_from_seeds([seed], G.z_dim, device), class_vector.to(device)[None])
    size = G.img_resolution
    try:
        move_grid(G)
        first = G.synthesis(ws, noise_mode="const")
        frames, differences = [first], [torch.zeros_like(first)]
        for px in SHIFTS_PX:
            move_grid(G, translate=(px / size, 0.0))
            frame = G.synthesis(ws, noise_mode="const")
            moved, mask = shift_fractional(first, px, 0.0)
            frames.append(frame)
            differences.append((frame - moved).abs() * mask)
        for deg in TURNS_DEG:
            matrix = move_grid(G, rotate_deg=deg)
            frame = G.synthesis(ws, noise_mode="const")
            turned, mask = rotate_bandlimited(first, matrix)
            frames.append(frame)
            differences.append((frame - turned).abs() * mask)
    finally:
        move_grid(G)
    pictures = torch.cat([(torch.cat(frames) * 127.5 + 128), torch.cat(differences) * 127.5 * DIFFERENCE_GAIN])
    pictures = pictures.clamp(0, 255).repeat_interleave(TILE_SCALE, 2).repeat_interleave(TILE_SCALE, 3)
    return pictures.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def motion_strip(G, name: str, seed: int, class_vector: torch.Tensor, device):
    """One model's strip (a PIL image): frames above, differences below, labelled."""
    tiles = motion_tiles(G, seed, class_vector, device)
    return make_grid(tiles, len(motion_labels()), row_labels=[f"{name}: frames", f"{name}: difference x4"],
                     column_labels=motion_labels())

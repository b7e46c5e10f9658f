"""Style mixing (Karras et al. 2019, fig. 3): one seed's ws with some layers taken from another's.

Which ws are "coarse", "middle" or "fine" follows the paper: the ws that act at 4-8 px
(pose, face shape), 16-32 px (features, hair style) and 64 px and up (colour, texture).
A w's resolution is read off the network, so the groups fit any size:

- StyleGAN2: w i drives the conv of block 4 * 2**(i // 2) and that block's to-RGB (the
  to-RGB w is shared with the next block's first conv), so ws 2k and 2k+1 belong to
  4 * 2**k px; at 1024 px coarse is 0-3, middle 4-7, fine 8-17.
- StyleGAN3 has no blocks: w 0 drives the Fourier input, w i+1 layer L{i}, and a w's
  resolution is twice the cutoff frequency of what it modulates, rounded to a power of two.
"""

import math
import re

import numpy as np
import torch

from cstylegan.runtime.errors import UserError

GROUPS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, math.inf)}


def w_resolutions(G) -> list:
    """The image resolution (px) whose detail each of G's ws controls, one per w."""
    synthesis = G.synthesis
    if hasattr(synthesis, "input"):  # StyleGAN3
        cutoffs = [synthesis.input.bandwidth] + [getattr(synthesis, n).in_cutoff for n in synthesis.layer_names]
        return [2 ** round(math.log2(2 * c)) for c in cutoffs]
    return [4 * 2 ** (i // 2) for i in range(G.num_ws)]


def parse_styles(text: str, G) -> range:
    """`coarse`, `middle`, `fine` or an index range `A-B` / `A` -> the w indices to mix in."""
    last = G.num_ws - 1
    resolutions = w_resolutions(G)
    if text in GROUPS:
        low, high = GROUPS[text]
        indices = [i for i, r in enumerate(resolutions) if low <= r <= high]
        if not indices:
            raise UserError(f"--styles {text}: this {G.img_resolution} px network has no ws at "
                             f"{describe_group(low, high)}; its ws 0-{last} act at {ladder(resolutions)}")
        return range(indices[0], indices[-1] + 1)
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", text.strip())
    if match:
        first, end = int(match.group(1)), int(match.group(2) or match.group(1))
        if first <= end <= last:
            return range(first, end + 1)
    raise UserError(f"--styles {text!r} is not coarse, middle, fine or a w range A-B within 0-{last} "
                     f"(this network has {G.num_ws} ws)")


def describe_group(low, high) -> str:
    return f"{low} px and up" if high == math.inf else f"{low}-{high} px"


def ladder(resolutions) -> str:
    """`0-1: 4 px, 2-3: 8 px, ...`: which ws act at which resolution, for error messages."""
    spans = []
    for i, r in enumerate(resolutions):
        if spans and spans[-1][2] == r:
            spans[-1][1] = i
        else:
            spans.append([i, i, r])
    return ", ".join(f"{a}-{b}: {r} px" if a != b else f"{a}: {r} px" for a, b, r in spans)


def mix_ws(row_ws: torch.Tensor, col_ws: torch.Tensor, layers: range) -> torch.Tensor:
    """The row's ws with the ws in `layers` taken from the column (same shape)."""
    mixed = row_ws.clone()
    mixed[:, layers.start:layers.stop] = col_ws[:, layers.start:layers.stop]
    return mixed


def style_mix_grid(synthesize, row_ws: torch.Tensor, col_ws: torch.Tensor, layers: range) -> np.ndarray:
    """uint8 HWC canvas of (1 + rows) x (1 + columns) tiles: a blank (white) corner, the
    column images across the top, the row images down the left, mix (r, c) inside.
    `synthesize` maps ws [N, num_ws, w_dim] to uint8 NHWC images."""
    rows, cols = synthesize(row_ws), synthesize(col_ws)
    tiles = [np.full_like(rows[0], 255), *cols]
    for r in range(len(row_ws)):
        mixes = synthesize(mix_ws(row_ws[r:r + 1].expand_as(col_ws), col_ws, layers))
        tiles += [rows[r], *mixes]
    height, width, channels = rows.shape[1:]
    grid = np.stack(tiles).reshape(len(row_ws) + 1, len(col_ws) + 1, height, width, channels)
    return grid.transpose(0, 2, 1, 3, 4).reshape((len(row_ws) + 1) * height, (len(col_ws) + 1) * width, channels)

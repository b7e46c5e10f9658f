"""Projected ws (NVlabs projector.py's `projected_w.npz`): read them, and restyle them as a class.

A projected w has no z and no class: it is a point in the W space of the generator it was
projected with. On a conditional generator, `class_restyle_ws` keeps the projection's
first K ws (pose, shape: the photo's layout) and takes the rest from the class's average
w, the point that truncation to psi 0 gives for that class: the class's typical colours
and line, as `--swap-layer` does between two classes.
"""

from pathlib import Path

import numpy as np
import torch

from cstylegan.runtime.errors import UserError


def load_projected_w(path, num_ws: int, w_dim: int) -> torch.Tensor:
    """`np.load(path)["w"]`, [N, num_ws, w_dim] or [num_ws, w_dim], as float32 [N, num_ws, w_dim]."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--projected-w: file not found: {path}")
    try:
        data = np.load(path)
    except (OSError, EOFError, ValueError):  # not numpy at all, truncated, pickled
        raise UserError(f"--projected-w {path}: cannot read it as .npz (np.load failed)") from None
    if not hasattr(data, "files"):  # a bare .npy array
        raise UserError(f"--projected-w {path}: a single array, not an .npz with a 'w' array")
    with data:
        if "w" not in data.files:
            raise UserError(f"--projected-w {path}: no 'w' array (it has: {', '.join(data.files) or 'none'}); "
                             "expected the projector's projected_w.npz")
        try:
            w = data["w"]
        except ValueError:  # an object array: numpy would have to unpickle it, which could run code
            raise UserError(f"--projected-w {path}: its w holds Python objects, not numbers, so it was not loaded; "
                            "expected the projector's projected_w.npz") from None
    if w.dtype.kind not in "fiu":  # strings, booleans, complex numbers: no point in W
        raise UserError(f"--projected-w {path}: its w holds {w.dtype} values, not real numbers; expected the "
                        "projector's projected_w.npz (float32)")
    if w.ndim == 2:
        w = w[np.newaxis]
    if w.ndim != 3 or w.shape[1:] != (num_ws, w_dim):
        raise UserError(f"--projected-w {path}: w has shape {list(w.shape)}, this network needs "
                         f"[N, {num_ws}, {w_dim}] (num_ws {num_ws}, w_dim {w_dim})")
    if not np.isfinite(w).all():
        raise UserError(f"--projected-w {path}: {int((~np.isfinite(w)).sum())} of its {w.size} numbers are NaN or "
                         "infinite; project the image again")
    return torch.from_numpy(w.astype(np.float32))


def class_restyle_ws(G, ws: torch.Tensor, class_index: int, swap_layer: int, average=None) -> torch.Tensor:
    """ws [N, num_ws, w_dim]: the first `swap_layer` from `ws`, the rest the class's average w
    (tracked by the mapping, or `average` [w_dim], e.g. Drawer.average of an attribute network)."""
    average = (G.mapping.w_avg_per_class[class_index] if average is None else average).to(ws.device)
    restyled = ws.clone()
    restyled[:, swap_layer:] = average
    return restyled

"""The pictures a run writes beside its snapshots: reals.png and fakes<kimg>.png, one row per class."""

from pathlib import Path

import numpy as np
import torch

from cstylegan.generation.image_grid import save_grid, to_uint8

GRID_COLUMNS = 8


def grid_labels(label_space, columns: int, device, data_labels=None, seed: int = 0):
    """Labels and row names for fakes*.png: one row per class the model can be asked for
    (with attribute labels every combination, the unseen ones marked), the labels of 4
    random real images for vector labels, or 4 unlabelled rows."""
    if label_space.c_dim == 0:
        return torch.zeros([4 * columns, 0], device=device), None
    if label_space.kind == "vector":
        picks = np.random.default_rng(seed).choice(len(data_labels), size=4)
        label_space = label_space.with_vectors(";".join(",".join(f"{v:g}" for v in data_labels[i]) for i in picks))
    c = torch.from_numpy(label_space.class_vectors).to(device)
    return c.repeat_interleave(columns, dim=0), [label_space.describe(k) for k in range(len(c))]


def save_reals(dataset, path: Path, columns: int, seed: int) -> None:
    """A sample of training images, one row per class as in fakes*.png."""
    rng = np.random.default_rng(seed)
    if not dataset.class_names:
        picks = rng.choice(len(dataset), size=4 * columns, replace=len(dataset) < 4 * columns)
        row_labels = None
    else:
        class_of = dataset.item_classes
        picks = [
            i
            for k in range(len(dataset.class_names))
            for i in rng.choice(np.flatnonzero(class_of == k), size=columns, replace=(class_of == k).sum() < columns)
        ]
        row_labels = list(dataset.class_names)
    images = np.stack([np.asarray(dataset[int(i)][0]).transpose(1, 2, 0) for i in picks])
    save_grid(images, path, columns, row_labels)


@torch.no_grad()
def save_fakes(G_ema, grid_z, grid_c, row_labels, path: Path, batch: int):
    """Write the fakes grid to `path`; return it (a PIL image)."""
    images = torch.cat(
        [G_ema(z, c, noise_mode="const") for z, c in zip(grid_z.split(batch), grid_c.split(batch))]
    )
    return save_grid(to_uint8(images), path, GRID_COLUMNS, row_labels)

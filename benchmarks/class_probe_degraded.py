"""How much does class consistency fall just because fakes are less realistic than reals?

class_acc judges fakes with a linear probe trained on real images' Inception features. A
probe can only be trusted on pictures like those it was trained on, so this spoils the
held-out real images (each degradation keeps the class visible to a person: blurred,
noisy, or with its tiles shuffled) and prints, per degradation, how far the spoiled images
are from the real ones (mean per-class FID, all images of a class against the same class
unspoiled) and how often the probe still names their class, style and gender. Set beside a
model's table row, it says which part of a low class consistency the probe alone explains.

    python benchmarks/class_probe_degraded.py --data portraits32.zip

Class names must read <style>_<gender>, as datasets/emoji.py writes them.
"""

import sys
import time
from functools import partial
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.data.dataset import ImageDataset  # noqa: E402
from cstylegan.metrics.cache import StatsCache  # noqa: E402
from cstylegan.metrics.class_consistency import fit_probe, split_heldout  # noqa: E402
from cstylegan.metrics.compute import Reals  # noqa: E402
from cstylegan.metrics.fid import fid_from_features  # noqa: E402
from cstylegan.metrics.images import dataset_images  # noqa: E402
from cstylegan.metrics.inception import extract_features, load_inception  # noqa: E402
from cstylegan.runtime.cli import Command  # noqa: E402


def blurred(images: torch.Tensor, size: int, rng) -> torch.Tensor:
    """Down to size x size by area averaging, back up bilinearly."""
    small = F.interpolate(images, size=size, mode="area")
    return F.interpolate(small, size=images.shape[-1], mode="bilinear", align_corners=False)


def noisy(images: torch.Tensor, sigma: float, rng) -> torch.Tensor:
    """Gaussian noise of `sigma` grey levels (of 255) on every pixel."""
    noise = torch.as_tensor(rng.standard_normal(images.shape), dtype=images.dtype)
    return images + sigma * noise


def tiles_shuffled(images: torch.Tensor, grid: int, rng) -> torch.Tensor:
    """Each image cut into grid x grid tiles, put back in a random order: the parts kept, the layout lost."""
    n, c, h, w = images.shape
    th, tw = h // grid, w // grid
    tiles = images.reshape(n, c, grid, th, grid, tw).permute(0, 2, 4, 1, 3, 5).reshape(n, grid * grid, c, th, tw)
    order = torch.as_tensor(np.stack([rng.permutation(grid * grid) for _ in range(n)]))
    tiles = tiles[torch.arange(n)[:, None], order]
    return tiles.reshape(n, grid, grid, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


DEGRADATIONS = {
    "none": None,
    "blur to 16 px": partial(blurred, size=16),
    "blur to 8 px": partial(blurred, size=8),
    "noise σ 24": partial(noisy, sigma=24.0),
    "noise σ 64": partial(noisy, sigma=64.0),
    "tiles 2x2 shuffled": partial(tiles_shuffled, grid=2),
    "tiles 4x4 shuffled": partial(tiles_shuffled, grid=4),
}


def spoil(batches, degrade, rng):
    """The image batches (lists of uint8 CHW arrays) passed through `degrade`, as uint8 NCHW arrays."""
    for batch in batches:
        images = torch.as_tensor(np.stack(batch), dtype=torch.float32)
        yield degrade(images, rng=rng).round().clamp(0, 255).to(torch.uint8).numpy()


def probes(features, labels, class_names) -> dict:
    """The metric's class probe and one probe per attribute (style, gender), each on the metric's split."""
    parts = [name.split("_") for name in class_names]
    made = {"class": (np.asarray(labels), len(class_names))}
    for position, attribute in enumerate(("style", "gender")):
        values = sorted({p[position] for p in parts})
        made[attribute] = (np.array([values.index(parts[k][position]) for k in labels]), len(values))
    return {name: (fit_probe(features, target, count)[0], target) for name, (target, count) in made.items()}


@click.command(cls=Command)
@click.option("--data", required=True, help="Emoji zip from datasets/emoji.py (class names <style>_<gender>).")
@click.option("--cache-dir", type=str, help="Real-feature cache (reruns skip Inception for the unspoiled images).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise and the tile orders.")
def main(data, cache_dir, seed):
    images = dataset_images(ImageDataset(data))
    if any(len(name.split("_")) != 2 for name in images.class_names):
        raise click.UsageError(f"{data}: class names {images.class_names} are not all <style>_<gender>")
    net = load_inception()
    extract = partial(extract_features, net, progress=False)
    real = Reals(images, extract, StatsCache(cache_dir), batch=32).features()
    judges = probes(real, images.labels, images.class_names)
    _, heldout = split_heldout(images.labels)
    print(f"{data}: {images.count} images, {len(heldout)} held out from the probes\n")
    print("| spoiled by | mean per-class FID to the unspoiled | class | style | gender |")
    print("|---|---|---|---|---|")
    for name, degrade in DEGRADATIONS.items():
        start = time.time()
        rng = np.random.default_rng(seed)
        batches = images.batches(range(images.count), 64)
        features = real if degrade is None else extract(spoil(batches, degrade, rng), images.count)
        classes = range(len(images.class_names))
        fid = np.mean([fid_from_features(features[images.labels == k], real[images.labels == k]) for k in classes])
        fid = max(fid, 0.0)  # unspoiled against itself: 0 up to rounding, which may print as -0.0
        accuracy = [float((probe(features[heldout]) == target[heldout]).mean()) for probe, target in judges.values()]
        print(f"| {name} | {fid:.1f} | " + " | ".join(f"{a:.3f}" for a in accuracy) + " |", flush=True)
        print(f"{name}: {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Which distance reconstructs a picture best when projecting it into W?

    python benchmarks/projection_quality.py --network SNAP --data all_styles32.zip --num 8 --steps 300

Projects the same real images of the data set (each from its own class's average w) with
every --perceptual distance, and scores each reconstruction with measures that none of the
losses optimise alone: PSNR (pixels), SSIM (local structure, Gaussian 11x11 window, sigma
1.5, as Wang et al. 2004) and the Inception and discriminator feature distances, which let
each loss be judged by the others' yardsticks. Prints a table and writes a picture: targets
in the first row, one row of reconstructions per distance.
"""

import sys
import time
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.data.dataset import ImageDataset  # noqa: E402
from cstylegan.generation.image_grid import save_grid, to_uint8  # noqa: E402
from cstylegan.projection.cli import psnr  # noqa: E402
from cstylegan.projection.optimiser import project  # noqa: E402
from cstylegan.projection.perceptual import PERCEPTUAL_KINDS, perceptual_distance  # noqa: E402
from cstylegan.runtime.cli import Command  # noqa: E402
from cstylegan.runtime.devices import pick_device  # noqa: E402
from cstylegan.snapshots.checkpoint import open_for_inference  # noqa: E402

SSIM_C1, SSIM_C2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2  # (K * dynamic range)^2; our images span [-1, 1]


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM of two [1, 3, H, W] images in [-1, 1], per channel with an 11x11 Gaussian window."""
    offsets = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-offsets.square() / (2 * 1.5 ** 2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2).expand(3, 1, 11, 11)

    def blur(x):
        return F.conv2d(x, window, groups=3)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a.square(), blur(b * b) - mu_b.square()
    cov = blur(a * b) - mu_a * mu_b
    score = ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / ((mu_a.square() + mu_b.square() + SSIM_C1)
                                                                   * (var_a + var_b + SSIM_C2))
    return float(score.mean())


@click.command(cls=Command)
@click.option("--network", required=True, help="A training snapshot (with D) of a conditional or plain network.")
@click.option("--data", required=True, help="The data set the network was trained on (targets come from it).")
@click.option("--num", type=click.IntRange(min=1), default=8, show_default=True, help="Images to project.")
@click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--kinds", default=",".join(PERCEPTUAL_KINDS), show_default=True, help="Distances to compare.")
@click.option("--picture", type=click.Path(dir_okay=False), default="projection_quality.png", show_default=True)
@click.option("--device", default="cpu", show_default=True)
def main(network, data, num, steps, kinds, picture, device):
    """Project --num data set images with each distance; print PSNR, SSIM and feature distances."""
    device = pick_device(device)
    opened = open_for_inference(network, device, with_D=True)
    G, D = opened.G, opened.D
    kinds = kinds.split(",")
    yardsticks = {kind: perceptual_distance(kind, D, device) for kind in ("inception", "discriminator")}
    dataset = ImageDataset(data, use_labels=G.c_dim > 0)
    picks = np.random.default_rng(0).choice(len(dataset), size=min(num, len(dataset)), replace=False)
    targets, labels = [], []
    for index in picks:
        image, label = dataset[int(index)]
        targets.append(torch.from_numpy(image).float()[None] / 127.5 - 1)
        labels.append(int(np.argmax(label)) if G.c_dim else None)

    print(f"{network}: {len(targets)} images of {data}, {steps} steps each, device {device}")
    print(f"{'distance':>14} {'PSNR dB':>8} {'SSIM':>6} {'inception':>9} {'D feat':>7} {'s/image':>8}")
    rows = [to_uint8(torch.cat(targets))]
    for kind in kinds:
        distance = perceptual_distance(kind, D, device)
        scores, images, start = [], [], time.perf_counter()
        for target, label in zip(targets, labels):
            image = project(G, target.to(device), steps=steps, class_index=label, distance=distance).image.cpu()
            images.append(image)
            with torch.no_grad():
                scores.append([psnr(to_uint8(image), to_uint8(target)), ssim(image, target),
                               *(float(measure(image.to(device), target.to(device))) for measure in yardsticks.values())])
        seconds = (time.perf_counter() - start) / len(targets)
        mean = np.mean(scores, axis=0)
        print(f"{kind:>14} {mean[0]:>8.2f} {mean[1]:>6.3f} {mean[2]:>9.4f} {mean[3]:>7.4f} {seconds:>8.1f}", flush=True)
        rows.append(to_uint8(torch.cat(images)))
    save_grid(np.concatenate(rows), picture, columns=len(targets), row_labels=["target", *kinds])
    print(f"Wrote {picture}")


if __name__ == "__main__":
    main()

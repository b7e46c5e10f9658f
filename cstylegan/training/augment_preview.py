"""A picture of what each ADA op does: one labelled row per op, forced on (p = 1) alone.

    python -m cstylegan.training.augment_preview --data /tmp/emoji64.zip --out docs/augment.png

Row r shows one image of the data set (first column, untouched) and `--draws` independent
augmentations of it; the last row is the whole `bgcfnc` pipe at p = 0.5.
"""

from pathlib import Path

import click
import numpy as np
import torch

from cstylegan.data.dataset import DatasetError, ImageDataset
from cstylegan.generation.image_grid import make_grid, to_uint8
from cstylegan.runtime.cli import Command
from cstylegan.training.augment import OP_NAMES, AugmentPipe, augment_pipe

OPS = list(OP_NAMES)


def load_images(path, count: int) -> torch.Tensor:
    """`count` images spread evenly over the data set, as floats in [-1, 1], NCHW."""
    dataset = ImageDataset(path, use_labels=False)
    picks = np.linspace(0, len(dataset) - 1, count).round().astype(int)
    images = np.stack([dataset[int(i)][0] for i in picks])
    return torch.from_numpy(images).float() / 127.5 - 1


def preview_rows(images: torch.Tensor, draws: int = 7, seed: int = 0):
    """(uint8 NHWC tiles, row labels): per op, an original then `draws` augmentations of it."""
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    rows = [(op, AugmentPipe(**{op: 1})) for op in OPS] + [("bgcfnc p=0.5", augment_pipe("bgcfnc"))]
    rows[-1][1].p.fill_(0.5)
    tiles, labels = [], []
    with torch.no_grad():
        for index, (label, pipe) in enumerate(rows):
            original = images[index % len(images)][None]
            tiles += [original, pipe(original.expand(draws, -1, -1, -1))]
            labels.append(label)
    torch.set_rng_state(generator_state)
    return to_uint8(torch.cat(tiles)), labels


@click.command(cls=Command)
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Dataset zip or folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="PNG to write.")
@click.option("--images", "count", type=int, default=4, show_default=True,
              help="How many different images the rows cycle through.")
@click.option("--draws", type=int, default=7, show_default=True, help="Augmented copies per row.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the augmentations.")
def main(data, out, count, draws, seed):
    """Draw one row per ADA op: the original image, then random augmentations with only that op on."""
    try:
        images = load_images(data, count)
    except DatasetError as error:
        raise click.ClickException(str(error)) from None
    tiles, labels = preview_rows(images, draws, seed)
    make_grid(tiles, draws + 1, labels).save(out)
    click.echo(f"Wrote {out}: {len(labels)} rows of {draws + 1} images")


if __name__ == "__main__":
    main()

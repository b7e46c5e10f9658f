"""A picture of what each ADA op does: one labelled row per op, forced on (p = 1) alone.

    python -m cstylegan.training.augment_preview --data /tmp/emoji64.zip --out docs/augment.png

Row r shows one image of the data set (first column, untouched) and `--draws` independent
augmentations of it; the last row is the whole `bgcfnc` pipe at p = 0.5.
"""

from pathlib import Path

import click
import numpy as np
import torch

from cstylegan.data.dataset import ImageDataset
from cstylegan.generation.image_grid import save_grid, to_uint8
from cstylegan.runtime.cli import Command
from cstylegan.runtime.errors import UserError
from cstylegan.runtime.files import refuse_overwriting_inputs, require_image_suffix
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


def check_out(out: Path, data: Path) -> None:
    """--out must be an image file that is not the data set nor inside a data folder (it would
    overwrite one of its images, or become one)."""
    refuse_overwriting_inputs({"--out": out}, {"--data": data})
    if data.is_dir() and data.resolve() in out.resolve().parents:
        raise UserError(f"--out {out} is inside the data folder --data {data}; write the preview elsewhere")
    require_image_suffix("--out", out)


@click.command(cls=Command)
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Dataset zip or folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="PNG to write.")
@click.option("--images", "count", type=click.IntRange(min=1), default=4, show_default=True,
              help="How many different images the rows cycle through.")
@click.option("--draws", type=click.IntRange(min=1), default=7, show_default=True, help="Augmented copies per row.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the augmentations.")
def main(data, out, count, draws, seed):
    """Draw one row per ADA op: the original image, then random augmentations with only that op on."""
    check_out(out, data)
    images = load_images(data, count)
    tiles, labels = preview_rows(images, draws, seed)
    save_grid(tiles, out, draws + 1, labels)
    click.echo(f"Wrote {out}: {len(labels)} rows of {draws + 1} images")


if __name__ == "__main__":
    main()

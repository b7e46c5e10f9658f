"""Image grids with one labelled row per class: what a person looks at to judge a run."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output in [-1, 1], NCHW -> uint8 NHWC, rounded as the official tools do."""
    return (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def _label_width(labels) -> int:
    font = ImageFont.load_default()
    return max((int(font.getlength(text)) for text in labels), default=0) + 8


def _column_header(labels, cell_width: int) -> tuple:
    """(height, vertical): labels lie flat when every one fits its column, else they stand
    on end, so that narrow tiles (16 px emoji) still get readable names."""
    font = ImageFont.load_default()
    longest = max(int(font.getlength(text)) for text in labels)
    if longest + 4 <= cell_width:
        return font.getbbox("Ag")[3] + 8, False
    return longest + 8, True


def make_grid(images: np.ndarray, columns: int, row_labels=None, column_labels=None) -> Image.Image:
    """Tile uint8 NHWC images `columns` to a row; a text column on the left names each row,
    and an optional band on top names each column."""
    num, height, width, channels = images.shape
    rows = -(-num // columns)
    label_width = _label_width(row_labels) if row_labels else 0
    header, vertical = _column_header(column_labels, width) if column_labels else (0, False)
    canvas = np.full((header + rows * height, label_width + columns * width, channels), 255, np.uint8)
    for index, image in enumerate(images):
        y, x = divmod(index, columns)
        top, left = header + y * height, label_width + x * width
        canvas[top : top + height, left : left + width] = image
    grid = Image.fromarray(canvas.squeeze(-1) if channels == 1 else canvas)
    draw = ImageDraw.Draw(grid)
    for row, text in enumerate(row_labels or []):
        draw.text((4, header + row * height + height // 2), text, fill="black", anchor="lm")
    for column, text in enumerate(column_labels or []):
        if not vertical:
            draw.text((label_width + column * width + width // 2, header // 2), text, fill="black", anchor="mm")
            continue
        # Draw flat on a strip, turn it a quarter left, and stand it above the column.
        strip = Image.new(grid.mode, (header, width), "white")
        ImageDraw.Draw(strip).text((4, width // 2), text, fill="black", anchor="lm")
        grid.paste(strip.rotate(90, expand=True), (label_width + column * width, 0))
    return grid


def save_grid(images: np.ndarray, path, columns: int, row_labels=None, column_labels=None) -> Image.Image:
    """Write the grid as an image file and return it; on a failed write no partial file is
    left, and the error names the file (Pillow's does not)."""
    grid = make_grid(images, columns, row_labels, column_labels)
    try:
        grid.save(path)
    except OSError as error:
        Path(path).unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    return grid

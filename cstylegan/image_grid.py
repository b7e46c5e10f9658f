"""Image grids with one labelled row per class: what a person looks at to judge a run."""

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output in [-1, 1], NCHW -> uint8 NHWC, rounded as the official tools do."""
    return (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def _label_width(labels) -> int:
    font = ImageFont.load_default()
    return max((int(font.getlength(text)) for text in labels), default=0) + 8


def make_grid(images: np.ndarray, columns: int, row_labels=None) -> Image.Image:
    """Tile uint8 NHWC images `columns` to a row; a text column on the left names each row."""
    num, height, width, channels = images.shape
    rows = -(-num // columns)
    label_width = _label_width(row_labels) if row_labels else 0
    canvas = np.full((rows * height, label_width + columns * width, channels), 255, np.uint8)
    for index, image in enumerate(images):
        y, x = divmod(index, columns)
        canvas[y * height : (y + 1) * height, label_width + x * width : label_width + (x + 1) * width] = image
    grid = Image.fromarray(canvas.squeeze(-1) if channels == 1 else canvas)
    if row_labels:
        draw = ImageDraw.Draw(grid)
        for row, text in enumerate(row_labels):
            draw.text((4, row * height + height // 2), text, fill="black", anchor="lm")
    return grid


def save_grid(images: np.ndarray, path, columns: int, row_labels=None) -> None:
    make_grid(images, columns, row_labels).save(path)

"""Turning any image file into the square 8-bit RGB image a training zip holds.

Training wants every image as RGB at one power-of-two size. Real folders hold grayscale,
palette, transparent, 16-bit and CMYK files, phone photos whose EXIF says "rotate me", and
broken files; this module makes each readable one look as a viewer shows it, and raises
`UnreadableImage` for the rest so the caller can skip and report them.
"""

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cstylegan.runtime.errors import UserError

WHITE = (255, 255, 255)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class UnreadableImage(UserError):
    """A file that is not an image, or is truncated, corrupt or of an unsupported kind."""


def load_rgb(path) -> Image.Image:
    """Decode the whole file (a truncated one fails here), apply EXIF orientation, flatten to RGB."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except UnidentifiedImageError as error:
        raise UnreadableImage("not an image, or a format Pillow cannot read") from error
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise UnreadableImage(str(error) or type(error).__name__) from error


def to_rgb(image: Image.Image, background=WHITE) -> Image.Image:
    """8-bit RGB; 16-bit gray is scaled (not clipped) to 8 bits; transparency is composited on `background`."""
    if image.mode in SIXTEEN_BIT_MODES:
        # Pillow's own I;16 -> L conversion clips at 255, turning most of a 16-bit image white.
        image = Image.fromarray(np.clip(np.asarray(image, np.float64) / 257.0, 0, 255).round().astype(np.uint8))
    elif image.mode == "F":
        raise UnreadableImage("32-bit float images are not supported; save it as 8- or 16-bit")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def center_crop(image: Image.Image, resolution: int) -> Image.Image:
    """The largest centred square, resized (Lanczos) to resolution x resolution."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return _resize(image.crop((left, top, left + side, top + side)), resolution)


def pad(image: Image.Image, resolution: int, background=WHITE) -> Image.Image:
    """The whole image centred on a `background` square, resized (Lanczos) to resolution x resolution."""
    width, height = image.size
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), background)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return _resize(canvas, resolution)


def fit_drawing(rgba: Image.Image, resolution: int, margin: float, background=WHITE) -> Image.Image:
    """Crop a transparent drawing to its visible pixels, pad it square with `margin` (a fraction
    of its size) on each side, composite on `background`, resize: every emoji fills its frame alike."""
    box = rgba.getchannel("A").getbbox()
    if box is None:
        raise UnreadableImage("the drawing has no visible pixels")
    drawing = rgba.crop(box)
    side = round(max(drawing.size) * (1 + 2 * margin))
    canvas = Image.new("RGBA", (side, side), (*background, 255))
    canvas.alpha_composite(drawing, ((side - drawing.width) // 2, (side - drawing.height) // 2))
    return _resize(canvas.convert("RGB"), resolution)


def _resize(image: Image.Image, resolution: int) -> Image.Image:
    if image.size == (resolution, resolution):
        return image
    return image.resize((resolution, resolution), Image.Resampling.LANCZOS)

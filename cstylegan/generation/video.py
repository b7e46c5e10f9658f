"""Interpolation videos: a loop through keyframe ws, written as MP4 (ffmpeg) or animated GIF/WebP (Pillow).

Interpolating in W rather than Z keeps every frame on the generator's learned manifold
and gives the even, linear transitions the StyleGAN papers show.
"""

import importlib

import numpy as np
import torch
from PIL import Image

from cstylegan.runtime.errors import UserError

FORMATS = ("mp4", "gif", "webp")


def loop_ws(keys: torch.Tensor, frames: int):
    """Yield ws [1, num_ws, w_dim] for a closed loop through keys [K, num_ws, w_dim]:
    `frames` frames per transition, key k at frame k * frames, back to key 0 at the end
    (the frame after the last one), so the video repeats without a jump."""
    for k in range(len(keys)):
        start, end = keys[k], keys[(k + 1) % len(keys)]
        for f in range(frames):
            yield torch.lerp(start, end, f / frames).unsqueeze(0)


def write_video(images, path, fps: float, video_format: str, size: tuple) -> int:
    """Write uint8 HWC frames (an iterable; grey ones become RGB) to `path`; returns the number of frames.

    MP4 streams the frames to the ffmpeg binary that the imageio-ffmpeg wheel ships
    (H.264, near-lossless crf 10); GIF and WebP hold them in memory for Pillow."""
    images = (np.repeat(image, 3 // image.shape[-1], axis=-1) for image in images)
    if video_format == "mp4":
        writer = mp4_writer(path, size, fps)
        writer.send(None)
        count = 0
        for image in images:
            writer.send(np.ascontiguousarray(image))
            count += 1
        writer.close()
        return count
    frames = [Image.fromarray(image) for image in images]
    extra = dict(quality=90) if video_format == "webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=1000 / fps, loop=0, **extra)
    return len(frames)


def check_format(video_format: str) -> None:
    """Fail before any frame is drawn when MP4 is asked for and imageio-ffmpeg is missing."""
    if video_format == "mp4":
        try:
            importlib.import_module("imageio_ffmpeg")
        except ImportError:
            raise UserError("MP4 needs the ffmpeg that the imageio-ffmpeg package ships: pip install imageio-ffmpeg, "
                             "or write an animated GIF with --video-format gif") from None


def mp4_writer(path, size: tuple, fps: float):
    """imageio_ffmpeg's frame writer: a generator to send frames to."""
    import imageio_ffmpeg

    # Our images are even-sized powers of two, which H.264 (yuv420p) takes as they are.
    return imageio_ffmpeg.write_frames(str(path), size, fps=fps, quality=8, macro_block_size=1)

"""generate.py --video: decoded frames against generate.py's own images and hand-interpolated ws."""

import os
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from cstylegan.snapshots.checkpoint import open_for_inference
from tests.conftest import REPO, run_cli

RED, BLUE = 0, 2  # indices in the fixture's class list


def video(snapshot_path, outdir, *args):
    result = run_cli("generate.py", "--network", str(snapshot_path), "--video", "--outdir", str(outdir),
                     "--device", "cpu", *args)
    assert result.returncode == 0, result.stderr
    return result


def seed_image(snapshot_path, outdir, class_name, seed):
    """What generate.py writes for one class and seed."""
    run_cli("generate.py", "--network", str(snapshot_path), "--class", class_name, "--seeds", str(seed),
            "--outdir", str(outdir), "--device", "cpu")
    return np.asarray(Image.open(outdir / class_name / f"seed{seed:04d}.png")).astype(float)


def read_mp4(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]).astype(float), meta


def mad(a, b) -> float:
    return float(np.abs(a - b).mean())


@pytest.mark.slow
def test_seed_video_visits_each_seed_every_frames_frames(snapshot_path, tmp_path):
    result = video(snapshot_path, tmp_path, "--class", "red_male", "--seeds", "0,5,9", "--frames", "4", "--fps", "12")
    assert "video.mp4 (12 frames, 12 fps)" in result.stdout
    frames, meta = read_mp4(tmp_path / "video.mp4")
    assert frames.shape == (12, 16, 16, 3) and meta["fps"] == 12
    for k, seed in enumerate([0, 5, 9]):  # H.264 at crf 10: small losses only
        assert mad(frames[4 * k], seed_image(snapshot_path, tmp_path, "red_male", seed)) < 8


@pytest.mark.slow
def test_class_video_interpolates_w_between_classes(snapshot_path, tmp_path):
    video(snapshot_path, tmp_path, "--class", "red_male,blue_male", "--seeds", "3", "--frames", "4")
    frames, _ = read_mp4(tmp_path / "video.mp4")
    assert len(frames) == 8  # red -> blue -> back to red
    red = seed_image(snapshot_path, tmp_path, "red_male", 3)
    blue = seed_image(snapshot_path, tmp_path, "blue_male", 3)
    assert mad(frames[0], red) < 8 and mad(frames[4], blue) < 8
    # Frame 2 is halfway: G.synthesis of the mean of the two classes' ws for the same z.
    G = open_for_inference(snapshot_path).G
    z = torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim)).float()
    c = torch.eye(G.c_dim)[[RED, BLUE]]
    with torch.no_grad():
        ws = G.mapping(z.expand(2, -1), c)
        halfway = G.synthesis(ws.mean(dim=0, keepdim=True), noise_mode="const")
    halfway = (halfway * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy().astype(float)
    for middle in (frames[2], frames[6]):
        assert mad(middle, halfway) < 8
        assert mad(middle, halfway) < min(mad(middle, red), mad(middle, blue))
    assert red[..., 0].mean() > frames[2][..., 0].mean() > blue[..., 0].mean()  # redness falls on the way


@pytest.mark.slow
@pytest.mark.parametrize("video_format, tolerance", [("gif", 4), ("webp", 8)])
def test_gif_and_webp_through_pillow(snapshot_path, tmp_path, video_format, tolerance):
    video(snapshot_path, tmp_path, "--class", "red_male,blue_male", "--seeds", "3", "--frames", "3", "--fps", "10",
          "--video-format", video_format)
    animation = Image.open(tmp_path / f"video.{video_format}")
    frames = [np.asarray(frame.convert("RGB")).astype(float) for frame in ImageSequence.Iterator(animation)]
    assert len(frames) == 6 and frames[0].shape == (16, 16, 3)
    assert animation.info["duration"] == 100
    assert mad(frames[0], seed_image(snapshot_path, tmp_path, "red_male", 3)) < tolerance
    assert mad(frames[3], seed_image(snapshot_path, tmp_path, "blue_male", 3)) < tolerance


@pytest.mark.slow
def test_without_imageio_ffmpeg_mp4_is_a_one_line_error_naming_the_fixes(snapshot_path, tmp_path):
    blocker = tmp_path / "blocker" / "imageio_ffmpeg"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('imageio_ffmpeg is not installed')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker.parent))
    result = subprocess.run([sys.executable, str(REPO / "generate.py"), "--network", str(snapshot_path), "--video",
                             "--class", "red_male", "--seeds", "0,1", "--outdir", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "pip install imageio-ffmpeg" in result.stderr and "--video-format gif" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class", "red_male,blue_male", "--seeds", "0,1"], "got 2 seeds and 2 classes"),
        (["--class", "red_male", "--seeds", "4"], "--video needs at least two --seeds"),
        (["--class", "red_male", "--frames", "0"], "Invalid value for '--frames'"),
        (["--seeds", "0,1"], "this network is conditional: pass --class"),
    ],
)
def test_bad_video_is_a_one_line_error(snapshot_path, tmp_path, args, message):
    result = run_cli("generate.py", "--network", str(snapshot_path), "--video", "--outdir", str(tmp_path), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""A broken image is found when the data set is opened, not hours into training (issue 25,
item 4): every image is decoded once, and a truncated PNG or a decompression bomb is named
in one line."""

import io
import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from cstylegan.data import dataset as dataset_module
from cstylegan.data.dataset import DatasetError, ImageDataset
from tests.conftest import REPO, assert_one_line_error, run_in_process


def png_bytes(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "png")
    return buffer.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 40000) -> bytes:
    """A valid PNG header declaring side x side grey pixels (1.6 G) with almost no data."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def zip_with(path, bad_name: str, bad_bytes: bytes, count: int = 6):
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        names = [f"a/{i}.png" for i in range(count)]
        for name in names:
            archive.writestr(name, png_bytes(rng.integers(0, 256, (8, 8, 3), np.uint8)))
        archive.writestr(bad_name, bad_bytes)
        labels = [[name, 0] for name in [*names, bad_name]]
        archive.writestr("dataset.json", json.dumps({"labels": labels, "class_names": ["a"]}))
    return path


def truncated_png() -> bytes:
    whole = png_bytes(np.random.default_rng(1).integers(0, 256, (8, 8, 3), np.uint8))
    return whole[:60]  # the signature, the header and a piece of the pixel data


@pytest.mark.parametrize("make, words", [(truncated_png, "a/broken.png is not a readable image"),
                                         (bomb_png, "a/broken.png is not a readable image")])
def test_a_broken_image_is_named_when_the_data_is_opened(tmp_path, make, words):
    data = zip_with(tmp_path / "data.zip", "a/broken.png", make())
    with pytest.raises(DatasetError, match=words):
        ImageDataset(data)
    result = run_in_process("train.py", ["--data", data, "--outdir", tmp_path / "runs", "-n"], REPO)
    assert_one_line_error(result, "a/broken.png", "make one with datasets/make_dataset.py")


def test_the_header_alone_would_have_passed(tmp_path):
    """The truncated file has a readable header: only decoding it finds the fault."""
    with Image.open(io.BytesIO(truncated_png())) as image:
        assert image.size == (8, 8)
        with pytest.raises(OSError):
            image.load()


def test_big_sets_are_decoded_by_several_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_module, "DECODE_CHUNK", 2)
    data = zip_with(tmp_path / "data.zip", "a/zz_broken.png", truncated_png(), count=6)
    with pytest.raises(DatasetError, match="a/zz_broken.png is not a readable image"):
        ImageDataset(data)
    good = zip_with(tmp_path / "good.zip", "a/zz_fine.png", png_bytes(np.zeros((8, 8, 3), np.uint8)), count=6)
    assert len(ImageDataset(good)) == 7 and ImageDataset(good).resolution == 8

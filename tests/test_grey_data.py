"""Channels come from the data: a grey data set trains a 1-channel model that writes grey
PNGs; RGBA data and an RGB snapshot on grey data are refused in one line."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cstylegan.config import TrainConfig
from cstylegan.data.dataset import ImageDataset
from cstylegan.metrics import compute as compute_module
from cstylegan.metrics.compute import compute_metrics
from cstylegan.snapshots.checkpoint import CheckpointError, load_snapshot, open_for_inference
from cstylegan.training.loop import train
from tests.conftest import REPO, assert_one_line_error, run_cli, run_in_process
from tests.test_metrics import MeanColourNet

SHADES = {"dark": 40, "light": 210}
TINY = dict(cfg="small", cond=True, cbase=256, cmax=16, batch=8, kimg=0.032, tick=0.016, snap=1, workers=0,
            device="cpu")


@pytest.fixture(scope="module")
def shade_folders(tmp_path_factory):
    """Class folders of 8 colour PNGs each: dark ones and light ones, with a red cast to lose."""
    root = tmp_path_factory.mktemp("shades")
    rng = np.random.default_rng(0)
    for name, shade in SHADES.items():
        (root / name).mkdir()
        for i in range(8):
            pixels = np.clip(shade + rng.normal(0, 6, (16, 16, 3)) + [30, 0, 0], 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def grey_zip(shade_folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("grey") / "grey.zip"
    result = run_cli("datasets/make_dataset.py", shade_folders, out, "--resolution", "16", "--channels", "1")
    assert result.returncode == 0, result.stderr
    return out


def test_make_dataset_writes_grey_pngs_with_channels_1(grey_zip, shade_folders):
    data = ImageDataset(grey_zip)
    assert data.num_channels == 1 and data.class_names == ["dark", "light"]
    image, _ = data[0]
    assert image.shape == (1, 16, 16) and image.dtype == np.uint8
    colour = np.asarray(Image.open(sorted((shade_folders / "dark").iterdir())[0]), np.float64)
    luma = colour @ [0.299, 0.587, 0.114]  # ITU-R 601, as PIL's convert("L")
    assert np.abs(image[0].astype(np.float64) - luma).max() <= 1


@pytest.fixture(scope="module")
def grey_run(grey_zip, tmp_path_factory):
    return train(TrainConfig(data=str(grey_zip), outdir=str(tmp_path_factory.mktemp("runs")), **TINY),
                 log=lambda line: None)


def test_grey_data_trains_a_one_channel_model(grey_run):
    snapshot = load_snapshot(sorted(grey_run.glob("network-snapshot-*.pt"))[-1])
    assert snapshot["G_kwargs"]["img_channels"] == 1 and snapshot["D_kwargs"]["img_channels"] == 1
    assert snapshot["config"]["img_channels"] == 1
    G = open_for_inference(sorted(grey_run.glob("network-snapshot-*.pt"))[-1]).G
    with torch.no_grad():
        assert G(torch.randn(2, G.z_dim), torch.eye(2)).shape == (2, 1, 16, 16)
    assert Image.open(grey_run / "fakes000000.png").mode == "L" and Image.open(grey_run / "reals.png").mode == "L"


def test_generate_writes_grey_pngs(grey_run, tmp_path):
    snapshot = sorted(grey_run.glob("network-snapshot-*.pt"))[-1]
    result = run_cli("generate.py", "--network", snapshot, "--class", "light", "--seeds", "0-1", "--outdir", tmp_path,
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    image = Image.open(tmp_path / "light" / "seed0001.png")
    assert image.mode == "L" and image.size == (16, 16)


def test_metrics_repeat_the_grey_channel_for_inception(grey_run, grey_zip, tmp_path, monkeypatch):
    seen = []

    def recording_net(path, device):
        net = MeanColourNet()
        forward = net.forward
        net.forward = lambda images: seen.append(images.shape) or forward(images)
        return net

    monkeypatch.setattr(compute_module, "load_inception", recording_net)
    G = open_for_inference(sorted(grey_run.glob("network-snapshot-*.pt"))[-1]).G
    results = compute_metrics(G, ImageDataset(grey_zip, use_labels=False), "fid,fid_per_class", num_gen=8,
                              num_gen_per_class=6, batch=8, cache_dir=tmp_path, progress=False, label_space=None)
    assert np.isfinite(results["fid"]) and np.isfinite(results["fid_per_class_mean"])
    assert seen and all(shape[1:] == (3, 299, 299) for shape in seen)


def test_rgba_data_is_refused_in_one_line(tmp_path):
    rgba = {"a": [np.full((8, 8, 4), 200, np.uint8)] * 2}
    path = tmp_path / "rgba.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i, pixels in enumerate(rgba["a"]):
            buffer = io.BytesIO()
            Image.fromarray(pixels, "RGBA").save(buffer, "png")
            archive.writestr(f"a/{i}.png", buffer.getvalue())
        archive.writestr("dataset.json", json.dumps({"labels": [["a/0.png", 0], ["a/1.png", 0]], "class_names": ["a"]}))
    result = run_in_process("train.py", ["--data", path, "--outdir", tmp_path / "runs", "-n"], REPO)
    assert_one_line_error(result, "RGBA", "--channels 3")


def test_an_rgb_snapshot_does_not_resume_on_grey_data(grey_zip, colour_zip, tmp_path):
    rgb_run = train(TrainConfig(data=str(colour_zip), outdir=str(tmp_path / "rgb"), **{**TINY, "kimg": 0.016}),
                    log=lambda line: None)
    snapshot = sorted(rgb_run.glob("network-snapshot-*.pt"))[-1]
    with pytest.raises(CheckpointError, match="makes images of 3 channels but the data's have 1; make the data set "
                                              "with make_dataset.py --channels 3"):
        train(TrainConfig(data=str(grey_zip), outdir=str(tmp_path / "grey"), resume=str(snapshot),
                          **{**TINY, "cond": False}), log=lambda line: None)

"""The experiment runner: config checks, per-class routing, and one tiny comparison end to end."""

import csv
import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cstylegan.dataset_writer import write_dataset_zip
from cstylegan.networks.stylegan2 import Generator
from experiments.methods import PerClassModels
from experiments.spec import SpecError, parse_spec
from tests.conftest import COLOURS, run_cli

CLASSES = ["red_male", "blue_male"]
METHODS = ["transfer", "transfer_swap8", "cond_sg2", "cond_sg3t"]


def tiny_config(data) -> dict:
    """16 px, 2 classes, whole-kimg snapshots so that curves have two points."""
    return {
        "data": str(data),
        "make_data": "(made by the test)",
        "device": "cpu",
        "train": {"cfg": "small", "cbase": 256, "cmax": 16, "batch": 8, "tick": 0.5, "workers": 0},
        "num_gen": 8,
        "num_gen_per_class": 6,
        "sample_seeds": "0-2",
        "swap_layer": 2,
        "transfer": {"base_kimg": 1, "finetune_kimg": 2, "snap_kimg": 1, "swap_split_res": [8]},
        "conditional": [
            {"name": "cond_sg2", "kimg": 2, "snap_kimg": 1},
            {"name": "cond_sg3t", "kimg": 1, "snap_kimg": 1,
             "train": {"cfg": "stylegan3-t", "cbase": 128, "cmax": 8}},  # SG3 is slow on a CPU
        ],
    }


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """The runner run once on the tiny config, then once more (everything should be skipped)."""
    root = tmp_path_factory.mktemp("comparison")
    rng = np.random.default_rng(1)
    images = {name: [np.clip(np.array(COLOURS[name]) + rng.normal(0, 8, (16, 16, 3)), 0, 255).astype(np.uint8)
                     for _ in range(6)] for name in CLASSES}
    data = write_dataset_zip(root / "two.zip", images)
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(data)))
    args = ("experiments/run.py", str(config), "--workdir", str(root / "work"), "--results", str(root / "results"))
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    return root, first, second


@pytest.mark.slow  # about two minutes on 2 cores: 6 trainings and ~100 images through Inception
def test_runner_writes_every_output(comparison):
    root, first, _ = comparison
    results = root / "results"
    expected = {"table.md", "table.csv", "fid_curves.png", "swap_grid.png", "sg2_vs_sg3.md", "environment.txt",
                "config.yaml", *(f"samples_{m}.png" for m in METHODS)}
    assert expected <= {p.name for p in results.iterdir()}

    with open(results / "table.csv") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["method", "cfg", *(f"fid_{c}" for c in CLASSES), "fid_per_class_mean", "fid", "kid",
                             "class_acc", "kimg", "wall_time_s", "models", "G_params", "peak_mem_gb", "notes"]
    by_method = {row["method"]: row for row in rows}
    assert list(by_method) == METHODS
    for row in rows:
        fids = [float(row[f"fid_{c}"]) for c in CLASSES]
        assert all(np.isfinite(fids)) and min(fids) > 0
        assert float(row["fid_per_class_mean"]) == pytest.approx(np.mean(fids))
        assert 0 <= float(row["class_acc"]) <= 1 and float(row["wall_time_s"]) > 0
    # Transfer: a 1 kimg base and two 2 kimg fine-tunes, 3 models; the swap reuses them.
    assert float(by_method["transfer"]["kimg"]) == pytest.approx(5, abs=0.05)
    assert by_method["transfer"]["models"] == by_method["transfer_swap8"]["models"] == "3"
    assert by_method["cond_sg2"]["models"] == "1"
    assert float(by_method["cond_sg2"]["kimg"]) == pytest.approx(2, abs=0.05)
    assert by_method["cond_sg3t"]["cfg"] == "stylegan3-t"
    # Two per-style generators hold twice the parameters of one unconditional generator.
    assert int(by_method["transfer"]["G_params"]) > int(by_method["cond_sg2"]["G_params"])

    markdown = (results / "table.md").read_text().splitlines()
    assert len(markdown) == 2 + len(METHODS) and any("**" in line for line in markdown[2:])

    evaluations = json.loads((root / "work" / "evaluations.json").read_text())
    assert set(evaluations["cond_sg2"]) == {"1", "2"}  # curve point and final point
    assert "fid" not in evaluations["cond_sg2"]["1"] and "fid" in evaluations["cond_sg2"]["2"]
    assert set(evaluations["transfer"]) == {"3", "5"}  # base 1 + 2 classes x fine-tune snapshots 1 and 2

    samples = Image.open(results / "samples_cond_sg2.png")
    assert samples.height >= 2 * 16 and samples.width >= 3 * 16
    assert "commit:" in (results / "environment.txt").read_text()
    assert "cond_sg3t" in (results / "sg2_vs_sg3.md").read_text()
    assert "transfer_base: training" in first.stdout


@pytest.mark.slow
def test_runner_resumes_without_redoing_work(comparison):
    _, _, second = comparison
    for key in ("transfer_base", "transfer_red_male", "transfer_blue_male", "cond_sg2", "cond_sg3t"):
        assert f"{key}: finished earlier" in second.stdout
    assert ": training" not in second.stdout and "fid_per_class at" not in second.stdout


def test_per_class_models_route_each_image_to_its_class_model():
    torch.manual_seed(0)
    models = [Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64,
                        channel_max=8).eval() for _ in range(2)]
    z = torch.randn([4, 8])
    c = torch.eye(2)[[0, 1, 1, 0]]
    with torch.no_grad():
        images = PerClassModels(models)(z, c)
        for i, k in enumerate([0, 1, 1, 0]):
            expected = (models[k](z[i : i + 1], torch.zeros([1, 0]), noise_mode="const") * 127.5 + 128).clamp(0, 255)
            assert torch.equal(images[i : i + 1], expected.to(torch.uint8))
            other = (models[1 - k](z[i : i + 1], torch.zeros([1, 0]), noise_mode="const") * 127.5 + 128)
            assert not torch.equal(images[i : i + 1], other.clamp(0, 255).to(torch.uint8))


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(colour=1), "unknown key colour"),
    (lambda c: c["train"].update(kimg=5), "kimg cannot be set here"),
    (lambda c: c["transfer"].update(snap_kimg=0.5), "snap_kimg must be from 1"),
    (lambda c: c["transfer"].update(swap_lower="middle"), "swap_lower must be base or finetune"),
    (lambda c: c["conditional"].append({"name": "cond_sg2", "kimg": 1, "snap_kimg": 1}), "method names must differ"),
    (lambda c: c["conditional"][0].pop("kimg"), "missing key kimg"),
    (lambda c: c.update(num_gen=1), "at least 2"),
])
def test_bad_configs_are_refused_by_name(change, message):
    config = tiny_config("two.zip")
    change(config)
    with pytest.raises(SpecError, match=message):
        parse_spec(config, "tiny")


def test_cli_errors_are_one_line(tmp_path):
    config = tiny_config(tmp_path / "missing.zip")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("experiments/run.py", str(path), "--workdir", str(tmp_path / "work"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "missing.zip not found; build it with: (made by the test)" in result.stderr
    result = run_cli("experiments/run.py", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "experiments/configs/" in result.stderr

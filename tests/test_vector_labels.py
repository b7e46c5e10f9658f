"""Float-vector labels in dataset.json (NVlabs' format allows them): continuous conditioning
with --cond, drawn with generate.py --label."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cstylegan.config import TrainConfig
from cstylegan.data.dataset import DatasetError, ImageDataset
from cstylegan.data.labels import LabelSpace
from cstylegan.snapshots.checkpoint import open_for_inference
from cstylegan.training.loop import train
from tests.conftest import assert_one_line_error, run_cli


def write_vector_zip(path: Path, labels: list, label_names=None, resolution: int = 16) -> Path:
    """Image i is one colour: red = 230 * labels[i][0], green 30, blue = 230 * labels[i][1] (if given)."""
    rng = np.random.default_rng(0)
    entries = []
    with zipfile.ZipFile(path, "w") as archive:
        for i, label in enumerate(labels):
            values = label if isinstance(label, list) else [0, 0]
            colour = np.nan_to_num([230 * values[0], 30, 230 * (values[1] if len(values) > 1 else 0)])
            pixels = np.clip(colour + rng.normal(0, 8, (resolution, resolution, 3)), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="png")
            archive.writestr(f"img{i:04d}.png", buffer.getvalue())
            entries.append([f"img{i:04d}.png", label])
        info = {"labels": entries, **({"label_names": label_names} if label_names else {})}
        archive.writestr("dataset.json", json.dumps(info))
    return path


def random_labels(count: int, seed: int = 0) -> list:
    return np.random.default_rng(seed).uniform(0, 1, (count, 2)).round(3).tolist()


@pytest.fixture(scope="module")
def vector_zip(tmp_path_factory) -> Path:
    return write_vector_zip(tmp_path_factory.mktemp("data") / "vectors.zip", random_labels(64), ["red", "blue"])


def test_vector_labels_are_read_as_they_are(vector_zip):
    data = ImageDataset(vector_zip, use_labels=True)
    assert data.c_dim == 2 and data.label_space.kind == "vector" and data.label_space.vector_names == ("red", "blue")
    assert data.class_names == [] and not data.has_labels
    stored = json.loads(zipfile.ZipFile(vector_zip).read("dataset.json"))["labels"]
    for i in (0, 17, 63):
        assert np.allclose(data[i][1], stored[i][1]) and data[i][1].dtype == np.float32
    assert data.labels.shape == (64, 2)


@pytest.mark.parametrize("labels, names, words", [
    ([[0.1, 0.2], 3], None, ["is not [name, [2 finite numbers]]"]),
    ([[0.1, 0.2], [0.3]], None, ["is not [name, [2 finite numbers]]"]),
    ([[0.1, 0.2], [float("nan"), 1.0]], None, ["is not [name, [2 finite numbers]]"]),
    ([[0.1, 0.2], [0.3, 0.4]], ["only_one"], ["names 1 label dimensions", "one distinct name per dimension"]),
])
def test_bad_vector_labels_are_refused_by_name(tmp_path, labels, names, words):
    path = write_vector_zip(tmp_path / "bad.zip", labels, names)
    with pytest.raises(DatasetError) as error:
        ImageDataset(path, use_labels=True)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_a_vector_space_takes_given_vectors_not_classes():
    space = LabelSpace.of_vectors(["red", "blue"])
    given = space.with_vectors("0.9,0.1;0,1")
    assert given.class_names == ("label_0.9_0.1", "label_0_1") and given.resolve("all") == [0, 1]
    assert np.array_equal(given.vector(1), [0, 1]) and given.column_names == ["red", "blue"]
    with pytest.raises(Exception, match="not 2 finite numbers"):
        space.with_vectors("1,2,3")
    with pytest.raises(Exception, match="pass --label with 2 numbers instead of --class"):
        space.resolve("all")


@pytest.fixture(scope="module")
def vector_run(vector_zip, tmp_path_factory) -> Path:
    config = TrainConfig(data=str(vector_zip), outdir=str(tmp_path_factory.mktemp("runs")), cfg="small", cond=True,
                         kimg=3, batch=16, cbase=1024, cmax=64, tick=0.5, snap=12, workers=0, device="cpu")
    run_dir = train(config, log=lambda line: None)
    return sorted(run_dir.glob("network-snapshot-*.pt"))[-1]


@pytest.mark.slow
def test_a_vector_model_follows_its_label_continuously(vector_run):
    opened = open_for_inference(vector_run)
    assert opened.labels.vector_names == ("red", "blue") and opened.G.c_dim == 2
    z = torch.randn([64, opened.G.z_dim], generator=torch.Generator().manual_seed(1))

    def mean_colour(red, blue):
        c = torch.tensor([[red, blue]]).expand(64, -1)
        with torch.no_grad():
            return (opened.G(z, c, noise_mode="const") * 127.5 + 128).clamp(0, 255).mean(dim=[0, 2, 3])

    reddish, bluish, middle = mean_colour(0.9, 0.1), mean_colour(0.1, 0.9), mean_colour(0.5, 0.5)
    assert reddish[0] > bluish[0] + 60 and bluish[2] > reddish[2] + 60, (reddish.tolist(), bluish.tolist())
    assert bluish[0] < middle[0] < reddish[0] and reddish[2] < middle[2] < bluish[2], middle.tolist()


@pytest.mark.slow
def test_generate_takes_label_for_a_vector_model_and_says_what_is_wrong(vector_run, tmp_path):
    result = run_cli("generate.py", "--network", vector_run, "--label", "0.9,0.1;0.1,0.9", "--seeds", "0-1",
                     "--trunc", "0.7", "--outdir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label_0.1_0.9", "label_0.9_0.1"]
    assert len(list((tmp_path / "label_0.9_0.1").glob("seed*.png"))) == 2
    for flags, words in [([], ["takes vector labels (red, blue)", "--label 0.5,0.5"]),
                         (["--class", "all"], ["pass --label with 2 numbers instead of --class"]),
                         (["--label", "1,2,3"], ["not 2 finite numbers"])]:
        assert_one_line_error(run_cli("generate.py", "--network", vector_run, *flags, "--outdir", tmp_path / "x"),
                              *words)


@pytest.mark.slow
def test_label_on_a_class_model_and_metrics_on_vector_data_are_one_line_errors(snapshot_path, vector_zip, tmp_path):
    assert_one_line_error(run_cli("generate.py", "--network", snapshot_path, "--label", "0.5,0.5",
                                  "--outdir", tmp_path), "--label is for networks trained on vector labels")
    result = run_cli("train.py", "--data", vector_zip, "--cond", "--cfg", "small", "--metrics", "fid",
                     "--outdir", tmp_path, "--device", "cpu")
    assert_one_line_error(result, "--metrics on vector labels is not supported yet")

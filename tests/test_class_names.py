"""Class names become folder names: a snapshot or dataset.json with a path for a class name,
two classes of one name, or names that differ only in case are refused in one line, before
anything is written (issue 25, item 1)."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cstylegan.config import TrainConfig
from cstylegan.data.classes import ClassNameError, check_class_names
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator
from cstylegan.snapshots.checkpoint import save_snapshot
from tests.conftest import REPO, assert_one_line_error, run_cli, run_in_process

BAD_NAMES = ["/abs/dir", "../../x", "..", "a\\b", "", " padded", "tab\there"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_a_path_or_not_a_name_is_refused(name):
    with pytest.raises(ClassNameError, match="src: class name"):
        check_class_names(["fine", name], "src")


@pytest.mark.parametrize("names, words", [(["cat", "cat"], "appears twice"),
                                          (["Cat", "cat"], "beside 'Cat', which differs only in case")])
def test_twins_are_refused(names, words):
    with pytest.raises(ClassNameError, match=words):
        check_class_names(names, "src")


def test_ordinary_names_pass():
    assert check_class_names(["ghibli_male", "fire-emblem_female", "élan", "..x"], "src") == [
        "ghibli_male", "fire-emblem_female", "élan", "..x"]


def snapshot_with_classes(path, class_names, attributes=None):
    config = TrainConfig(data="", cfg="small", cond=True, cbase=256, cmax=16).resolve(8)
    G_kwargs, D_kwargs = config.network_kwargs(c_dim=2)
    G, D = Generator(**G_kwargs), Discriminator(**D_kwargs)
    save_snapshot(path, dict(G=G.state_dict(), G_ema=G.state_dict(), D=D.state_dict(), G_kwargs=G_kwargs,
                             D_kwargs=D_kwargs, class_names=class_names, cur_nimg=0,
                             **({"attributes": attributes} if attributes else {})))
    return path


@pytest.mark.parametrize("class_names", [["/abs/dir", "ok"], ["../../escaped", "ok"], ["twin", "twin"]])
def test_generate_refuses_a_snapshot_whose_class_names_are_paths(tmp_path, class_names):
    network = snapshot_with_classes(tmp_path / "network-snapshot-000000.pt", class_names)
    outdir = tmp_path / "work" / "out"
    outdir.mkdir(parents=True)
    before = sorted(p for p in tmp_path.rglob("*"))
    result = run_cli("generate.py", "--network", network, "--class", "all", "--seeds", "0", "--outdir", outdir,
                     "--device", "cpu")
    assert_one_line_error(result, str(network), repr(class_names[0]))
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written below tmp_path ...
    assert not Path("/abs/dir").exists()  # ... nor at the absolute path


def test_a_snapshot_with_a_bad_attribute_value_is_refused(tmp_path):
    network = snapshot_with_classes(tmp_path / "network-snapshot-000000.pt", ["a_x", "b_x"],
                                    attributes={"style": ["a", "b"], "gender": ["../x"]})
    result = run_cli("generate.py", "--network", network, "--class", "all", "--seeds", "0", "--outdir", tmp_path / "o")
    assert_one_line_error(result, "attribute 'gender'", "value '../x'")


def zip_with_class_names(path, class_names):
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(len(class_names)):
            image = Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8))
            archive.writestr(f"img{i}.png", image_bytes(image))
        archive.writestr("dataset.json", json.dumps({"labels": [[f"img{i}.png", i] for i in range(len(class_names))],
                                                     "class_names": class_names}))
    return path


def image_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "png")
    return buffer.getvalue()


@pytest.mark.parametrize("class_names, words", [(["../../x", "b"], "'../../x' cannot be a folder name"),
                                                (["b", "B"], "differs only in case")])
def test_training_refuses_a_dataset_json_with_bad_class_names(tmp_path, class_names, words):
    data = zip_with_class_names(tmp_path / "data.zip", class_names)
    result = run_in_process("train.py", ["--data", data, "--cond", "--outdir", tmp_path / "runs", "-n"], REPO)
    assert_one_line_error(result, "dataset.json", words)


def test_make_dataset_refuses_folders_that_become_one_class(tmp_path):
    for shade, name in enumerate(("Cat_female", "cat_female")):
        (tmp_path / "src" / name).mkdir(parents=True)
        Image.new("RGB", (8, 8), (100 * shade, 0, 0)).save(tmp_path / "src" / name / f"{name}.png")
    result = run_cli("datasets/make_dataset.py", tmp_path / "src", tmp_path / "out.zip", "--resolution", "8")
    assert_one_line_error(result, "folders Cat_female and cat_female both become class 'cat_female'")
    assert not (tmp_path / "out.zip").exists()



def test_make_dataset_refuses_a_flat_and_a_nested_folder_of_one_class(tmp_path):
    (tmp_path / "src" / "a_male").mkdir(parents=True)
    (tmp_path / "src" / "b" / "male").mkdir(parents=True)
    (tmp_path / "src" / "b_male").mkdir(parents=True)
    for shade, folder in enumerate(("a_male", "b/male", "b_male")):
        Image.new("RGB", (8, 8), (90 * shade, 0, 0)).save(tmp_path / "src" / folder / "x.png")
    result = run_cli("datasets/make_dataset.py", tmp_path / "src", tmp_path / "out.zip", "--resolution", "8")
    assert_one_line_error(result, "both become class 'b_male'")
    assert not (tmp_path / "out.zip").exists()

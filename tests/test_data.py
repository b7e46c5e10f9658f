"""cstylegan.data.dataset: reading our zips, folders and NVlabs' zips; labels, class names, mirroring, errors."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cstylegan.data.dataset import DatasetError, ImageDataset, class_index
from cstylegan.data.writer import write_dataset_zip

COLOURS = {"red_male": (255, 0, 0), "red_female": (200, 0, 0), "blue_male": (0, 0, 255)}


def solid(colour, side=8):
    return np.full((side, side, 3), colour, np.uint8)


@pytest.fixture
def colours_zip(tmp_path):
    """Classes of 3, 2 and 1 solid-colour images, in that class order."""
    counts = {"red_male": 3, "red_female": 2, "blue_male": 1}
    return write_dataset_zip(tmp_path / "colours.zip", {c: [solid(COLOURS[c])] * n for c, n in counts.items()})


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "png")
    return buffer.getvalue()


def nvlabs_zip(path, images, labels):
    """A zip as NVlabs' dataset_tool writes it: 00000/img00000000.png and integer labels, no names."""
    with zipfile.ZipFile(path, "w") as archive:
        names = [f"00000/img{i:08d}.png" for i in range(len(images))]
        for name, image in zip(names, images):
            archive.writestr(name, png_bytes(image))
        pairs = None if labels is None else [list(pair) for pair in zip(names, labels)]
        archive.writestr("dataset.json", json.dumps({"labels": pairs}))
    return path


def test_items_labels_and_class_facts(colours_zip):
    data = ImageDataset(colours_zip)
    assert len(data) == 6
    assert (data.resolution, data.num_channels, data.c_dim, data.has_labels) == (8, 3, 3, True)
    assert data.class_names == ["red_male", "red_female", "blue_male"]
    assert data.class_counts == {"red_male": 3, "red_female": 2, "blue_male": 1}
    assert np.allclose(data.label_distribution, [0.5, 1 / 3, 1 / 6])
    assert data.attributes[0] in ({"style": "red", "gender": "male"}, {"style": "blue", "gender": "male"})
    for image, label in (data[i] for i in range(len(data))):
        assert image.shape == (3, 8, 8) and image.dtype == np.uint8
        assert label.dtype == np.float32 and label.sum() == 1
        cls = data.class_names[int(label.argmax())]
        assert tuple(image[:, 0, 0]) == COLOURS[cls]
    assert data.labels.shape == (6, 3) and data.labels.sum(0).tolist() == [3, 2, 1]


def test_without_labels(colours_zip):
    data = ImageDataset(colours_zip, use_labels=False)
    assert data.c_dim == 0 and data.has_labels
    assert data[0][1].shape == (0,) and data.labels.shape == (6, 0)


def test_class_index(colours_zip):
    data = ImageDataset(colours_zip)
    assert data.class_index("blue_male") == [2]
    assert data.class_index(1) == [1]
    assert data.class_index("red_male, 2") == [0, 2]
    assert data.class_index(["red_female", 0]) == [1, 0]
    assert class_index("all", data.class_names) == [0, 1, 2]
    with pytest.raises(ValueError, match="red_male, red_female, blue_male"):
        data.class_index("green_male")
    assert sorted(data.indices_of("red_female")) == [i for i in range(6) if data[i][1][1] == 1]


def test_xflip_doubles_with_mirrors(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, 0] = 255  # white left column
    data = ImageDataset(write_dataset_zip(tmp_path / "x.zip", {"a_male": [image]}), xflip=True)
    assert len(data) == 2 and data.labels.shape == (2, 1)
    original, mirrored = data[0][0], data[1][0]
    assert (original[:, :, 0] == 255).all() and (mirrored[:, :, -1] == 255).all() and (mirrored[:, :, 0] == 0).all()


def test_max_size_is_a_fixed_subset(colours_zip):
    first, second = ImageDataset(colours_zip, max_size=4), ImageDataset(colours_zip, max_size=4)
    assert len(first) == 4 and first.names == second.names


def test_folder_reads_like_the_zip(colours_zip, tmp_path):
    with zipfile.ZipFile(colours_zip) as archive:
        archive.extractall(tmp_path / "folder")
    folder, packed = ImageDataset(tmp_path / "folder"), ImageDataset(colours_zip)
    assert folder.names == packed.names and folder.class_names == packed.class_names
    assert all((folder[i][0] == packed[i][0]).all() for i in range(len(packed)))


def test_nvlabs_zip_gets_numbered_class_names(tmp_path):
    path = nvlabs_zip(tmp_path / "nv.zip", [solid(0), solid(100), solid(200)], [0, 2, 1])
    data = ImageDataset(path)
    assert data.class_names == ["class0", "class1", "class2"] and data.c_dim == 3
    assert data[1][1].tolist() == [0, 0, 1] and data.attributes == [{}, {}, {}]


def test_unlabelled_data_with_cond_is_an_error(tmp_path):
    path = nvlabs_zip(tmp_path / "nv.zip", [solid(0)], None)
    assert ImageDataset(path, use_labels=False).has_labels is False
    with pytest.raises(DatasetError, match="no class labels.*drop --cond"):
        ImageDataset(path, use_labels=True)


def test_picklable_for_workers(colours_zip):
    data = ImageDataset(colours_zip)
    data[0]  # opens the zip in this process
    copy = pickle.loads(pickle.dumps(data))
    assert (copy[3][0] == data[3][0]).all()
    loader = torch.utils.data.DataLoader(data, batch_size=6, num_workers=1)
    images, labels = next(iter(loader))
    assert images.shape == (6, 3, 8, 8) and images.dtype == torch.uint8 and labels.shape == (6, 3)


def text_file(path):
    path.parent.mkdir(exist_ok=True)
    path.write_text("hello")
    return path


def bad_zip(path, images):
    with zipfile.ZipFile(path, "w") as archive:
        for i, image in enumerate(images):
            archive.writestr(f"x/{i}.png", png_bytes(image))
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p / "absent.zip", "no such file or folder"),
        (lambda p: text_file(p / "a.txt"), "neither a zip file nor a folder"),
        (lambda p: bad_zip(p / "e.zip", []), "holds no images"),
        (lambda p: bad_zip(p / "m.zip", [solid(0, 8), solid(0, 16)]), "differ in size"),
        (lambda p: bad_zip(p / "n.zip", [np.zeros((8, 16, 3), np.uint8)]), "not square"),
        (lambda p: bad_zip(p / "t.zip", [solid(0, 12)]), "power-of-two"),
        (lambda p: text_file(p / "folder" / "broken.png").parent, "broken.png is not a readable image"),
    ],
)
def test_clear_errors(tmp_path, make, words):
    with pytest.raises(DatasetError, match=words) as error:
        ImageDataset(make(tmp_path), use_labels=False)
    assert "\n" not in str(error.value) and "datasets/make_dataset.py" in str(error.value)


def test_write_dataset_zip_keeps_duplicates_and_order(tmp_path):
    path = write_dataset_zip(tmp_path / "d.zip", {"zeta": [solid(1)] * 2, "alpha": [solid(1)]})
    data = ImageDataset(path)
    assert data.class_names == ["zeta", "alpha"] and data.class_counts == {"zeta": 2, "alpha": 1}
    assert data.attributes[-1] == {"class": "zeta"}


@pytest.mark.parametrize("info, words", [
    (["not", "an", "object"], "dataset.json holds a list, not an object"),
    ({"labels": {"x/0.png": 0}}, '"labels" is a dict, not a list of [image name, label]'),
    ({"labels": [[0, 0], [1, 0]]}, "label [0, 0] in dataset.json is not [name, class index]"),
    ({"labels": [["x/0.png", 0], ["x/1.png", 0]], "attributes": ["style"]}, '"attributes" is a list, not an object'),
    ({"labels": [["x/0.png", 0], ["x/1.png", 0]], "attributes": {"x/0.png": "emoji"}}, "are 'emoji', not an object"),
    ({"labels": [["x/0.png", 0], ["x/1.png", 0]], "class_names": "ab"}, '"class_names" is a str, not a list'),
])
def test_odd_dataset_json_shapes_are_one_line(tmp_path, info, words):
    from tests.conftest import REPO, assert_one_line_error, run_in_process

    path = bad_zip(tmp_path / "d.zip", [solid(0, 8), solid(1, 8)])
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("dataset.json", json.dumps(info))
    result = run_in_process("train.py", ["--data", path, "--cond", "--outdir", tmp_path / "runs", "--cfg", "small",
                                         "--batch", "8", "--workers", "0"], REPO)
    assert_one_line_error(result, str(path), words)
    assert not (tmp_path / "runs").exists()

"""datasets/make_dataset.py, run as a user runs it, on folders holding every awkward kind of file."""

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cstylegan.data.dataset import DatasetError, ImageDataset
from cstylegan.data.writer import DatasetWriter
from tests.conftest import run_cli

RED = (255, 0, 0)


def run(*args):
    return run_cli("datasets/make_dataset.py", *args)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0]


def solid(size, colour, mode="RGB"):
    return Image.new(mode, size, colour)


def noise(seed, size=(8, 8)):
    """A picture unlike any other, so the duplicate check leaves it alone."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8))


def half_black_left(side=32):
    """Left half black, right half white: its orientation is visible after any rotation."""
    array = np.full((side, side, 3), 255, np.uint8)
    array[:, : side // 2] = 0
    return Image.fromarray(array)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """SRC/<style>_<gender>/ with every input case the tool must handle, built once, converted once."""
    src = tmp_path_factory.mktemp("zoo")
    male, female, empty = src / "ghibli_male", src / "ghibli_female", src / "fireemblem_male"
    for folder in (male, female, empty):
        folder.mkdir()
    solid((64, 48), RED).save(male / "red.png")
    solid((48, 64), RED).save(male / "red_tall.png")  # crops to the same pixels: a duplicate
    solid((16, 16), 100, "L").save(male / "gray.png")
    solid((16, 16), 0, "P").save(male / "palette.png")  # default palette entry 0 is black
    transparent = np.zeros((16, 16, 4), np.uint8)
    transparent[:, :8] = (0, 0, 255, 255)  # left half opaque blue, right half fully transparent
    Image.fromarray(transparent).save(male / "transparent.png")
    Image.fromarray(np.full((16, 16), 65535, np.uint16)).save(male / "sixteen_white.png")
    Image.fromarray(np.full((16, 16), 32896, np.uint16)).save(male / "sixteen_mid.png")
    solid((16, 16), (255, 0, 255, 0), "CMYK").save(male / "cmyk.jpg", quality=95)  # green
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    half_black_left().save(female / "rotated.jpg", exif=exif, quality=95)
    half_black_left().save(female / "upright.png")
    (male / "notes.txt").write_text("not an image")
    (male / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, "png")
    (male / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (src / "stray.png").write_bytes(buffer.getvalue())
    out = src.parent / "zoo.zip"
    result = run(src, out, "--resolution", 16, "--source-note", "test pictures, CC0")
    return src, out, result


def image(dataset, name):
    return dataset[dataset.names.index(name)][0].transpose(1, 2, 0).astype(int)


def test_zoo_builds_and_summarises(zoo):
    _, out, result = zoo
    assert result.returncode == 0, result.stderr
    summary = result.stdout
    for name in ("corrupt.png", "truncated.png", "notes.txt", "stray.png"):
        assert name in summary
    assert "Files skipped (4; unreadable or misplaced)" in summary
    assert "red_tall.png = ghibli_male/red.png" in summary
    assert "Empty classes, left out: fireemblem_male" in summary
    assert re.search(r"ghibli_male +7\n", summary) and re.search(r"ghibli_female +2\n", summary)
    assert re.search(r"total +9\n", summary)
    assert not list(out.parent.glob(".*.part"))


def test_zoo_classes_and_metadata(zoo):
    _, out, _ = zoo
    with zipfile.ZipFile(out) as archive:
        info = json.loads(archive.read("dataset.json"))
    assert info["class_names"] == ["ghibli_female", "ghibli_male"]
    assert info["source_note"] == "test pictures, CC0"
    assert info["attributes"]["ghibli_male/gray.png"] == {"style": "ghibli", "gender": "male"}
    assert sorted(info["labels"]) == sorted(
        [[f"ghibli_female/{n}.png", 0] for n in ("rotated", "upright")]
        + [[f"ghibli_male/{n}.png", 1] for n in ("red", "gray", "palette", "transparent", "sixteen_white", "sixteen_mid")]
        + [["ghibli_male/cmyk.png", 1]]
    )


def test_zoo_pixels_round_trip(zoo):
    _, out, _ = zoo
    dataset = ImageDataset(out)
    assert (dataset.resolution, dataset.num_channels) == (16, 3)
    assert dataset.class_counts == {"ghibli_female": 2, "ghibli_male": 7}
    assert (image(dataset, "ghibli_male/red.png") == RED).all()
    assert (image(dataset, "ghibli_male/gray.png") == 100).all()
    assert (image(dataset, "ghibli_male/palette.png") == 0).all()
    transparent = image(dataset, "ghibli_male/transparent.png")
    assert (transparent[:, :7] == (0, 0, 255)).all() and (transparent[:, 9:] == 255).all()  # composited on white
    assert (image(dataset, "ghibli_male/sixteen_white.png") == 255).all()  # scaled, not clipped
    assert (image(dataset, "ghibli_male/sixteen_mid.png") == 128).all()
    cmyk = image(dataset, "ghibli_male/cmyk.png")
    assert (abs(cmyk - (0, 255, 0)) < 40).all()
    upright, rotated = image(dataset, "ghibli_female/upright.png"), image(dataset, "ghibli_female/rotated.png")
    assert upright[:, :4].max() == 0 and upright[:, -4:].min() == 255  # black on the left
    assert rotated[:4].max() < 40 and rotated[-4:].min() > 215  # EXIF applied: black on top
    label = dataset[dataset.names.index("ghibli_male/gray.png")][1]
    assert label.tolist() == [0.0, 1.0]


def test_pad_transform_uses_background(tmp_path):
    (tmp_path / "src" / "a_male").mkdir(parents=True)
    solid((32, 16), RED).save(tmp_path / "src" / "a_male" / "wide.png")
    out = tmp_path / "pad.zip"
    result = run(tmp_path / "src", out, "--resolution", 8, "--transform", "pad", "--background", "#0000ff")
    assert result.returncode == 0, result.stderr
    pixels = image(ImageDataset(out), "a_male/wide.png")
    blue = (0, 0, 255)
    assert (abs(pixels[0] - blue) < 20).all() and (abs(pixels[-1] - blue) < 20).all()
    assert (abs(pixels[3:5] - RED) < 20).all()


def test_nested_layout(tmp_path):
    src = tmp_path / "src"
    for i, path in enumerate(("Ghibli/Male/a.png", "Ghibli/Female/deeper/b.png", "Digital Art/female/c.png")):
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        noise(i).save(src / path)
    (src / "Ghibli" / "loose.png").write_bytes(b"x")
    out = tmp_path / "nested.zip"
    result = run(src, out, "--resolution", 4)
    assert result.returncode == 0, result.stderr
    assert "loose.png: not inside a <gender> folder" in result.stdout
    dataset = ImageDataset(out)
    assert dataset.class_names == ["digital-art_female", "ghibli_female", "ghibli_male"]
    assert dataset.attributes[0] == {"style": "digital-art", "gender": "female"}


def test_csv_layout_with_extra_columns(tmp_path):
    (tmp_path / "img").mkdir()
    for i, name in enumerate(("a", "b", "c")):
        noise(i).save(tmp_path / "img" / f"{name}.png")
    table = tmp_path / "faces.csv"
    table.write_text(
        "path,style,gender,age\n"
        "img/a.png,ghibli,male,young\n"
        "img/b.png,ghibli,female,old\n"
        f"{tmp_path / 'img' / 'c.png'},fireemblem,female,old\n"
        "img/missing.png,ghibli,male,young\n"
        "img/a.png,ghibli,,young\n"
    )
    out = tmp_path / "csv.zip"
    assert_one_line_error(run(table, out, "--resolution", 4), "columns age beside path,style,gender",
                          "--attributes style,gender,age")
    assert not out.exists()
    result = run(table, out, "--resolution", 4, "--attributes", "style,gender,age")
    assert result.returncode == 0, result.stderr
    assert "missing.png: line 5: no such file" in result.stdout
    assert "line 6 has no gender" in result.stdout
    dataset = ImageDataset(out)
    assert dataset.class_counts == {"fireemblem_female_old": 1, "ghibli_female_old": 1, "ghibli_male_young": 1}
    assert {"style": "ghibli", "gender": "male", "age": "young"} in dataset.attributes


def test_csv_without_required_columns(tmp_path):
    table = tmp_path / "bad.csv"
    table.write_text("file,style\nx.png,a\n")
    assert_one_line_error(run(table, tmp_path / "o.zip", "--resolution", 4), "path, gender")


def test_max_images_keeps_every_class(tmp_path):
    for c, cls in enumerate(("a_male", "a_female")):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for i in range(4):
            noise(10 * c + i).save(tmp_path / "src" / cls / f"{i}.png")
    out = tmp_path / "few.zip"
    assert run(tmp_path / "src", out, "--resolution", 4, "--max-images", 3).returncode == 0
    assert sorted(ImageDataset(out).class_counts.values()) == [1, 2]


def test_bad_resolution_fails_before_any_work(tmp_path):
    result = run(tmp_path / "does-not-exist", tmp_path / "o.zip", "--resolution", 48)
    assert_one_line_error(result, "power of two")
    assert_one_line_error(run(tmp_path, tmp_path / "o.zip", "--resolution", 2), "power of two")


def test_existing_output_needs_force(zoo, tmp_path):
    src, _, _ = zoo
    out = tmp_path / "existing.zip"
    out.write_bytes(b"keep me")
    assert_one_line_error(run(src, out, "--resolution", 4), "already exists", "--force")
    assert_one_line_error(run(src, out, "--resolution", 4, "--force=0"), "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    assert run(src, out, "--resolution", 4, "--force").returncode == 0
    assert run(src, out, "--resolution", 4, "--force=yes").returncode == 0
    assert zipfile.is_zipfile(out)
    out.write_bytes(b"old")
    before = run_cli("datasets/make_dataset.py", "--force", src, out, "--resolution", 4)  # a flag before the arguments
    assert before.returncode == 0, before.stderr
    assert zipfile.is_zipfile(out)


@pytest.mark.parametrize(
    "name, words",
    [("absent", ["no such folder"]), ("notes.txt", ["neither a folder nor a .csv"]), (".", ["no image files"])],
)
def test_bad_sources(tmp_path, name, words):
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "notes.txt").write_text("")
    assert_one_line_error(run(tmp_path / name, tmp_path / "o.zip", "--resolution", 4), *words)
    assert not (tmp_path / "o.zip").exists()


def test_only_unreadable_files_is_an_error(tmp_path):
    (tmp_path / "src" / "a_male").mkdir(parents=True)
    (tmp_path / "src" / "a_male" / "x.png").write_bytes(b"junk")
    out = tmp_path / "o.zip"
    assert_one_line_error(run(tmp_path / "src", out, "--resolution", 4), "readable image")
    assert not out.exists() and not list(tmp_path.glob(".*.part"))


def test_interrupted_write_leaves_nothing(tmp_path):
    out = tmp_path / "o.zip"
    with pytest.raises(KeyboardInterrupt):
        with DatasetWriter(out, 4) as writer:
            writer.add(np.zeros((4, 4, 3), np.uint8), "a", {"class": "a"})
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def write_csv_set(tmp_path, header: str, rows: list, encoding="utf-8") -> Path:
    for i in range(len(rows)):
        noise(100 + i).save(tmp_path / f"{i}.png")
    table = tmp_path / "t.csv"
    table.write_text("\n".join([header, *rows]) + "\n", encoding=encoding)
    return table


def test_a_csv_column_that_differs_in_every_row_is_refused_or_left_out(tmp_path):
    rows = [f"{i}.png,s{i % 2},{'male' if i < 3 else 'female'},id{i}" for i in range(6)]
    table = write_csv_set(tmp_path, "path,style,gender,id", rows)
    assert_one_line_error(run(table, tmp_path / "o.zip", "--resolution", 8, "--attributes", "style,gender,id"),
                          "column 'id' differs in every row", "--attributes style,gender")
    assert run(table, tmp_path / "o.zip", "--resolution", 8, "--attributes", "style,gender").returncode == 0
    assert sorted(ImageDataset(tmp_path / "o.zip").class_names) == ["s0_female", "s0_male", "s1_female", "s1_male"]


def test_csv_rows_with_extra_fields_are_skipped_and_named(tmp_path):
    table = write_csv_set(tmp_path, "path,style,gender", ["0.png,a,male", "1.png,a,female,stray", "2.png,b,male"])
    result = run(table, tmp_path / "o.zip", "--resolution", 8)
    assert result.returncode == 0, result.stderr
    assert "line 3 has 4 fields, the header 3" in result.stdout and len(ImageDataset(tmp_path / "o.zip")) == 2


def test_a_latin1_csv_is_one_line(tmp_path):
    table = write_csv_set(tmp_path, "path,style,gender", ["0.png,café,male"], encoding="latin-1")
    assert_one_line_error(run(table, tmp_path / "o.zip", "--resolution", 8), "is not UTF-8", "save it as UTF-8")


def test_resolution_has_an_upper_bound(tmp_path):
    assert_one_line_error(run(tmp_path, tmp_path / "o.zip", "--resolution", 32768), "from 4 to 4096")


@pytest.mark.parametrize("labels, class_names, words", [
    ([0, 1000000], None, "'class1' (label 1) has no images, and 999998 more"),
    ([0, 0], ["a", "b"], "class 'b' (label 1) has no images"),
])
def test_the_loader_refuses_classes_without_images(tmp_path, labels, class_names, words):
    out = tmp_path / "d.zip"
    with zipfile.ZipFile(out, "w") as archive:
        for i in range(len(labels)):
            buffer = io.BytesIO()
            noise(i).save(buffer, "png")
            archive.writestr(f"{i}.png", buffer.getvalue())
        info = {"labels": [[f"{i}.png", label] for i, label in enumerate(labels)]}
        archive.writestr("dataset.json", json.dumps({**info, **({"class_names": class_names} if class_names else {})}))
    with pytest.raises(DatasetError, match=re.escape(words)):
        ImageDataset(out)

"""datasets/extract_faces.py, run as a user runs it, on a real photo: scikit-image's astronaut.png
(Eileen Collins, NASA, public domain), which the scikit-image wheel ships."""

import importlib.util
import json
import os
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cstylegan.generation.video import mp4_writer
from tests.conftest import run_cli

SCRIPT = "datasets/extract_faces.py"
# What OpenCV 5 looks like to the script: cv2.data is there, the cascade files are not.
OPENCV_5 = "import types\n__version__ = '5.0.0'\ndata = types.SimpleNamespace(haarcascades='no-cascades-here/')"
# Where her face is in the 512 x 512 photo: eyes at about (203, 101) and (246, 104), mouth (223, 140).
FACE_CENTRE = (224, 115)
FACE_SIDE = 95  # Haar's box reaches from the eyebrows to below the mouth
# FFHQ's recipe puts the eyes of a frontal face here, as fractions of the side (NVlabs' 1024 px images: 384/640, 490).
FFHQ_EYES = ((0.375, 0.478), (0.625, 0.478))


def shipped_astronaut() -> Path:
    """The photo inside the installed package, found without importing scikit-image (and so never fetched)."""
    spec = importlib.util.find_spec("skimage")
    assert spec, "scikit-image is in requirements.txt: pip install -r requirements.txt"
    path = Path(spec.submodule_search_locations[0]) / "data" / "astronaut.png"
    assert path.is_file(), f"{path} is not in the installed scikit-image"
    return path


@pytest.fixture
def astronaut(tmp_path) -> Path:
    return Path(shutil.copy(shipped_astronaut(), tmp_path / "astronaut.png"))


def extract(*args):
    result = run_cli(SCRIPT, *map(str, args))
    assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0]


def locate(crop: np.ndarray, photo: np.ndarray) -> tuple:
    """(centre x, centre y, side, match score) of the square of `photo` that `crop` was cut from."""
    best = (-1.0, None, None)
    for side in range(60, 180, 2):
        template = np.asarray(Image.fromarray(crop).resize((side, side), Image.Resampling.LANCZOS))
        scores = cv2.matchTemplate(photo, template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (x, y) = cv2.minMaxLoc(scores)
        if score > best[0]:
            best = (score, (x + side / 2, y + side / 2), side)
    score, centre, side = best
    return *centre, side, score


def eyes(image: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks found afresh in an output crop: the centres of its two eyes, left first."""
    import dlib

    models = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]) / "models"
    boxes = dlib.get_frontal_face_detector()(image, 1)
    assert len(boxes) >= 1
    shape = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))(image, boxes[0])
    points = np.array([(p.x, p.y) for p in shape.parts()], float) + 0.5
    return np.array([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])


@pytest.mark.slow
@pytest.mark.parametrize("margin", [0.0, 0.25])
def test_haar_finds_exactly_her_face(astronaut, tmp_path, margin):
    out = tmp_path / "faces" / "astronaut_female"
    result = extract(astronaut, "--out", out, "--resolution", 128, "--margin", margin)
    assert "Files read: 1, frames: 1, faces found: 1, kept: 1, smaller than --min-size 64 px: 0" in result.stdout
    assert [p.name for p in out.iterdir()] == ["astronaut_0_0.png"]
    crop = Image.open(out / "astronaut_0_0.png")
    assert crop.size == (128, 128) and crop.mode == "RGB"

    x, y, side, score = locate(np.asarray(crop), np.asarray(Image.open(astronaut)))
    assert score > 0.95
    assert abs(x - FACE_CENTRE[0]) < 12 and abs(y - FACE_CENTRE[1]) < 12
    assert abs(side - FACE_SIDE * (1 + 2 * margin)) < 12

    sheet = np.asarray(Image.open(tmp_path / "faces" / "astronaut_female_sheet.png"))
    assert sheet.shape[1] == 128 and 128 < sheet.shape[0] < 160  # one face, its name in a band beneath
    assert np.array_equal(sheet[:128, :128], np.asarray(crop))


def test_min_size_above_her_face_keeps_nothing(astronaut, tmp_path):
    result = extract(astronaut, "--out", tmp_path / "faces", "--min-size", 200)
    assert "faces found: 1, kept: 0, smaller than --min-size 200 px: 1" in result.stdout
    assert list((tmp_path / "faces").iterdir()) == []
    assert not (tmp_path / "faces_sheet.png").exists()


@pytest.mark.slow
def test_video_every_fifth_frame(astronaut, tmp_path):
    """10 frames, --every 5: frames 0 and 5 are read, each gives her face."""
    frame = np.asarray(Image.open(astronaut))
    writer = mp4_writer(tmp_path / "clip.mp4", (512, 512), fps=10)
    writer.send(None)
    for _ in range(10):
        writer.send(frame)
    writer.close()
    result = extract(tmp_path / "clip.mp4", "--out", tmp_path / "faces", "--every", 5, "--resolution", 64)
    assert "Files read: 1, frames: 2, faces found: 2, kept: 2" in result.stdout
    assert sorted(p.name for p in (tmp_path / "faces").iterdir()) == ["clip_0_0.png", "clip_5_0.png"]


@pytest.mark.slow
def test_folder_skips_unreadable_files_and_its_own_output(astronaut, tmp_path):
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    shutil.copy(astronaut, photos / "astronaut.png")
    shutil.copy(astronaut, photos / "more" / "astronaut.jpg")  # same stem: its crops get another name
    shutil.copy(astronaut, photos / ".hidden.png")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    (photos / "broken.mp4").write_bytes(b"not a video")
    (photos / "notes.txt").write_text("not looked at")
    out = photos / "faces"

    for _ in range(2):  # the second run replaces the first run's crops (--force) and must not crop them
        result = extract(photos, "--out", out, "--resolution", 64, "--force")
        assert "Files read: 2, frames: 2, faces found: 2, kept: 2" in result.stdout
        warnings = result.stderr.strip().splitlines()
        assert len(warnings) == 2 and all(w.startswith("Warning: ") for w in warnings), result.stderr
        assert "broken.jpg" in result.stderr and "broken.mp4" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["astronaut-2_0_0.png", "astronaut_0_0.png"]


@pytest.mark.slow
def test_output_folder_is_a_class_folder_for_make_dataset(astronaut, tmp_path):
    extract(astronaut, "--out", tmp_path / "faces" / "astronaut_female", "--resolution", 64)
    result = run_cli("datasets/make_dataset.py", str(tmp_path / "faces"), str(tmp_path / "faces.zip"),
                     "--resolution", "64")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "faces.zip") as archive:
        meta = json.loads(archive.read("dataset.json"))
    assert meta["class_names"] == ["astronaut_female"] and len(meta["labels"]) == 1


@pytest.mark.parametrize("args, words", [
    (["EMPTY"], ["no image or video files"]),
    (["PHOTO", "--min-size", "0"], ["--min-size 0"]),
    (["PHOTO", "--every", "0"], ["--every 0"]),
    (["PHOTO", "--resolution", "100"], ["power of two"]),
    (["PHOTO", "--margin", "-0.1"], ["--margin"]),
    (["PHOTO", "--margin", "nan"], ["--margin", "not a finite number"]),
    (["PHOTO", "--sheet", "PHOTO"], ["--sheet", "is the same file as the input"]),
    (["PHOTO", "--sheet", "sheet.txt"], ["--sheet", ".txt is not an image format"]),
    (["PHOTO", "--align"], ["--align", "--detector dlib"]),
    (["PHOTO", "--detector", "retina"], ["retina"]),
    (["NOWHERE"], ["does not exist"]),
])
def test_bad_input_is_a_one_line_error(astronaut, tmp_path, args, words):
    (tmp_path / "empty").mkdir()
    names = {"EMPTY": tmp_path / "empty", "PHOTO": astronaut, "NOWHERE": tmp_path / "nowhere.png"}
    result = run_cli(SCRIPT, *[str(names.get(a, a)) for a in args], "--out", str(tmp_path / "faces"))
    assert_one_line_error(result, *words)


def test_a_hard_link_to_a_photo_is_no_sheet(astronaut, tmp_path):
    os.link(astronaut, tmp_path / "link.png")
    result = run_cli(SCRIPT, str(astronaut), "--out", str(tmp_path / "faces"), "--sheet", str(tmp_path / "link.png"))
    assert_one_line_error(result, "is the same file as the input")
    assert Image.open(tmp_path / "link.png").size == (512, 512) and not (tmp_path / "faces").exists()


def test_crops_already_in_the_folder_need_force_and_an_input_is_never_replaced(astronaut, tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    (faces / "astronaut_0_0.png").write_bytes(b"the user's own file")
    result = run_cli(SCRIPT, str(astronaut), "--out", str(faces))
    assert_one_line_error(result, "already holds 1 crops", "astronaut_0_0.png", "--force")
    assert (faces / "astronaut_0_0.png").read_bytes() == b"the user's own file"
    assert sorted(tmp_path.iterdir()) == [astronaut, faces]  # no sheet either
    shutil.copy(astronaut, faces / "astronaut_0_0.png")  # now an input that a crop of astronaut.png would replace
    result = run_cli(SCRIPT, str(astronaut), str(faces / "astronaut_0_0.png"), "--out", str(faces), "--force")
    assert_one_line_error(result, "is an input", "move it out of --out")
    assert Image.open(faces / "astronaut_0_0.png").size == (512, 512)


def test_nothing_readable_is_an_error_after_the_warnings(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    result = run_cli(SCRIPT, str(tmp_path / "broken.png"), "--out", str(tmp_path / "faces"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith("Warning: ") and "broken.png" in warning
    assert error == "Error: none of the 1 input files could be read as an image or a video"


@pytest.mark.parametrize("detector, module, stub, words", [
    ("haar", "cv2", "raise ImportError('blocked by a test')", ["opencv-python", "pip install"]),
    ("haar", "cv2", OPENCV_5, ["OpenCV 4", "no Haar cascades", "pip install 'opencv-python<5'"]),
    ("anime", "animeface", "raise ImportError('blocked by a test')", ["animeface", "pip install animeface"]),
    ("dlib", "dlib", "raise ImportError('blocked by a test')",
     ["dlib-bin", "face-recognition-models", "pip install dlib-bin face-recognition-models"]),
])
def test_missing_detector_package_is_a_one_line_error(astronaut, tmp_path, monkeypatch, detector, module, stub, words):
    """A module of that name first on PYTHONPATH stands in for the package not being there (or being OpenCV 5)."""
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / f"{module}.py").write_text(stub + "\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "blocked"))
    result = run_cli(SCRIPT, str(astronaut), "--out", str(tmp_path / "faces"), "--detector", detector)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "faces").exists()


def test_anime_detector_finds_no_drawn_face_in_a_photo(astronaut, tmp_path):
    """No drawing ships in a package, so this only shows the AnimeFace path runs; AnimeFace looks for drawn faces."""
    result = extract(astronaut, "--out", tmp_path / "faces", "--detector", "anime")
    assert "Files read: 1, frames: 1, faces found: 0, kept: 0" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("turn", [0, 20])
def test_dlib_aligns_her_eyes_where_ffhq_puts_them(astronaut, tmp_path, turn):
    """Even with the photo turned 20 degrees, the eyes come out level, at FFHQ's places."""
    if importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None:
        reason = "needs dlib-bin and face-recognition-models (requirements.txt): pip install -r requirements.txt"
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)
    photo = tmp_path / "turned.png"
    Image.open(astronaut).rotate(turn, Image.Resampling.BICUBIC, center=FACE_CENTRE).save(photo)
    out = tmp_path / "faces"
    extract(photo, "--out", out, "--detector", "dlib", "--resolution", 256)
    crop = np.asarray(Image.open(out / "turned_0_0.png"))  # k = 0: dlib's most confident face
    assert crop.shape == (256, 256, 3)
    found = eyes(crop)
    assert np.abs(found - np.array(FFHQ_EYES) * 256).max() < 6, found
    assert abs(found[0, 1] - found[1, 1]) < 3  # level

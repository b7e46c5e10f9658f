"""Turn folders of images, one per art style and gender, into one training zip with named classes.

    python datasets/make_dataset.py faces/ faces256.zip --resolution 256

SRC is laid out as SRC/<style>_<gender>/*, SRC/<style>/<gender>/*, or is a CSV file with the
columns path,style,gender (more columns with --attributes naming those that make the class;
paths relative to the CSV).
NVlabs' dataset_tool writes integer labels only; this zip also names its classes
(`ghibli_male`) and records each image's attributes and where the images came from.
"""

import csv
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
from PIL import ImageColor
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.data.image_prep import UnreadableImage, center_crop, load_rgb, pad  # noqa: E402
from cstylegan.data.writer import (  # noqa: E402
    DatasetError,
    DatasetWriter,
    attributes_from_name,
    check_output,
    check_resolution,
    class_name,
)
from cstylegan.runtime.cli import Command, bool_option  # noqa: E402

REQUIRED_COLUMNS = ("path", "style", "gender")


@dataclass
class Found:
    """What SRC holds: (image path, attributes) pairs, files passed over and class folders with no files."""

    sources: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (path, reason)
    empty: list = field(default_factory=list)  # class names


def clean(value: str) -> str:
    """Class names are typed on command lines: lower case, no spaces or slashes."""
    return re.sub(r"[\s/\\]+", "-", value.strip().lower())


def visible(path: Path) -> bool:
    return not path.name.startswith(".")


def visible_file(path: Path) -> bool:
    """Any visible file: a non-image is reported as skipped rather than silently ignored."""
    return path.is_file() and visible(path)


def from_folders(src: Path) -> Found:
    """SRC/<style>_<gender>/* (files) or SRC/<style>/<gender>/** (any depth below the gender folder)."""
    found = Found()
    folder_of = {}  # class name -> the folder it came from
    for entry in sorted(filter(visible, src.iterdir())):
        if entry.is_file():
            found.skipped.append((entry, "not inside a class folder"))
            continue
        children = sorted(filter(visible, entry.iterdir()))
        genders = [c for c in children if c.is_dir()]
        if not genders:
            classes = [(attributes_from_name(clean(entry.name)), entry, children)]
        else:
            found.skipped += [(c, f"not inside a <gender> folder of {entry.name}/") for c in children if c.is_file()]
            classes = [({"style": clean(entry.name), "gender": clean(g.name)}, g,
                        sorted(filter(visible_file, g.rglob("*")))) for g in genders]
        for attributes, folder, files in classes:
            twin = folder_of.setdefault(class_name(attributes), folder)
            if twin != folder:
                raise DatasetError(f"folders {twin.relative_to(src)} and {folder.relative_to(src)} both become class "
                                   f"{class_name(attributes)!r} (names are lower-cased, spaces become '-'); rename "
                                   "one, or move its images into the other")
            if files:
                found.sources += [(path, attributes) for path in files]
            else:
                found.empty.append(class_name(attributes))
    return found


def from_csv(table: Path, attribute_columns=None) -> Found:
    """Rows path,style,gender[,more]: the class is the values of `attribute_columns` (default:
    style,gender) joined by `_`. Other columns without --attributes are refused, naming them:
    silently joined, a column such as a caption or a date would split every class."""
    found = Found()
    try:
        with open(table, newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
    except UnicodeDecodeError as error:
        raise DatasetError(f"{table} is not UTF-8 text (byte {error.start}); save it as UTF-8 (e.g. from a "
                           "spreadsheet: CSV UTF-8)") from None
    columns = [c.strip() for c in (rows[0] if rows else [])]
    required = ("path", *attribute_columns) if attribute_columns else REQUIRED_COLUMNS
    missing = [c for c in required if c not in columns]
    if missing:
        raise DatasetError(f"{table}: no column {', '.join(missing)}; the first line must name {','.join(required)}")
    extra = [c for c in columns if c not in REQUIRED_COLUMNS]
    if extra and not attribute_columns:
        raise DatasetError(f"{table}: columns {', '.join(extra)} beside path,style,gender; pick the columns that make "
                           f"the class with --attributes, e.g. --attributes style,gender (the others left out) or "
                           f"--attributes style,gender,{extra[0]}")
    attribute_columns = list(attribute_columns or REQUIRED_COLUMNS[1:])
    for line, fields in enumerate(rows[1:], start=2):
        if len(fields) != len(columns):
            found.skipped.append((table, f"line {line} has {len(fields)} fields, the header {len(columns)}"))
            continue
        row = {name: value for name, value in zip(columns, fields)}
        path = Path(row["path"].strip())
        path = path if path.is_absolute() else table.parent / path
        attributes = {c: clean(row[c]) for c in attribute_columns}
        blank = [c for c, v in attributes.items() if not v]
        if blank:
            found.skipped.append((path, f"line {line} has no {', '.join(blank)}"))
        elif not path.is_file():
            found.skipped.append((path, f"line {line}: no such file"))
        else:
            found.sources.append((path, attributes))
    check_not_one_class_per_image(table, found.sources, attribute_columns)
    return found


def check_not_one_class_per_image(table: Path, sources: list, attribute_columns: list) -> None:
    """A column such as an id or a URL would make every image a class of its own: refuse it."""
    if len(sources) < 4:
        return
    for column in attribute_columns:
        if len({attributes[column] for _, attributes in sources}) == len(sources):
            others = [c for c in attribute_columns if c != column]
            raise DatasetError(f"{table}: column {column!r} differs in every row, so each image would be a class of "
                               f"its own; pass --attributes {','.join(others) or 'style,gender'} to leave it out")


def interleave(sources: list) -> list:
    """Take images class by class in turn, so a --max-images subset still holds every class."""
    by_class = {}
    for path, attributes in sources:
        by_class.setdefault(class_name(attributes), []).append((path, attributes))
    queues = [by_class[name] for name in sorted(by_class)]
    order = [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]
    return order


def convert(path: Path, resolution: int, transform: str, background, channels: int = 3) -> tuple:
    """(HxWx3 uint8 image, or HxW grey with channels 1, and whether it had to be enlarged)."""
    image = load_rgb(path)
    short = min(image.size) if transform == "center-crop" else max(image.size)
    square = center_crop(image, resolution) if transform == "center-crop" else pad(image, resolution, background)
    return np.asarray(square.convert("L") if channels == 1 else square), short < resolution


def report(out: Path, counts: dict, found: Found, duplicates: list, upscaled: int, src: Path) -> None:
    """The per-class table, then every file left out and why."""

    def show(path):
        try:
            return Path(path).relative_to(src).as_posix()
        except ValueError:
            return str(path)

    width = max(len("class"), *map(len, counts))
    click.echo(f"Wrote {out}: {sum(counts.values())} images in {len(counts)} classes")
    click.echo(f"  {'class':<{width}}  images")
    for name, n in counts.items():
        click.echo(f"  {name:<{width}}  {n:>6}")
    click.echo(f"  {'total':<{width}}  {sum(counts.values()):>6}")
    if found.skipped:
        click.echo(f"Files skipped ({len(found.skipped)}; unreadable or misplaced):")
        for path, reason in found.skipped:
            click.echo(f"  {show(path)}: {reason}")
    if duplicates:
        click.echo(f"Duplicates skipped ({len(duplicates)}; same pixels as an image already written):")
        for path, earlier in duplicates:
            click.echo(f"  {show(path)} = {earlier}")
    if found.empty:
        click.echo(f"Empty classes, left out: {', '.join(found.empty)}")
    if upscaled:
        click.echo(f"Enlarged {upscaled} images smaller than the resolution; they may look blurry")


def make_dataset(src: Path, out: Path, resolution: int, transform: str, background: str, max_images, source_note, force,
                 channels: int = 3, attribute_columns=None):
    """Check every option, find the images, write the zip, print the summary."""
    check_resolution(resolution)
    check_output(out, force)
    if max_images is not None and max_images < 1:
        raise DatasetError(f"--max-images {max_images}: give a number >= 1")
    try:
        background = ImageColor.getrgb(background)[:3]
    except ValueError as error:
        raise DatasetError(f"--background {background!r} is not a colour; give a name like white or #rrggbb") from error
    if not src.exists():
        raise DatasetError(f"{src}: no such folder or CSV file; give the folder of class folders or a CSV")
    if src.is_dir():
        found = from_folders(src)
    elif src.suffix.lower() == ".csv":
        found = from_csv(src, attribute_columns)
    else:
        raise DatasetError(f"{src} is neither a folder nor a .csv file; give the folder of class folders or a CSV")
    if not found.sources:
        raise DatasetError(f"{src} holds no image files in class folders; lay it out as SRC/<style>_<gender>/*.png")

    metadata = {"source_note": source_note} if source_note else {}
    classes = {class_name(a) for _, a in found.sources}
    duplicates, upscaled = [], 0
    with DatasetWriter(out, resolution, force=force, metadata=metadata) as writer:
        order = interleave(found.sources)
        with tqdm(total=min(len(order), max_images or len(order)), unit="img", desc="images", disable=None) as bar:
            for path, attributes in order:
                try:
                    image, enlarged = convert(path, resolution, transform, background, channels)
                except UnreadableImage as error:
                    found.skipped.append((path, str(error)))
                    continue
                earlier = writer.add(image, path.stem, attributes)
                if earlier:
                    duplicates.append((path, earlier))
                    continue
                upscaled += enlarged
                bar.update()
                if len(writer.entries) == max_images:
                    break
        counts = writer.class_counts()
        if not counts:
            path, reason = found.skipped[-1]
            raise DatasetError(f"none of the {len(order)} files in {src} is a readable image (e.g. {path.name}: {reason})")
    if max_images is None:
        found.empty += sorted(classes - set(counts))
    report(out, counts, found, duplicates, upscaled, src)


@click.command(cls=Command)
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--resolution", type=int, required=True, help="Side of the square images, a power of two (e.g. 256).")
@click.option("--transform", type=click.Choice(["center-crop", "pad"]), default="center-crop", show_default=True,
              help="Non-square images: crop the centre square, or pad to a square with --background.")
@click.option("--background", default="white", show_default=True, help="Padding colour for --transform pad (#rrggbb).")
@click.option("--max-images", type=int, help="Stop after this many images, taken from the classes in turn.")
@click.option("--source-note", help="Where the images come from and their licence; stored in dataset.json.")
@click.option("--channels", type=click.Choice(["1", "3"]), default="3", show_default=True,
              help="3 = RGB; 1 = grey (ITU-R 601 luma), for grey data such as scans: train.py then trains a 1-channel "
                   "model. Transparency is flattened onto white first either way.")
@click.option("--attributes", "attribute_columns", help="With a CSV: the columns that make the class, joined by _ "
              "in this order (e.g. style,gender); other columns are left out. Needed when the CSV has columns beyond "
              "path,style,gender.  [default: style,gender]")
@bool_option("--force", default=False, help="Overwrite OUT if it exists.")
def main(src, out, resolution, transform, background, max_images, source_note, channels, attribute_columns, force):
    """Make OUT.zip (PNG images + dataset.json with class names) from the images in SRC."""
    columns = [c.strip() for c in attribute_columns.split(",") if c.strip()] if attribute_columns else None
    make_dataset(src, out, resolution, transform, background, max_images, source_note, force, int(channels), columns)


if __name__ == "__main__":
    main()

"""How a training zip is written: PNG images plus a dataset.json that NVlabs' loaders read.

NVlabs' `dataset.json` holds only `"labels": [[path, class_index], ...]`. Ours adds
`"class_names"` (index -> name), `"attributes"` (path -> {"style": ..., "gender": ...}),
`"resolution"` and whatever metadata the caller passes (source note, licences), so the zip
says what its classes are and where its images came from. Every tool that makes a zip
(datasets/make_dataset.py, datasets/emoji.py, tests) goes through `DatasetWriter`.
"""

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from cstylegan.data.classes import check_class_names
from cstylegan.runtime.errors import UserError
from cstylegan.runtime.files import user_file_mode

JSON_NAME = "dataset.json"


class DatasetError(UserError):
    """A data set, or a path to write one, that cannot be used; the message names the fix."""


MAX_RESOLUTION = 4096  # 48 MiB per RGB image; StyleGAN's largest published models are 1024 px


def check_resolution(resolution: int) -> int:
    """StyleGAN grows from 4x4 by doubling, so only powers of two >= 4 can be trained."""
    if resolution < 4 or resolution & (resolution - 1) or resolution > MAX_RESOLUTION:
        raise DatasetError(f"resolution {resolution} is not a power of two from 4 to {MAX_RESOLUTION}; use e.g. 64, "
                           "128, 256, 512 or 1024")
    return resolution


def check_output(out_path, force: bool) -> Path:
    """Refuse a non-zip name, or an existing file without --force, before any work is done."""
    out = Path(out_path)
    if out.suffix.lower() != ".zip":
        raise DatasetError(f"{out}: the output must be a .zip file; give a name ending in .zip")
    if out.is_dir():
        raise DatasetError(f"{out} is a folder; give the path of a .zip file to write")
    if out.exists() and not force:
        raise DatasetError(f"{out} already exists; pass --force to overwrite it, or choose another name")
    return out


def class_name(attributes: dict) -> str:
    """A class is named by its attribute values joined by `_`, e.g. {style: ghibli, gender: male} -> ghibli_male."""
    return "_".join(attributes.values())


def attributes_from_name(name: str) -> dict:
    """`<style>_<gender>` (split at the last `_`) -> {style, gender}; a name without `_` -> {class: name}."""
    style, sep, gender = name.rpartition("_")
    return {"style": style, "gender": gender} if sep and style and gender else {"class": name}


class DatasetWriter:
    """Stream RGB images into a zip built beside OUT and renamed onto it only when complete.

    Use as a context manager; an exception (or Ctrl-C) inside the block deletes the partial
    file, so an interrupted run never leaves a broken OUT. With `skip_duplicates`, an image
    whose pixels equal an earlier one is not written and `add` names the earlier entry.
    """

    def __init__(self, out_path, resolution: int, *, force=False, skip_duplicates=True, class_order=(), metadata=None):
        self.resolution = check_resolution(resolution)
        self.out = check_output(out_path, force)
        self.skip_duplicates = skip_duplicates
        self.class_order = list(class_order)
        self.metadata = dict(metadata or {})
        self.entries = {}  # zip name -> attributes, in the order written
        self.class_names = []  # each checked once, when its first image comes
        self.hashes = {}  # pixel digest -> zip name
        self.zip = None
        self.temp_path = None

    def __enter__(self):
        self.out.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.out.parent, prefix=f".{self.out.name}.", suffix=".part")
        self.temp_path = Path(temp)
        self.zip = zipfile.ZipFile(os.fdopen(fd, "wb"), "w", compression=zipfile.ZIP_STORED)
        return self

    def add(self, image: np.ndarray, stem: str, attributes: dict):
        """Write one HxWx3 (RGB) or HxW (grey) uint8 image as `<class>/<stem>.png`; return the entry it
        duplicates, else None."""
        if image.shape not in ((self.resolution, self.resolution, 3), (self.resolution, self.resolution)) \
                or image.dtype != np.uint8:
            raise DatasetError(
                f"image {stem!r} is {image.dtype} {image.shape}, expected uint8 "
                f"({self.resolution}, {self.resolution}, 3) or ({self.resolution}, {self.resolution}); resize it to "
                "the data set's resolution"
            )
        new_class = class_name(attributes)
        if new_class not in self.class_names:
            self.class_names = check_class_names([*self.class_names, new_class], self.out)
        digest = hashlib.sha1(np.ascontiguousarray(image).data).hexdigest()
        if self.skip_duplicates and digest in self.hashes:
            return self.hashes[digest]
        name = self._unique_name(class_name(attributes), stem)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="png", compress_level=1)
        self.zip.writestr(name, buffer.getvalue())
        self.entries[name] = dict(attributes)
        self.hashes.setdefault(digest, name)
        return None

    def _unique_name(self, cls: str, stem: str) -> str:
        stem = stem.replace("/", "-").replace("\\", "-")
        name, n = f"{cls}/{stem}.png", 1
        while name in self.entries:
            n += 1
            name = f"{cls}/{stem}-{n}.png"
        return name

    def class_counts(self) -> dict:
        """Images written per class, in class-index order."""
        counts = {}
        for attributes in self.entries.values():
            counts[class_name(attributes)] = counts.get(class_name(attributes), 0) + 1
        rank = {name: i for i, name in enumerate(self.class_order)}
        return {name: counts[name] for name in sorted(counts, key=lambda c: (rank.get(c, len(rank)), c))}

    def __exit__(self, exc_type, exc, tb):
        complete = False
        try:
            if exc_type is None:
                self._write_json()
                complete = True
        finally:
            fp = self.zip.fp
            self.zip.close()
            fp.close()
            if complete:
                os.chmod(self.temp_path, user_file_mode())  # mkstemp makes it private; OUT is an ordinary file
                os.replace(self.temp_path, self.out)
            else:
                self.temp_path.unlink(missing_ok=True)
        return False

    def _write_json(self) -> None:
        if not self.entries:
            raise DatasetError(f"no images to write to {self.out}; check that the input has readable images")
        class_names = list(self.class_counts())
        index = {name: i for i, name in enumerate(class_names)}
        info = {
            **self.metadata,
            "labels": [[name, index[class_name(a)]] for name, a in self.entries.items()],
            "class_names": class_names,
            "attributes": self.entries,
            "resolution": self.resolution,
        }
        self.zip.writestr(JSON_NAME, json.dumps(info, indent=1, ensure_ascii=False))


def write_dataset_zip(out_path, images_by_class: dict, *, attributes_by_class=None, metadata=None, force=False) -> Path:
    """A small labelled zip from arrays, for tests: {class name: [HxWx3 or HxW uint8 array, ...]}.

    Class indices follow the dict's order; attributes default to `attributes_from_name`.
    Identical images are all kept (solid-colour test classes are duplicates by design).
    """
    arrays = {name: [np.asarray(a) for a in images] for name, images in images_by_class.items()}
    first = next((a for images in arrays.values() for a in images), None)
    if first is None:
        raise DatasetError("images_by_class holds no images; give at least one array")
    attributes_by_class = attributes_by_class or {}
    with DatasetWriter(
        out_path, first.shape[0], force=force, skip_duplicates=False, class_order=list(arrays), metadata=metadata
    ) as writer:
        for name, images in arrays.items():
            attributes = attributes_by_class.get(name) or attributes_from_name(name)
            if class_name(attributes) != name:
                joined = class_name(attributes)
                raise DatasetError(f"class {name!r}: its attributes {attributes} join to {joined!r}; make them match")
            for i, image in enumerate(images):
                image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
                writer.add(image.astype(np.uint8), f"{i:06d}", attributes)
    return writer.out

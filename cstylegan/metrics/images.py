"""The real images a metric compares against: a training data set or a plain folder of images,
read in a fixed order, with a fingerprint of their content and labels for the statistics cache."""

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from cstylegan.data.dataset import IMAGE_EXTENSIONS
from cstylegan.metrics.errors import MetricError


class ImageSet:
    """`count` images with optional labels; `batches()` yields lists of uint8 CHW arrays.

    `labels` holds class indices (None when the images have no classes); `resolution` is the
    image side, or "any" for a folder whose images may differ in size.
    """

    def __init__(self, name: str, count: int, read, labels, class_names, resolution, fingerprint: str):
        self.name = name
        self.count = count
        self._read = read
        self.labels = labels
        self.class_names = list(class_names)
        self.resolution = resolution
        self.fingerprint = fingerprint

    def first(self, count) -> "ImageSet":
        """The first `count` images (all of them when count is None or larger), as NVlabs' max_items."""
        if count is None or count >= self.count:
            return self
        labels = None if self.labels is None else self.labels[:count]
        fingerprint = hashlib.sha256(f"{self.fingerprint}\0first{count}".encode()).hexdigest()
        return ImageSet(self.name, count, self._read, labels, self.class_names, self.resolution, fingerprint)

    def mirrored(self) -> "ImageSet":
        """Every image, then every image flipped left to right, as a data set with --mirror."""
        labels = None if self.labels is None else np.concatenate([self.labels, self.labels])
        fingerprint = hashlib.sha256(f"{self.fingerprint}\0mirrored".encode()).hexdigest()

        def read(index: int) -> np.ndarray:
            image = self._read(index % self.count)
            return image if index < self.count else np.ascontiguousarray(image[:, :, ::-1])

        return ImageSet(self.name, 2 * self.count, read, labels, self.class_names, self.resolution, fingerprint)

    def batches(self, indices, batch: int):
        indices = list(indices)
        for start in range(0, len(indices), batch):
            yield [self._read(i) for i in indices[start : start + batch]]


def dataset_images(dataset) -> ImageSet:
    """The images of an ImageDataset, each once (mirrored copies are not real data).

    The fingerprint covers every image's name, content and label, and the class names: zip
    members by the CRC-32 and size the zip already stores, folder files by their bytes.
    """
    digest = hashlib.sha256(json.dumps(dataset.class_names).encode())
    labels = dataset.raw_classes if dataset.has_labels else None
    path = Path(dataset.path)
    zip_file = zipfile.ZipFile(path) if path.is_file() else None
    for index, name in enumerate(dataset.names):
        if zip_file is not None:
            info = zip_file.getinfo(name)
            content = f"{info.CRC:08x}-{info.file_size}"
        else:
            content = hashlib.sha256((path / name).read_bytes()).hexdigest()
        label = int(labels[index]) if labels is not None else -1
        digest.update(f"{name}\0{content}\0{label}\n".encode())
    if zip_file is not None:
        zip_file.close()
    return ImageSet(
        name=path.name,
        count=len(dataset.names),
        read=lambda index: dataset[index][0],
        labels=labels,
        class_names=dataset.class_names,
        resolution=dataset.resolution,
        fingerprint=digest.hexdigest(),
    )


def folder_images(path) -> ImageSet:
    """Every image below a folder (sorted paths, any size or mode, read as RGB like clean-fid does)."""
    root = Path(path)
    if not root.is_dir():
        raise MetricError(f"{root}: no such folder; give a folder of images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise MetricError(f"{root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(root).as_posix()}\0{hashlib.sha256(file.read_bytes()).hexdigest()}\n".encode())

    def read(index: int) -> np.ndarray:
        try:
            with Image.open(files[index]) as image:
                return np.asarray(image.convert("RGB")).transpose(2, 0, 1)
        except (OSError, SyntaxError, ValueError) as error:
            raise MetricError(f"{files[index]} is not a readable image ({error}); remove it") from None

    return ImageSet(
        name=root.name,
        count=len(files),
        read=read,
        labels=None,
        class_names=[],
        resolution="any",
        fingerprint=digest.hexdigest(),
    )

"""The training data: a zip or folder of images with a dataset.json, as a PyTorch Dataset.

Reads our zips (class names and per-image attributes in dataset.json) and NVlabs' zips
(integer labels only; their classes are named class0, class1, ...). Every problem a user can
fix is a `DatasetError` whose one-line message says what is wrong and what to do.
"""

import io
import json
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from cstylegan.data.classes import check_class_names, resolve_classes
from cstylegan.data.labels import LABEL_KINDS, LabelError, LabelSpace, attribute_values
from cstylegan.data.writer import JSON_NAME, DatasetError

__all__ = ["DatasetError", "ImageDataset", "class_index", "data_size"]

DECODE_CHUNK = 2000  # images one process decodes at a time when a data set is opened
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm"}
MAKE_HINT = "make one with datasets/make_dataset.py"


def is_class_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_vector_label(value, length: int) -> bool:
    return (isinstance(value, list) and len(value) == length and length > 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value))


def data_size(path) -> int:
    """Bytes of a data set (a zip, or every file below a folder): a cheap sign that it changed."""
    path = Path(path)
    if path.is_dir():
        return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    return path.stat().st_size if path.exists() else -1


def class_index(spec, class_names) -> list:
    """Class indices for a name, an index, or a comma list of either (or `all`), e.g. "ghibli_male,2"."""
    if isinstance(spec, (list, tuple)):
        return [i for part in spec for i in class_index(part, class_names)]
    return resolve_classes(str(spec), class_names)


class ImageDataset(torch.utils.data.Dataset):
    """Items are (uint8 CHW image, float32 label); the label is empty when labels are unused.

    The label is the class's one-hot row, with `labels="attributes"` one one-hot block per
    attribute of the image, or the image's own vector for data with vector labels
    (`label_space` says which). With `xflip`, the dataset doubles with mirrored copies
    (NVlabs' --mirror). `max_size` keeps a fixed random subset, `class_fraction` a fixed
    random share of the classes it names ({class: fraction}; 0 holds a class out). Pickles
    without an open file, so each DataLoader worker opens the zip itself.
    """

    def __init__(self, path, use_labels: bool = True, xflip: bool = False, max_size=None, seed: int = 0,
                 labels: str = "class", class_fraction=None):
        self.path = Path(path)
        self._zip = None
        self._zip_pid = None
        names = self._list_images()
        info = self._read_json()
        label_of = self._labels_by_name(info)
        vectors_of = label_of if label_of and isinstance(next(iter(label_of.values())), list) else None
        label_of = None if vectors_of else label_of
        self.has_labels = label_of is not None  # class labels (vector labels make no classes)
        if use_labels and not (self.has_labels or vectors_of):
            raise DatasetError(
                f"{self.path} has no class labels in {JSON_NAME}; drop --cond, or {MAKE_HINT} from class folders"
            )
        if max_size is not None and len(names) > max_size:
            keep = np.random.RandomState(seed).permutation(len(names))[:max_size]
            names = [names[i] for i in sorted(keep)]
        self.names = names
        labelled = label_of or vectors_of
        missing = [n for n in names if labelled is not None and n not in labelled]
        if missing:
            raise DatasetError(f"{self.path}: {missing[0]} has no label in {JSON_NAME}; {MAKE_HINT} again")
        if self.has_labels:
            self.class_names = self._class_names(info, label_of)
            self.raw_classes = np.array([label_of[n] for n in names], dtype=np.int64)
        else:
            self.class_names = []
            self.raw_classes = np.zeros(len(names), dtype=np.int64)
        if class_fraction:
            self._keep_fractions(class_fraction, seed)
        attributes = (info or {}).get("attributes") or {}
        self.attributes = [attributes.get(n, {}) for n in self.names]
        if use_labels and vectors_of:
            self.label_space, self._vectors = self._vector_labels(info, vectors_of, labels)
        elif use_labels:
            self.label_space = self._label_space(labels)
            self._check_held_out(class_fraction or {})
            in_space = [self.label_space.class_names.index(name) for name in self.class_names]
            self._vectors = self.label_space.vectors(in_space)[self.raw_classes]
        else:
            self.label_space, self._vectors = LabelSpace.of_classes([]), np.zeros([len(self.names), 0], np.float32)
        self.c_dim = self.label_space.c_dim
        self.xflip = xflip
        self._check_shapes()

    # ---- discovery -------------------------------------------------------------------

    def _list_images(self) -> list:
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such file or folder; give a dataset zip or folder ({MAKE_HINT})")
        if self.path.is_dir():
            found = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
        elif zipfile.is_zipfile(self.path):
            found = self._open_zip().namelist()
        else:
            raise DatasetError(f"{self.path} is neither a zip file nor a folder; give a dataset zip ({MAKE_HINT})")
        names = sorted(n for n in found if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
        if not names:
            raise DatasetError(f"{self.path} holds no images; {MAKE_HINT}")
        return names

    def _read_json(self):
        try:
            raw = self._read_bytes(JSON_NAME)
        except (KeyError, FileNotFoundError):
            return None
        try:
            info = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DatasetError(f"{self.path}: {JSON_NAME} is not valid JSON ({error}); {MAKE_HINT} again") from error
        return self._check_json_shape(info)

    def _check_json_shape(self, info):
        """`info` if it has the shape make_dataset.py writes (an object whose labels, names and
        attributes are lists and objects as below), else one line naming what differs."""
        if info is None:
            return None
        where = f"{self.path}: {JSON_NAME}"
        if not isinstance(info, dict):
            raise DatasetError(f"{where} holds a {type(info).__name__}, not an object with \"labels\"; {MAKE_HINT} again")
        shapes = {"labels": (list, "a list of [image name, label]"), "class_names": (list, "a list of names"),
                  "label_names": (list, "a list of names"), "attributes": (dict, "an object {image name: {...}}")}
        for key, (kind, meaning) in shapes.items():
            if info.get(key) is not None and not isinstance(info[key], kind):
                raise DatasetError(f"{where}: \"{key}\" is a {type(info[key]).__name__}, not {meaning}; "
                                   f"{MAKE_HINT} again")
        odd = next((v for v in (info.get("attributes") or {}).values() if not isinstance(v, dict)), None)
        if odd is not None:
            raise DatasetError(f"{where}: an image's \"attributes\" are {odd!r}, not an object like "
                               f"{{\"style\": \"emoji\"}}; {MAKE_HINT} again")
        return info

    def _labels_by_name(self, info):
        """{image name: class index} or {image name: [float, ...]} (NVlabs' vector labels), or
        None for data without labels."""
        labels = (info or {}).get("labels")
        if not labels:
            return None
        first = labels[0][1] if isinstance(labels[0], list) and len(labels[0]) == 2 else None
        length = len(first) if isinstance(first, list) else None  # vector labels: every one this long
        label_of = {}
        for entry in labels:
            label = entry[1] if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) else None
            if not (is_vector_label(label, length) if length else is_class_index(label)):
                shape = f"[name, [{length} finite numbers]] like the first label" if length else "[name, class index]"
                raise DatasetError(f"{self.path}: label {entry!r} in {JSON_NAME} is not {shape}; {MAKE_HINT} again")
            label_of[entry[0].replace("\\", "/")] = label
        return label_of

    def _keep_fractions(self, fractions: dict, seed: int) -> None:
        """Keep a fixed random share of each named class's images (at least one unless the share
        is 0); a class left without images leaves the class list, as if the data never had it."""
        if not self.has_labels:
            raise DatasetError(f"--class-fraction picks images by class, and {self.path} has no class labels; drop it")
        unknown = [name for name in fractions if name not in self.class_names]
        if unknown:
            raise DatasetError(f"--class-fraction {unknown[0]}: no such class in {self.path}; "
                               f"its classes: {', '.join(self.class_names)}")
        keep = np.ones(len(self.names), dtype=bool)
        rng = np.random.RandomState(seed)
        for name, fraction in fractions.items():
            members = rng.permutation(np.flatnonzero(self.raw_classes == self.class_names.index(name)))
            kept = max(1, round(fraction * len(members))) if fraction > 0 else 0
            keep[members[kept:]] = False
        classes_left = sorted(set(self.raw_classes[keep].tolist()))
        if not classes_left:
            raise DatasetError("--class-fraction leaves no images; keep more than 0 of some class")
        new_index = {old: new for new, old in enumerate(classes_left)}
        self.names = [name for name, kept in zip(self.names, keep) if kept]
        self.raw_classes = np.array([new_index[k] for k in self.raw_classes[keep].tolist()], dtype=np.int64)
        self.class_names = [self.class_names[k] for k in classes_left]

    def _check_held_out(self, fractions: dict) -> None:
        """A held-out class must stay drawable: each of its attribute values still in the data."""
        for name, fraction in fractions.items():
            if fraction == 0 and self.label_space.attributes and name not in self.label_space.class_names:
                raise DatasetError(f"--class-fraction {name}=0 leaves no image with one of its attribute values, so "
                                   f"the model could not draw it; keep more than 0 of {name} or of a class sharing it")

    def _vector_labels(self, info, vectors_of: dict, labels: str) -> tuple:
        """(LabelSpace of the dimensions, float32 [images, dims]) for vector labels."""
        if labels != "class":
            raise DatasetError(f"{self.path} has vector labels, which condition as they are; drop --labels {labels}")
        dims = len(next(iter(vectors_of.values())))
        names = info.get("label_names") or [f"label{i}" for i in range(dims)]
        if len(names) != dims or len(set(map(str, names))) != dims:
            raise DatasetError(f"{self.path}: {JSON_NAME} names {len(names)} label dimensions {names} for labels of "
                               f"{dims}; give one distinct name per dimension or none")
        vectors = np.array([vectors_of[n] for n in self.names], dtype=np.float32)
        return LabelSpace.of_vectors([str(n) for n in names]), vectors

    def _class_names(self, info, label_of) -> list:
        """The class names, one per label index; every class must have images (counted over the
        whole label list, so a --subset that misses one is fine)."""
        names = info.get("class_names")
        count = max(label_of.values()) + 1
        if names is not None and (not isinstance(names, list) or len(names) < count):
            raise DatasetError(f"{self.path}: {JSON_NAME} has labels up to {count - 1} but "
                               f"{len(names) if isinstance(names, list) else 'no list of'} class names; {MAKE_HINT} again")
        names = check_class_names(names or [f"class{i}" for i in range(count)], f"{self.path} ({JSON_NAME})")
        used = set(label_of.values())
        empty = [k for k in range(len(names)) if k not in used]
        if empty:
            raise DatasetError(f"{self.path}: class {names[empty[0]]!r} (label {empty[0]}) has no images"
                               + (f", and {len(empty) - 1} more" if len(empty) > 1 else "")
                               + f"; labels must number the classes 0 to {len(used) - 1} that have images "
                               f"({MAKE_HINT} again)")
        return names

    def attribute_space(self):
        """The attribute space of the data (style x gender for the emoji), whatever labels the
        model trains on; None when the images carry no attributes that fit their classes."""
        try:
            return self._label_space("attributes") if self.has_labels else None
        except LabelError:
            return None

    def _label_space(self, labels: str) -> LabelSpace:
        if labels not in LABEL_KINDS:
            raise DatasetError(f"unknown --labels {labels!r}; choose one of {', '.join(LABEL_KINDS)}")
        if labels == "class":
            return LabelSpace.of_classes(self.class_names)
        values = attribute_values(self.path, self.attributes, self.class_names, self.raw_classes)
        return LabelSpace.of_attributes(values, self.class_names)

    def _check_shapes(self) -> None:
        """Every image decodes, and all are square, of one power-of-two size: otherwise training
        fails hours later, the first time a bad one is drawn. Big sets are decoded by several
        processes, with a progress bar."""
        sizes = {}
        chunks = [self.names[start:start + DECODE_CHUNK] for start in range(0, len(self.names), DECODE_CHUNK)]
        if len(chunks) > 1:
            with ProcessPoolExecutor(os.cpu_count()) as pool:
                shapes = list(tqdm(pool.map(self._decode_all, chunks), total=len(chunks), unit="chunk",
                                   desc=f"checking {len(self.names)} images", disable=None, leave=False))
        else:
            shapes = [self._decode_all(chunk) for chunk in chunks]
        for chunk, chunk_shapes in zip(chunks, shapes):
            for name, shape in zip(chunk, chunk_shapes):
                sizes.setdefault(shape, name)
        if len(sizes) > 1:
            (size_a, _), (size_b, _) = list(sizes)[:2]
            example_a, example_b = list(sizes.values())[:2]
            raise DatasetError(
                f"{self.path}: images differ in size or channels ({example_a} is {size_a}, {example_b} is {size_b}); "
                f"{MAKE_HINT} --resolution R to make them all R x R"
            )
        ((width, height), channels) = next(iter(sizes))
        if width != height or width < 4 or width & (width - 1):
            raise DatasetError(
                f"{self.path}: images are {width}x{height}, not square with a power-of-two side; "
                f"{MAKE_HINT} --resolution R (R a power of two)"
            )
        if channels not in (1, 3):
            mode = {2: "grey with alpha", 4: "RGBA"}.get(channels, f"{channels}-channel")
            raise DatasetError(f"{self.path}: images are {mode} ({next(iter(sizes.values()))}); the networks take grey "
                               f"or RGB: {MAKE_HINT} --channels 3 (flattened onto white) or --channels 1")
        self.resolution = width
        self.num_channels = channels

    def _decode_all(self, names) -> list:
        """((width, height), channels) of each image, decoding every pixel; a DatasetError for the first bad one."""
        shapes = []
        for name in names:
            try:
                with self._open_file(name) as file, Image.open(file) as image:
                    image.load()
                    shapes.append((image.size, len(image.getbands())))
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
                raise DatasetError(f"{self.path}: {name} is not a readable image ({error}); {MAKE_HINT} again") from None
        return shapes

    # ---- file access -----------------------------------------------------------------

    def _open_zip(self) -> zipfile.ZipFile:
        """One open zip per process: a handle inherited from the parent is not safe to share."""
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def _open_file(self, name: str):
        """A file object, so reading an image's size reads only its header."""
        return open(self.path / name, "rb") if self.path.is_dir() else self._open_zip().open(name)

    def _read_bytes(self, name: str) -> bytes:
        with self._open_file(name) as file:
            return file.read()

    def __getstate__(self):
        return {**self.__dict__, "_zip": None, "_zip_pid": None}

    # ---- Dataset ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names) * (2 if self.xflip else 1)

    def __getitem__(self, index: int):
        raw = index % len(self.names)
        with Image.open(io.BytesIO(self._read_bytes(self.names[raw]))) as image:
            array = np.array(image)  # a copy: torch wants writable arrays, and a grey one is not copied below
        array = array[:, :, None] if array.ndim == 2 else array
        if array.shape != (self.resolution, self.resolution, self.num_channels):
            raise DatasetError(f"{self.path}: {self.names[raw]} changed size since the data set was opened; restart")
        if index >= len(self.names):
            array = array[:, ::-1]
        return np.ascontiguousarray(array.transpose(2, 0, 1)), self._vectors[raw]

    @property
    def labels(self) -> np.ndarray:
        """float32 labels [len(self), c_dim], row i for item i (mirrored copies included)."""
        return np.tile(self._vectors, (2 if self.xflip else 1, 1))

    @property
    def item_classes(self) -> np.ndarray:
        """The class index (into class_names) of every item, mirrored copies included."""
        return np.tile(self.raw_classes, 2 if self.xflip else 1)

    @property
    def class_counts(self) -> dict:
        """Images per class name (before mirroring), in class-index order."""
        counts = np.bincount(self.raw_classes, minlength=len(self.class_names)) if self.has_labels else []
        return {name: int(n) for name, n in zip(self.class_names, counts)}

    @property
    def label_distribution(self) -> np.ndarray:
        """Fraction of images in each class, in class-index order."""
        counts = np.array(list(self.class_counts.values()), dtype=np.float64)
        return counts / max(counts.sum(), 1)

    def class_index(self, spec) -> list:
        """Indices of the classes named by `spec` (name, index, comma list or `all`)."""
        if not self.has_labels:
            raise DatasetError(f"{self.path} has no class labels, so no class {spec!r}; {MAKE_HINT} from class folders")
        return class_index(spec, self.class_names)

    def indices_of(self, spec) -> list:
        """Item indices (mirrored copies included) of the images of the classes in `spec`."""
        wanted = np.isin(self.item_classes, self.class_index(spec))
        return np.flatnonzero(wanted).tolist()

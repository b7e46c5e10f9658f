"""What a label vector c means: one one-hot block for the class (NVlabs' labels), one
one-hot block per attribute (style, then gender, ...), so that "female" is one input shared
by every style and a model can be asked for a combination the data never had, or the
data's own float vectors (NVlabs' format allows them: continuous conditioning).

A `LabelSpace` names the classes a model can be asked for and gives each its vector. With
attribute labels the classes are every combination of the attributes' values, named as the
data sets name classes (values joined by `_`: `openmoji_female`); `seen` says which of them
the training data held. A vector space has no classes until a user gives a vector
(`with_vectors`, generate.py --label).
"""

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from cstylegan.config import LABEL_KINDS
from cstylegan.data.classes import UnknownClassError, check_class_names, resolve_classes
from cstylegan.runtime.errors import UserError

__all__ = ["LABEL_KINDS", "LabelError", "LabelSpace", "attribute_values"]


class LabelError(UserError):
    """Attributes that cannot make labels; the message names the image or value and the fix."""


@dataclass(frozen=True)
class LabelSpace:
    class_names: tuple  # every class the model can be asked for
    attributes: dict  # {} for class labels; else {attribute: (value, ...)} in block order
    seen: tuple  # the classes of the training data
    vector_names: tuple = ()  # vector labels: the name of each dimension
    given: tuple = ()  # vector labels: the vector of each class (with_vectors)

    @staticmethod
    def of_classes(class_names) -> "LabelSpace":
        return LabelSpace(tuple(class_names), {}, tuple(class_names))

    @staticmethod
    def of_attributes(attributes: dict, seen) -> "LabelSpace":
        combinations = itertools.product(*attributes.values())
        names = tuple("_".join(values) for values in combinations)
        attributes = {name: tuple(values) for name, values in attributes.items()}
        return LabelSpace(names, attributes, tuple(seen))

    @staticmethod
    def of_vectors(names) -> "LabelSpace":
        return LabelSpace((), {}, (), vector_names=tuple(names))

    @staticmethod
    def of(class_names, attributes, vector_names=()) -> "LabelSpace":
        """A class space, with `attributes` ({attribute: values}) an attribute space whose data
        had `class_names`, or with `vector_names` a vector space."""
        if vector_names:
            return LabelSpace.of_vectors(vector_names)
        return LabelSpace.of_attributes(attributes, class_names) if attributes else LabelSpace.of_classes(class_names)

    @staticmethod
    def of_snapshot(snapshot: dict) -> "LabelSpace":
        """The space a snapshot was trained with (an `attributes` entry makes it an attribute space,
        `label_names` a vector space)."""
        return LabelSpace.of(snapshot["class_names"], snapshot["attributes"], snapshot["label_names"])

    @property
    def kind(self) -> str:
        return "vector" if self.vector_names else "attributes" if self.attributes else "class"

    def with_vectors(self, text: str) -> "LabelSpace":
        """A vector space with one class per vector given (`0.2,1,0`, several joined by `;`)."""
        vectors = []
        for part in text.split(";"):
            try:
                values = tuple(float(v) for v in part.split(","))
            except ValueError:
                values = ()
            if len(values) != len(self.vector_names) or not all(np.isfinite(values)):
                raise UnknownClassError(f"--label {part!r} is not {len(self.vector_names)} finite numbers "
                                        f"({', '.join(self.vector_names)}), e.g. {','.join(['0.5'] * len(self.vector_names))}")
            vectors.append(values)
        names = tuple("label_" + "_".join(f"{v:g}" for v in values) for values in vectors)
        return dataclasses.replace(self, class_names=names, given=tuple(vectors))

    @property
    def column_names(self) -> list:
        """What each entry of c stands for: a class, or `attribute=value`; resuming carries
        the embedding's columns over by these names."""
        if self.vector_names:
            return list(self.vector_names)
        if not self.attributes:
            return list(self.class_names)
        return [f"{name}={value}" for name, values in self.attributes.items() for value in values]

    @property
    def c_dim(self) -> int:
        if self.vector_names:
            return len(self.vector_names)
        return sum(len(values) for values in self.attributes.values()) if self.attributes else len(self.class_names)

    def values_of(self, class_index: int) -> dict:
        """{attribute: value} of a class of an attribute space."""
        sizes = [len(values) for values in self.attributes.values()]
        digits = np.unravel_index(class_index, sizes)
        return {name: values[d] for (name, values), d in zip(self.attributes.items(), digits)}

    def vector(self, class_index: int) -> np.ndarray:
        """float32 [c_dim]: the class's one-hot row, or one 1 in every attribute's block."""
        if self.vector_names:
            return np.array(self.given[class_index], np.float32)
        c = np.zeros(self.c_dim, np.float32)
        if not self.attributes:
            c[class_index] = 1
            return c
        offset = 0
        for values, value in zip(self.attributes.values(), self.values_of(class_index).values()):
            c[offset + values.index(value)] = 1
            offset += len(values)
        return c

    def vectors(self, class_indices) -> np.ndarray:
        """float32 [len(class_indices), c_dim]."""
        return np.stack([self.vector(k) for k in class_indices]) if len(class_indices) else np.zeros((0, self.c_dim), np.float32)

    @property
    def class_vectors(self) -> np.ndarray:
        """float32 [classes, c_dim]: the vector of every class, in class-index order."""
        return self.vectors(range(len(self.class_names)))

    def vectors_named(self, names) -> np.ndarray:
        """float32 [len(names), c_dim] for classes named (a data set's classes, for metrics)."""
        unknown = [name for name in names if name not in self.class_names]
        if unknown:
            raise LabelError(f"class {unknown[0]!r} of the data is not one this network was trained on "
                             f"({', '.join(self.class_names)}); give the data it was trained on")
        return self.vectors([self.class_names.index(name) for name in names])

    def values_named(self, names) -> list:
        """{attribute: value} of each class named, of an attribute space."""
        return [self.values_of(self.class_names.index(name)) for name in names]

    def resolve(self, spec: str) -> list:
        """Class indices for what a user typed: a name, an index, a comma list of them, `all`,
        or for an attribute space one combination spelt out, `style=twemoji,gender=female`."""
        if self.vector_names and not self.given:
            raise UnknownClassError(f"this network takes vector labels ({', '.join(self.vector_names)}), not classes; "
                                    f"pass --label with {len(self.vector_names)} numbers instead of --class")
        if self.attributes and "=" in spec:
            return [self.class_names.index(self._spelt_out(spec))]
        if not self.attributes:
            return resolve_classes(spec, self.class_names)
        try:
            return resolve_classes(spec, self.class_names)
        except UnknownClassError:
            raise UnknownClassError(f"unknown class {spec!r}; {self.known_values()}") from None

    def _spelt_out(self, spec: str) -> str:
        given = {}
        for part in (p.strip() for p in spec.split(",")):
            name, _, value = part.partition("=")
            if name not in self.attributes:
                raise UnknownClassError(f"unknown attribute {name!r} in {spec!r}; {self.known_values()}")
            if value not in self.attributes[name]:
                raise UnknownClassError(f"unknown {name} {value!r}; {self.known_values()}")
            given[name] = value
        missing = [name for name in self.attributes if name not in given]
        if missing:
            raise UnknownClassError(f"{spec!r} gives no {', '.join(missing)}; {self.known_values()}")
        return "_".join(given[name] for name in self.attributes)

    def known_values(self) -> str:
        return "known values: " + "; ".join(f"{name}: {', '.join(values)}" for name, values in self.attributes.items())

    def describe(self, class_index: int) -> str:
        """The class name, marked when the training data never had it."""
        name = self.class_names[class_index]
        return name if name in self.seen else f"{name} (unseen)"


def attribute_values(path, image_attributes: list, class_names, image_classes) -> dict:
    """{attribute: [value, ...]} from every image's attributes, each value where the data's
    classes (in class-index order) first show it; a LabelError naming the first image that
    does not fit."""
    if not image_attributes or not image_attributes[0]:
        raise LabelError(f"{path}: its dataset.json has no per-image attributes; train with --labels class, "
                         "or make the data with datasets/make_dataset.py from a CSV with attribute columns")
    names = list(image_attributes[0])
    for i, attributes in enumerate(image_attributes):
        if list(attributes) != names or not all(isinstance(v, str) and v for v in attributes.values()):
            raise LabelError(f"{path}: image {i} has attributes {attributes}, not a non-empty string for each of "
                             f"{', '.join(names)} like the first image; make the data again with datasets/make_dataset.py")
        if "_".join(attributes.values()) != class_names[image_classes[i]]:
            raise LabelError(f"{path}: image {i} has attributes {attributes} but class {class_names[image_classes[i]]!r}; "
                             "make the data again with datasets/make_dataset.py")
    values = {name: [] for name in names}
    first_image = {}
    for i, k in enumerate(image_classes):
        first_image.setdefault(int(k), i)
    for k in sorted(first_image):
        attributes = image_attributes[first_image[k]]
        for name, value in attributes.items():
            if value not in values[name]:
                values[name].append(value)
    for name, attribute_values_ in values.items():
        check_class_names(attribute_values_, f"{path}: attribute {name!r}", "value")
    names_made = ["_".join(combination) for combination in itertools.product(*values.values())]
    twins = sorted({name for name in names_made if names_made.count(name) > 1})
    if twins:
        raise LabelError(f"{path}: two combinations of {', '.join(values)} are both named {twins[0]!r} (values are "
                         "joined with '_'); rename a value so that every combination has its own name")
    return values

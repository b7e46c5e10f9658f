"""Turning what a user types for a class (`ghibli_male`, `3`, `a,b`, `all`) into indices."""

from cstylegan.runtime.errors import UserError


class UnknownClassError(UserError):
    """A class spec that names no class of the model or data; the message lists the known ones."""


def resolve_classes(spec: str, class_names) -> list:
    """Class indices for a name, an index, a comma list of either, or `all`."""
    class_names = list(class_names)
    if spec.strip() == "all":
        return list(range(len(class_names)))
    indices = []
    for part in (p.strip() for p in spec.split(",")):
        if part in class_names:
            indices.append(class_names.index(part))
        elif part.isdigit() and int(part) < len(class_names):
            indices.append(int(part))
        else:
            raise UnknownClassError(
                f"unknown class {part!r}; known classes: {', '.join(class_names)} (or an index 0-{len(class_names) - 1}, or all)"
            )
    return indices


def class_names_or_default(class_names, c_dim: int) -> list:
    """A network's class names; class0, class1, ... for one that recorded none (e.g. an NVlabs import)."""
    return list(class_names or [f"class{i}" for i in range(c_dim)])


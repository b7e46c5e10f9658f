"""Class names: checked once where data sets and snapshots are read (each becomes a folder
name in generate.py and the runner, and a snapshot or dataset.json may come from anyone),
and what a user types for a class (`ghibli_male`, `3`, `a,b`, `all`) turned into indices."""

from cstylegan.runtime.errors import UserError


class UnknownClassError(UserError):
    """A class spec that names no class of the model or data; the message lists the known ones."""


class ClassNameError(UserError):
    """A class name or attribute value that cannot be a folder of its own; the message names it."""


def check_class_names(names, source, what: str = "class name") -> list:
    """`names` as a list if each can be a folder name of its own, else a ClassNameError about
    the first that cannot: empty, a path (a separator, `.` or `..`), control characters or
    spaces at either end, or the same as another but for case (one folder on macOS and Windows)."""
    names = list(names)
    first_of = {}
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ClassNameError(f"{source}: {what} {name!r} is empty or not text; give every class a name")
        if ("/" in name or "\\" in name or name in (".", "..") or name != name.strip()
                or any(ord(character) < 32 for character in name)):
            raise ClassNameError(f"{source}: {what} {name!r} cannot be a folder name (no '/', '\\', '.' or '..', no "
                                 "control characters or spaces at the ends); rename it in the data and make it again")
        twin = first_of.get(name.casefold())
        if twin is not None:
            how = "twice" if twin == name else f"beside {twin!r}, which differs only in case"
            raise ClassNameError(f"{source}: {what} {name!r} appears {how}; every class needs a folder of its own, "
                                 "so rename one")
        first_of[name.casefold()] = name
    return names


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


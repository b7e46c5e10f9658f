"""Files written the safe way (a temporary file, then a rename) still look like any other
file the user writes, and a full disk is reported as one."""

import os
import shutil
import tempfile
from pathlib import Path

from cstylegan.runtime.errors import UserError

NEARLY_FULL_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full


def user_file_mode() -> int:
    """The permissions an ordinary new file gets under the current umask (mkstemp's are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def disk_is_full(folder) -> bool:
    return shutil.disk_usage(Path(folder)).free < NEARLY_FULL_BYTES


def same_file(a, b) -> bool:
    """Whether two paths name one file: the same resolved path, or (both existing) one inode,
    so a hard link or a bind mount counts too."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): only the resolved paths could match
        return False


def check_can_write(what: str, folder) -> None:
    """A UserError before the work, not after it, if no file can be made in `folder` (or, while it
    does not exist, in the nearest folder above it): a path under /proc, a read-only disk, a file
    in the way. Nothing is left behind."""
    probe = Path(folder).absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{what} {folder}: {probe} is a file, not a folder; give another path")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as error:
        raise UserError(f"{what} {folder}: no file can be written there ({error.strerror}); give a folder you can "
                        "write to") from None


def refuse_overwriting_inputs(outputs: dict, inputs: dict) -> None:
    """A UserError if an output ({what: path}, e.g. {"--preview": "sheet.png"}) is one of the
    inputs ({"--target": "me.png"}): no command may write over what it reads."""
    for written, output in outputs.items():
        read = next((what for what, path in inputs.items() if path and output and same_file(output, path)), None)
        if read is not None:
            raise UserError(f"{written} {output} is the same file as {read}, which it would overwrite; give another "
                            f"path for {written.split()[0]}")


def require_image_suffix(what: str, path) -> None:
    """A UserError unless `path` ends in an image format Pillow writes (.png, .jpg, ...): checked
    before the work, since Pillow's ValueError would come only when the image is saved."""
    from PIL import Image

    Image.init()
    suffix = Path(path).suffix.lower()
    if suffix not in Image.registered_extensions() or Image.registered_extensions()[suffix] not in Image.SAVE:
        raise UserError(f"{what} {path}: {suffix or 'no suffix'} is not an image format; end the name in .png "
                        "(or .jpg, .webp)")

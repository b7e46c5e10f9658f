"""Files written the safe way (a temporary file, then a rename) still look like any other
file the user writes, and a full disk is reported as one."""

import os
import shutil
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


def refuse_overwriting_inputs(outputs: dict, inputs: dict) -> None:
    """A UserError if an output ({what: path}, e.g. {"--preview": "sheet.png"}) is one of the
    inputs ({"--target": "me.png"}): no command may write over what it reads."""
    given = {Path(path).resolve(): what for what, path in inputs.items() if path}
    for written, output in outputs.items():
        read = given.get(Path(output).resolve()) if output else None
        if read is not None:
            raise UserError(f"{written} {output} is the same file as {read}, which it would overwrite; give another "
                            f"path for {written.split()[0]}")

"""Files written the safe way (a temporary file, then a rename) still look like any other
file the user writes, and a full disk is reported as one."""

import os
import shutil
from pathlib import Path

NEARLY_FULL_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full


def user_file_mode() -> int:
    """The permissions an ordinary new file gets under the current umask (mkstemp's are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def disk_is_full(folder) -> bool:
    return shutil.disk_usage(Path(folder)).free < NEARLY_FULL_BYTES

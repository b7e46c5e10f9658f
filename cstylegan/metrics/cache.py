"""On-disk cache of real-image Inception features and statistics, so a second run (every
snapshot of a training run, say) does not push the same real images through Inception again.

Files are named by what they were computed from: the image set's content fingerprint, its
resolution, the class (or all images), the resize mode and what they hold, e.g.
`real-3f9a...-64px-clean-class2-stats.npz`. They are written to a temporary file and renamed.
"""

import errno
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from cstylegan.metrics.errors import MetricError
from cstylegan.runtime.files import user_file_mode

CACHE_ENV = "CSTYLEGAN_CACHE"


def default_cache_dir() -> Path:
    """$CSTYLEGAN_CACHE, else ~/.cache/cstylegan."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "cstylegan")


def cache_key(fingerprint: str, resolution, class_index, mode: str, what: str) -> str:
    """File stem for one cached array set; class_index None means every image of the set."""
    size = f"{resolution}px" if isinstance(resolution, int) else str(resolution)
    subset = "all" if class_index is None else f"class{class_index}"
    return f"real-{fingerprint[:24]}-{size}-{mode}-{subset}-{what}"


class StatsCache:
    """A folder of .npz files, looked up by key."""

    def __init__(self, cache_dir=None):
        self.dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.npz"

    def load(self, key: str):
        """The arrays stored under `key` as a dict, or None when there are none (or the file is unreadable)."""
        try:
            with np.load(self.path(key)) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError, EOFError):
            return None

    def save(self, key: str, **arrays) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self.dir, prefix=f".{key}.", suffix=".tmp")
        except OSError as error:
            raise MetricError(
                f"cannot write the statistics cache in {self.dir} ({error.strerror}); set {CACHE_ENV} or --cache-dir"
            ) from None
        try:
            with os.fdopen(fd, "wb") as file:
                np.savez(file, **arrays)
            os.chmod(tmp_name, user_file_mode())  # mkstemp makes it private; others sharing the cache read it
            os.replace(tmp_name, self.path(key))
        except OSError as error:
            Path(tmp_name).unlink(missing_ok=True)
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # Only a cache: the metrics are computed all the same, the next run computes it again.
            print(f"Warning: the statistics cache {self.path(key)} could not be written ({error.strerror}); "
                  "going on without it", file=sys.stderr)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

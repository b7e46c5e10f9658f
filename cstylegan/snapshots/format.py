"""What marks a file as one of our snapshots, and the error for one that cannot be used;
shared by our own files (checkpoint.py) and NVlabs imports (nvlabs_pickle.py)."""

from cstylegan.runtime.errors import UserError

FORMAT = "cstylegan-snapshot-1"


class CheckpointError(UserError):
    """A snapshot that cannot be used; the message names the file and the fix."""

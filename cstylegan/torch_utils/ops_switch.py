"""The one switch between the pure-PyTorch ("reference") ops and fused kernels.

Set ``CSTYLEGAN_OPS=fused`` to ask for fused kernels. None exist yet, so the
reference path is used and a single warning says so.
"""

import os
import warnings

IMPL = os.environ.get("CSTYLEGAN_OPS", "reference")
if IMPL not in ("reference", "fused"):
    raise ValueError(f"CSTYLEGAN_OPS must be 'reference' or 'fused', got {IMPL!r}")

_warned = False


def use_fused() -> bool:
    """Whether ops should take their fused path. Always False for now."""
    global _warned
    if IMPL == "fused" and not _warned:
        warnings.warn("CSTYLEGAN_OPS=fused requested, but no fused ops exist yet; "
                      "using the reference PyTorch ops.", stacklevel=2)
        _warned = True
    return False

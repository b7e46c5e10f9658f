"""The one switch between op implementations, read once from CSTYLEGAN_OPS:

  fast (default)  pure-PyTorch paths that skip wasted work (strided / polyphase upfirdn2d)
  reference       the literal pure-PyTorch ops, the ground truth tests compare against
  fused           compiled kernels; none exist yet, so this warns once and runs `fast`
"""

import os
import warnings

IMPL = os.environ.get("CSTYLEGAN_OPS", "fast")
if IMPL not in ("fast", "reference", "fused"):
    raise ValueError(f"CSTYLEGAN_OPS must be 'fast', 'reference' or 'fused', got {IMPL!r}")

_warned = False


def use_fast() -> bool:
    """Whether ops take their fast path (everything but CSTYLEGAN_OPS=reference)."""
    return IMPL != "reference"


def use_fused() -> bool:
    """Whether ops should take a compiled kernel. Always False for now (warns once if asked)."""
    global _warned
    if IMPL == "fused" and not _warned:
        warnings.warn("CSTYLEGAN_OPS=fused requested, but no compiled kernels exist yet; "
                      "using the fast PyTorch ops.", stacklevel=2)
        _warned = True
    return False

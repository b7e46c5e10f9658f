"""Keep freed CPU memory for reuse instead of handing it back to the kernel.

glibc's malloc serves every block above 32 MiB (large activations, weight gradients) with
a fresh mmap() and unmaps it on free, so each training step faults in and zeroes those
pages again (measured at 32 px, batch 16: 1.7 s of kernel time per G+D step, 0.1 s with
this). Raising the mmap and trim thresholds lets such blocks come from, and return to, the
heap. GPU memory is unaffected: torch caches that itself.
"""

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30  # 1 GiB: only blocks larger than this are still mmap()ed


def reuse_freed_memory() -> bool:
    """Tune glibc's malloc as above; False (and nothing changed) on other C libraries."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * THRESHOLD))

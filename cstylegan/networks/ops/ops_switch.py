"""The one switch between op implementations: `set_impl(name)` from code (benchmarks, tests),
else CSTYLEGAN_OPS, read when an op first asks (so that a bad value is a one-line error of
the command that runs, not a traceback while importing):

  fast (default)  pure-PyTorch paths that skip wasted work (strided / transposed upfirdn2d,
                  bias_act keeping one tensor for backward)
  reference       the literal pure-PyTorch ops, the ground truth tests compare against
  fused           the fast paths with their elementwise kernels compiled by torch.compile
                  (bias_act, and through it filtered_lrelu and every layer's activation);
                  where compiling fails it warns once and runs `fast`
"""

import functools
import os
import warnings

import torch

from ...runtime.errors import UserError

IMPLS = ("fast", "reference", "fused")
IMPL = None  # None: not chosen yet, CSTYLEGAN_OPS decides on first use
_compile_failed = False


class OpsError(UserError):
    """CSTYLEGAN_OPS names no implementation."""


def set_impl(name: str) -> str:
    """Switch every op to `name`; returns the one it replaces."""
    global IMPL
    previous, IMPL = current(), checked(name)
    return previous


def current() -> str:
    """The implementation in use: set_impl's choice, else CSTYLEGAN_OPS (default fast)."""
    global IMPL
    if IMPL is None:
        IMPL = checked(os.environ.get("CSTYLEGAN_OPS", "fast"))
    return IMPL


def checked(name: str) -> str:
    if name not in IMPLS:
        raise OpsError(f"CSTYLEGAN_OPS must be 'fast', 'reference' or 'fused', got {name!r}; "
                       "unset it for the default (fast)")
    return name


def use_fast() -> bool:
    """Whether ops take their fast path (everything but CSTYLEGAN_OPS=reference)."""
    return current() != "reference"


def compiled_if_fused(kernel):
    """`kernel`, run through torch.compile while CSTYLEGAN_OPS=fused. The first failure to
    compile (no C++ compiler, an unsupported device...) warns once and every kernel runs
    eagerly from then on."""
    compiled = []  # made on first use: importing torch's compiler costs a second at start-up

    @functools.wraps(kernel)
    def run(*args):
        global _compile_failed
        if current() != "fused" or _compile_failed:
            return kernel(*args)
        try:
            if not compiled:
                # One compiled variant per (slope, gain, clamp) and size-1 case: a network has
                # a dozen or so, more than torch's default limit of 8 per function.
                torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
                compiled.append(torch.compile(kernel, dynamic=True))
            return compiled[0](*args)
        except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
            _compile_failed = True
            warnings.warn(f"CSTYLEGAN_OPS=fused: torch.compile failed ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}); using the fast PyTorch ops",
                          stacklevel=2)
            return kernel(*args)

    return run

"""reuse_freed_memory: a freed large block is reused, not faulted in again from the kernel."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

ALLOCATE_AND_FREE = """
import resource, sys
import torch
if sys.argv[1] == "reuse":
    from cstylegan.runtime.cpu_allocator import reuse_freed_memory
    assert reuse_freed_memory()
torch.ones(16 << 20)  # 64 MiB, once, so that the heap has grown
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(16 << 20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", ALLOCATE_AND_FREE, mode], cwd=REPO, capture_output=True,
                            text=True, check=True)
    return int(result.stdout)


@pytest.mark.slow
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    pages_per_block = (64 << 20) // 4096
    default = page_faults("default")
    assert default > 15 * pages_per_block  # glibc mmap()s every block above 32 MiB and unmaps it on free
    assert page_faults("reuse") < default / 2  # measured 15-35 % of the default's faults

"""Returning freed heap to the system between training stages (glibc's malloc_trim)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from kefu.nlu.memory import release_memory


def resident_anonymous_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_heap_goes_back_to_the_system() -> None:
    """Many small blocks freed with a few survivors scattered among them: the pages stay resident until
    trimmed (what a stage of varying-size arrays leaves behind)."""
    release_memory()
    blocks = [bytearray(8_000) for _ in range(25_000)]  # ~200 MB below the mmap threshold: on the heap
    survivors = blocks[::500]
    del blocks
    before = resident_anonymous_mib()
    assert release_memory() is True
    after = resident_anonymous_mib()
    assert before - after > 100, (before, after)
    assert len(survivors) == 50  # still alive and intact after the trim
    assert all(len(block) == 8_000 for block in survivors)

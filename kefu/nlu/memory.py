"""Giving freed memory back to the system between training stages.

glibc keeps freed blocks for reuse, and after a stage that allocated many large arrays of varying sizes
(the linear head's solver, MiniLM's activations for batches of different lengths) hundreds of megabytes sit
free inside the process: the next stage's peak is counted on top of them. ``malloc_trim`` returns them.
"""

from __future__ import annotations

import ctypes
import gc
import logging
from typing import Any

log = logging.getLogger(__name__)


def _libc() -> Any:
    try:
        library = ctypes.CDLL(None)  # the symbols already loaded into the process, the C library's among them
        return library if hasattr(library, "malloc_trim") else None  # musl and others: nothing to trim
    except OSError as exc:
        log.debug("no C library to trim (%s)", exc)
        return None


def release_memory() -> bool:
    """Collect garbage, then ask glibc to return free heap pages; False where there is no glibc."""
    gc.collect()
    library = _libc()
    if library is None:
        return False
    library.malloc_trim(0)
    return True

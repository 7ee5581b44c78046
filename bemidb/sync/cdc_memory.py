"""A follower's memory handed back to the system after each cycle, so its RSS stays flat over days.

Measured on a 10-minute soak (bench/README.md): with Arrow's default mimalloc pool, the once-a-minute
compaction's buffers stayed with the process (RSS 159 -> 220 MB and creeping, Arrow reporting 0 bytes in use):
mimalloc keeps freed pages in per-thread heaps that a collect from the main thread does not reach. With the
system allocator, whose freed memory malloc_trim returns, the RSS steps up during a compaction and comes back.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa


def use_system_allocator() -> None:
    """Arrow allocates with malloc from now on (call before the follower's first cycle)."""
    pa.set_memory_pool(pa.system_memory_pool())


def release() -> None:
    """Free memory returned to the system: Arrow's pool, then glibc's arenas (every thread's)."""
    pa.default_memory_pool().release_unused()
    if _malloc_trim is not None:
        _malloc_trim(0)


def _load_malloc_trim():
    try:  # glibc only (musl and macOS have no malloc_trim; there the pool's release is all)
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()

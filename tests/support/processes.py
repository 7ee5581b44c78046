"""Watching real processes from tests: a sync run in the background, a server's threads and file descriptors."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 120) -> None:
    """Poll `condition()` until true; fail with the process's stderr if it ends first, kill it on time-out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(f"process ended before {what}: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"timed out waiting for {what}")


def threads_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def fds_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def settle(measure, target: int, timeout: float = 30) -> int:
    """Poll `measure()` until it is <= target (threads/fds of closed clients wind down asynchronously)."""
    deadline = time.monotonic() + timeout
    value = measure()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.2)
        value = measure()
    return value

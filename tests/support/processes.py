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


def client_sockets_of(pid: int, port: int) -> int:
    """Connections `pid` accepted on its listening `port` that are still open (its own pooled connections to
    S3 or the catalog are not counted)."""
    accepted = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] != "0A":  # 0A: the listener
                accepted.add(fields[9])
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in accepted:
            count += 1
    return count


def settle(measure, target: int, timeout: float = 30) -> int:
    """Poll `measure()` until it is <= target (threads/fds of closed clients wind down asynchronously)."""
    deadline = time.monotonic() + timeout
    value = measure()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.2)
        value = measure()
    return value

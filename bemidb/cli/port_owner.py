"""Who listens on a TCP port, from Linux's /proc (no privileges needed for one's own processes): lets
`doctor` tell "a bemidb server is already serving here" apart from "another program took the port"."""

from __future__ import annotations

import os
from pathlib import Path

LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def listener_command(port: int) -> tuple[int, list[str]] | None:
    """(pid, argv) of a process listening on `port`, or None when unknown (not Linux, not ours to see)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in fds):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
                return int(pid), [arg.decode(errors="replace") for arg in argv]
        except OSError:
            continue
    return None


def is_bemidb_server(argv: list[str]) -> bool:
    """`python -m bemidb serve`, `bemidb.pyz serve`, `bemidb serve`."""
    return "serve" in argv and any("bemidb" in os.path.basename(arg) for arg in argv[:3])

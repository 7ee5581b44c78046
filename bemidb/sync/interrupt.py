"""Stopping a sync on Ctrl-C (SIGINT) or SIGTERM (a cron runner's timeout): at once, cleanly, in one line.

The first signal runs the registered cleanups first (the Postgres source: cancel the running query and shut the
socket, so nothing can wait on it any more), then raises SyncInterrupted where the main thread is. Every table
not yet committed unwinds as on any failure: its partial files are deleted and nothing is committed, so readers
keep the previous snapshot. A second signal during that cleanup ends the process at once (the leftovers are
unreferenced files that the next sync's vacuum deletes). Exit code 128 + the signal: 130 for SIGINT, 143 for
SIGTERM, as a shell reports a process killed by it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_cleanups: list[Callable[[], None]] = []


class SyncInterrupted(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT or SIGTERM during a sync."""

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")
        self.exit_code = 128 + signum
        self.summary: str | None = None  # one line saying what was left how, set by the sync's progress


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise SyncInterrupted inside the block (main thread only)."""
    received: list[int] = []

    def handler(signum, _frame):
        if received:  # a second signal: the user does not want to wait for the cleanup
            os.write(2, f"interrupted again by {signal.Signals(signum).name}: exiting now\n".encode())
            os._exit(128 + signum)
        received.append(signum)
        for cleanup in list(_cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - a cleanup is best effort; stopping is what matters
                log.debug("interrupt cleanup failed", exc_info=True)
        raise SyncInterrupted(signum)

    import pyarrow

    # pyarrow otherwise swaps in its own handler during read_csv and hands the signal back through a helper
    # thread: under load it came back after pyarrow had looked, and the signal was lost (1 in ~60 tries).
    # Our chunks are 4 MB, so Python's handler runs within milliseconds anyway.
    pyarrow.enable_signal_handlers(False)
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        pyarrow.enable_signal_handlers(True)


@contextmanager
def cleanup_on_interrupt(cleanup: Callable[[], None]) -> Iterator[None]:
    """Run `cleanup` (from the signal handler) if the sync is interrupted inside this block."""
    _cleanups.append(cleanup)
    try:
        yield
    finally:
        _cleanups.remove(cleanup)


def abandon_connection(conn) -> None:
    """Stop using a pg8000 connection now: cancel its query on the server (which otherwise keeps reading the
    table, or waits on a full socket) and shut the socket down, so every later read or write on it fails at
    once instead of waiting. The server rolls the read-only transaction back when the socket closes."""
    import socket

    from bemidb.pg_connect import send_cancel

    conn._bemidb_abandoned = True  # read by postgres_copy: no draining of a COPY on a shut socket
    send_cancel(conn, timeout=2)
    try:
        conn._usock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed

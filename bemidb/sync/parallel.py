"""Parallel extraction from the source Postgres, still one consistent snapshot for the whole run.

The first connection opens the run's REPEATABLE READ transaction and exports its snapshot
(`pg_export_snapshot()`); every other connection imports it (`SET TRANSACTION SNAPSHOT`), so all of them see
the same data whatever commits meanwhile. At most `threads` connections are open (SOURCE_POSTGRES_THREADS,
--threads). Tables under 32 MB are started first, then the others largest first, each on one connection; a
table big enough is cut into ctid ranges (`WHERE ctid >= '(a,0)' AND ctid < '(b,0)'`, a TID range scan)
read over as many connections, each range written into its own Parquet files, all committed together.
Memory grows with the number of connections (each holds one CSV chunk and one row group), not with table size.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pg8000.exceptions import DatabaseError

from bemidb.sync import postgres_source as source

log = logging.getLogger(__name__)

MIN_PART_PAGES = 4096  # 32 MB of 8 kB pages: smaller ranges cost more in per-connection overhead than they save
WAIT_SLICE_S = 0.2  # waits are sliced so Ctrl-C reaches the main thread at once
INTERRUPT_WAIT_S = 10  # after Ctrl-C, how long the tables in flight get to delete their partial files


class SourcePool:
    """The run's source connections, all in one snapshot; opened lazily, up to `limit`."""

    def __init__(self, url: str, first, limit: int):
        self.url = url
        self.limit = max(1, limit)
        self.snapshot = None
        if self.limit > 1:
            try:
                self.snapshot = source.export_snapshot(first)
            except DatabaseError as exc:  # a source that cannot export snapshots: one connection, as before
                log.warning("source cannot export its snapshot (%s): reading over one connection",
                            " ".join(str(exc).split())[:200])
                first.run("ROLLBACK")  # nothing was read yet: a fresh snapshot is as good
                first.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                self.limit = 1
        self.idle = [first]
        self.opened = 1
        self.all = [first]
        self.lost: str | None = None  # set when a connection broke: tables not started yet are not synced
        self.abandoned = False  # Ctrl-C / SIGTERM: every connection was shut on purpose
        self.cond = threading.Condition()

    def _open(self):
        conn = source.connect(self.url)
        try:
            source.begin_snapshot(conn, self.snapshot)
        except Exception:
            conn.close()
            raise
        with self.cond:
            self.all.append(conn)
        return conn

    def _reserve(self) -> str:
        """Under the lock: 'idle', 'open' (a slot to open a new connection) or 'none'."""
        if self.idle:
            return "idle"
        if self.opened < self.limit:
            self.opened += 1
            return "open"
        return "none"

    def _take(self, block: bool):
        with self.cond:
            while True:
                how = self._reserve()
                if how == "idle":
                    return self.idle.pop()
                if how == "open" or not block:
                    break
                self.cond.wait(WAIT_SLICE_S)
        if how == "none":
            return None
        try:
            return self._open()
        except Exception as exc:
            with self.cond:
                self.opened -= 1
                self.cond.notify_all()
            log.info("could not open another source connection: %s", exc)
            if not block:
                return None
            raise

    def acquire(self):
        return self._take(block=True)

    def acquire_extra(self):
        """A connection for another range (waits for one), or None when no more can be opened."""
        try:
            return self._take(block=True)
        except Exception:  # noqa: BLE001 - logged by _take; the table is read over the ones it has
            return None

    def release(self, conn) -> None:
        with self.cond:
            self.idle.append(conn)
            self.cond.notify_all()

    def discard(self, conn) -> None:
        """A connection that broke: closed and not handed out again."""
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - it is broken already
            pass
        with self.cond:
            self.opened -= 1
            self.cond.notify_all()

    def abandon(self) -> None:
        """Ctrl-C / SIGTERM (from the signal handler): every connection stops now, whatever it is reading."""
        from bemidb.sync.interrupt import abandon_connection

        self.abandoned = True
        for conn in list(self.all):
            try:
                abandon_connection(conn)
            except Exception:  # noqa: BLE001 - best effort, the others still get theirs
                pass

    def close(self) -> None:
        for conn in self.all:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - may already be gone
                pass


@dataclass
class TableJob:
    key: tuple[str, str]  # the source table
    pages: int
    target: tuple[str, str] | None = None  # where it lands (schema, name)
    extras: list = field(default_factory=list)  # connections reserved for ctid ranges of this table
    splittable: bool = True  # False: read in one piece whatever its size (an incremental step)


def wanted_parts(pages: int, threads: int) -> int:
    return max(1, min(threads, pages // MIN_PART_PAGES))


def ctid_ranges(pages: int, parts: int) -> list[str]:
    """WHERE clauses cutting a table of `pages` pages into `parts` ctid ranges; the last is open-ended (pages
    added since the size was read hold no row of the run's snapshot, but nothing is lost either way)."""
    if parts <= 1:
        return [""]
    bounds = [pages * i // parts for i in range(parts + 1)]
    clauses = []
    for i in range(parts):
        low = f"ctid >= '({bounds[i]},0)'::tid" if i > 0 else ""
        high = f"ctid < '({bounds[i + 1]},0)'::tid" if i < parts - 1 else ""
        clauses.append(" WHERE " + " AND ".join(c for c in (low, high) if c))
    return clauses


def run_tables(pool: SourcePool, jobs: list[TableJob], work: Callable[[TableJob, object], bool]) -> None:
    """Run work(job, conn) for every job, at most pool.limit at once, largest tables first.

    A job is started once a connection is free; a big one first waits for the connections of its ranges
    (job.extras): work() takes the ones it uses out of job.extras and gives them back itself. work() returns
    whether `conn` is still usable (False: it broke, it is closed). Only this thread takes connections, so a
    job waiting for its extras waits on jobs that never wait themselves: no deadlock."""
    if pool.limit > 1:
        # Tables under one range's size first: they take a second or less, and a sync stopped later keeps
        # them. Then largest first (longest job first, for the shortest total): a big table gets all its
        # ranges' connections. Smallest first throughout started the largest table while the second largest
        # still held a connection, so it was read over one (seen on TPC-H SF1: lineitem).
        jobs = sorted(jobs, key=lambda j: (j.pages >= MIN_PART_PAGES, -j.pages))
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def run(job: TableJob, conn) -> None:
        healthy = False
        try:
            healthy = work(job, conn)
        except Exception as exc:  # noqa: BLE001 - work() reports per table; this is a bug guard
            errors.append(exc)  # (Ctrl-C, a BaseException, goes on up: only the main thread gets it)
        finally:
            for extra in job.extras:  # the ones work() did not use
                pool.release(extra)
            job.extras = []
            if healthy:
                pool.release(conn)
            else:
                pool.discard(conn)

    try:
        for job in jobs:
            conn = None if pool.lost else _acquire_or_lose(pool)
            if conn is None:
                work(job, None)  # reports the table as not synced (pool.lost)
                continue
            wanted = wanted_parts(job.pages, pool.limit) if job.splittable else 1
            while len(job.extras) < wanted - 1:
                extra = pool.acquire_extra()
                if extra is None:
                    break
                job.extras.append(extra)
            if pool.limit == 1:
                run(job, conn)  # one connection: no threads at all, as before
            else:
                thread = threading.Thread(target=run, args=(job, conn), name=f"sync {job.key[1]}", daemon=True)
                thread.start()
                threads.append(thread)
            threads = [t for t in threads if t.is_alive()]
        for thread in threads:
            while thread.is_alive():
                thread.join(WAIT_SLICE_S)
    except BaseException:
        # Ctrl-C / SIGTERM: the signal handler abandoned every connection, so the tables in flight fail at
        # once and delete their partial files; wait for that (bounded) before the process goes.
        pool.lost = pool.lost or "interrupted"
        deadline = time.monotonic() + INTERRUPT_WAIT_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        raise
    if errors:
        raise errors[0]


def _acquire_or_lose(pool: SourcePool):
    try:
        return pool.acquire()
    except Exception as exc:  # noqa: BLE001 - the source went away (or refuses connections) mid-run
        pool.lost = f"source connection lost ({' '.join(str(exc).split())[:200]})"
        return None


class LockedProgress:
    """SyncProgress shared by the table threads: one event at a time."""

    def __init__(self, progress):
        self._progress = progress
        self._lock = threading.Lock()

    def __getattr__(self, name):
        attribute = getattr(self._progress, name)
        if not callable(attribute):
            return attribute

        def locked(*args, **kwargs):
            with self._lock:
                return attribute(*args, **kwargs)

        return locked

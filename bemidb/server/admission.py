"""Admission of queries by memory (BEMIDB_MEMORY_LIMIT): how many run in DuckDB at once, and a second,
lone run for a query that ran out of memory among others. The engine makes one gate; a session's executor
enters it before a query starts and leaves it when the query's portal stops."""

from __future__ import annotations

import threading
from collections.abc import Callable


class QueryGate:
    """Admission by memory: at most `slots` sessions run a query in DuckDB at once, the others wait.

    DuckDB spills joins, aggregates and sorts past memory_limit, but each running query still pins a working
    set (scan buffers, partitions being built): 32 queries at once under a small limit fail with "could not
    allocate block". A session holds one slot while any of its portals runs, so a client with two open
    portals never waits for itself. A query that still runs out of memory is run again alone (`enter_alone`:
    every slot), with the whole budget."""

    def __init__(self, slots: int):
        self.slots = slots
        self._free = threading.Semaphore(slots)
        self._held: dict[int, tuple[set[int], int]] = {}  # session id -> (its running portals, slots held)
        self._lock = threading.Lock()
        self._alone = threading.Lock()  # one session at a time gathers every slot (two would deadlock)

    def enter(self, session: object, portal: object, should_stop: Callable[[], bool]) -> bool:
        """Wait for a slot (False when should_stop() says the query was canceled meanwhile)."""
        with self._lock:
            held = self._held.get(id(session))
            if held:
                held[0].add(id(portal))
                return True
        if not self._take(1, should_stop):
            return False
        with self._lock:
            self._held[id(session)] = ({id(portal)}, 1)
        return True

    def enter_alone(self, session: object, portal: object, should_stop: Callable[[], bool]) -> bool:
        """Leave, then wait until no other query runs and hold every slot; False if the session runs
        other portals (it cannot wait for itself) or the query was canceled meanwhile."""
        with self._lock:
            held = self._held.get(id(session))
            if held and held[0] - {id(portal)}:
                return False
        self.leave(session, portal)
        with self._alone:
            if not self._take(self.slots, should_stop):
                return False
        with self._lock:
            self._held[id(session)] = ({id(portal)}, self.slots)
        return True

    def _take(self, count: int, should_stop: Callable[[], bool]) -> bool:
        taken = 0
        while taken < count:
            if self._free.acquire(timeout=0.05):
                taken += 1
            elif should_stop():
                for _ in range(taken):
                    self._free.release()
                return False
        return True

    def leave(self, session: object, portal: object) -> None:
        with self._lock:
            held = self._held.get(id(session))
            if held is None or id(portal) not in held[0]:
                return
            held[0].discard(id(portal))
            if held[0]:
                return
            del self._held[id(session)]
        for _ in range(held[1]):
            self._free.release()

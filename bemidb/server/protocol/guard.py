"""Brute-force protection for password logins: per client address, a growing delay, then a lock-out.

Postgres itself leaves this to fail2ban or auth_delay; a server users put in front of production data on a
public port cannot. The session asks `locked_for(address)` before any password exchange (a locked address is
refused at once, even with the right password, so guessing cannot continue), calls `failed(address)` after a
wrong password and sleeps the returned delay before answering, and `succeeded(address)` after a good one.
Lock-outs escalate (60 s, 120 s, ... 1 h): guesses sent in parallel while an address is unlocked all get
through, so a steady lock-out length would still allow a steady burst rate.

Memory is bounded: at most MAX_TRACKED addresses are remembered (the oldest is forgotten first), so an
attacker rotating source addresses cannot grow the server without limit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_FAILURES = 5  # wrong passwords in WINDOW seconds before the address is locked out
WINDOW = 600.0
LOCKOUT = 60.0  # seconds an address stays locked the first time; each further lock-out doubles it ...
MAX_LOCKOUT = 3600.0  # ... up to this
DELAY_STEP = 0.25  # each further failure waits this much longer before the answer ...
MAX_DELAY = 2.0  # ... up to this
MAX_TRACKED = 10_000


@dataclass
class _Record:
    failures: int = 0
    first_failure: float = 0.0
    last_failure: float = 0.0
    locked_until: float = 0.0
    lockouts: int = 0  # in a row: a burst of parallel guesses per lock-out gets rarer, not steady


class LoginGuard:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW, lockout: float = LOCKOUT,
                 delay_step: float = DELAY_STEP, max_delay: float = MAX_DELAY,
                 clock: Callable[[], float] = time.monotonic, max_tracked: int = MAX_TRACKED,
                 max_lockout: float = MAX_LOCKOUT):
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_lockout = max_lockout
        self.delay_step = delay_step
        self.max_delay = max_delay
        self.clock = clock
        self.max_tracked = max_tracked
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def locked_for(self, address: str) -> float:
        """Seconds this address is still locked out for (0.0 when it may try a password)."""
        with self._lock:
            record = self._records.get(address)
            if record is None:
                return 0.0
            return max(0.0, record.locked_until - self.clock())

    def failed(self, address: str) -> float:
        """Count a wrong password; returns how long to wait before answering it (the brute-force tax)."""
        now = self.clock()
        with self._lock:
            record = self._records.pop(address, None) or _Record()
            if now - max(record.last_failure, record.locked_until) > self.window:
                record = _Record()  # quiet for a whole window (after any lock-out): forgiven
            if record.failures == 0:
                record.first_failure = now
            record.failures += 1
            record.last_failure = now
            if record.failures >= self.max_failures:
                record.lockouts += 1
                record.locked_until = now + min(self.max_lockout, self.lockout * 2 ** (record.lockouts - 1))
                # One more wrong password after the lock-out ends locks again, for twice as long: parallel
                # guesses sent while unlocked cannot add up to a steady rate.
                record.failures = self.max_failures - 1
            self._records[address] = record  # most recent last: eviction drops the stalest
            while len(self._records) > self.max_tracked:
                self._records.popitem(last=False)
            failures = record.failures
        return min(self.max_delay, self.delay_step * failures)

    def succeeded(self, address: str) -> None:
        with self._lock:
            record = self._records.get(address)
            if record is not None and record.locked_until <= self.clock():
                del self._records[address]

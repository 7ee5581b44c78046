"""What every session of one server shares: settings, the engine, auth material, TLS, the cancel registry."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bemidb.server.protocol import auth


@dataclass
class ServerContext:
    cfg: object
    engine: object
    ssl_context: object = None
    scram: auth.ScramVerifier | None = None
    guard: object = None  # protocol.guard brute-force protection, when present
    users: object = None  # grants.store.UsersStore when a users file is configured
    # pid -> (cancel key, what interrupts that session's running query)
    cancellers: dict[int, tuple[int, Callable[[], None]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_pid: int = 0

    def register(self, cancel: Callable[[], None]) -> tuple[int, int]:
        """A new session's (pid, cancel key) for BackendKeyData; `cancel` runs on a matching CancelRequest."""
        with self.lock:
            self.next_pid = self.next_pid + 1 if self.next_pid else 10_000 + secrets.randbelow(20_000)
            secret = secrets.randbits(31)
            self.cancellers[self.next_pid] = (secret, cancel)
            return self.next_pid, secret

    def unregister(self, pid: int) -> None:
        with self.lock:
            self.cancellers.pop(pid, None)

    def cancel(self, pid: int, secret: int) -> None:
        with self.lock:
            entry = self.cancellers.get(pid)
        if entry is not None and secrets.compare_digest(str(entry[0]), str(secret)):
            entry[1]()

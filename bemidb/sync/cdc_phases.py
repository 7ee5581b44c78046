"""Where a CDC drain's time went: each phase's seconds, logged as one DEBUG line at the end of the run."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("bemidb.sync.cdc")


class Phases:
    """Where a drain's time went, as one DEBUG line (`--log-level DEBUG`; bench/cdc.py prints it): `cdc run:
    connect 0.028s, checks 0.012s, read slot 0.450s, ...; 1.200s in all`."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = self.last = time.perf_counter()
        self.parts: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        """The time since the previous mark was spent on `name`."""
        if self.enabled:
            now = time.perf_counter()
            self.parts.append((name, now - self.last))
            self.last = now

    def log(self) -> None:
        if self.enabled:
            log.debug("cdc run: %s; %.3fs in all", ", ".join(f"{name} {seconds:.3f}s" for name, seconds in self.parts),
                      self.last - self.started)

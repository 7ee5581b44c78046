"""Where a CDC run stops: a follower on SIGTERM/SIGINT (after the commit under way), and, for the tests that
kill a run at exact points, the pauses named by BEMIDB_CDC_PAUSE_AT."""

from __future__ import annotations

import os
import signal
import sys
import time

PAUSE_ENV = "BEMIDB_CDC_PAUSE_AT"  # fault-injection for tests: "commit" (files written) or "advance"


_reached: dict[str, int] = {}


def pause(point: str) -> None:
    """Tests kill the process at exact points ("commit", or "commit#2" for the second one): the run says
    where it stopped and waits there."""
    _reached[point] = _reached.get(point, 0) + 1
    wanted = os.environ.get(PAUSE_ENV)
    if wanted in (point, f"{point}#{_reached[point]}"):
        print(f"paused at {wanted}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)


class StopFlag:
    """--follow ends on SIGTERM/SIGINT, after the commit under way."""

    def __init__(self):
        self.stopped = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, *_):
        self.stopped = True

    def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.stopped and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.stopped

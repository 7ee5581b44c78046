"""Several batch streams of one table written side by side, each into its own Parquet files, for one commit.

A big source table is read as ctid ranges over several connections (sync/parallel.py); each range keeps its
rows together in its own files (so row-group statistics stay as narrow as the source order allows) and the
Parquet encoding runs in parallel (pyarrow releases the GIL while it encodes and compresses).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import pyarrow as pa

WAIT_SLICE_S = 0.2


class Parts(list):
    """A list of batch iterables: the table's content is their union, in no particular order."""


def write_parts(parts: Parts, writers: list, on_rows: Callable[[int], None]) -> None:
    """Stream parts[i] into writers[i] (objects with add(batch)), one thread each. The first failure stops
    the other streams (each is closed in its own thread, which cancels its COPY) and is raised here."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(part: Iterable[pa.RecordBatch], files) -> None:
        try:
            for batch in part:
                if stop.is_set():
                    break
                if batch.num_rows == 0:
                    continue
                files.add(batch)
                on_rows(batch.num_rows)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            stop.set()
        finally:
            close = getattr(part, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    stop.set()

    threads = [threading.Thread(target=run, args=(part, files), name="bemidb-part", daemon=True)
               for part, files in zip(parts, writers, strict=True)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(WAIT_SLICE_S)
    except BaseException:  # Ctrl-C: the streams stop at their next batch
        stop.set()
        raise
    if errors:
        raise errors[0]

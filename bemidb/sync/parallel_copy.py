"""One big table read as ctid ranges over several connections of the run's snapshot, written in one commit."""

from __future__ import annotations

import logging

from bemidb.storage.parts import Parts
from bemidb.sync.parallel import ctid_ranges
from bemidb.sync.postgres_copy import copy_csv_chunks, decode_chunks

log = logging.getLogger(__name__)


def copy_ranges(conn, pool, job, select: str, plans, schema, write, catalog, identifier, properties, on_progress):
    """`select` over len(job.extras) + 1 ctid ranges: the first on `conn` (inside the caller's savepoint), the
    others on job.extras, each inside a savepoint of its own so a failed range leaves its connection usable.
    The extras go back to the pool (or are discarded when broken) before this returns."""
    extras, job.extras = job.extras, []
    connections = [conn, *extras]
    in_savepoint: list = []
    broken: set[int] = set()
    streams = Parts()
    try:
        for extra in extras:
            extra.run("SAVEPOINT bemidb_range")
            in_savepoint.append(extra)
        for connection, where in zip(connections, ctid_ranges(job.pages, len(connections)), strict=True):
            streams.append(decode_chunks(copy_csv_chunks(connection, select + where), plans, schema))
        result = write(catalog, identifier, schema, streams, mode="overwrite", properties=properties,
                       on_progress=on_progress)
        for extra in in_savepoint:
            extra.run("RELEASE SAVEPOINT bemidb_range")
        return result
    except BaseException:
        for extra in in_savepoint:
            try:
                extra.run("ROLLBACK TO SAVEPOINT bemidb_range")
            except Exception as exc:  # noqa: BLE001 - this connection is gone; the others go on
                log.debug("range connection unusable: %s", exc)
                broken.add(id(extra))
        raise
    finally:
        for stream in streams:
            stream.close()  # already closed by its thread; a no-op then
        for extra in extras:
            if id(extra) in broken:
                pool.discard(extra)
            else:
                pool.release(extra)

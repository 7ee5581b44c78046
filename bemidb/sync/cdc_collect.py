"""Reading the slot into each table's net changes, with memory bounded by CHUNK_ROWS rows per table.

A table whose collapsed changes reach CHUNK_ROWS rows (a transaction of a million rows, or a drain after a
long pause) is handed to `flush` mid-stream, which writes that part's files without committing them
(storage/changes.py Staged), so a drain holds at most that many row versions per table whatever the backlog.
The drain's last part commits every staged part with it in one snapshot: a reader never sees part of a
transaction, and a run that dies before that commit changed nothing the next run would not redo.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container

from bemidb.sync import cdc_source, pgoutput
from bemidb.sync.cdc_batch import TableChanges

CHUNK_ROWS = int(os.environ.get("BEMIDB_CDC_CHUNK_ROWS", "") or 100_000)  # the variable is for tests

_UNKNOWN = object()

Flush = Callable[[str, TableChanges], bool]  # (table, a part of its changes) -> keep collecting


def collect(conn, slot, publication, upto: int, applied: dict[str, int], keyed, flush: Flush,
            copied: dict[str, Container[int]] | None = None) -> dict[str, TableChanges]:
    """Each held table's net changes from the transactions it has not applied yet (what `flush` did not take).
    `applied` maps a table to the position it stored, `copied` to the transaction ids its copy already holds
    (cdc_identity); flush returning False drops the table from this run."""
    relations: dict[int, pgoutput.Relation] = {}
    pending: dict[str, TableChanges] = {}
    given_up: set[str] = set()
    commit_lsn = xid = 0
    copied = copied or {}

    def changes_of(oid: int) -> tuple[str | None, TableChanges | None]:
        relation = relations.get(oid)
        name = f"{relation.schema}.{relation.name}" if relation else None
        if name not in applied or commit_lsn < applied[name] or name in given_up or xid in copied.get(name, ()):
            return None, None  # not held by this slot (yet), applied by an earlier run, or failed here
        if name not in pending:
            pending[name] = TableChanges(keyed[name][1])
        return name, pending[name]

    targets: dict[int, tuple | None] = {}  # relation oid -> (name, relation, changes), until the next non-change
    for message in cdc_source.peek_messages(conn, slot, publication, upto):
        if type(message) is pgoutput.Change:  # nearly every message: one dict lookup per change
            target = targets.get(message.relation_oid, _UNKNOWN)
            if target is _UNKNOWN:
                name, changes = changes_of(message.relation_oid)
                target = targets[message.relation_oid] = None if changes is None else (
                    name, relations[message.relation_oid], changes)
            if target is not None:
                name, relation, changes = target
                changes.add(relation, message)
                if len(changes.rows) >= CHUNK_ROWS:
                    del pending[name]
                    targets.clear()
                    if not flush(name, changes):
                        given_up.add(name)
            continue
        targets.clear()  # a new transaction or relation: the next changes look their table up again
        if isinstance(message, pgoutput.Begin):
            commit_lsn, xid = message.final_lsn, message.xid
        elif isinstance(message, pgoutput.Relation):
            relations[message.oid] = message
        elif isinstance(message, pgoutput.Truncate):
            for oid in message.relation_oids:
                _, changes = changes_of(oid)
                if changes is not None:
                    changes.truncate()
    return pending

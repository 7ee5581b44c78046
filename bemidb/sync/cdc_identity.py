"""CDC of a table without a primary key whose replica identity is FULL: its rows are a multiset.

Such a table may hold identical rows, so its changes cannot be collapsed per key. Each drain counts instead,
per whole-row value (pgoutput's text of every column): +1 per inserted row and per update's new row, -1 per
deleted row and per update's old row (REPLICA IDENTITY FULL sends the whole old row), a TRUNCATE forgets the
counts so far. The net count of each distinct row does not depend on the order of the changes: positive counts
are rows to append, negative ones rows to remove, found among the stored rows by value
(storage/row_deletes.py). An update's unchanged TOASTed values are taken from its old row, which carries them.

A copy of such a table must not be replayed onto: a change applied twice would duplicate a row. So its copy
stores the source snapshot it was read in (`pg_current_snapshot()`), and the first drain after the copy skips
the transactions that snapshot already saw (the slot may hold changes from before the copy).
"""

from __future__ import annotations

from dataclasses import dataclass

from bemidb.quoting import quote_ident
from bemidb.sync import pgoutput

PROP_COPY_SNAPSHOT = "bemidb.cdc.copy-snapshot"  # the source snapshot a keyless table's copy was read in


def count(changes, relation: pgoutput.Relation, change: pgoutput.Change) -> None:
    """Add one change to `changes.rows` (whole row text -> net count)."""
    _align(changes, relation)
    if change.kind == "I":
        _bump(changes.rows, change.new, 1)
        return
    old = change.old
    if (relation.replica_identity != "f" or old is None or len(old) != len(relation.columns)
            or any(v is pgoutput.UNCHANGED for v in old)):
        # Not the whole old row (the identity changed since the table was chosen): a key tuple's NULLs could
        # even equal another stored row. The row to remove is unknown.
        changes.lost = "an update or delete without the whole old row (the replica identity is not FULL)"
        return
    _bump(changes.rows, old, -1)
    if change.kind == "U":
        new = change.new
        if any(v is pgoutput.UNCHANGED for v in new):  # the old row holds every value, TOASTed ones too
            new = tuple(old[i] if v is pgoutput.UNCHANGED else v for i, v in enumerate(new))
        _bump(changes.rows, new, 1)


def _bump(rows: dict, row: tuple, by: int) -> None:
    net = rows.get(row, 0) + by
    if net:
        rows[row] = net
    else:
        rows.pop(row, None)  # cancelled out: nothing to apply, and the drain's memory stays its net changes


def _align(changes, relation: pgoutput.Relation) -> None:
    """Rows are counted in the latest relation's column order; a changed relation (a column added or dropped
    mid-drain) re-keys the counts so far: an added column reads NULL, as the stored rows read it."""
    columns = relation.columns
    if columns == changes.columns:
        return
    if changes.columns and changes.rows:
        where = {name: i for i, name in enumerate(changes.columns)}
        positions = [where.get(name) for name in columns]
        counted: dict[tuple, int] = {}
        for row, net in changes.rows.items():
            _bump(counted, tuple(None if i is None else row[i] for i in positions), net)
        changes.rows = counted
    changes.columns = columns


def rows_by_sign(changes) -> tuple[list[tuple], list[int], list[tuple], list[int]]:
    """(rows to append, how many of each, rows to remove, how many of each)."""
    added, added_counts, removed, removed_counts = [], [], [], []
    for row, net in changes.rows.items():
        if net > 0:
            added.append(row)
            added_counts.append(net)
        else:
            removed.append(row)
            removed_counts.append(-net)
    return added, added_counts, removed, removed_counts


@dataclass(frozen=True)
class CopySnapshot:
    """A source snapshot (`pg_current_snapshot()` text, `xmin:xmax:xip,...`): `xid in snapshot` is true for a
    transaction whose changes the snapshot saw (committed before it was taken)."""
    xmin: int
    xmax: int
    running: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> CopySnapshot:
        xmin, xmax, running = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in running.split(",") if x))

    def __contains__(self, xid: int) -> bool:
        full = self._widen(xid)
        return full < self.xmin or (full < self.xmax and full not in self.running)

    def _widen(self, xid: int) -> int:
        """pgoutput's 32-bit xid as the 64-bit one nearest the snapshot's (transactions in a slot are never
        2^31 apart)."""
        base = (self.xmax & ~0xFFFFFFFF) | (xid & 0xFFFFFFFF)
        return min((base - (1 << 32), base, base + (1 << 32)), key=lambda full: abs(full - self.xmax))


def why_not_cdc(conn, relation, primary_key: list[str]) -> str | None:
    """Why CDC cannot keep this table (it is then full-refreshed every run), or None."""
    identity, generated = conn.run("""
        SELECT c.relreplident::text, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                                             AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> '')
        FROM pg_class c WHERE c.oid = CAST(:name AS regclass)""", name=relation.sql_name)[0]
    if not primary_key and identity != "f":  # updates and deletes would not say which row they change
        return "no primary key (nor REPLICA IDENTITY FULL)"
    if identity in ("i", "n"):  # deletes would name rows by another key, or not at all
        return "its replica identity is not the primary key"
    if generated:  # Postgres before 18 does not publish generated columns: they would read NULL
        return "it has generated columns, which logical replication does not send"
    return None


def current_snapshot(conn) -> str:
    """The snapshot of `conn`'s open REPEATABLE READ transaction (what its copies read)."""
    return conn.run("SELECT pg_current_snapshot()::text")[0][0]


def copied(held: dict[str, dict], applied: dict[str, int], keyed) -> dict[str, CopySnapshot]:
    """Keyless tables not drained since their copy (stored position 0/0) -> the snapshot the copy read in:
    the transactions it saw are skipped, whatever the slot's position was."""
    return {name: CopySnapshot.parse(props[PROP_COPY_SNAPSHOT]) for name, props in held.items()
            if not keyed[name][1] and applied.get(name) == 0 and PROP_COPY_SNAPSHOT in props}


def unpublish_unidentified(conn, publication: str) -> list[str]:
    """Drop from the publication its tables that have no replica identity any more (no primary key and the
    default identity, or NOTHING, e.g. a FULL table switched back): while published, Postgres refuses their
    UPDATEs and DELETEs. They are full-refreshed from now on. Returns their names."""
    names = [row[0] for row in conn.run("""
        SELECT format('%I.%I', t.schemaname, t.tablename) FROM pg_publication_tables t
        JOIN pg_class c ON c.oid = CAST(format('%I.%I', t.schemaname, t.tablename) AS regclass)
        WHERE t.pubname = :p AND c.relkind = 'r' AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS
              (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
        ORDER BY 1""", p=publication)]
    if names:
        conn.run(f"ALTER PUBLICATION {quote_ident(publication)} DROP TABLE {', '.join(names)}")
    return names

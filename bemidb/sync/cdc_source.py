"""The source side of CDC: wal_level, the publication, the logical replication slot, reading its changes.

Everything goes through plain SQL functions over one pg8000 connection (no replication protocol, no
extension), which every managed Postgres offers to a role with the REPLICATION attribute (RDS:
rds_replication; Cloud SQL: cloudsqlsuperuser; Supabase and Neon: the default role).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from bemidb.console import UserError, human_bytes
from bemidb.quoting import quote_ident, quote_literal
from bemidb.sync import pgoutput
from bemidb.sync.postgres_copy import copy_csv_chunks

WAL_LEVEL_HINT = ("CDC needs wal_level = logical on the source (it is {level}): set it in postgresql.conf and "
                  "restart (RDS/Aurora: rds.logical_replication = 1 in the parameter group; Cloud SQL: the flag "
                  "cloudsql.logical_decoding = on; Supabase: already on; Neon: Settings > Logical Replication)")


@dataclass(frozen=True)
class SlotState:
    exists: bool
    lost: bool = False  # the WAL it needed was removed (max_slot_wal_keep_size): it can never resume
    held_bytes: int = 0  # WAL kept for the slot, from its restart point to now
    confirmed_lsn: str | None = None
    keep_size: str | None = None  # max_slot_wal_keep_size (-1 = unlimited)


def slot_report(conn, slot: str) -> list[tuple[str, SlotState]]:
    """This database's bemidb slots (and `slot`), each with the WAL it holds on the source."""
    names = [row[0] for row in conn.run("""
        SELECT slot_name FROM pg_replication_slots
        WHERE database = current_database() AND (slot_name LIKE 'bemidb%' OR slot_name = :slot)
        ORDER BY 1""", slot=slot)]
    return [(name, slot_state(conn, name)) for name in names]


def describe_slot(name: str, state: SlotState) -> str:
    if state.lost:
        return f"slot {name}: INVALIDATED (WAL removed); the next CDC run copies its tables again"
    keep = "unlimited" if state.keep_size in (None, "-1") else state.keep_size
    return (f"slot {name}: {human_bytes(state.held_bytes)} of WAL held on the source "
            f"(max_slot_wal_keep_size {keep}), applied through {state.confirmed_lsn}")


_SLOT_COLUMNS = """coalesce(s.wal_status, ''), coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::int8,
    s.confirmed_flush_lsn::text, current_setting('max_slot_wal_keep_size'), s.database::text,
    current_database()::text, coalesce(s.plugin::text, ''), s.slot_name IS NOT NULL"""


def slot_state(conn, slot: str) -> SlotState:
    rows = conn.run(f"SELECT {_SLOT_COLUMNS} FROM pg_replication_slots s WHERE s.slot_name = :slot", slot=slot)
    return _slot_state(slot, rows[0]) if rows else SlotState(False)


def _slot_state(slot: str, row) -> SlotState:
    status, held, confirmed, keep, database, ours, plugin, exists = row
    if not exists:
        return SlotState(False)
    if database != ours or plugin != "pgoutput":
        raise UserError(f"replication slot {slot} exists but belongs to database {database} (plugin {plugin}): "
                        "choose another with --slot-name / SOURCE_POSTGRES_REPLICATION_SLOT", 2)
    return SlotState(True, status == "lost", int(held), confirmed, keep)


@dataclass(frozen=True)
class SourceState:
    """What a CDC run checks before it reads the slot, asked in one round trip (a cron step's source is often
    a network hop away: every query costs one)."""
    wal_level: str
    lsn: int  # the source's current flushed position
    publication_exists: bool
    published: frozenset[str]  # the publication's tables, as sql names
    slot: SlotState


def source_state(conn, slot: str, publication: str) -> SourceState:
    """wal_level (checked: CDC needs logical), the position now, the publication and the slot."""
    row = conn.run(f"""
        SELECT current_setting('wal_level'), pg_current_wal_flush_lsn()::text,  -- flushed: see current_lsn
               EXISTS (SELECT 1 FROM pg_publication WHERE pubname = :p),
               (SELECT coalesce(json_agg(json_build_array(schemaname, tablename)), '[]')::text
                FROM pg_publication_tables WHERE pubname = :p),
               {_SLOT_COLUMNS}
        FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = :slot""", p=publication, slot=slot)[0]
    level, lsn, exists, published = row[:4]
    if level != "logical":
        raise UserError(WAL_LEVEL_HINT.format(level=level), 2)
    return SourceState(level, pgoutput.parse_lsn(lsn), bool(exists),
                       frozenset(f"{quote_ident(s)}.{quote_ident(t)}" for s, t in json.loads(published)),
                       _slot_state(slot, row[4:]))


def ensure_publication(conn, publication: str, tables: list[str], state: SourceState | None = None) -> None:
    """The publication exists and publishes `tables` (sql names); tables are only ever added. `state`: what
    source_state() saw, so that nothing is asked again."""
    quoted = quote_ident(publication)
    exists = state.publication_exists if state else conn.run("SELECT 1 FROM pg_publication WHERE pubname = :p",
                                                             p=publication)
    if not exists:
        # Changes of a partition are published as changes of its parent, the table that is synced.
        conn.run(f"CREATE PUBLICATION {quoted}" + (f" FOR TABLE {', '.join(tables)}" if tables else "")
                 + " WITH (publish_via_partition_root = true)")
        return
    published = state.published if state else {f"{quote_ident(s)}.{quote_ident(t)}" for s, t in conn.run(
        "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = :p", p=publication)}
    missing = [t for t in tables if t not in published]
    if missing:
        conn.run(f"ALTER PUBLICATION {quoted} ADD TABLE {', '.join(missing)}")


def create_slot(conn, slot: str) -> str:
    """Create the slot; returns its consistent point (changes after it are streamed)."""
    return conn.run("SELECT lsn::text FROM pg_create_logical_replication_slot(:slot, 'pgoutput')", slot=slot)[0][0]


def drop_slot(conn, slot: str) -> bool:
    if not conn.run("SELECT 1 FROM pg_replication_slots WHERE slot_name = :slot", slot=slot):
        return False
    conn.run("SELECT pg_drop_replication_slot(:slot)", slot=slot)
    return True


def drop_publication(conn, publication: str) -> bool:
    if not conn.run("SELECT 1 FROM pg_publication WHERE pubname = :p", p=publication):
        return False
    conn.run(f"DROP PUBLICATION {quote_ident(publication)}")
    return True


def current_lsn(conn) -> int:
    # The flushed position, not the inserted one: decoding reads only flushed WAL, while the advance moves up
    # to the WAL flushed by then, so a commit written below an insert-position `upto` but flushed only after
    # the peek would be skipped by the advance without ever being read (asynchronous commits make it likely).
    return pgoutput.parse_lsn(conn.run("SELECT pg_current_wal_flush_lsn()::text")[0][0])


def peek_messages(conn, slot: str, publication: str, upto: int) -> Iterator[object]:
    """The slot's pgoutput messages up to `upto`, decoded, streamed through COPY (pg8000 would hold every
    row of a plain SELECT in memory). Peek does not consume: the slot moves only by advance(). Each message
    comes as hex of (its int32 length, itself): a chunk of lines is one bytes.fromhex, which skips the line
    breaks, and the lengths split it again."""
    select = (f"SELECT encode(int4send(length(data)) || data, 'hex') FROM pg_logical_slot_peek_binary_changes("
              f"{quote_literal(slot)}, {quote_literal(pgoutput.format_lsn(upto))}::pg_lsn, NULL, "
              f"'proto_version', '1', 'publication_names', {quote_literal(publication)})")
    for chunk in copy_csv_chunks(conn, select):
        data = chunk.to_pybytes() if hasattr(chunk, "to_pybytes") else bytes(chunk)
        yield from pgoutput.decode_frames(bytes.fromhex(data.decode("ascii")))


def rows_changed(conn, tables: list[str]) -> int:
    """Rows inserted, updated or deleted so far in `tables` (sql names) and their partitions, by the source's
    statistics: nearly free to ask, unlike decoding the slot. Approximate (rolled-back rows count too, and a
    backend reports within about a second), which is enough to decide when a follower commits."""
    return int(conn.run("""
        WITH named AS (SELECT CAST(name AS regclass) AS relid FROM unnest(CAST(:tables AS text[])) AS t(name))
        SELECT coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0)::int8 FROM pg_stat_all_tables s
        WHERE s.relid IN (SELECT relid FROM named UNION  -- a partitioned table's rows are its partitions'
                          SELECT p.relid FROM named, pg_partition_tree(named.relid) AS p)""", tables=tables)[0][0])


def advance(conn, slot: str, lsn: int) -> None:
    """Tell the source everything before `lsn` is applied: it may now remove that WAL."""
    conn.run("SELECT pg_replication_slot_advance(:slot, CAST(:lsn AS pg_lsn))", slot=slot,
             lsn=pgoutput.format_lsn(lsn))

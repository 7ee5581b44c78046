"""Decoding the `pgoutput` logical replication messages (protocol version 1), one message per bytes object.

pgoutput is built into every Postgres >= 10 and every managed one, so no extension is needed. Only committed
transactions are sent (a rolled-back one never appears), each as Begin, changes, Commit. Column values arrive
as the type's text output; `UNCHANGED` marks a TOASTed value an update left as it was (not sent).
See https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

UNCHANGED = object()  # 'u': an unchanged TOASTed value the update did not send

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_I64 = struct.Struct("!q")


class ProtocolError(Exception):
    """A message this decoder does not understand (a newer protocol, or corrupt data)."""


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    replica_identity: str  # d default (primary key), f full, i index, n nothing
    columns: tuple[str, ...]
    key_flags: tuple[bool, ...]  # part of the replica identity
    type_oids: tuple[int, ...]


@dataclass(frozen=True)
class Begin:
    final_lsn: int  # the transaction's commit record: the same for every change in it
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int


@dataclass(slots=True)  # not frozen: one is built per changed row, and a frozen one costs twice as much
class Change:
    kind: str  # I insert, U update, D delete
    relation_oid: int
    new: tuple | None  # insert/update: every column (text, None or UNCHANGED)
    old: tuple | None  # update/delete: the old key ('K') or the whole old row ('O'); None when not sent


@dataclass(frozen=True)
class Truncate:
    relation_oids: tuple[int, ...]


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> str:
        value = self.data[self.pos:self.pos + 1].decode("ascii")
        self.pos += 1
        return value

    def int(self, fmt: struct.Struct) -> int:
        value = fmt.unpack_from(self.data, self.pos)[0]
        self.pos += fmt.size
        return value

    def string(self) -> str:
        end = self.data.index(b"\x00", self.pos)
        value = self.data[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return value

    def tuple_data(self) -> tuple:
        values, self.pos = _tuple_data(self.data, self.pos)
        return values


def _tuple_data(data: bytes, pos: int) -> tuple[tuple, int]:
    """A TupleData at `pos` -> (values, position after it). The hot loop of a drain (one call per changed
    row): plain locals and byte comparisons, no method call per value."""
    count = _I16.unpack_from(data, pos)[0]
    pos += 2
    values = []
    append = values.append
    unpack_i32 = _I32.unpack_from
    for _ in range(count):
        kind = data[pos]
        pos += 1
        if kind == 0x74:  # 't': text
            length = unpack_i32(data, pos)[0]
            pos += 4
            append(data[pos:pos + length].decode("utf-8"))
            pos += length
        elif kind == 0x6E:  # 'n': NULL
            append(None)
        elif kind == 0x75:  # 'u': unchanged TOASTed value
            append(UNCHANGED)
        else:
            raise ProtocolError(f"tuple value kind {chr(kind)!r} (binary values are not asked for)")
    return tuple(values), pos


def decode(data: bytes):
    """One pgoutput message -> Begin | Commit | Relation | Change | Truncate, or None for the kinds that
    carry nothing to apply (Origin, Type, logical decoding Message)."""
    reader = _Reader(data)
    kind = reader.byte()
    if kind == "B":
        final_lsn = reader.int(_I64)
        reader.int(_I64)  # commit timestamp
        return Begin(final_lsn, reader.int(_U32))
    if kind == "C":
        reader.byte()  # flags
        commit_lsn = reader.int(_I64)
        return Commit(commit_lsn, reader.int(_I64))
    if kind == "R":
        oid = reader.int(_U32)
        schema, name = reader.string(), reader.string()
        identity = reader.byte()
        names, keys, types = [], [], []
        for _ in range(reader.int(_I16)):
            keys.append(bool(reader.int(struct.Struct("!b")) & 1))
            names.append(reader.string())
            types.append(reader.int(_U32))
            reader.int(_I32)  # typmod
        return Relation(oid, schema or "pg_catalog", name, identity, tuple(names), tuple(keys), tuple(types))
    if kind == "I":
        oid = reader.int(_U32)
        reader.byte()  # 'N'
        return Change("I", oid, reader.tuple_data(), None)
    if kind == "U":
        oid = reader.int(_U32)
        marker = reader.byte()
        old = None
        if marker in ("K", "O"):
            old = reader.tuple_data()
            marker = reader.byte()
        if marker != "N":
            raise ProtocolError(f"update without a new tuple (marker {marker!r})")
        return Change("U", oid, reader.tuple_data(), old)
    if kind == "D":
        oid = reader.int(_U32)
        reader.byte()  # 'K' or 'O'
        return Change("D", oid, None, reader.tuple_data())
    if kind == "T":
        count = reader.int(_I32)
        reader.byte()  # options: CASCADE / RESTART IDENTITY
        return Truncate(tuple(reader.int(_U32) for _ in range(count)))
    if kind in ("O", "Y", "M"):
        return None
    raise ProtocolError(f"pgoutput message kind {kind!r}")


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)

"""Decoding the `pgoutput` logical replication messages (protocol version 1), one message per bytes object.

pgoutput is built into every Postgres >= 10 and every managed one, so no extension is needed. Only committed
transactions are sent (a rolled-back one never appears), each as Begin, changes, Commit. Column values arrive
as the type's text output; `UNCHANGED` marks a TOASTed value an update left as it was (not sent).
See https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
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
        if kind == 0x74:  # 't': text
            end = pos + 5 + unpack_i32(data, pos + 1)[0]
            append(data[pos + 5:end].decode("utf-8"))
            pos = end
        elif kind == 0x6E:  # 'n': NULL
            append(None)
            pos += 1
        elif kind == 0x75:  # 'u': unchanged TOASTed value
            append(UNCHANGED)
            pos += 1
        else:
            raise ProtocolError(f"tuple value kind {chr(kind)!r} (binary values are not asked for)")
    return tuple(values), pos


def _change(data: bytes, pos: int) -> tuple[Change, int]:
    """The Insert, Update or Delete message at `pos` (its kind byte) -> (Change, position after it)."""
    kind = data[pos]
    oid = _U32.unpack_from(data, pos + 1)[0]
    marker = data[pos + 5]
    if kind == 0x49:  # 'I', then 'N' and the new row
        if marker != 0x4E:
            raise ProtocolError(f"insert without a new tuple (marker {chr(marker)!r})")
        new, pos = _tuple_data(data, pos + 6)
        return Change("I", oid, new, None), pos
    if kind == 0x44:  # 'D', then 'K' (the key) or 'O' (the whole old row)
        if marker not in (0x4B, 0x4F):
            raise ProtocolError(f"delete without an old tuple (marker {chr(marker)!r})")
        old, pos = _tuple_data(data, pos + 6)
        return Change("D", oid, None, old), pos
    old, pos = None, pos + 6  # 'U': an optional 'K'/'O' old tuple, then 'N' and the new row
    if marker in (0x4B, 0x4F):
        old, pos = _tuple_data(data, pos)
        marker = data[pos]
        pos += 1
    if marker != 0x4E:
        raise ProtocolError(f"update without a new tuple (marker {chr(marker)!r})")
    new, pos = _tuple_data(data, pos)
    return Change("U", oid, new, old), pos


def decode_frames(raw: bytes) -> Iterator[object]:
    """The messages of `raw`, a run of frames (int32 length, message), as decode() decodes each: the slot
    is read in that framing so that a whole chunk is hex-decoded at once, and the changes, nearly every
    message of a drain, are decoded in place (no copy of each message)."""
    pos, total = 0, len(raw)
    length_at = _I32.unpack_from
    while pos < total:
        end = pos + 4 + length_at(raw, pos)[0]
        pos += 4
        if raw[pos] in (0x49, 0x55, 0x44):  # I, U, D
            message, pos = _change(raw, pos)
            if pos != end:
                raise ProtocolError("a change message does not end where its frame does")
        else:
            message = decode(raw[pos:end])
        pos = end
        if message is not None:
            yield message
    if pos != total:
        raise ProtocolError("the last message runs past the data read")


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
    if kind in ("I", "U", "D"):
        message, end = _change(data, 0)
        if end != len(data):
            raise ProtocolError("a change message longer than its tuples")
        return message
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

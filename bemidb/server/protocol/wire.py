"""The Postgres v3 wire codec: framing, length checks and a bounds-checked payload reader.

Everything that touches raw bytes from a client lives here, so a malformed frame can only ever surface as a
ProtocolError (the session answers it with an ErrorResponse for that client alone).
"""

from __future__ import annotations

import struct

PROTOCOL_3_0 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

MAX_STARTUP_LENGTH = 10_000  # Postgres's own limit for a startup packet
MAX_MESSAGE_LENGTH = 256 * 1024 * 1024  # a query or Bind larger than this is refused, not buffered

_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")
_HEADER = struct.Struct("!ci")


class ProtocolError(Exception):
    """The client sent bytes that are not a valid message: answered with 08P01, then the connection closes."""


class ClientGone(Exception):
    """The peer closed the socket (or it broke) mid-conversation."""


def read_exact(rfile, n: int) -> bytes:
    data = rfile.read(n)
    if data is None or len(data) < n:
        raise ClientGone()
    return data


def read_startup(rfile) -> tuple[int, bytes]:
    """The first frame: int32 length (self-inclusive), int32 code, payload. Returns (code, payload)."""
    length = _INT32.unpack(read_exact(rfile, 4))[0]
    if not 8 <= length <= MAX_STARTUP_LENGTH:
        raise ProtocolError(f"invalid startup packet length {length}")
    body = read_exact(rfile, length - 4)
    return _INT32.unpack_from(body)[0], body[4:]


def read_message(rfile) -> tuple[bytes, bytes]:
    """One regular frame: type byte, int32 length (self-inclusive), payload. Returns (type, payload)."""
    header = rfile.read(5)
    if not header:
        raise ClientGone()
    if len(header) < 5:
        raise ClientGone()
    kind, length = _HEADER.unpack(header)
    if not 4 <= length <= MAX_MESSAGE_LENGTH:
        raise ProtocolError(f"invalid message length {length} for message type {kind!r}")
    return kind, read_exact(rfile, length - 4)


def parse_startup_parameters(payload: bytes) -> dict[str, str]:
    """name\\0value\\0 ... \\0 -> dict; invalid UTF-8 is a protocol error, not a crash."""
    try:
        parts = payload.decode("utf-8").split("\0")
    except UnicodeDecodeError:
        raise ProtocolError("invalid UTF-8 in startup packet") from None
    if len(parts) < 2 or parts[-1] != "" or parts[-2] != "":
        raise ProtocolError("startup packet is not terminated")
    pairs = parts[:-2]
    if len(pairs) % 2:
        raise ProtocolError("startup packet has a name without a value")
    return dict(zip(pairs[0::2], pairs[1::2], strict=True))


class Reader:
    """Sequential, bounds-checked reads over one message payload."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError("message is shorter than its contents claim")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int16(self) -> int:
        return _INT16.unpack(self._take(2))[0]

    def int32(self) -> int:
        return _INT32.unpack(self._take(4))[0]

    def uint32(self) -> int:
        return _UINT32.unpack(self._take(4))[0]

    def byte(self) -> bytes:
        return self._take(1)

    def bytes(self, n: int) -> bytes:
        return self._take(n)

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolError("string is not NUL-terminated")
        raw = self.data[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            # The frame is sound, only its text is not UTF-8: 22021 for this statement (as Postgres), and the
            # connection goes on; a ProtocolError would drop the client.
            from bemidb.server.errors import PgError

            bad = " ".join(f"0x{b:02x}" for b in raw[exc.start:exc.end])
            raise PgError("22021", f'invalid byte sequence for encoding "UTF8": {bad}') from None

    def rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk

    def count(self, per_item_min_bytes: int) -> int:
        """An int16 item count, checked against the bytes left (a huge count cannot make us loop for long)."""
        n = self.int16()
        if n < 0 or n * per_item_min_bytes > len(self.data) - self.pos:
            raise ProtocolError(f"invalid item count {n}")
        return n


# ---------------------------------------------------------------------------------------------------------
# Writers: each returns the bytes of one backend message.


def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + _INT32.pack(len(payload) + 4) + payload


def cstr(text: str) -> bytes:
    return text.encode("utf-8") + b"\0"


def int16(n: int) -> bytes:
    return _INT16.pack(n)


def int32(n: int) -> bytes:
    return _INT32.pack(n)


def uint32(n: int) -> bytes:
    return _UINT32.pack(n)


def authentication(code: int, extra: bytes = b"") -> bytes:
    return message(b"R", _INT32.pack(code) + extra)


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def backend_key_data(pid: int, secret: int) -> bytes:
    return message(b"K", _INT32.pack(pid) + _INT32.pack(secret))


def ready_for_query(status: str) -> bytes:
    return message(b"Z", status.encode())


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def notice_or_error(kind: bytes, fields: dict[str, str]) -> bytes:
    """ErrorResponse ('E') or NoticeResponse ('N'): one-letter field codes -> values."""
    body = b"".join(code.encode() + cstr(value) for code, value in fields.items() if value is not None)
    return message(kind, body + b"\0")


EMPTY_QUERY_RESPONSE = message(b"I")
NO_DATA = message(b"n")
PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
CLOSE_COMPLETE = message(b"3")
PORTAL_SUSPENDED = message(b"s")
COPY_DONE = message(b"c")

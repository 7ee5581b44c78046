"""Protocol fuzzer: random and mutated Postgres v3 messages against a running bemidb server.

Every session opens a connection, sends a (valid, mutated or garbage) startup and a run of messages built from
valid ones and then broken: wrong parameter counts and formats, lying lengths (huge, negative, zero),
truncated frames, unknown tags, invalid UTF-8. It then half-closes its side and waits for the server to finish
and close: a server that never closes after the client's EOF has a hung thread. Between sessions, every
`--check-every` sessions, a normal client must log in and get a correct answer.

Generation is a pure function of a `random.Random`, so CI's quick mode drives it from hypothesis
(`st.randoms()`, shrinkable) and the nightly mode from a seed:

    python -m tests.fuzz.protocol --messages 100000            # starts its own server on a temp data dir
    python -m tests.fuzz.protocol --host 127.0.0.1 --port 54321 --messages 100000
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from tests.support import wire_client as wire

# Cheap statements only (small results): the fuzzer tests the protocol layer, not the engine's patience.
SQL_CORPUS = [
    "SELECT 1", "SELECT $1", "SELECT $1::int + $2::int", "SELECT count(*) FROM public.small",
    "SELECT id, label FROM public.small WHERE id = $1", "SELECT * FROM public.small LIMIT 5",
    "SELECT grp, sum(amount) FROM public.big GROUP BY grp", "BEGIN", "COMMIT", "ROLLBACK", "SET x = 1",
    "SET application_name = 'fuzz'", "SHOW server_version", "SELECT * FROM pg_catalog.pg_class LIMIT 3",
    "SELECT version()", "", ";", "SELECT 1; SELECT 2", "SELECT 'a' || $1", "SELECT NULL::text",
    "SELECT * FROM no_such_table", "SELEC 1", "SELECT 'unterminated", "SELECT 1/0",
    "SELECT ARRAY[1,2,3]", "SELECT '2024-01-01'::date", "DISCARD ALL", "SELECT current_setting('TimeZone')",
    "COPY (SELECT 1) TO STDOUT", "SELECT pg_sleep(0.01)", "SELECT generate_series(1, 10)",
]
# Values that break length and count arithmetic.
INTERESTING_INTS = [0, 1, -1, 2, 3, 4, 5, 0x7F, 0x80, 0xFF, 0x7FFF, -0x8000, 0xFFFF, 0x7FFFFFFF, -0x80000000,
                    1 << 16, 1 << 24, 1 << 30]
INTERESTING_BYTES = [b"", b"\0", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80" * 3, b"%s%n", b"'" * 5,
                     b"$1", b"\0" * 8, "é".encode(), b"\xf0\x9f\x92\xa9", b"A" * 1000]


def _choice_bytes(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(INTERESTING_BYTES)
    if kind == 1:
        return rng.randbytes(rng.randrange(0, 40))
    if kind == 2:
        return rng.choice(SQL_CORPUS).encode()
    if kind == 3:
        return str(rng.choice(INTERESTING_INTS)).encode()
    return mutate(rng, rng.choice(SQL_CORPUS).encode())


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A few random edits: bit flips, deletions, insertions, interesting bytes, truncation, duplication."""
    out = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(6)
        position = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(position, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            del out[position:position + rng.randrange(1, 8)]
        elif op == 2:
            out[position:position] = rng.randbytes(rng.randrange(1, 8))
        elif op == 3:
            out[position:position] = rng.choice(INTERESTING_BYTES)
        elif op == 4:
            del out[position:]
        else:
            out += out[position:position + 16]
    return bytes(out)


def _int16s(rng: random.Random) -> list[int]:
    return [rng.choice([0, 1, 2, -1, 0x7FFF]) for _ in range(rng.choice([0, 0, 1, 2, 3, 40]))]


def _relength(rng: random.Random, message: bytes) -> bytes:
    """Keep the tag and body but lie about the length."""
    bad = rng.choice([-1, 0, 1, 3, 0x7FFFFFFF, 1 << 30, 1 << 24, len(message) + rng.randrange(1, 100),
                      -0x80000000])
    return message[:1] + struct.pack("!i", bad) + message[5:]


def random_message(rng: random.Random) -> bytes:
    """One frame after a successful login: valid, subtly wrong, or plain garbage."""
    kind = rng.randrange(16)
    if kind == 0:
        message = wire.query(_choice_bytes(rng))
    elif kind == 1:
        message = wire.parse(_choice_bytes(rng), rng.choice([b"", b"s1", b"s2", _choice_bytes(rng)]),
                             [rng.choice([0, 23, 25, 20, 16, 1043, -1, 0x7FFFFFFF]) for _ in
                              range(rng.choice([0, 1, 2, 5]))])
    elif kind == 2:
        params = [rng.choice([None, b"1", b"abc", b"\0\0\0\x01", rng.randbytes(rng.randrange(0, 9)),
                              rng.choice(INTERESTING_BYTES)]) for _ in range(rng.choice([0, 1, 2, 3, 9]))]
        message = wire.bind(params, rng.choice([b"", b"s1", b"nope"]), rng.choice([b"", b"p1"]),
                            _int16s(rng), _int16s(rng),
                            count=rng.choice([None, None, 0, -1, 1, 0x7FFF, len(params) + 1]))
    elif kind == 3:
        message = wire.describe(rng.choice([b"S", b"P", b"X", b"\0"]), rng.choice([b"", b"s1", b"p1", b"zz"]))
    elif kind == 4:
        message = wire.execute(rng.choice([b"", b"p1", b"nope"]), rng.choice([0, 1, 2, -1, 0x7FFFFFFF]))
    elif kind == 5:
        message = wire.close(rng.choice([b"S", b"P", b"Q"]), rng.choice([b"", b"s1", b"p1"]))
    elif kind in (6, 7):
        message = rng.choice([wire.sync(), wire.flush()])
    elif kind == 8:  # an unknown or out-of-place tag (COPY data, function call, password ...)
        message = wire.frame(rng.choice([b"d", b"c", b"f", b"F", b"p", b"\0", b"\xff", b"z", b"A"]),
                             rng.randbytes(rng.randrange(0, 30)))
    elif kind == 9:  # a lying length on an otherwise valid frame
        message = _relength(rng, wire.query(rng.choice(SQL_CORPUS)))
    elif kind == 10:  # truncated frame: the rest of the stream is then misaligned, as after a broken client
        full = wire.query(rng.choice(SQL_CORPUS))
        message = full[:rng.randrange(1, len(full))]
    elif kind == 11:
        message = mutate(rng, wire.bind([b"1"], count=rng.choice([0, 1, 2])))
    elif kind == 12:  # the extended-query dance, whole and valid-looking, with a mutated SQL text
        sql = mutate(rng, rng.choice(SQL_CORPUS).encode()) if rng.random() < 0.5 else rng.choice(SQL_CORPUS)
        message = (wire.parse(sql) + wire.bind([b"1"] * rng.choice([0, 1, 2])) + wire.describe(b"P") +
                   wire.execute(max_rows=rng.choice([0, 1, 3])) + wire.sync())
    elif kind == 13:  # a startup-like packet after login
        message = rng.choice([wire.ssl_request(), wire.startup({"user": "x"}), wire.cancel_request(1, 2)])
    elif kind == 14:
        message = rng.randbytes(rng.randrange(1, 64))
    else:
        message = mutate(rng, wire.query(rng.choice(SQL_CORPUS)))
    return message


def random_startup(rng: random.Random) -> tuple[list[bytes], bool]:
    """(frames to open the session with, whether this is a valid login we should wait for)."""
    valid = wire.startup({"user": "bemidb", "database": "bemidb"})
    kind = rng.randrange(12)
    if kind < 6:
        return [valid], True
    if kind == 6:
        return [wire.ssl_request(), valid], True  # the 'N' byte is read by the session runner
    if kind == 7:
        return [wire.gssenc_request(), valid], True
    if kind == 8:
        return [wire.cancel_request(rng.randrange(-2**31, 2**31), rng.randrange(-2**31, 2**31))], False
    if kind == 9:
        params = {_choice_bytes(rng).replace(b"\0", b""): _choice_bytes(rng).replace(b"\0", b"")
                  for _ in range(rng.randrange(0, 6))}
        version = rng.choice([wire.PROTOCOL_3, 0x00020000, 0x00030001, 0, -1, 0x7FFFFFFF])
        return [wire.startup(params, version)], False
    if kind == 10:
        frame = mutate(rng, valid)
        if rng.random() < 0.5:
            frame = struct.pack("!i", rng.choice(INTERESTING_INTS)) + frame[4:]
        return [frame], False
    return [rng.randbytes(rng.randrange(1, 64))], False


@dataclass
class Session:
    startup: list[bytes]
    login: bool
    messages: list[bytes] = field(default_factory=list)


def random_session(rng: random.Random, max_messages: int = 30) -> Session:
    frames, login = random_startup(rng)
    messages = [random_message(rng) for _ in range(rng.randrange(0, max_messages + 1))] if login else []
    if messages and rng.random() < 0.3:
        messages.append(wire.terminate())
    return Session(frames, login, messages)


@dataclass
class Outcome:
    sent: int = 0  # frames written
    replies: int = 0  # bytes read back
    hung: bool = False  # the server did not close within the timeout after our EOF
    refused: bool = False  # connection refused or reset at connect/startup
    internal: int = 0  # ErrorResponses with SQLSTATE XX000: the server hit a bug, even if it survived


def _drain_nowait(sock: socket.socket, seen: bytearray) -> int:
    """Read whatever replies are already there, without waiting (so our sends never deadlock on a full
    socket buffer). A socket with a timeout polls before recv even with MSG_DONTWAIT: go non-blocking."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    total = 0
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return total
            total += len(chunk)
            seen += chunk
    except (BlockingIOError, InterruptedError, OSError):
        return total
    finally:
        sock.settimeout(timeout)


def run_session(host: str, port: int, session: Session, timeout: float = 20) -> Outcome:
    """Play one session; report whether the server closed the connection in time after our half-close."""
    outcome = Outcome()
    try:
        client = wire.RawClient(host, port, timeout=timeout)
    except OSError:
        outcome.refused = True
        return outcome
    sock = client.sock
    seen = bytearray()  # every reply byte (they are small: the corpus has no big results)
    try:
        for frame in session.startup:
            sock.sendall(frame)
            outcome.sent += 1
            if frame in (wire.ssl_request(), wire.gssenc_request()):
                client.read_byte()  # 'N' (no TLS configured) before the real startup
        if session.login:
            client.read_until(b"Z", b"E")
        for frame in session.messages:
            sock.sendall(frame)
            outcome.sent += 1
            outcome.replies += _drain_nowait(sock, seen)
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # read until the server closes its side
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            outcome.replies += len(chunk)
            seen += chunk
        else:
            outcome.hung = True
    except TimeoutError:
        outcome.hung = True
    except (wire.ServerClosed, ConnectionError, OSError):
        pass  # the server hung up on a broken client: fine
    finally:
        client.close()
        outcome.internal = (bytes(client.buffer) + bytes(seen)).count(b"CXX000\0")
    return outcome


def healthy(host: str, port: int, timeout: float = 30) -> str | None:
    """None if a normal client logs in and gets the right answer, else what went wrong."""
    try:
        client = wire.RawClient(host, port, timeout=timeout)
        try:
            login = client.startup()
            if login[-1].tag != b"Z":
                return f"login failed: {login[-1].fields()}"
            replies = client.simple("SELECT count(*) FROM public.small")
            if wire.rows(replies) != [[b"1000"]]:
                return f"wrong answer: {replies}"
            client.send(wire.terminate())
        finally:
            client.close()
    except Exception as exc:  # any failure here is the finding
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class Report:
    messages: int = 0
    sessions: int = 0
    hangs: int = 0
    refused: int = 0
    internal_errors: int = 0
    unhealthy: list[str] = field(default_factory=list)
    crashed: bool = False
    seconds: float = 0.0

    def line(self) -> str:
        return (f"fuzz: {self.messages} messages in {self.sessions} sessions, {self.seconds:.1f}s, "
                f"hangs={self.hangs}, refused={self.refused}, internal_errors={self.internal_errors}, unhealthy={len(self.unhealthy)}, "
                f"crashed={self.crashed}")


def fuzz(host: str, port: int, messages: int, seed: int, workers: int = 4, check_every: int = 200,
         alive=lambda: True) -> Report:
    """Send at least `messages` frames from `workers` threads; seeds are seed, seed+1, ... per session."""
    report = Report()
    lock = threading.Lock()
    counter = iter(range(seed, seed + 10**9))
    started = time.monotonic()

    def worker() -> None:
        while True:
            with lock:
                if report.messages >= messages or report.crashed:
                    return
                session_seed = next(counter)
            session = random_session(random.Random(session_seed))
            outcome = run_session(host, port, session)
            with lock:
                report.messages += outcome.sent
                report.sessions += 1
                report.hangs += outcome.hung
                report.refused += outcome.refused
                report.internal_errors += outcome.internal
                if outcome.internal:
                    report.unhealthy.append(f"session seed {session_seed}: XX000 internal error")
                if outcome.hung:
                    report.unhealthy.append(f"session seed {session_seed} hung")
                check = report.sessions % check_every == 0
            if check:
                if not alive():
                    with lock:
                        report.crashed = True
                    return
                problem = healthy(host, port)
                if problem:
                    with lock:
                        report.unhealthy.append(f"after session seed {session_seed}: {problem}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.crashed = report.crashed or not alive()
    problem = None if report.crashed else healthy(host, port)
    if problem:
        report.unhealthy.append(f"at the end: {problem}")
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.protocol", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    server = None
    if args.port is None:
        from tests.support.seed import seed_standard
        from tests.support.server import start_server

        data_dir = tempfile.mkdtemp(prefix="bemidb-fuzz-")
        seed_standard(data_dir)
        server = start_server(data_dir, log_level="INFO", extra_args=["--statement-timeout", "10s"])
        host, port, alive = server.host, server.port, server.alive
    else:
        host, port, alive = args.host or "127.0.0.1", args.port, (lambda: True)
    print(f"fuzzing {host}:{port} with seed {args.seed}, {args.messages} messages", flush=True)
    try:
        report = fuzz(host, port, args.messages, args.seed, args.workers, alive=alive)
    finally:
        if server is not None:
            code = server.stop()
            print(f"server exit code {code}; log {server.log_path}")
    print(report.line())
    for problem in report.unhealthy[:20]:
        print("  " + problem)
    return 1 if report.crashed or report.unhealthy else 0


if __name__ == "__main__":
    sys.exit(main())

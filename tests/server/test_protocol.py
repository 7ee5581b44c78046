"""The wire protocol at the byte level (raw socket), and server behaviour: limits, cancel, shutdown, TLS, auth,
live tables, sandbox, streaming memory. Always against the real `bemidb serve` process."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time

import pyarrow as pa
import pytest

from bemidb.storage.writer import write_table
from tests.support import wire_client as raw
from tests.support.items import catalog_for, write_items
from tests.support.server import bemidb_server, start_server  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def server(warehouse):
    """One server for the tests that only read (each opens its own connections), on local disk, then S3."""
    write_items(warehouse.data_dir, env=warehouse.env)
    process = start_server(warehouse.data_dir, env=warehouse.env)
    yield process
    process.stop()


def connect(server, **kwargs) -> raw.RawClient:
    client = raw.RawClient("127.0.0.1", server.port)
    messages = client.startup(**kwargs)
    assert messages[-1].tag == b"Z", [m.fields() for m in messages if m.tag == b"E"]
    return client


def tags(messages) -> bytes:
    return b"".join(m.tag for m in messages)


def psycopg_works(server) -> None:
    import psycopg

    with psycopg.connect(server.dsn("bob")) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (3,)


# -- extended protocol details ---------------------------------------------------------------------------------


def test_describe_before_bind_row_limit_and_portal_suspended(server):
    client = connect(server)
    client.send(raw.parse("SELECT range AS n FROM range(10) WHERE range >= $1", name="s1")
                + raw.describe(b"S", "s1") + raw.sync())
    messages = client.read_until_ready()
    assert tags(messages) == b"1tTZ"
    (n_params, oid) = struct.unpack("!hI", messages[1].payload)
    assert (n_params, oid) == (1, 20)  # inferred from the query: bigint
    # bind $1 = 3, fetch 4 rows at a time
    client.send(raw.bind([b"3"], statement="s1", portal="p1") + raw.execute("p1", 4) + raw.flush())
    messages = client.read_until(b"s")
    assert tags(messages) == b"2DDDDs"
    assert [m.data_row() for m in messages[1:5]] == [[b"3"], [b"4"], [b"5"], [b"6"]]
    client.send(raw.execute("p1", 4) + raw.execute("p1", 4) + raw.sync())
    messages = client.read_until_ready()
    assert tags(messages) == b"DDDCCZ"  # the last 3 rows, then an exhausted portal answers SELECT 0
    assert [m.data_row() for m in messages[:3]] == [[b"7"], [b"8"], [b"9"]]
    assert messages[-2].payload == b"SELECT 0\0"
    # binary result format for the int8 column
    client.send(raw.bind([b"8"], statement="s1", result_formats=[1]) + raw.execute() + raw.sync())
    messages = client.read_until_ready()
    assert [m.data_row() for m in messages if m.tag == b"D"] == [[struct.pack("!q", 8)], [struct.pack("!q", 9)]]
    client.close()


def test_portal_fetched_in_chunks_across_batches_inside_a_transaction(server):
    """What PgJDBC does with setFetchSize: Execute(n) + Sync again and again on one portal in a transaction;
    the portal outlives each Sync, and rows come out whole and in order across DuckDB's batch boundaries."""
    client = connect(server)
    assert client.simple("BEGIN")[-1].payload == b"T"
    client.send(raw.parse("SELECT range AS n, range::varchar AS s FROM range(150000)") + raw.bind(
        portal="big", result_formats=[1, 0]) + raw.describe(b"P", "big") + raw.execute("big", 7000) + raw.sync())
    messages = client.read_until_ready()
    assert tags(messages[:3]) == b"12T" and messages[-2].tag == b"s" and messages[-1].payload == b"T"
    seen = [m.data_row() for m in messages if m.tag == b"D"]
    while True:
        client.send(raw.execute("big", 7000) + raw.sync())
        messages = client.read_until_ready()
        seen += [m.data_row() for m in messages if m.tag == b"D"]
        if messages[-2].tag == b"C":
            break
        assert messages[-2].tag == b"s"
    assert len(seen) == 150000
    assert all(row == [struct.pack("!q", i), str(i).encode()] for i, row in enumerate(seen))
    assert client.simple("COMMIT")[-1].payload == b"I"
    client.close()


def test_error_discards_until_sync_and_transaction_status(server):
    client = connect(server)
    client.send(raw.parse("SELECT * FROM no_such_table") + raw.bind() + raw.execute()
                + raw.parse("SELECT 1") + raw.sync())
    messages = client.read_until_ready()
    assert tags(messages) == b"EZ"
    assert messages[0].fields().get('C') == "42P01"
    # transaction status: BEGIN -> T, error -> E, ROLLBACK -> I
    assert client.simple("BEGIN")[-1].payload == b"T"
    messages = client.simple("SELECT nope FROM items")
    assert messages[0].fields().get('C') == "42703" and messages[-1].payload == b"E"
    assert client.simple("SELECT 1")[0].fields().get('C') == "25P02"
    assert client.simple("ROLLBACK")[-1].payload == b"I"
    messages = client.simple("SELECT 1; SELECT 2")
    assert [m.data_row() for m in messages if m.tag == b"D"] == [[b"1"], [b"2"]]
    # empty query and a named statement that already exists
    assert tags(client.simple("")) == b"IZ"
    client.send(raw.parse("SELECT 1", name="dup") + raw.parse("SELECT 2", name="dup") + raw.sync())
    messages = client.read_until_ready()
    assert tags(messages) == b"1EZ" and messages[1].fields().get('C') == "42P05"
    client.close()


def test_malformed_messages_only_hurt_their_own_client(server):
    attacks = [
        raw.frame(b"Q", b"SELECT 1\0", length=-5),  # negative length
        raw.frame(b"Q", b"SELECT 1\0", length=2_000_000_000),  # oversized length
        raw.frame(b"Q", b"SELECT 1"),  # no NUL terminator
        raw.frame(b"!", b""),  # unknown message type
        raw.bind([b"1", b"2"], count=30000),  # lies about its parameter count
        raw.frame(b"P", b"\0SELECT 1\0\x7f\xff"),  # parameter count beyond the payload
        raw.frame(b"Q", b"SELECT '\xff\xfe'\0"),  # invalid UTF-8
        raw.frame(b"D", b"Z\0"),  # bad Describe kind
    ]
    for attack in attacks:
        client = connect(server)
        client.send(attack + raw.sync() + raw.terminate())  # Terminate: a surviving session closes too
        try:
            replies = client.drain_until_closed()
        except (ConnectionError, TimeoutError, OSError):
            replies = []
        assert all(m.tag in (b"E", b"Z", b"N", b"1", b"2", b"3", b"I") for m in replies), attack
        client.close(abrupt=True)
    # a truncated startup packet and a garbage one
    for junk in (b"\x00\x00\x00\x50\x00\x03", b"\xff\xff\xff\xff", raw.untagged(b"\x00\x09\x00\x00")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
    assert server.alive()
    psycopg_works(server)


def test_startup_negotiation_and_unknown_database(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw.gssenc_request())
        assert sock.recv(1) == b"N"
        sock.sendall(raw.ssl_request())
        assert sock.recv(1) == b"N"  # no TLS configured
    client = raw.RawClient("127.0.0.1", server.port)
    messages = client.startup(database="other")
    assert messages[-1].fields().get('C') == "3D000"
    client.close()
    client = connect(server, extra={"application_name": "raw-test", "options": "-c search_path=public"})
    assert client.parameters["server_version"].startswith("16")
    assert client.parameters["client_encoding"] == "UTF8"
    assert client.parameters["DateStyle"] == "ISO, MDY"
    assert client.parameters["standard_conforming_strings"] == "on"
    assert client.parameters["application_name"] == "raw-test"
    client.close()


# -- sandbox ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sql, sqlstate", [
    ("CREATE TABLE t (a int)", "25006"),
    ("INSERT INTO items (id) VALUES (9)", "25006"),
    ("DELETE FROM items", "25006"),
    ("DROP VIEW items", "25006"),
    ("EXPLAIN ANALYZE DROP VIEW items", "25006"),  # EXPLAIN ANALYZE runs what it explains
    ("EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1", "25006"),
    ("COPY (SELECT 1) TO '/tmp/bemidb-escape.csv'", "42501"),
    ("ATTACH '/tmp/x.db' AS x", "42501"),
    ("PRAGMA database_list", "42501"),
    ("SET enable_external_access = true", None),  # Postgres-style SET: refused as an unknown setting
    ("SELECT * FROM read_text('/etc/passwd')", "42501"),
    ("SELECT * FROM read_csv('/etc/passwd')", "42501"),
    ("SELECT * FROM glob('/etc/*')", "42501"),
])
def test_sandbox_refuses_writes_and_file_access(server, sql, sqlstate):
    client = connect(server)
    messages = client.simple(sql)
    errors = raw.errors(messages)
    assert errors, f"{sql} was not refused: {[m.tag for m in messages]}"
    if sqlstate:
        assert errors[0].fields().get('C') == sqlstate, (sql, errors[0].fields())
    assert not raw.rows(messages)
    assert raw.rows(client.simple("SELECT count(*) FROM items")) == [[b"3"]]
    client.close()


# -- live tables -----------------------------------------------------------------------------------------------


def test_new_snapshot_and_new_table_seen_without_restart(data_dir, bemidb_server):  # noqa: F811
    import psycopg

    write_items(data_dir)
    server = bemidb_server(data_dir)
    with psycopg.connect(server.dsn("bob"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (3,)
        schema = pa.schema([pa.field("n", pa.int64())])
        write_table(catalog_for(data_dir), ("public", "items"), schema,
                    [pa.RecordBatch.from_pydict({"n": list(range(10))}, schema=schema)])
        write_table(catalog_for(data_dir), ("sales", "orders"), schema,
                    [pa.RecordBatch.from_pydict({"n": [7]}, schema=schema)])
        deadline = time.monotonic() + 10
        while conn.execute("SELECT count(*) FROM items").fetchone() != (10,):
            assert time.monotonic() < deadline, "new snapshot not visible"
            time.sleep(0.3)
        assert conn.execute("SELECT n FROM sales.orders").fetchall() == [(7,)]


# -- cancel, timeout, limits, shutdown ---------------------------------------------------------------------------

SLOW = "SELECT count(*) FROM range(1000000000) a, range(100000) b WHERE a.range + b.range = -1"


def test_cancel_and_statement_timeout(server):
    import psycopg

    with psycopg.connect(server.dsn("bob"), autocommit=True) as conn:
        timer = threading.Timer(1.0, conn.cancel)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(SLOW)
        assert time.monotonic() - started < 30
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.execute("SET statement_timeout = '500ms'")
        with pytest.raises(psycopg.errors.QueryCanceled) as info:
            conn.execute(SLOW)
        assert "statement timeout" in str(info.value)
        conn.execute("RESET statement_timeout")
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_max_connections_and_graceful_shutdown(data_dir, bemidb_server):  # noqa: F811
    import psycopg

    write_items(data_dir)
    server = bemidb_server(data_dir, extra_args=["--max-connections", "2", "--statement-timeout", "700ms"])
    first = psycopg.connect(server.dsn("a"), autocommit=True)
    assert first.execute("SHOW statement_timeout").fetchone() == ("700ms",)
    with pytest.raises(psycopg.errors.QueryCanceled) as info:
        first.execute(SLOW)
    assert "statement timeout" in str(info.value)
    second = psycopg.connect(server.dsn("b"))
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(server.dsn("c"))
    assert "too many clients" in str(info.value)
    second.close()
    time.sleep(0.3)
    with psycopg.connect(server.dsn("d")) as third:
        assert third.execute("SELECT 1").fetchone() == (1,)
    # SIGTERM with a client connected: exit 0, promptly
    started = time.monotonic()
    assert server.stop(timeout=20) == 0
    assert time.monotonic() - started < 15
    first.close()


# -- auth and TLS ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["scram-sha-256", "md5"])
def test_password_auth(data_dir, bemidb_server, method):  # noqa: F811
    import asyncpg
    import psycopg

    write_items(data_dir)
    server = bemidb_server(data_dir, env={"BEMIDB_USER": "ann", "BEMIDB_PASSWORD": "s3cret-pw",
                                          "BEMIDB_AUTH_METHOD": method})
    with psycopg.connect(server.dsn("ann", "s3cret-pw")) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (3,)
    for user, password in (("ann", "wrong"), ("mallory", "s3cret-pw")):
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(server.dsn(user, password))
        assert "password authentication failed" in str(info.value)
    import asyncio

    async def check():
        conn = await asyncpg.connect(**server.conninfo("ann", "s3cret-pw"))
        assert await conn.fetchval("SELECT 41 + 1") == 42
        await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(**server.conninfo("ann", "nope"))

    asyncio.run(check())
    assert "s3cret-pw" not in server.log()


def _make_cert(directory) -> tuple[str, str]:
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def test_tls_require_and_verify_full(data_dir, bemidb_server, tmp_path):  # noqa: F811
    import psycopg

    write_items(data_dir)
    cert, key = _make_cert(tmp_path)
    server = bemidb_server(data_dir, env={"BEMIDB_TLS_CERT": cert, "BEMIDB_TLS_KEY": key})
    with psycopg.connect(server.dsn("tls", sslmode="require")) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (3,)
    dsn = f"postgresql://tls@localhost:{server.port}/bemidb?sslmode=verify-full&sslrootcert={cert}"
    with psycopg.connect(dsn) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 'secure'").fetchone() == ("secure",)
    # a client that does not ask for TLS still gets in (as Postgres with hostssl not enforced)
    with psycopg.connect(server.dsn("plain")) as conn:
        assert not conn.pgconn.ssl_in_use


# -- streaming memory ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1_000_000, pytest.param(5_000_000, marks=pytest.mark.slow)])
def test_large_result_streams_with_flat_memory(data_dir, bemidb_server, rows):  # noqa: F811
    import psycopg

    server = bemidb_server(data_dir, log_level="INFO")
    with psycopg.connect(server.dsn("big")) as conn:
        conn.execute("SELECT 1").fetchone()
        baseline = server.rss_kb()["VmRSS"]
        received = 0
        checksum = 0
        with conn.cursor() as cur:
            # psycopg's stream(): single-row mode, so the client does not hold the result either
            for (n, _text) in cur.stream(f"SELECT range AS n, 'row-' || range::varchar AS t FROM range({rows})"):
                received += 1
                checksum += n
                if received == rows // 2:
                    mid = server.rss_kb()["VmRSS"]
        peak = server.rss_kb()["VmHWM"]
    assert received == rows and checksum == rows * (rows - 1) // 2
    # 5M rows of (int8, text) are ~150 MB as DataRows, 1M ~30 MB; the server holds only a few batches at a
    # time, so its memory must not grow with the row count (the bound is well below the 5M result's size).
    assert mid - baseline < 100_000, (rows, baseline, mid, peak)
    assert peak - baseline < 150_000, (rows, baseline, mid, peak)
    print(f"{rows} rows: RSS baseline {baseline} kB, mid-stream {mid} kB, peak {peak} kB")


def test_port_in_use_and_bad_tls_files_are_one_line_errors(data_dir, tmp_path):
    from tests.support.commands import run_bemidb

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_bemidb("serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
                            timeout=120)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / "bad.pem").write_text("not a certificate")
    result = run_bemidb("serve", "--port", "0", "--data-dir", str(data_dir), "--tls-cert",
                        str(tmp_path / "bad.pem"), "--tls-key", str(tmp_path / "bad.pem"), timeout=120)
    assert result.returncode == 2 and "cannot load the certificate" in result.stderr
    assert "Traceback" not in result.stderr


def test_parse_error_has_sqlstate_and_position(server):
    client = connect(server)
    client.send(raw.parse("SELECT id, nope FROM items WHERE id = $1") + raw.sync())
    messages = client.read_until_ready()
    assert tags(messages) == b"EZ"
    fields = messages[0].fields()
    assert fields["C"] == "42703" and fields["P"] == "12"
    client.close()


def test_renamed_and_added_columns_follow_iceberg_field_ids(data_dir, bemidb_server):  # noqa: F811
    import psycopg
    from pyiceberg.types import LongType

    write_items(data_dir)
    catalog = catalog_for(data_dir)
    table = catalog.load_table(("public", "items"))
    with table.update_schema() as update:
        update.rename_column("name", "title")
        update.add_column("stock", LongType())
    server = bemidb_server(data_dir)
    with psycopg.connect(server.dsn("bob")) as conn:
        rows = conn.execute("SELECT id, title, stock FROM items ORDER BY id").fetchall()
    assert rows == [(1, "apple", None), (2, 'pear, "green"', None), (3, None, None)]

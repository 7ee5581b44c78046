"""Auth hardening: password brute force is locked out per address, other users' query text stays private, and
secrets (AWS keys, catalog and source passwords, the login password) never reach logs, errors or SHOW output.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from bemidb.server.protocol.guard import LoginGuard
from tests.support import s3 as s3_support
from tests.support import wire_client as wire
from tests.support.commands import run_bemidb
from tests.support.seed import seed_standard
from tests.support.server import start_server

USER, PASSWORD = "analyst", "brute-force-target-pw-63"


# ---------------------------------------------------------------------------------------------------------
# The guard's policy, on a clock we drive (pure logic: no server needed to check the arithmetic)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_guard_locks_an_address_after_repeated_failures_and_only_that_address():
    clock = Clock()
    guard = LoginGuard(max_failures=5, window=600, lockout=60, clock=clock)
    delays = [guard.failed("10.0.0.1") for _ in range(4)]
    assert guard.locked_for("10.0.0.1") == 0.0
    assert delays == sorted(delays) and delays[0] > 0  # each wrong guess costs more
    guard.failed("10.0.0.1")
    assert guard.locked_for("10.0.0.1") == pytest.approx(60)
    assert guard.locked_for("10.0.0.2") == 0.0
    guard.succeeded("10.0.0.1")  # a success during the lock-out (impossible via the server) unlocks nothing
    assert guard.locked_for("10.0.0.1") > 0
    clock.now += 61
    assert guard.locked_for("10.0.0.1") == 0.0


def test_guard_forgets_old_failures_and_resets_on_success():
    clock = Clock()
    guard = LoginGuard(max_failures=3, window=100, lockout=60, clock=clock)
    guard.failed("a")
    guard.failed("a")
    clock.now += 101  # outside the window: the count starts again
    guard.failed("a")
    guard.failed("a")
    assert guard.locked_for("a") == 0.0
    guard.succeeded("a")
    guard.failed("a")
    guard.failed("a")
    assert guard.locked_for("a") == 0.0
    guard.failed("a")
    assert guard.locked_for("a") > 0


def test_guard_delay_is_capped_and_memory_bounded():
    guard = LoginGuard(max_failures=1000, delay_step=0.5, max_delay=2.0, max_tracked=100, clock=Clock())
    assert max(guard.failed("x") for _ in range(50)) == 2.0
    for i in range(10_000):
        guard.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(guard._records) <= 100


# ---------------------------------------------------------------------------------------------------------
# Brute force against the real server, from distinct loopback source addresses


@pytest.fixture(scope="module", params=["scram-sha-256", "md5"])
def locked_server(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("auth") / "bemidb-data"
    seed_standard(data_dir)
    server = start_server(data_dir, env={"BEMIDB_USER": USER, "BEMIDB_PASSWORD": PASSWORD,
                                         "BEMIDB_AUTH_METHOD": request.param})
    yield server
    server.stop()


def attempt(server, password: str, source: str) -> wire.Message:
    """One login from `source`; the last message (ReadyForQuery or the FATAL ErrorResponse)."""
    client = wire.RawClient(server.host, server.port, timeout=30, source=source)
    try:
        return client.startup(USER, password=password)[-1]
    finally:
        client.close()


def test_password_brute_force_is_locked_out_per_address(locked_server):
    attacker, bystander = "127.0.0.2", "127.0.0.3"
    for guess in range(8):
        answer = attempt(locked_server, f"guess-{guess}", attacker)
        assert answer.tag == b"E" and answer.fields()["S"] == "FATAL", answer.fields()
        assert answer.sqlstate in ("28P01", "28000"), answer.fields()
    # Locked: even the right password is refused from that address now, so guessing cannot go on ...
    locked = attempt(locked_server, PASSWORD, attacker)
    assert locked.tag == b"E" and locked.sqlstate in ("28P01", "28000"), locked.fields()
    # ... while everyone else logs in as usual.
    assert attempt(locked_server, PASSWORD, bystander).tag == b"Z"
    assert attempt(locked_server, PASSWORD, "127.0.0.1").tag == b"Z"
    log = locked_server.log()
    assert PASSWORD not in log and "guess-3" not in log, "a password attempt was logged"


# ---------------------------------------------------------------------------------------------------------
# Other sessions' query text


@pytest.fixture(scope="module")
def trust_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("activity") / "bemidb-data"
    seed_standard(data_dir)
    server = start_server(data_dir)
    yield server
    server.stop()


def test_pg_stat_activity_hides_other_users_query_text(trust_server):
    marker = "alice-private-query-5e1f"
    with psycopg.connect(trust_server.dsn("alice"), autocommit=True) as alice:
        assert alice.execute(f"SELECT '{marker}' AS x").fetchone() == (marker,)
        with psycopg.connect(trust_server.dsn("alice"), autocommit=False) as alice_tx:
            alice_tx.execute(f"SELECT count(*) FROM public.small WHERE label <> '{marker}'").fetchone()
            mallory = wire.RawClient(trust_server.host, trust_server.port)
            assert mallory.startup("mallory")[-1].tag == b"Z"
            for sql in ("SELECT * FROM pg_stat_activity", "SELECT query FROM pg_catalog.pg_stat_activity",
                        "SELECT * FROM pg_stat_activity WHERE usename = 'alice'"):
                replies = mallory.simple(sql)
                blob = b"".join(m.payload for m in replies)
                assert marker.encode() not in blob, f"{sql} shows alice's query to mallory"
            mallory.close()


# ---------------------------------------------------------------------------------------------------------
# Secrets stay secret


def test_secrets_never_reach_logs_errors_or_show(pg, s3, bucket, tmp_path):
    catalog_url = pg.create_database("hard_secrets_catalog")
    env = {**s3.env(bucket), "CATALOG_DATABASE_URL": catalog_url}
    data_dir = tmp_path / "bemidb-data"
    seed_standard(data_dir, env=env)
    server = start_server(data_dir, env={**env, "BEMIDB_USER": USER, "BEMIDB_PASSWORD": PASSWORD},
                          log_level="DEBUG")
    secrets = [s3_support.SECRET_KEY, pg.password, PASSWORD, "wrong-pw-typed-by-user-77"]
    replies = b""
    try:
        assert attempt(server, "wrong-pw-typed-by-user-77", "127.0.0.4").tag == b"E"
        client = wire.RawClient(server.host, server.port, timeout=30)
        assert client.startup(USER, password=PASSWORD)[-1].tag == b"Z"
        for sql in ("SELECT count(*) FROM public.big", "SHOW ALL", "SELECT * FROM pg_settings",
                    "SELECT current_setting('s3_secret_access_key')", "SELECT * FROM duckdb_settings()",
                    "SELECT * FROM duckdb_secrets()", "SELECT getenv('AWS_SECRET_ACCESS_KEY')",
                    "SELECT * FROM read_parquet('s3://no-such-bucket-x/y.parquet')",
                    f"SELECT * FROM read_parquet('s3://{bucket}/nothing-here.parquet')",
                    "SELECT * FROM no_such_table", "SHOW catalog_database_url", "SHOW aws_secret_access_key"):
            for message in client.simple(sql):
                replies += message.payload
        assert wire.rows(client.simple("SELECT count(*) FROM public.big")) == [[b"100000"]]
        client.close()
    finally:
        server.stop()
    log = server.log()
    for secret in secrets:
        assert secret not in log, f"secret {secret[:4]}... is in the server log"
        assert secret.encode() not in replies, f"secret {secret[:4]}... reached a client"


def test_unreachable_catalog_error_does_not_print_its_password(tmp_path):
    url = "postgresql://cat_user:catalog-pw-90ab@127.0.0.1:1/catalog"
    for args in (["tables"], ["vacuum"]):
        result = run_bemidb(*args, env={"BEMIDB_DATA_DIR": str(tmp_path), "CATALOG_DATABASE_URL": url},
                            timeout=120)
        assert result.returncode != 0
        assert "catalog-pw-90ab" not in result.stdout + result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_unreachable_source_error_does_not_print_its_password(tmp_path):
    result = run_bemidb("sync", "postgres", "--database-url",
                        "postgresql://src:source-pw-4d2e@127.0.0.1:1/db",
                        env={"BEMIDB_DATA_DIR": str(tmp_path)}, timeout=120)
    assert result.returncode != 0
    assert "source-pw-4d2e" not in result.stdout + result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_wrong_s3_keys_error_does_not_print_them(s3, bucket, tmp_path):
    env = {**s3.env(bucket), "AWS_SECRET_ACCESS_KEY": "wrong-s3-secret-31cc"}
    result = run_bemidb("tables", env={"BEMIDB_DATA_DIR": str(tmp_path), **env}, timeout=120)
    assert "wrong-s3-secret-31cc" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_client_text_cannot_forge_log_lines_or_send_terminal_escapes(trust_server):
    """User names and SQL reach the DEBUG log: a newline in them must not start a fake log line, and an
    escape sequence must not reach the operator's terminal."""
    forged = "\n2026-01-01 00:00:00,000 INFO bemidb.server: FORGED"
    client = wire.RawClient(trust_server.host, trust_server.port)
    assert client.startup(user="evil" + forged + "-USER")[-1].tag == b"Z"
    client.simple(f"SELECT 'a{forged}-LITERAL'")
    client.simple(f"SELECT * FROM nope{forged}-ERROR")
    client.simple("SELECT '\x1b[2J\x1b[31mANSI'")
    client.close()
    time.sleep(0.5)  # the DEBUG lines of this connection are flushed as it ends
    log = trust_server.log()
    assert "FORGED-LITERAL" in log, "the query was not logged at all: this test checks nothing"
    assert not [line for line in log.splitlines() if line.startswith("2026-01-01")], "a client forged a log line"
    assert "\x1b" not in log, "a terminal escape sequence reached the log"


def test_cancel_requests_with_a_guessed_key_cancel_nothing(trust_server):
    """BackendKeyData is the only credential a CancelRequest carries: wrong keys (and the right pid) must
    not cancel another client's query."""
    victim = wire.RawClient(trust_server.host, trust_server.port, timeout=60)
    assert victim.startup()[-1].tag == b"Z"
    pid, key = victim.backend_key
    victim.send(wire.query("SELECT count(*) FROM (SELECT pg_sleep(1)) s, public.small"))
    for guess in range(200):
        attacker = wire.RawClient(trust_server.host, trust_server.port)
        wrong = (key + 1 + guess) % 2**31
        attacker.send(wire.cancel_request(pid, wrong))
        attacker.close()
    replies = victim.read_until_ready()
    assert not wire.errors(replies), [m.fields() for m in wire.errors(replies)]
    assert wire.rows(replies) == [[b"1000"]]
    # Control: the right key does cancel (so the guesses above were heard and refused, not ignored).
    # (a predicate min/max statistics cannot prove false: with by-name views DuckDB pruned "a.id + b.id < 0")
    victim.send(wire.query("SELECT count(*) FROM public.big a, public.big b WHERE (a.id * 31 + b.id) % 1000003 = 7"))
    time.sleep(0.5)
    canceller = wire.RawClient(trust_server.host, trust_server.port)
    canceller.send(wire.cancel_request(pid, key))
    canceller.close()
    replies = victim.read_until_ready()
    assert [m.sqlstate for m in wire.errors(replies)] == ["57014"], replies
    victim.close()


def test_guard_lockouts_escalate_so_bursts_of_parallel_guesses_get_rarer():
    clock = Clock()
    guard = LoginGuard(max_failures=5, window=600, lockout=60, max_lockout=3600, clock=clock)
    for _ in range(5):
        guard.failed("a")
    lengths = [guard.locked_for("a")]
    for _ in range(7):  # each time the lock-out ends, a single further guess locks again, twice as long
        clock.now += lengths[-1] + 1
        assert guard.locked_for("a") == 0.0
        guard.failed("a")
        lengths.append(guard.locked_for("a"))
    assert lengths == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    clock.now += 3601 + 601  # a quiet window after the last lock-out: forgiven
    guard.failed("a")
    assert guard.locked_for("a") == 0.0

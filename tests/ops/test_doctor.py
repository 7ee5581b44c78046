"""`bemidb doctor` against the real services: green when everything works, a red line and exit 1 when not."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from tests.support.commands import run_bemidb
from tests.support.ports import free_port

WIDE = {"COLUMNS": "250"}  # one checklist row per line, so a row can be matched whole


def _row(out: str, check: str) -> str:
    rows = [line for line in out.splitlines() if f" {check} " in line]
    assert len(rows) == 1, out
    return rows[0]


def test_embedded_default_passes_and_leaves_no_probe(data_dir):
    port = str(free_port())
    result = run_bemidb("doctor", "--data-dir", str(data_dir), "--port", port, env=WIDE)
    assert result.returncode == 0, result.stdout + result.stderr
    # a fresh data dir: no catalog yet is a note (only sync creates one), and doctor creates nothing
    assert "note" in _row(result.stdout, "catalog") and "catalog.db" in _row(result.stdout, "catalog")
    assert not (data_dir / "catalog.db").exists()
    assert "ok" in _row(result.stdout, "warehouse") and "the first sync creates it" in _row(result.stdout, "warehouse")
    assert f":{port} is free" in _row(result.stdout, "server port")
    assert "not configured" in _row(result.stdout, "source postgres")
    assert "All checks passed." in result.stdout
    assert not (data_dir / "warehouse").exists()


def test_s3_postgres_catalog_and_source_pass(pg, s3, bucket, data_dir):
    catalog_url = pg.create_database("ops_doctor_catalog")
    source_url = pg.create_database("ops_doctor_source")
    pg.execute("ops_doctor_source", "CREATE TABLE users (id int PRIMARY KEY, name text)")
    pg.execute("ops_doctor_source", "CREATE TABLE orders (id int PRIMARY KEY)")
    env = {**WIDE, **s3.env(bucket), "CATALOG_DATABASE_URL": catalog_url,
           "SOURCE_POSTGRES_DATABASE_URL": source_url, "BEMIDB_PORT": str(free_port())}
    result = run_bemidb("doctor", "--data-dir", str(data_dir), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Postgres 127.0.0.1:{pg.port}/ops_doctor_catalog" in _row(result.stdout, "catalog")
    assert f"s3://{bucket} via {s3.endpoint}" in _row(result.stdout, "warehouse")
    source = _row(result.stdout, "source postgres")
    assert "PostgreSQL 15." in source and "2 of 2 tables to sync" in source
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [key for key in keys if "bemidb-doctor" in key], keys  # the probe was deleted
    assert pg.password not in result.stdout + result.stderr


def test_each_failure_is_a_red_line_and_exit_1(pg, s3, data_dir):
    dead_port = free_port()  # nothing listens there
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        env = {**WIDE, **s3.env("ops-doctor-bucket"), "AWS_SECRET_ACCESS_KEY": "wrong-s3-secret",
               "CATALOG_DATABASE_URL": f"postgresql://u:catalog-secret@127.0.0.1:{dead_port}/cat",
               "SOURCE_POSTGRES_DATABASE_URL": pg.url(password="wrong-secret"),
               "BEMIDB_HOST": "127.0.0.1", "BEMIDB_PORT": str(busy.getsockname()[1])}
        result = run_bemidb("doctor", "--data-dir", str(data_dir), env=env, timeout=120)
    finally:
        busy.close()
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    assert "FAIL" in _row(result.stdout, "catalog") and f"cannot reach 127.0.0.1:{dead_port}" in out
    assert "FAIL" in _row(result.stdout, "warehouse") and "SIGNATURE_DOES_NOT_MATCH; check AWS_SECRET_ACCESS_KEY" in out
    assert "FAIL" in _row(result.stdout, "source postgres") and "password authentication failed" in out
    assert "FAIL" in _row(result.stdout, "server port") and "the port is taken by pid" in out
    assert "4 check(s) failed" in result.stdout
    for secret in ("catalog-secret", "wrong-secret", "wrong-s3-secret"):
        assert secret not in out


def _self_signed(folder, name: str):
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_pair_is_loaded_and_a_mismatch_fails(data_dir, tmp_path):
    cert, key = _self_signed(tmp_path, "one")
    _other_cert, other_key = _self_signed(tmp_path, "two")
    base = ["doctor", "--data-dir", str(data_dir), "--port", str(free_port())]
    good = run_bemidb(*base, "--tls-cert", str(cert), "--tls-key", str(key), env=WIDE)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"{cert} and its key load" in _row(good.stdout, "TLS")
    bad = run_bemidb(*base, "--tls-cert", str(cert), "--tls-key", str(other_key), env=WIDE)
    assert bad.returncode == 1 and "FAIL" in _row(bad.stdout, "TLS") and "Traceback" not in bad.stdout


def test_source_selection_problems_are_caught_before_a_sync(pg, data_dir):
    source_url = pg.create_database("ops_doctor_grants")
    pg.execute("ops_doctor_grants", "CREATE TABLE public.visible (id int); CREATE TABLE public.secret (id int); "
                                    "DROP ROLE IF EXISTS ops_doctor_reader; "
                                    "CREATE ROLE ops_doctor_reader LOGIN PASSWORD 'reader-pw'; "
                                    "GRANT SELECT ON public.visible TO ops_doctor_reader")
    reader_url = source_url.replace(f"{pg.user}:{pg.password}@", "ops_doctor_reader:reader-pw@")
    base = ["doctor", "--data-dir", str(data_dir), "--port", str(free_port()), "--database-url", reader_url]

    result = run_bemidb(*base, env=WIDE)
    assert result.returncode == 1 and "no SELECT privilege on public.secret" in _row(result.stdout, "source postgres")
    result = run_bemidb(*base, env={**WIDE, "SOURCE_POSTGRES_EXCLUDE_TABLES": "public.secret"})
    assert result.returncode == 0 and "1 of 2 tables to sync" in _row(result.stdout, "source postgres")
    result = run_bemidb(*base, env={**WIDE, "SOURCE_POSTGRES_INCLUDE_TABLES": "public.visible,public.gone"})
    assert result.returncode == 1 and "does not have: public.gone" in _row(result.stdout, "source postgres")

"""The first hour's rough edges, each through the real command: piped `tables`, a mistyped data dir or flag,
an --include that matches nothing or names a partition, doctor beside a running server, serve open to all."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.support.commands import run_bemidb
from tests.support.ports import free_port
from tests.support.server import start_server

DB = "first_hour_cli"
LONG = "page_views_by_campaign_and_landing_page_variant"  # longer than any terminal column would show


@pytest.fixture(scope="module")
def source(pg):
    pg.create_database(DB)
    pg.execute(DB, f"CREATE SCHEMA analytics; CREATE TABLE analytics.{LONG} (id int PRIMARY KEY, path text); "
                   f"INSERT INTO analytics.{LONG} VALUES (1, '/a'), (2, '/b'); "
                   "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at); "
                   "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01'); "
                   "INSERT INTO events VALUES (1, '2026-03-01')")
    return pg


@pytest.fixture(scope="module")
def synced(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    result = run_bemidb("sync", "postgres", "--data-dir", str(data_dir), env={
        "SOURCE_POSTGRES_DATABASE_URL": source.url(DB)})
    assert result.returncode == 0, result.stderr
    return data_dir


def test_piped_tables_shows_whole_names_and_csv_json_are_exact(synced):
    plain = run_bemidb("tables", "--data-dir", str(synced), env={"COLUMNS": "60"})
    assert plain.returncode == 0, plain.stderr
    row = [line for line in plain.stdout.splitlines() if f"analytics_{LONG}" in line]
    assert len(row) == 1 and row[0].split()[:3] == ["public", f"analytics_{LONG}", "postgres"], plain.stdout
    assert "…" not in plain.stdout and "\x1b[" not in plain.stdout  # nothing cut, no colour codes

    rows = json.loads(run_bemidb("tables", "--data-dir", str(synced), "--format", "json", check=True).stdout)
    by_name = {r["table"]: r for r in rows}
    assert by_name[f"analytics_{LONG}"]["rows"] == 2 and by_name["events"]["rows"] == 1
    assert by_name["events"]["size_bytes"] > 0 and isinstance(by_name["events"]["snapshot_id"], int)

    text = run_bemidb("tables", "--data-dir", str(synced), "--format", "csv", check=True).stdout
    assert {r["table"]: int(r["rows"]) for r in csv.DictReader(io.StringIO(text))} == \
        {r["table"]: r["rows"] for r in rows}


@pytest.mark.parametrize("command", ["tables", "vacuum", "serve"])
def test_read_only_commands_refuse_a_data_dir_without_catalog(command, tmp_path):
    typo = tmp_path / "typo"
    result = run_bemidb(command, "--data-dir", str(typo), "--port", str(free_port())) if command == "serve" \
        else run_bemidb(command, "--data-dir", str(typo))
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(typo) in result.stderr and "`bemidb sync` creates it" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not typo.exists()


def test_doctor_notes_a_missing_catalog_and_creates_nothing(tmp_path):
    typo = tmp_path / "typo"
    result = run_bemidb("doctor", "--data-dir", str(typo), "--port", str(free_port()), env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stdout
    assert "no catalog yet" in result.stdout and "the first sync creates it" in result.stdout
    assert not typo.exists()


def test_mistyped_flag_or_command_gets_its_own_usage_and_a_suggestion():
    flag = run_bemidb("sync", "postgres", "--inclde", "public.t")
    assert flag.returncode == 2
    assert flag.stderr.startswith("usage: bemidb sync postgres"), flag.stderr
    assert "unrecognized arguments: --inclde public.t (did you mean --include?)" in flag.stderr
    command = run_bemidb("tabels")
    assert command.returncode == 2 and "(did you mean tables?)" in command.stderr


def test_include_matching_nothing_fails_and_a_partition_names_its_parent(source, tmp_path):
    env = {"SOURCE_POSTGRES_DATABASE_URL": source.url(DB)}
    result = run_bemidb("sync", "postgres", "--data-dir", str(tmp_path / "d"), "--include",
                        "public.events_2026,nope.*", env=env)
    assert result.returncode == 1, result.stderr
    assert "--include matches no table in the source" in result.stderr
    assert "public.events_2026: a partition of public.events, synced through it" in result.stderr
    assert "nope.*" in result.stderr and "Traceback" not in result.stderr
    # with something else to sync, the partition is one failed line and the rest is synced
    both = run_bemidb("sync", "postgres", "--data-dir", str(tmp_path / "d"), "--include",
                      "public.events_2026,public.events", env=env)
    assert both.returncode == 1 and "1 synced, 1 failed" in both.stderr, both.stderr
    assert "a partition of public.events" in both.stderr
    doctor = run_bemidb("doctor", "--data-dir", str(tmp_path / "d"), "--port", "0", "--include",
                        "public.events_2026", env={**env, "COLUMNS": "250"})
    assert doctor.returncode == 1
    assert "public.events_2026 (a partition of public.events: include public.events)" in doctor.stdout


def test_doctor_says_a_bemidb_server_already_serves_the_port(synced):
    server = start_server(synced)
    try:
        result = run_bemidb("doctor", "--data-dir", str(synced), "--host", "127.0.0.1", "--port",
                            str(server.port), env={"COLUMNS": "250"})
    finally:
        server.stop()
    row = [line for line in result.stdout.splitlines() if " server port " in line]
    assert result.returncode == 0, result.stdout
    assert f"a bemidb server (pid {server.pid}) is already serving on port {server.port}" in row[0]


def test_serve_open_to_all_without_password_warns_once(synced):
    server = start_server(synced, env={"BEMIDB_HOST": "0.0.0.0"})
    server.stop()
    warnings = [line for line in server.log().splitlines() if "anyone who can reach this port" in line]
    assert len(warnings) == 1 and f"0.0.0.0:{server.port}" in warnings[0], server.log()
    guarded = start_server(synced, env={"BEMIDB_HOST": "0.0.0.0", "BEMIDB_USER": "u", "BEMIDB_PASSWORD": "p"})
    guarded.stop()
    assert "anyone who can reach" not in guarded.log()
    local = start_server(synced)  # 127.0.0.1
    local.stop()
    assert "anyone who can reach" not in local.log()


def test_pyz_first_run_says_it_is_unpacking(tmp_path, capsys):
    """The pyz's launcher (stdlib only, run before shiv unpacks ~400 MB) says so once, before the pause; the
    real pyz run is checked in test_pyz.py."""
    from bemidb.cli import launch

    archive, facts, env = str(tmp_path / "bemidb.pyz"), {"build_id": "b1"}, {"SHIV_ROOT": str(tmp_path / "c")}
    launch.say_first_run(archive, facts, env)
    said = capsys.readouterr().err
    assert said == f"bemidb: first run of this build: unpacking its dependencies (~400 MB, ~10 s, once) into " \
                   f"{tmp_path / 'c' / 'bemidb.pyz_b1'}\n"
    (tmp_path / "c" / "bemidb.pyz_b1" / "site-packages").mkdir(parents=True)
    launch.say_first_run(archive, facts, env)  # unpacked already: silent
    launch.say_first_run(archive, facts, {**env, "SHIV_FORCE_EXTRACT": "1"})  # shiv decides: silent
    assert capsys.readouterr().err == ""

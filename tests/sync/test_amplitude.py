"""`bemidb sync amplitude` end to end: a real bemidb process against a local Amplitude export server."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bemidb import config
from bemidb.storage.catalog import PROP_PG_TYPES, PROP_SOURCE, open_catalog
from bemidb.sync.amplitude import CURSOR_PROPERTY, HOURS_PER_COMMIT, format_cursor, last_complete_hour
from tests.support.commands import run_bemidb
from tests.support.fake_apis import FakeAmplitude, amplitude_event, hour_key

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def amplitude():
    with FakeAmplitude() as server:
        yield server


def sync(amplitude, storage_env, *extra, key="amp-key", secret="amp-secret", start_date=None):
    env = {**storage_env, "SOURCE_AMPLITUDE_API_KEY": key, "SOURCE_AMPLITUDE_SECRET_KEY": secret}
    start = start_date or (dt.datetime.now(UTC) - dt.timedelta(days=1)).date().isoformat()
    return run_bemidb("sync", "amplitude", "--api-url", amplitude.url, "--start-date", start, *extra, env=env)


def events_table(storage_env):
    catalog = open_catalog(config.resolve(None, config.STORAGE, env=storage_env))
    return catalog.load_table(("amplitude", "events"))


def table_exists(storage_env) -> bool:
    catalog = open_catalog(config.resolve(None, config.STORAGE, env=storage_env))
    return catalog.table_exists(("amplitude", "events"))


def rows_by_uuid(table) -> dict[str, dict]:
    return {row["uuid"]: row for row in table.scan().to_arrow().to_pylist()}


def at(hour: dt.datetime, minute: int) -> dt.datetime:
    return hour + dt.timedelta(minutes=minute)


def test_first_sync_exports_complete_hours_with_types_extras_and_dedup(amplitude, data_dir):
    env = {"BEMIDB_DATA_DIR": str(data_dir)}
    h = last_complete_hour(dt.datetime.now(UTC))  # the newest hour the sync may export
    amplitude.add([amplitude_event(1, at(h - 4 * HOUR, 10)), amplitude_event(2, at(h - 4 * HOUR, 50))])
    # h-3 has no data: Amplitude answers 404
    quirky = amplitude_event(
        3, at(h - 2 * HOUR, 30), paying="true", amplitude_attribution_ids=["a1", "a2"], user_properties=None,
        event_time="2025-03-04T05:06:07.5+02:00", client_event_time="", event_id="33",
        new_field_from_amplitude={"nested": [1, 2]}, another_unknown="x")
    amplitude.add([quirky, amplitude_event(4, at(h - 2 * HOUR, 31)),
                   amplitude_event(4, at(h - 2 * HOUR, 31))])  # the same event listed twice
    amplitude.fail_once[hour_key(h - HOUR)] = 500  # a transient server error, retried
    amplitude.add([amplitude_event(5, at(h - HOUR, 0))])
    full = amplitude_event(6, at(h, 59))
    sparse = {key: full[key] for key in ("uuid", "event_id", "event_type", "server_upload_time")}
    amplitude.add([sparse])  # only a few of the known fields
    now_hour = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    amplitude.add([amplitude_event(98, at(now_hour - HOUR, 1)), amplitude_event(99, at(now_hour, 0))])  # too new

    start = (h - 4 * HOUR).date()
    result = sync(amplitude, env, start_date=start.isoformat())
    assert result.returncode == 0, result.stderr
    end = last_complete_hour(dt.datetime.now(UTC))

    # one single-hour request per hour from the start date to the newest complete hour, never a newer one
    hours = [start for start, stop in amplitude.requests]
    assert all(start == stop for start, stop in amplitude.requests)
    assert hours[0] == start.strftime("%Y%m%dT00")
    assert max(hours) in (hour_key(h), hour_key(end)) and max(hours) <= hour_key(end)
    assert hours.count(hour_key(h - HOUR)) == 2  # the 500, then the retry
    assert len(set(hours)) == len(hours) - 1

    table = events_table(env)
    rows = rows_by_uuid(table)
    assert sorted(row["event_id"] for row in rows.values()) == [1, 2, 4, 5, 6, 33]
    assert len(table.scan().to_arrow()) == 6  # the duplicate listing of event 4 is kept once
    assert table.properties[PROP_SOURCE] == "amplitude"
    assert table.properties[CURSOR_PROPERTY] == format_cursor(end)

    row = rows[quirky["uuid"]]
    assert row["paying"] is True
    assert row["amplitude_attribution_ids"] == '["a1","a2"]'
    assert row["user_properties"] is None
    assert row["event_time"] == dt.datetime(2025, 3, 4, 3, 6, 7, 500000, tzinfo=UTC)
    assert row["client_event_time"] is None
    assert row["server_upload_time"] == at(h - 2 * HOUR, 30)
    assert json.loads(row["extra"]) == {"new_field_from_amplitude": {"nested": [1, 2]}, "another_unknown": "x"}
    assert json.loads(row["event_properties"]) == {"page": "/p/3", "n": 3, "tags": ["a", "b"]}
    assert row["insert_id"] == "ins-3" and row["insert_key"] == "key-3" and row["schema"] == "12"
    plain = rows[amplitude_event(1, h)["uuid"]]
    assert plain["extra"] is None and plain["paying"] is None and plain["is_attribution_event"] is False
    assert plain["amplitude_id"] == 900000000001 and plain["session_id"] == 1735689600001
    assert plain["location_lat"] == 52.52 and plain["app"] == 187520 and plain["groups"] == "{}"
    few = rows[sparse["uuid"]]
    assert few["extra"] is None and few["city"] is None and few["event_properties"] is None
    assert few["event_type"] == "signup" and few["server_upload_time"] == at(h, 59)

    pg_types = dict(zip([f.name for f in table.schema().fields], json.loads(table.properties[PROP_PG_TYPES]), strict=True))
    assert pg_types["event_time"] == "timestamp with time zone"
    assert pg_types["event_properties"] == "jsonb" and pg_types["extra"] == "jsonb"
    assert pg_types["amplitude_id"] == "bigint" and pg_types["event_id"] == "integer"
    assert pg_types["location_lat"] == "double precision" and pg_types["paying"] == "boolean"
    assert len(pg_types) == 56

    # A second run right away: nothing new is complete, nothing is added
    snapshot = table.current_snapshot().snapshot_id
    before = len(amplitude.requests)
    again = sync(amplitude, env, start_date=start.isoformat())
    assert again.returncode == 0, again.stderr
    table = events_table(env)
    assert len(table.scan().to_arrow()) == 6
    if len(amplitude.requests) == before:  # (unless the clock crossed an hour meanwhile)
        assert "up to date" in again.stderr
        assert table.current_snapshot().snapshot_id == snapshot


def test_next_run_appends_only_hours_after_the_cursor_in_one_commit(amplitude, data_dir):
    env = {"BEMIDB_DATA_DIR": str(data_dir)}
    h = last_complete_hour(dt.datetime.now(UTC))
    amplitude.add([amplitude_event(n, at(h - n * HOUR, 5)) for n in range(6)])
    assert sync(amplitude, env).returncode == 0
    table = events_table(env)
    end = table.properties[CURSOR_PROPERTY]
    snapshots_before = len(table.snapshots())
    assert sorted(rows_by_uuid(table)) == sorted(amplitude_event(n, h)["uuid"] for n in range(6))

    # Pretend three hours passed: move the stored cursor back 3 hours and give those hours new events
    # (the old ones were synced already, so a re-export of them would show up as duplicates).
    rewound = dt.datetime.fromisoformat(end.replace("Z", "+00:00")) - 3 * HOUR
    with table.transaction() as txn:
        txn.set_properties({CURSOR_PROPERTY: format_cursor(rewound)})
    amplitude.clear()
    amplitude.add([amplitude_event(100 + n, at(rewound + n * HOUR, 7)) for n in (1, 2, 3)])
    amplitude.add([amplitude_event(200, at(rewound, 7))])  # an hour at/before the cursor: never asked for
    amplitude.requests.clear()

    result = sync(amplitude, env)
    assert result.returncode == 0, result.stderr
    asked = sorted(start for start, _ in amplitude.requests)
    assert asked[:3] == [hour_key(rewound + n * HOUR) for n in (1, 2, 3)]
    assert len(asked) <= 4  # +1 if the clock crossed an hour during the test
    table = events_table(env)
    rows = table.scan().to_arrow().to_pylist()
    assert len(rows) == len({r["uuid"] for r in rows}) == 9
    assert sorted(r["event_id"] for r in rows) == [0, 1, 2, 3, 4, 5, 101, 102, 103]
    assert len(table.snapshots()) == snapshots_before + 1  # exactly one commit for the run

    # A table without the cursor property (written before it existed): max(server_upload_time) decides
    with table.transaction() as txn:
        txn.remove_properties(CURSOR_PROPERTY)
    amplitude.requests.clear()
    again = sync(amplitude, env)
    assert again.returncode == 0, again.stderr
    newest = at(rewound + 3 * HOUR, 7)  # the newest event stored: its hour is done, nothing is asked again
    assert all(start > hour_key(newest) for start, _ in amplitude.requests)
    assert len(events_table(env).scan().to_arrow()) == 9


def test_failure_mid_run_commits_nothing_and_next_run_resumes(amplitude, data_dir):
    env = {"BEMIDB_DATA_DIR": str(data_dir)}
    h = last_complete_hour(dt.datetime.now(UTC))
    amplitude.add([amplitude_event(n, at(h - n * HOUR, 5)) for n in range(4)])
    amplitude.fail_always[hour_key(h - HOUR)] = 400  # what Amplitude answers when an export is too large

    failed = sync(amplitude, env)
    assert failed.returncode == 1
    assert "Amplitude export failed: HTTP 400" in failed.stderr and "nothing was committed" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not table_exists(env)  # not even an empty table
    first_hour_asked = amplitude.requests[0][0]

    # a line that is not JSON in an export file: a clear error naming the hour, nothing committed
    del amplitude.fail_always[hour_key(h - HOUR)]
    amplitude.corrupt(hour_key(h - 2 * HOUR), b'{"uuid": "broken", ')
    broken = sync(amplitude, env)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    last = broken.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the export of hour {format_cursor(h - 2 * HOUR)} cannot be read: ")
    assert "nothing was committed" in last
    assert not table_exists(env)

    amplitude.clear()
    amplitude.add([amplitude_event(n, at(h - n * HOUR, 5)) for n in range(4)])
    amplitude.requests.clear()
    resumed = sync(amplitude, env)
    assert resumed.returncode == 0, resumed.stderr
    assert amplitude.requests[0][0] == first_hour_asked
    table = events_table(env)
    assert sorted(r["event_id"] for r in table.scan().to_arrow().to_pylist()) == [0, 1, 2, 3]
    assert len(table.snapshots()) == 1


def test_a_long_first_run_commits_week_by_week_and_a_failure_keeps_the_finished_weeks(amplitude, data_dir):
    """A first run over more than a week of hours: each week is its own commit (with its cursor), so a
    failure in the second week keeps the first, and the next run goes on from there without duplicates."""
    env = {"BEMIDB_DATA_DIR": str(data_dir)}
    start = (dt.datetime.now(UTC) - dt.timedelta(days=9)).replace(hour=0, minute=0, second=0, microsecond=0)
    week_end = start + (HOURS_PER_COMMIT - 1) * HOUR  # the last hour of the first commit
    in_week_1 = [amplitude_event(n, at(start + n * 10 * HOUR, 3)) for n in range(3)]
    in_week_2 = [amplitude_event(10 + n, at(week_end + (n + 1) * HOUR, 3)) for n in range(3)]
    amplitude.add(in_week_1 + in_week_2)
    amplitude.fail_always[hour_key(week_end + 2 * HOUR)] = 400

    failed = sync(amplitude, env, start_date=start.date().isoformat())
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Amplitude export failed: HTTP 400")
    assert f"synced through {format_cursor(week_end)} (3 events committed)" in last
    assert f"the next run starts at {format_cursor(week_end + HOUR)}" in last
    table = events_table(env)
    assert sorted(r["event_id"] for r in table.scan().to_arrow().to_pylist()) == [0, 1, 2]
    assert table.properties[CURSOR_PROPERTY] == format_cursor(week_end)

    del amplitude.fail_always[hour_key(week_end + 2 * HOUR)]
    amplitude.requests.clear()
    resumed = sync(amplitude, env, start_date=start.date().isoformat())
    assert resumed.returncode == 0, resumed.stderr
    assert min(start for start, _ in amplitude.requests) == hour_key(week_end + HOUR)
    table = events_table(env)
    assert sorted(r["event_id"] for r in table.scan().to_arrow().to_pylist()) == [0, 1, 2, 10, 11, 12]
    assert len(table.snapshots()) == 2  # the first week, then the rest in one commit


def test_bad_credentials_on_s3_are_one_line_and_change_nothing(amplitude, s3, bucket, data_dir):
    env = {**s3.env(bucket), "BEMIDB_DATA_DIR": str(data_dir)}  # the SQLite catalog lives in the data dir
    h = last_complete_hour(dt.datetime.now(UTC))
    amplitude.add([amplitude_event(n, at(h - n * HOUR, 5)) for n in range(3)])
    assert sync(amplitude, env).returncode == 0
    table = events_table(env)
    assert table.properties[CURSOR_PROPERTY] == format_cursor(last_complete_hour(dt.datetime.now(UTC))) \
        or table.properties[CURSOR_PROPERTY] == format_cursor(h)
    # rewind so that the next run has hours to fetch, then use a wrong secret
    with table.transaction() as txn:
        txn.set_properties({CURSOR_PROPERTY: format_cursor(h - 5 * HOUR)})
    snapshot = events_table(env).current_snapshot().snapshot_id

    bad = sync(amplitude, env, secret="wrong")
    assert bad.returncode == 1
    assert "Amplitude rejected the API key / secret key" in bad.stderr and "HTTP 401" in bad.stderr
    assert "nothing was changed" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: Amplitude rejected")
    assert "wrong" not in bad.stderr
    table = events_table(env)
    assert table.current_snapshot().snapshot_id == snapshot
    assert len(table.scan().to_arrow()) == 3
    assert table.properties[CURSOR_PROPERTY] == format_cursor(h - 5 * HOUR)


def test_a_wrong_api_url_is_an_error_not_an_empty_hour(amplitude, data_dir):
    env = {"BEMIDB_DATA_DIR": str(data_dir), "SOURCE_AMPLITUDE_API_KEY": "amp-key",
           "SOURCE_AMPLITUDE_SECRET_KEY": "amp-secret"}
    start = (dt.datetime.now(UTC) - dt.timedelta(hours=4)).date().isoformat()
    result = run_bemidb("sync", "amplitude", "--api-url", amplitude.base + "/api/2/exprot", "--start-date", start,
                        env=env)
    assert result.returncode == 1
    assert "not Amplitude's \"no data\" answer (check --api-url" in result.stderr
    assert "Traceback" not in result.stderr
    assert not table_exists(env)


def test_missing_keys_is_a_setting_error(amplitude, data_dir):
    result = run_bemidb("sync", "amplitude", "--api-url", amplitude.url,
                        env={"BEMIDB_DATA_DIR": str(data_dir)})
    assert result.returncode == 2
    assert "SOURCE_AMPLITUDE_API_KEY and SOURCE_AMPLITUDE_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert amplitude.requests == []

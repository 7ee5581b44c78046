"""`bemidb sync attio` end to end: a real bemidb process against a local Attio API server."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bemidb import config
from bemidb.storage.catalog import PROP_PG_TYPES, PROP_SOURCE, open_catalog
from tests.support.commands import run_bemidb
from tests.support.fake_apis import (
    MEMBER,
    FakeAttio,
    attio_company,
    attio_deal,
    attio_person,
    attio_value,
    company_id,
    person_id,
)
from tests.support.server import bemidb_server  # noqa: F401 - fixture

UTC = dt.UTC


@pytest.fixture
def attio():
    with FakeAttio() as server:
        server.records["companies"] = [attio_company(n) for n in range(1203)]  # 3 pages of 500, then 203
        server.records["people"] = [attio_person(n) for n in range(7)]
        server.records["deals"] = [attio_deal(n) for n in range(2)]
        yield server


def sync(attio, data_dir, token="attio-token"):
    env = {"BEMIDB_DATA_DIR": str(data_dir), "SOURCE_ATTIO_API_ACCESS_TOKEN": token}
    return run_bemidb("sync", "attio", "--api-url", attio.url, env=env)


def catalog(data_dir):
    return open_catalog(config.resolve(None, config.STORAGE, env={"BEMIDB_DATA_DIR": str(data_dir)}))


def load(data_dir, name):
    return catalog(data_dir).load_table(("attio", name))


def rows_by_id(table) -> dict[str, dict]:
    return {row["id"]: row for row in table.scan().to_arrow().to_pylist()}


def pg_types(table) -> dict[str, str]:
    return dict(zip([f.name for f in table.schema().fields], json.loads(table.properties[PROP_PG_TYPES]), strict=True))


def test_sync_pages_honours_429_and_types_every_value_shape(attio, data_dir):
    attio.rate_limit_once.add(("companies", 500))
    result = sync(attio, data_dir)
    assert result.returncode == 0, result.stderr

    # paging by limit/offset until an empty page; the 429 was answered once and the page asked again
    company_pages = [(limit, offset) for obj, limit, offset in attio.requests if obj == "companies"]
    assert company_pages == [(500, 0), (500, 500), (500, 1000), (500, 1203)]
    assert attio.rate_limited == [("companies", 500)]

    companies = load(data_dir, "companies")
    assert companies.properties[PROP_SOURCE] == "attio"
    rows = rows_by_id(companies)
    assert len(rows) == 1203
    c0, c1 = rows[company_id(0)], rows[company_id(1)]
    assert c0["name"] == "Company 0"  # the inactive "Old Name" is not a current value
    assert c0["created_at"] == dt.datetime(2023, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert c0["description"] is None and c1["description"] == "We make thing 1"
    assert c0["domains"] == ["c0.example", "www.c0.example"] and c1["domains"] == ["c1.example"]
    assert c0["categories"] == ["SaaS", "B2B"]
    assert c0["estimated_arr_usd"] == "$1M-$10M"
    assert json.loads(c0["primary_location"])["locality"] == "Springfield"
    assert json.loads(c0["primary_location"])["line_1"] == "0 Main St"
    assert c1["twitter_follower_count"] == 1001.0
    assert c1["funding_raised_usd"] == 2500001.5
    assert c1["foundation_date"] == dt.date(2011, 5, 2)
    interaction = json.loads(c0["last_interaction"])
    assert interaction["interaction_type"] == "email" and interaction["owner_actor"]["id"] == MEMBER
    assert c0["team"] == [person_id(0), person_id(1)]
    assert c0["created_by"] == MEMBER
    assert c1["custom_score"] == 1 and c0["is_customer"] is True and c1["is_customer"] is False
    assert c0["renewal_at"] == dt.datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)  # from nanoseconds
    assert "record_id" not in [f.name for f in companies.schema().fields]  # the same as id
    types = pg_types(companies)
    assert types == {
        "id": "text", "created_at": "timestamp with time zone", "name": "text", "description": "text",
        "domains": "text[]", "categories": "text[]", "estimated_arr_usd": "text", "primary_location": "jsonb",
        "twitter_follower_count": "double precision", "funding_raised_usd": "double precision",
        "foundation_date": "date", "last_interaction": "jsonb", "team": "text[]", "created_by": "text",
        "custom_score": "bigint", "is_customer": "boolean", "renewal_at": "timestamp with time zone"}

    people = rows_by_id(load(data_dir, "people"))
    p3 = people[person_id(3)]
    assert json.loads(p3["name"]) == {"first_name": "Ada", "last_name": "Lovelace3", "full_name": "Ada Lovelace3"}
    assert p3["email_addresses"] == ["ada3@example.com"]
    assert p3["phone_numbers"] == ["+15550100003"]
    assert p3["company"] == [company_id(3)]
    assert p3["job_title"] == "Engineer"
    assert p3["created_by"] is None  # a system actor has no id
    assert len(people) == 7

    deals_table = load(data_dir, "deals")
    deals = rows_by_id(deals_table)
    d1 = deals[next(i for i in deals if i.endswith("1"))]
    assert d1["stage"] == "In Progress" and d1["owner"] == MEMBER and d1["value"] == 100.25
    assert d1["associated_people"] == [person_id(1)] and d1["associated_company"] == [company_id(1)]
    assert d1["created_at"] == dt.datetime(2023, 3, 1, 9, 30, 0, 500000, tzinfo=UTC)
    assert pg_types(deals_table)["value"] == "double precision"


def test_each_run_replaces_tables_and_picks_up_new_attributes(attio, data_dir):
    attio.records["companies"] = attio.records["companies"][:3]
    assert sync(attio, data_dir).returncode == 0
    people_snapshots = len(load(data_dir, "people").snapshots())

    # A custom attribute appears in the workspace, a person is deleted, another changes a value
    attio.records["people"] = attio.records["people"][:5]
    attio.records["people"][0]["values"]["nps_score"] = [attio_value("number", value=9.5)]
    attio.records["people"][0]["values"]["job_title"] = [attio_value("text", value="CTO")]
    attio.records["people"][1]["values"]["languages"] = [attio_value("select", option={"title": "en"}),
                                                         attio_value("select", option={"title": "de"})]
    result = sync(attio, data_dir)
    assert result.returncode == 0, result.stderr

    table = load(data_dir, "people")
    assert len(table.snapshots()) == people_snapshots + 1  # one atomic commit per table
    rows = rows_by_id(table)
    assert sorted(rows) == [person_id(n) for n in range(5)]
    assert rows[person_id(0)]["nps_score"] == 9.5 and rows[person_id(2)]["nps_score"] is None
    assert rows[person_id(0)]["job_title"] == "CTO"
    assert rows[person_id(1)]["languages"] == ["en", "de"] and rows[person_id(0)]["languages"] == []  # no value
    types = pg_types(table)
    assert types["nps_score"] == "double precision" and types["languages"] == "text[]"


def test_bad_token_or_a_failing_later_object_change_nothing(attio, data_dir):
    attio.records["companies"] = attio.records["companies"][:3]
    assert sync(attio, data_dir).returncode == 0
    names = ("companies", "people", "deals")
    before = {name: load(data_dir, name).current_snapshot().snapshot_id for name in names}

    bad = sync(attio, data_dir, token="not-the-token")
    assert bad.returncode == 1
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Attio rejected the access token") and "HTTP 401" in last
    assert "nothing was changed" in last
    assert "Traceback" not in bad.stderr and "not-the-token" not in bad.stderr
    assert {name: load(data_dir, name).current_snapshot().snapshot_id for name in names} == before

    # companies and people fetch fine (and companies shrank), then deals fails: no table is replaced
    attio.records["companies"] = attio.records["companies"][:1]
    attio.fail_always["deals"] = 400
    failed = sync(attio, data_dir)
    assert failed.returncode == 1
    assert "Attio query for deals failed: HTTP 400" in failed.stderr and "nothing was changed" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert {name: load(data_dir, name).current_snapshot().snapshot_id for name in names} == before
    assert len(rows_by_id(load(data_dir, "companies"))) == 3


def test_missing_object_is_skipped_and_missing_token_is_a_setting_error(attio, data_dir):
    del attio.records["deals"]  # a workspace without the deals object: Attio answers 404
    attio.records["companies"] = attio.records["companies"][:2]
    result = sync(attio, data_dir)
    assert result.returncode == 0, result.stderr
    assert "no 'deals' object" in result.stderr
    assert catalog(data_dir).table_exists(("attio", "companies"))
    assert not catalog(data_dir).table_exists(("attio", "deals"))

    attio.ignore_offset = True  # paging that never advances is an error, not an endless loop
    looping = sync(attio, data_dir)
    assert looping.returncode == 1 and "Attio returned the same page again at offset 2" in looping.stderr

    missing = run_bemidb("sync", "attio", "--api-url", attio.url, env={"BEMIDB_DATA_DIR": str(data_dir)})
    assert missing.returncode == 2
    assert "SOURCE_ATTIO_API_ACCESS_TOKEN" in missing.stderr and "Traceback" not in missing.stderr


def test_synced_saas_tables_are_served_with_postgres_types(attio, data_dir, bemidb_server):  # noqa: F811
    """Both SaaS sources into one data dir, then read through the real server with psycopg."""
    import psycopg

    from bemidb.sync.amplitude import last_complete_hour
    from tests.support.fake_apis import FakeAmplitude, amplitude_event

    attio.records["companies"] = attio.records["companies"][:3]
    assert sync(attio, data_dir).returncode == 0
    with FakeAmplitude() as amplitude:
        h = last_complete_hour(dt.datetime.now(UTC))
        amplitude.add([amplitude_event(n, h - dt.timedelta(hours=n % 2, minutes=-n)) for n in range(10)])
        env = {"BEMIDB_DATA_DIR": str(data_dir), "SOURCE_AMPLITUDE_API_KEY": "amp-key",
               "SOURCE_AMPLITUDE_SECRET_KEY": "amp-secret"}
        result = run_bemidb("sync", "amplitude", "--api-url", amplitude.url, "--start-date",
                            (h - dt.timedelta(hours=2)).date().isoformat(), env=env)
        assert result.returncode == 0, result.stderr

    server = bemidb_server(data_dir)
    with psycopg.connect(server.dsn()) as conn:
        cur = conn.execute("SELECT id, domains, primary_location->>'locality', renewal_at, custom_score "
                           "FROM attio.companies ORDER BY id")
        # text, text[], text, timestamptz, bigint
        assert [d.type_code for d in cur.description] == [25, 1009, 25, 1184, 20]
        first = cur.fetchall()[0]
        assert first[0] == company_id(0) and first[1] == ["c0.example", "www.c0.example"]
        assert first[2] == "Springfield" and first[4] == 0
        assert first[3] == dt.datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)

        cur = conn.execute("SELECT event_type, count(*), min(event_time) < max(server_upload_time) "
                           "FROM amplitude.events GROUP BY event_type ORDER BY event_type")
        assert cur.fetchall() == [("page_view", 5, True), ("signup", 5, True)]
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'amplitude' AND table_name = 'events'").fetchall())
        assert types["event_time"] == "timestamp with time zone" and types["event_properties"] == "jsonb"
        assert types["amplitude_id"] == "bigint" and types["extra"] == "jsonb" and len(types) == 56


def test_a_table_from_another_source_is_never_replaced(attio, data_dir):
    import pyarrow as pa

    from bemidb.storage.writer import write_table

    rows = pa.table({"id": pa.array([1, 2], pa.int64())})
    write_table(catalog(data_dir), ("public", "people"), rows.schema, rows.to_batches(),
                properties={PROP_SOURCE: "postgres"})
    before = catalog(data_dir).load_table(("public", "people")).current_snapshot().snapshot_id

    result = run_bemidb("sync", "attio", "--api-url", attio.url, "--schema", "public",
                        env={"BEMIDB_DATA_DIR": str(data_dir), "SOURCE_ATTIO_API_ACCESS_TOKEN": "attio-token"})
    assert result.returncode == 1
    assert "public.people exists and was written by `sync postgres`" in result.stderr
    assert attio.requests == []
    assert catalog(data_dir).load_table(("public", "people")).current_snapshot().snapshot_id == before
    assert not catalog(data_dir).table_exists(("public", "companies"))

"""The same enforcement when the warehouse is on S3 (SeaweedFS), and materialized views: granted as tables
themselves (as in Postgres, where a matview's rows are its owner's at refresh time, not filtered per reader);
restricted users may not create, refresh or drop them."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import permissions as world


@pytest.fixture(scope="module")
def s3_server(source, s3, tmp_path_factory):
    bucket = s3.create_bucket("permissions-s3")
    process = world.sync_and_serve(source, tmp_path_factory.mktemp("permissions-s3"), env=s3.env(bucket))
    yield process
    process.stop()


def test_grants_hold_on_s3_as_on_postgres(s3_server, source):
    queries = ["SELECT id, amount FROM orders ORDER BY id", "SELECT o.id, u.name FROM orders o JOIN users u "
               "ON u.id = o.user_id ORDER BY 1", "SELECT * FROM secret", "SELECT email FROM users"]
    for user in ("analyst", "tenant1"):
        with psycopg.connect(s3_server.dsn(user, world.PASSWORDS[user]), autocommit=True) as ours, \
                psycopg.connect(world.as_user(source, user), autocommit=True) as theirs:
            for sql in queries:
                assert world.outcome(ours, sql) == world.outcome(theirs, sql), (user, sql)


def test_matviews_are_granted_as_tables(s3_server):
    with psycopg.connect(s3_server.dsn(world.ADMIN, world.ADMIN_PASSWORD), autocommit=True) as admin:
        admin.execute("CREATE MATERIALIZED VIEW report_paid AS SELECT status, count(*) AS n FROM orders GROUP BY 1")
        admin.execute("CREATE MATERIALIZED VIEW secret_copy AS SELECT * FROM secret")
    with psycopg.connect(s3_server.dsn("analyst", world.PASSWORDS["analyst"]), autocommit=True) as analyst:
        # report_* is granted: the matview's rows are what its creator saw (all statuses), as in Postgres
        assert sorted(analyst.execute("SELECT status, n FROM report_paid").fetchall()) == \
            [("open", 20), ("paid", 20), ("refunded", 20)]
        with pytest.raises(psycopg.errors.UndefinedTable):
            analyst.execute("SELECT * FROM secret_copy")
        names = {r[0] for r in analyst.execute("SELECT matviewname FROM pg_matviews")}
        assert names == {"report_paid"}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute("REFRESH MATERIALIZED VIEW report_paid")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute("CREATE MATERIALIZED VIEW mine AS SELECT id FROM orders")

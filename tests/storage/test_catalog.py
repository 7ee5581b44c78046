"""bemidb's Iceberg SQL catalog (storage/sql_catalog.py on sqlite3 or pg8000) against pyiceberg's own
SqlCatalog (SQLAlchemy): the same tables and rows, so either opens what the other wrote; commits from
concurrent writers are never lost; a stale pooled Postgres connection is replaced."""

import threading

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog as PyicebergSqlCatalog
from pyiceberg.exceptions import CommitFailedException, NamespaceNotEmptyError, NoSuchTableError

from bemidb.config import Config
from bemidb.storage.catalog import CATALOG_NAME, open_catalog
from bemidb.storage.writer import write_table

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])


def _batch(start: int, count: int) -> pa.RecordBatch:
    return pa.record_batch([pa.array(range(start, start + count), pa.int64()),
                            pa.array([f"n{i}" for i in range(start, start + count)])], schema=SCHEMA)


@pytest.fixture(params=["sqlite", "postgres"])
def where(request, data_dir):
    """(bemidb Config, the SQLAlchemy URL pyiceberg's SqlCatalog opens the same catalog with)."""
    if request.param == "sqlite":
        return Config({"data_dir": str(data_dir)}), f"sqlite:///{data_dir / 'catalog.db'}"
    pg = request.getfixturevalue("pg")
    url = pg.create_database("storage_catalog")
    return (Config({"data_dir": str(data_dir), "catalog_database_url": url}),
            "postgresql+pg8000://" + url.split("://", 1)[1])


def _theirs(cfg: Config, sqlalchemy_url: str) -> PyicebergSqlCatalog:
    return PyicebergSqlCatalog(CATALOG_NAME, uri=sqlalchemy_url, warehouse=cfg.warehouse)


def test_pyiceberg_sqlcatalog_reads_what_bemidb_wrote_and_the_other_way(where):
    cfg, sqlalchemy_url = where
    ours = open_catalog(cfg)
    write_table(ours, ("public", "t"), SCHEMA, iter([_batch(0, 100)]))
    write_table(ours, ("public", "t"), SCHEMA, iter([_batch(100, 5)]), mode="append")

    theirs = _theirs(cfg, sqlalchemy_url)
    assert theirs.list_namespaces() == [("public",)]
    assert theirs.list_tables("public") == [("public", "t")]
    rows = theirs.load_table(("public", "t")).scan().to_arrow().sort_by("id")
    assert rows["id"].to_pylist() == list(range(105))
    # pyiceberg's catalog commits on top of ours; ours sees it, and commits on top of that in turn
    theirs.load_table(("public", "t")).append(pa.Table.from_batches([_batch(105, 1)]))
    theirs.create_namespace("other", {"owner": "them"})
    made = theirs.create_table(("other", "made_by_pyiceberg"), SCHEMA)
    made.append(pa.Table.from_batches([_batch(0, 3)]))

    ours = open_catalog(cfg)
    assert ours.load_table(("public", "t")).scan().to_arrow().num_rows == 106
    assert sorted(ours.list_namespaces()) == [("other",), ("public",)]
    assert ours.load_namespace_properties("other") == {"owner": "them"}
    write_table(ours, ("other", "made_by_pyiceberg"), SCHEMA, iter([_batch(3, 2)]), mode="append")
    assert theirs.load_table(("other", "made_by_pyiceberg")).scan().to_arrow().num_rows == 5
    locations = ours.table_locations()
    assert locations == {key: theirs.load_table(key).metadata_location
                         for key in [("public", "t"), ("other", "made_by_pyiceberg")]}


def test_table_and_namespace_operations(where):
    cfg, _ = where
    catalog = open_catalog(cfg)
    write_table(catalog, ("s", "a"), SCHEMA, iter([_batch(0, 2)]))
    catalog.rename_table(("s", "a"), ("s", "b"))
    assert catalog.list_tables("s") == [("s", "b")]
    with pytest.raises(NoSuchTableError):
        catalog.load_table(("s", "a"))
    with pytest.raises(NamespaceNotEmptyError):
        catalog.drop_namespace("s")
    catalog.update_namespace_properties("s", updates={"k": "v"})
    assert catalog.load_namespace_properties("s")["k"] == "v"
    catalog.update_namespace_properties("s", removals={"k"})
    assert "k" not in catalog.load_namespace_properties("s")
    catalog.drop_table(("s", "b"))
    with pytest.raises(NoSuchTableError):
        catalog.drop_table(("s", "b"))
    catalog.drop_namespace("s")
    assert catalog.list_namespaces() == []


def test_concurrent_commits_from_two_processes_worth_of_catalogs_are_never_lost(where):
    """Writers on separate catalog objects (as separate processes would be) append at once: a commit that
    loses the race fails with CommitFailedException, is retried (by pyiceberg, or here), and every row lands
    exactly once."""
    cfg, _ = where
    write_table(open_catalog(cfg), ("s", "t"), SCHEMA, iter([]))
    catalogs = [open_catalog(cfg), open_catalog(cfg)]
    conflicts, errors = [], []

    def writer(worker: int) -> None:
        catalog = catalogs[worker % 2]
        for i in range(5):
            while True:
                try:
                    catalog.load_table(("s", "t")).append(pa.Table.from_batches([_batch(worker * 100 + i, 1)]))
                    break
                except CommitFailedException:
                    conflicts.append(worker)
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = sorted(open_catalog(cfg).load_table(("s", "t")).scan().to_arrow()["id"].to_pylist())
    assert ids == sorted(w * 100 + i for w in range(4) for i in range(5))


def test_a_commit_that_lost_the_race_fails_instead_of_overwriting(where, caplog):
    """The compare-and-set itself: B loads the table, A commits while B is writing its metadata file, B's
    pointer swap must then fail (not silently drop A's commit), and pyiceberg's retry lands B on top of A."""
    cfg, _ = where
    write_table(open_catalog(cfg), ("s", "t"), SCHEMA, iter([_batch(0, 1)]))
    a, b = open_catalog(cfg), open_catalog(cfg)
    write_metadata = b._write_metadata
    raced = []

    def a_commits_first(*args, **kwargs):
        if not raced:
            raced.append(True)
            a.load_table(("s", "t")).append(pa.Table.from_batches([_batch(1, 1)]))
        return write_metadata(*args, **kwargs)

    b._write_metadata = a_commits_first
    b.load_table(("s", "t")).append(pa.Table.from_batches([_batch(2, 1)]))
    assert raced and "concurrent update" in caplog.text  # B's first swap was refused
    ids = sorted(open_catalog(cfg).load_table(("s", "t")).scan().to_arrow()["id"].to_pylist())
    assert ids == [0, 1, 2]


def test_a_v0_catalog_without_the_iceberg_type_column_still_works(data_dir):
    import sqlite3

    with sqlite3.connect(data_dir / "catalog.db") as conn:  # as pyiceberg < 0.8 and Iceberg Java v0 made it
        conn.execute("CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace "
                     "VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), "
                     "previous_metadata_location VARCHAR(1000), PRIMARY KEY (catalog_name, table_namespace, "
                     "table_name))")
        conn.execute("CREATE TABLE iceberg_namespace_properties (catalog_name VARCHAR(255) NOT NULL, namespace "
                     "VARCHAR(255) NOT NULL, property_key VARCHAR(255) NOT NULL, property_value VARCHAR(1000) "
                     "NOT NULL, PRIMARY KEY (catalog_name, namespace, property_key))")
    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    write_table(catalog, ("s", "t"), SCHEMA, iter([_batch(0, 4)]))
    write_table(catalog, ("s", "t"), SCHEMA, iter([_batch(4, 1)]), mode="append")
    assert catalog.load_table(("s", "t")).scan().to_arrow().num_rows == 5
    with sqlite3.connect(data_dir / "catalog.db") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(iceberg_tables)")]
    assert "iceberg_type" not in columns  # left as it was


def test_pooled_connections_survive_a_catalog_restart(own_postgres, data_dir):
    """A restarted catalog Postgres sends its idle sessions a FATAL (57P01): the pooled connection is dropped
    and the statement retried on a new one, so the first catalog call after the restart already works."""
    catalog = open_catalog(Config({"data_dir": str(data_dir), "catalog_database_url": own_postgres.url()}))
    write_table(catalog, ("s", "t"), SCHEMA, iter([_batch(0, 2)]))
    own_postgres.restart("fast")  # a clean restart (the test cluster runs without fsync: a crash loses commits)
    assert catalog.load_table(("s", "t")).scan().to_arrow().num_rows == 2
    write_table(catalog, ("s", "t"), SCHEMA, iter([_batch(2, 1)]), mode="append")
    assert catalog.load_table(("s", "t")).scan().to_arrow().num_rows == 3


def test_a_stale_pooled_postgres_connection_is_replaced(pg, data_dir):
    url = pg.create_database("storage_catalog_stale")
    catalog = open_catalog(Config({"data_dir": str(data_dir), "catalog_database_url": url}))
    write_table(catalog, ("s", "t"), SCHEMA, iter([_batch(0, 3)]))
    killed = pg.execute("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE datname = 'storage_catalog_stale' AND pid <> pg_backend_pid()")
    assert killed[0][0] >= 1  # the catalog's pooled connection is gone
    assert catalog.load_table(("s", "t")).scan().to_arrow().num_rows == 3
    write_table(catalog, ("s", "t"), SCHEMA, iter([_batch(3, 1)]), mode="append")
    assert catalog.load_table(("s", "t")).scan().to_arrow().num_rows == 4

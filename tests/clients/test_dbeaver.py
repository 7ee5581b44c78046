"""DBeaver's PostgreSQL metadata queries, verbatim from its source (plugins/org.jkiss.dbeaver.ext.postgresql,
model/PostgreDataSource, PostgreDatabase, PostgreSchema; as built for a Postgres 15 server with default settings),
sent through PgJDBC as DBeaver sends them (prepared, object ids bound with setLong) to the test Postgres and to
bemidb serving a sync of it. Each result's column labels and JDBC type names must be Postgres's; the columns
listed per query must hold Postgres's values for the synced tables' rows (OIDs differ by design: never compared)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.support.synced import create_source, serve_synced
from tests.support.warehouse import make_warehouse

JAR = Path.home() / ".m2/repository/org/postgresql/postgresql/42.7.13/postgresql-42.7.13.jar"
PROGRAM = Path(__file__).parent / "jdbc" / "Queries.java"
pytestmark = pytest.mark.skipif(shutil.which("java") is None or not JAR.exists(), reason="java or PgJDBC missing")

SOURCE_DDL = """
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(12,2) DEFAULT 0,
    placed date, uid uuid, note varchar(40));
COMMENT ON TABLE orders IS 'customer orders';
COMMENT ON COLUMN orders.customer IS 'who ordered';
CREATE INDEX orders_placed ON orders (placed DESC, customer);
CREATE TABLE items (order_id int NOT NULL, sku text NOT NULL, qty int DEFAULT 1, price float8, tags text[],
    created timestamptz, PRIMARY KEY (order_id, sku));
INSERT INTO orders (customer, total, placed) SELECT 'c' || g, g * 1.5, '2024-01-01'::date + g
    FROM generate_series(1, 5) g;
INSERT INTO items SELECT g, 's' || g, g, g * 0.5, ARRAY['a', 'b'], '2024-01-01 00:00:00+00' FROM generate_series(1, 5) g;
"""

# name -> (parameters, SQL as DBeaver builds it, columns whose values are compared)
QUERIES = {
    # PostgreExecutionContext: the context defaults
    "context defaults": ([], "SELECT current_schema(),session_user", ["current_schema"]),
    "search path": ([], "SHOW search_path", ["search_path"]),
    # PostgreDataSource.prepareReadDatabaseListStatement (the database name differs: not compared)
    "databases": ([], "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE 1 = 1 AND datallowconn AND NOT "
                      "datistemplate  ORDER BY db.datname", []),  # the test Postgres has more databases
    # PostgreDatabase.RoleCache, CollationCache, ExtensionCache (the role names differ: not compared)
    "roles": ([], "SELECT a.oid,a.*,pd.description FROM pg_catalog.pg_roles a \nleft join pg_catalog.pg_shdescription "
                  "pd on a.oid = pd.objoid\nORDER BY a.rolname", []),
    "collations": ([], "SELECT c.oid,c.* FROM pg_catalog.pg_collation c \nORDER BY c.oid",
                   ["oid", "collname", "collprovider", "collisdeterministic", "collcollate", "collctype"]),
    "extensions": ([], "SELECT \n e.oid,\n cfg.tbls,\n  n.nspname as schema_name,\n e.* \nFROM \n "
                       "pg_catalog.pg_extension e \n join pg_namespace n on n.oid =e.extnamespace\n left join  (\n"
                       "         select\n            ARRAY_AGG(ns.nspname || '.' ||  cls.relname) tbls, oid_ext\n"
                       "          from\n            (\n            select\n                unnest(e1.extconfig) oid"
                       " , e1.oid oid_ext\n            from\n                pg_catalog.pg_extension e1 ) c \n"
                       "                join    pg_class cls on cls.oid = c.oid \n                join pg_namespace"
                       " ns on ns.oid = cls.relnamespace\n            group by oid_ext        \n         ) cfg on "
                       "cfg.oid_ext = e.oid\nORDER BY e.oid", ["extname", "schema_name", "tbls", "extversion"]),
    # PostgreDatabase.SchemaCache
    "schemas": ([], "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n\n"
                    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND "
                    "d.classoid='pg_namespace'::regclass\n WHERE nspname = 'public' ORDER BY nspname",
                ["nspname"]),
    # PostgreSchema.TableCache.prepareLookupStatement
    "tables": (["?L ns:public"],
               "SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  "
               "pg_catalog.pg_get_partkeydef(c.oid) as partition_key \nFROM pg_catalog.pg_class c\n"
               "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND "
               "d.classoid='pg_class'::regclass\nWHERE c.relnamespace=? AND c.relkind not in ('i','I','c')",
               ["relname", "relkind", "relhasindex", "relpersistence", "relnatts", "relispartition", "description",
                "partition_expr", "partition_key"]),
    # PostgreSchema.TableCache.prepareChildrenStatement (one table)
    "columns": (["?L rel:public.orders"],
                "SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description"
                ",dep.objid\nFROM pg_catalog.pg_attribute a\nINNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)"
                "\nLEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)"
                "\nLEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)"
                "\nLEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and "
                "dep.refobjsubid = a.attnum and dep.classid = dep.refclassid"
                "\nWHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=?\nORDER BY a.attnum",
                ["relname", "attname", "attnum", "atttypmod", "attnotnull", "atthasdef", "attidentity",
                 "attgenerated", "attndims", "def_value", "description"]),
    # PostgreSchema.ConstraintCache.prepareObjectsStatement (one table)
    "constraints": (["?L rel:public.items"],
                    "SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case "
                    "when c.contype='c' then \"substring\"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy"
                    "\nFROM pg_catalog.pg_constraint c\nINNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid"
                    "\nLEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid"
                    "\nLEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND "
                    "d.classoid='pg_constraint'::regclass\nWHERE c.conrelid=?\nORDER BY c.oid",
                    ["conname", "contype", "conkey", "tabrelname", "description", "consrc_copy"]),
    # PostgreSchema.IndexCache.prepareObjectsStatement (one table)
    "indexes": (["?L rel:public.orders"],
                "SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as "
                "tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,"
                "pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size("
                "i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans"
                "\nFROM pg_catalog.pg_index i\nINNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid"
                "\nINNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid"
                "\nLEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid"
                "\nWHERE  i.indrelid=? ORDER BY c.relname",
                ["relname", "tabrelname", "indnatts", "indisunique", "indisprimary", "indkey", "keys", "indoption",
                 "description", "pred_expr", "expr"]),
    # PostgreDatabase.loadDataTypes (not reading all types); bemidb has fewer types: the common ones compared
    "data types": ([], "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as "
                       "base_type_name, d.description\nFROM pg_catalog.pg_type t"
                       "\nLEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem "
                       "\nLEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid"
                       "\nLEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid"
                       "\nWHERE t.typname IS NOT NULL"
                       "\nAND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory "
                       "<> 'C')\n AND t.typname IN ('int4', '_int4', 'text', 'numeric', 'uuid', 'timestamptz', "
                       "'bool', 'varchar', 'date', 'float8', 'jsonb')",
                   ["oid", "typname", "typlen", "typbyval", "typtype", "typcategory", "typelem", "typarray",
                    "typinput", "typoutput", "typreceive", "typsend", "typalign", "typstorage", "typdelim",
                    "base_type_name", "description"]),
}

# Rows compared: those of the synced tables (sequences are not synced: orders_id_seq is only in Postgres) and
# their user columns (the served tables have no system columns: ctid, xmin ... are not in pg_attribute).
ROWS_OF = {"tables": lambda row: row["relkind"] in ("r", "p", "v", "m", "f"),
           # the collations every Postgres has (the others come from the machine's locales and ICU)
           "collations": lambda row: row["collname"] in ("default", "C", "POSIX"),
           "columns": lambda row: int(row["attnum"]) > 0}

# What differs on purpose, with the reason (README, Client compatibility).
KNOWN_TYPES: dict[tuple[str, str], str] = {
    ("columns", "attmissingval"): "anyarray: always NULL here (no column was added with a default)",
}
KNOWN_COLUMNS = {("databases", "daticurules"): "bemidb's catalog is Postgres 16's; the test source is 15"}


def _blocks() -> str:
    out = []
    for name, (params, sql, _) in QUERIES.items():
        out += [f"== {name}", *params, sql]
    return "\n".join(out) + "\n"


def _run(dsn: str, path: Path) -> dict:
    url = urlparse(dsn)
    jdbc = f"jdbc:postgresql://{url.hostname}:{url.port}{url.path}?sslmode=disable"
    done = subprocess.run(["java", "-cp", str(JAR), str(PROGRAM), jdbc, url.username or "", url.password or "",
                           str(path)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    results: dict = {}
    for line in done.stdout.splitlines():
        if line.startswith("== "):
            current = results.setdefault(line[3:], {"columns": [], "rows": [], "error": None})
        elif line.startswith("col\t"):
            current["columns"].append(tuple(line.split("\t")[1:]))
        elif line.startswith("row\t"):
            current["rows"].append(line.split("\t")[1:])
        elif line.startswith("error\t"):
            current["error"] = line.split("\t")[1:]
    return results


@pytest.fixture(scope="module")
def source(pg):
    return create_source(pg, "compat_dbeaver", SOURCE_DDL)


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    """Catalog rows do not depend on where the data files are: local disk only."""
    yield from serve_synced(source, make_warehouse("local", tmp_path_factory.mktemp("dbeaver-data")))


@pytest.fixture(scope="module")
def results(server, source, tmp_path_factory):
    path = tmp_path_factory.mktemp("dbeaver") / "queries.sql"
    path.write_text(_blocks())
    return _run(server.dsn("alice"), path), _run(source, path)


def _compared(name: str, result: dict) -> list[tuple]:
    labels = [c[0] for c in result["columns"]]
    rows = result["rows"]
    if name in ROWS_OF:
        rows = [row for row in rows if ROWS_OF[name](dict(zip(labels, row, strict=True)))]
    return sorted(tuple(row[labels.index(c)] for c in QUERIES[name][2]) for row in rows)


@pytest.mark.parametrize("name", list(QUERIES))
def test_dbeaver_query_as_postgres(results, name):
    ours, theirs = results[0][name], results[1][name]
    assert theirs["error"] is None and ours["error"] is None, ours["error"]
    assert theirs["rows"]
    columns = [c for c in ours["columns"] if (name, c[0]) not in KNOWN_COLUMNS]
    assert [c[0] for c in columns] == [c[0] for c in theirs["columns"]]
    types = [(a, b) for a, b in zip(columns, theirs["columns"], strict=True)
             if a != b and (name, a[0]) not in KNOWN_TYPES]
    assert types == []
    if QUERIES[name][2]:
        assert _compared(name, ours) == _compared(name, theirs)

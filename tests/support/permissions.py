"""The permissions suite's world: one source Postgres database whose roles have GRANTs, column privileges and
row-level security policies, and the bemidb users file granting the same to the same names."""

from __future__ import annotations

import decimal

import psycopg

from bemidb.server.grants.users import Verifier

ADMIN, ADMIN_PASSWORD = "admin", "admin-pw-7"
PASSWORDS = {"analyst": "analyst-pw-1", "tenant1": "tenant-pw-2", "proxy": "proxy-pw-3"}

SOURCE_DDL = """
CREATE TABLE users (id integer PRIMARY KEY, name text, email text, ssn text);
CREATE TABLE orders (id integer PRIMARY KEY, user_id integer, amount numeric(10,2), status text,
                     tenant_id integer, note text);
CREATE TABLE secret (id integer, payload text);
CREATE TABLE report_daily (day date, total numeric(10,2));
CREATE TABLE report_monthly (month text, total numeric(10,2));
INSERT INTO users SELECT i, 'user ' || i, 'u' || i || '@example.com', '000-00-' || i FROM generate_series(1, 6) i;
INSERT INTO orders SELECT i, 1 + i % 6, (i * 7 % 50) + 0.25, (ARRAY['paid', 'open', 'refunded'])[1 + i % 3],
                          1 + i % 2, 'note ' || i FROM generate_series(1, 60) i;
INSERT INTO secret VALUES (1, 'the launch codes'), (2, 'the recipe');
INSERT INTO report_daily SELECT DATE '2024-01-01' + i, i * 10 FROM generate_series(0, 9) i;
INSERT INTO report_monthly VALUES ('2024-01', 450), ('2024-02', 12.5);
"""

# Postgres's own way of granting what USERS_TOML grants (roles are cluster-wide: created once).
POSTGRES_GRANTS = """
GRANT SELECT (id, user_id, amount, status) ON orders TO analyst;
GRANT SELECT (id, name) ON users TO analyst;
GRANT SELECT ON report_daily, report_monthly TO analyst;
GRANT SELECT (id, user_id, amount, status, tenant_id) ON orders TO tenant1;
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY analyst_paid ON orders FOR SELECT TO analyst USING (status = 'paid');
CREATE POLICY tenant_one ON orders FOR SELECT TO tenant1 USING (tenant_id = 1);
"""


def users_toml(extra_analyst_grants: str = "") -> str:
    v = {name: Verifier.from_password(pw).text() for name, pw in PASSWORDS.items()}
    return f"""
[users.analyst]
password = "{v['analyst']}"
grants = [
  {{ table = "public.orders", columns = ["id", "user_id", "amount", "status"], rows = "status = 'paid'" }},
  {{ table = "public.users", columns = ["id", "name"] }},
  {{ table = "public.report_*" }},{extra_analyst_grants}
]

[users.tenant1]
password = "{v['tenant1']}"
grants = [{{ table = "public.orders", except_columns = ["note"], rows = "tenant_id = 1" }}]

[users.proxy]
password = "{v['proxy']}"
trusted_proxy = true
grants = [{{ table = "public.*" }}]
"""


def create_source(pg) -> str:
    url = pg.create_database("permissions")
    with psycopg.connect(url, autocommit=True) as conn:
        for name, password in PASSWORDS.items():
            conn.execute(f"DO $$ BEGIN CREATE ROLE {name} LOGIN PASSWORD '{password}'; "
                         f"EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute(SOURCE_DDL)
        conn.execute(POSTGRES_GRANTS)
    return url


def as_user(url: str, user: str) -> str:
    """The source URL logged in as `user` (with its password)."""
    rest = url.split("@", 1)[1]
    return f"postgresql://{user}:{PASSWORDS[user]}@{rest}"


def normalized(rows: list[tuple]) -> list[tuple]:
    """Rows with numbers compared by value (numeric may come back as Decimal or float)."""
    def value(v):
        if isinstance(v, (decimal.Decimal, float)):
            return round(float(v), 6)
        return v
    return [tuple(value(v) for v in row) for row in rows]


def outcome(conn: psycopg.Connection, sql: str, params=None, prepare: bool | None = None):
    """('rows', column names, rows) or ('error', SQLSTATE class) of one statement."""
    try:
        cur = conn.execute(sql, params, prepare=prepare)
        names = [d.name for d in cur.description] if cur.description else []
        return "rows", names, normalized(cur.fetchall() if cur.description else [])
    except psycopg.Error as exc:
        return "error", (exc.sqlstate or "")[:2]


def sync_and_serve(source: str, tmp_dir, users_toml_text: str | None = None, env: dict | None = None):
    """`bemidb sync postgres` the source into tmp_dir/data, then serve it with the users file; the server
    process gets `.users_file` (the file's path) for tests that rewrite it."""
    from tests.support.commands import run_bemidb
    from tests.support.server import start_server

    data_dir = tmp_dir / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir), **(env or {})},
               check=True)
    users_file = tmp_dir / "users.toml"
    users_file.write_text(users_toml_text or users_toml())
    process = start_server(data_dir, env={"BEMIDB_USER": ADMIN, "BEMIDB_PASSWORD": ADMIN_PASSWORD,
                                          "BEMIDB_USERS_FILE": str(users_file), **(env or {})}, log_level="INFO")
    process.users_file = users_file
    process.data_dir = data_dir
    return process

#!/usr/bin/env bash
# The main job, end to end, on one machine with python3 and PostgreSQL installed:
#   1. a throwaway source Postgres with a small shop schema (users, orders, events with jsonb and arrays),
#   2. `bemidb doctor`, then `bemidb sync postgres` into Iceberg tables on local disk (embedded SQLite catalog),
#   3. `bemidb serve`, and a few analytical queries through psql, printed,
#   4. the row counts compared with the source, then everything stopped and removed (also on failure).
# Usage: ./examples/quickstart.sh            (uses ./bemidb.pyz, building it first if it is missing)
#        BEMIDB_PYZ=/path/to/bemidb.pyz ./examples/quickstart.sh
#        KEEP=1 ./examples/quickstart.sh     (leave the data folder for a look; servers are still stopped)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "quickstart: $*" >&2; exit 1; }

PYZ="${BEMIDB_PYZ:-$PWD/bemidb.pyz}"
if [[ ! -f "$PYZ" ]]; then
  say "building bemidb.pyz (once, about a minute)"
  ./build_zipapp.sh -o "$PYZ"
fi
command -v python3 >/dev/null || die "python3 not found"

# PostgreSQL server binaries: the newest /usr/lib/postgresql/*/bin (Debian), else PATH.
PG_BIN=""
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && { PG_BIN="$dir"; break; }
done
if [[ -z "$PG_BIN" ]]; then
  command -v initdb >/dev/null && command -v pg_ctl >/dev/null || die "PostgreSQL server (initdb, pg_ctl) not found; on Debian: apt-get install postgresql"
  PG_BIN="$(dirname "$(command -v initdb)")"
fi
PSQL="$(command -v psql || echo "$PG_BIN/psql")"
[[ -x "$PSQL" ]] || die "psql not found; on Debian: apt-get install postgresql-client"

# Postgres refuses to run as root: run its server commands as the postgres user then.
as_pg() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bemidb-quickstart.XXXXXX")"
chmod 755 "$WORK"
SERVER_PID=""
cleanup() {
  status=$?
  trap - EXIT INT TERM
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  [[ -f "$WORK/pg/data/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  if [[ $status -ne 0 ]]; then
    echo "quickstart FAILED (exit $status). Logs:" >&2
    for log in "$WORK/pg/log" "$WORK/serve.log"; do
      [[ -s "$log" ]] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
    done
  fi
  if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting a throwaway source PostgreSQL ($PG_BIN)"
PG_PORT="$(free_port)"
mkdir -p "$WORK/pg"
[[ $EUID -eq 0 ]] && chown postgres "$WORK/pg"
as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w -t 60 \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK/pg -c fsync=off" start >/dev/null
SOURCE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/shop"
"$PSQL" -q -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE shop"
"$PSQL" -q -X -v ON_ERROR_STOP=1 "$SOURCE_URL" <<'SQL'
-- A small shop: deterministic data (setseed), so every run prints the same numbers.
SELECT setseed(0.42) \g /dev/null
CREATE TABLE users (
  id bigint PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  country char(2) NOT NULL,
  is_admin boolean NOT NULL DEFAULT false,
  signed_up_at timestamptz NOT NULL
);
COMMENT ON TABLE users IS 'people who signed up';
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id),
  status text NOT NULL,
  total numeric(10, 2) NOT NULL,
  items integer NOT NULL,
  created_at timestamptz NOT NULL,
  shipped_on date
);
CREATE TABLE events (
  id bigint PRIMARY KEY,
  user_id bigint REFERENCES users (id),
  name text NOT NULL,
  payload jsonb NOT NULL,
  tags text[] NOT NULL,
  scores integer[],
  occurred_at timestamptz NOT NULL
);
INSERT INTO users
SELECT i, 'user' || i || '@example.com', 'User ' || i,
       (ARRAY['US', 'DE', 'FR', 'GB', 'BR', 'IN'])[1 + i % 6], i % 50 = 0,
       timestamptz '2025-01-01 00:00:00+00' + (i * interval '7 hours')
FROM generate_series(1, 1000) AS i;
INSERT INTO orders
SELECT i, 1 + (i * 7919) % 1000, (ARRAY['paid', 'paid', 'paid', 'shipped', 'refunded'])[1 + i % 5],
       round((5 + random() * 195)::numeric, 2), 1 + i % 4,
       timestamptz '2025-01-01 00:00:00+00' + (i * interval '53 minutes'),
       CASE WHEN i % 5 = 3 THEN date '2025-01-02' + (i / 27) END
FROM generate_series(1, 5000) AS i;
INSERT INTO events
SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + (i * 31) % 1000 END,
       (ARRAY['page_view', 'page_view', 'add_to_cart', 'checkout', 'search'])[1 + i % 5],
       jsonb_build_object('device', (ARRAY['ios', 'android', 'web'])[1 + i % 3], 'path', '/p/' || (i % 40),
                          'ms', (i * 37) % 900),
       ARRAY['campaign-' || (i % 3), CASE WHEN i % 2 = 0 THEN 'returning' ELSE 'new' END],
       CASE WHEN i % 4 = 0 THEN NULL ELSE ARRAY[i % 10, i % 7] END,
       timestamptz '2025-01-01 00:00:00+00' + (i * interval '13 minutes')
FROM generate_series(1, 20000) AS i;
SQL
echo "source: users 1000, orders 5000, events 20000 rows at $SOURCE_URL"

export BEMIDB_DATA_DIR="$WORK/bemidb-data"  # the embedded default: SQLite catalog + local Iceberg warehouse
export SOURCE_POSTGRES_DATABASE_URL="$SOURCE_URL"
BEMIDB_PORT="$(free_port)"
export BEMIDB_HOST=127.0.0.1 BEMIDB_PORT

say "bemidb doctor"
"$PYZ" doctor

say "bemidb sync postgres"
"$PYZ" sync postgres
"$PYZ" tables

say "bemidb serve on 127.0.0.1:$BEMIDB_PORT"
"$PYZ" serve > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
BEMIDB_URL="postgresql://127.0.0.1:$BEMIDB_PORT/bemidb"
for _ in $(seq 600); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "bemidb serve exited"
  "$PSQL" -X -q -A -t "$BEMIDB_URL" -c "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.1
done
"$PSQL" -X -q -A -t "$BEMIDB_URL" -c "SELECT 1" >/dev/null || die "bemidb serve did not accept connections in 60 s"

query() {  # print the query, then its result, as a person at psql would see them
  printf '\n\033[36m%s\033[0m\n' "$1"
  "$PSQL" -X -v ON_ERROR_STOP=1 -P pager=off "$BEMIDB_URL" -c "$1"
}
say "analytical queries through psql $BEMIDB_URL"
query "SELECT date_trunc('month', created_at)::date AS month, count(*) AS orders, sum(total) AS revenue
FROM orders WHERE status <> 'refunded' GROUP BY 1 ORDER BY 1 LIMIT 6"
query "SELECT u.country, count(DISTINCT u.id) AS buyers, round(avg(o.total), 2) AS avg_order
FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.country ORDER BY buyers DESC"
query "SELECT payload->>'device' AS device, count(*) AS events, round(avg((payload->>'ms')::int)) AS avg_ms
FROM events WHERE name = 'checkout' GROUP BY 1 ORDER BY 2 DESC"
query "SELECT tag, count(*) AS events FROM (SELECT unnest(tags) AS tag FROM events) t GROUP BY tag ORDER BY 2 DESC, 1"

say "checking the synced copy against the source"
for table in users orders events; do
  src="$("$PSQL" -X -A -t "$SOURCE_URL" -c "SELECT count(*), sum(id) FROM $table")"
  dst="$("$PSQL" -X -A -t "$BEMIDB_URL" -c "SELECT count(*), sum(id) FROM $table")"
  [[ "$src" == "$dst" ]] || die "$table: source has count|sum(id) $src, bemidb has $dst"
  echo "$table: count|sum(id) $dst, same as the source"
done
revenue_src="$("$PSQL" -X -A -t "$SOURCE_URL" -c "SELECT sum(total) FROM orders")"
revenue_dst="$("$PSQL" -X -A -t "$BEMIDB_URL" -c "SELECT sum(total) FROM orders")"
[[ "$revenue_src" == "$revenue_dst" ]] || die "orders: sum(total) is $revenue_src in the source, $revenue_dst in bemidb"
echo "orders: sum(total) $revenue_dst, exactly the source's (numeric kept exact)"

say "quickstart passed: synced, served and queried; cleaning up"

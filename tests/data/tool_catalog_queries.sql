-- Catalog queries BI tools and IDEs send on connect and while browsing, in the shapes their public sources
-- use (Grafana's PostgreSQL data source, DBeaver's PostgreSQL plugin, dbt-postgres, Metabase via PgJDBC).
-- Each block starts with "-- name: <tool> <what>"; "compare" blocks must give the same rows as the source
-- Postgres, the others must run without error and return rows where marked "rows".

-- name: grafana table list (search_path aware, compare)
SELECT CASE WHEN quote_ident(table_schema) IN (
         SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
         FROM generate_series(array_lower(string_to_array(current_setting('search_path'), ','), 1),
                              array_upper(string_to_array(current_setting('search_path'), ','), 1)) AS i,
              string_to_array(current_setting('search_path'), ',') s)
       THEN quote_ident(table_name)
       ELSE quote_ident(table_schema) || '.' || quote_ident(table_name) END AS "table"
FROM information_schema.tables
WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog', '_timescaledb_cache')
ORDER BY 1;

-- name: grafana column list (compare)
SELECT quote_ident(column_name) AS "column", data_type AS "type"
FROM information_schema.columns
WHERE quote_ident(table_name) = 'everything'
ORDER BY ordinal_position;

-- name: grafana time column candidates (compare)
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = 'everything'
  AND data_type IN ('timestamp without time zone', 'timestamp with time zone', 'date')
ORDER BY column_name;

-- name: dbt catalog (compare)
SELECT sch.nspname AS table_schema, tbl.relname AS table_name,
       CASE tbl.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'BASE TABLE' END AS table_type,
       col.attname AS column_name, col.attnum AS column_index,
       pg_catalog.format_type(col.atttypid, col.atttypmod) AS column_type
FROM pg_catalog.pg_namespace sch
JOIN pg_catalog.pg_class tbl ON tbl.relnamespace = sch.oid
JOIN pg_catalog.pg_attribute col ON col.attrelid = tbl.oid
WHERE sch.nspname != 'information_schema' AND sch.nspname NOT LIKE 'pg_%'
  AND NOT pg_is_other_temp_schema(sch.oid) AND tbl.relpersistence = 'p'
  AND tbl.relkind IN ('r', 'v', 'f', 'p', 'm') AND col.attnum > 0 AND NOT col.attisdropped
ORDER BY sch.nspname, tbl.relname, col.attnum;

-- name: dbt relations in schema (compare)
SELECT 'bemidb' AS database, tablename AS name, schemaname AS schema, 'table' AS type FROM pg_tables
WHERE schemaname ILIKE 'public'
UNION ALL
SELECT 'bemidb' AS database, viewname AS name, schemaname AS schema, 'view' AS type FROM pg_views
WHERE schemaname ILIKE 'public'
ORDER BY name;

-- name: dbeaver session info (rows)
SELECT current_schema(), session_user, current_database(), version();

-- name: dbeaver settings (rows)
SELECT * FROM pg_catalog.pg_settings WHERE name = 'standard_conforming_strings';

-- name: dbeaver schemas (rows)
SELECT n.oid, n.*, d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0
     AND d.classoid = 'pg_namespace'::regclass
ORDER BY nspname;

-- name: dbeaver tables of public (rows)
SELECT c.oid, c.*, d.description, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS partition_expr,
       pg_catalog.pg_get_partkeydef(c.oid) AS partition_key
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.objsubid = 0
     AND d.classoid = 'pg_class'::regclass
WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'public')
  AND c.relkind NOT IN ('i', 'I', 'c');

-- name: dbeaver columns (compare)
SELECT a.attname, a.attnum, a.attnotnull, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name,
       pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS def_value, dsc.description
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid = c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid = ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid = dsc.objoid AND a.attnum = dsc.objsubid)
WHERE NOT a.attisdropped AND c.relname = 'everything' AND a.attnum > 0
ORDER BY a.attnum;

-- name: dbeaver data types (rows)
SELECT t.oid, t.*, c.relkind, format_type(nullif(t.typbasetype, 0), t.typtypmod) AS base_type_name,
       d.description
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid = t.typelem
LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid = d.objoid
WHERE t.typname IS NOT NULL AND (c.relkind IS NULL OR c.relkind = 'c')
  AND (et.typcategory IS NULL OR et.typcategory <> 'C');

-- name: dbeaver roles and extensions (rows)
SELECT a.oid, a.rolname, a.rolsuper FROM pg_catalog.pg_roles a WHERE a.rolname = current_user;

-- name: metabase schemas with privileges (compare)
SELECT nspname FROM pg_namespace
WHERE nspname NOT IN ('information_schema', 'pg_catalog', 'pg_toast') AND has_schema_privilege(nspname, 'USAGE')
ORDER BY 1;

-- name: metabase table privileges (compare)
SELECT table_name, has_table_privilege(quote_ident(table_schema) || '.' || quote_ident(table_name), 'SELECT')
FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1;

-- name: superset table comment (compare)
SELECT obj_description('public.second_one'::regclass, 'pg_class');

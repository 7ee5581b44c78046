"""A source table with a column of every type the sync maps (and arrays of them), with rows of edge values:
BC, infinity, NaN, empty arrays, NULLs, unicode. Used by the type tests of every sync mode."""

SCHEMA_SQL = r"""
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE mood AS ENUM ('sad', 'happy', 'ünïcode ☃');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN money2 AS numeric(12,2);
CREATE TABLE alltypes (
  id int PRIMARY KEY,
  b bool, i2 int2, i4 int4, i8 int8 NOT NULL DEFAULT 0, f4 float4, f8 float8,
  n102 numeric(10,2), n38 numeric(38,10), nu numeric, dm money2, pi posint,
  d date, t time, ttz timetz, ts timestamp, tstz timestamptz, iv interval,
  tx text, vc varchar(20), ch char(5), u uuid, j json, jb jsonb, by bytea,
  ip inet, cd cidr, mac macaddr, pt point, bx box, x xml, tsv tsvector, e mood, m money, bits bit(4),
  rng int4range, nm name, lt ltree, hs hstore, o oid,
  a_i4 int4[], a_tx text[], a_n numeric(10,2)[], a_d date[], a_tstz timestamptz[], a_b bool[], a_by bytea[],
  a_f8 float8[], a_jb jsonb[], a_2d int4[][], a_e mood[], a_u uuid[], a_iv interval[], a_t time[]
);
COMMENT ON TABLE alltypes IS 'every type';
COMMENT ON COLUMN alltypes.tx IS 'free text';
SET TimeZone = 'America/New_York';
INSERT INTO alltypes VALUES
 (1, true, -32768, 2147483647, 9223372036854775807, 1.5, 0.1, 12345678.12, 1234567890123456789012345678.0123456789,
  123456789012345678901.123456789, 10.5, 7,
  '2024-03-10', '23:59:59.999999', '10:00:00+02', '2024-03-10 02:30:00', '2024-03-10 01:59:59.123456-05',
  '1 year 2 mons 3 days 04:05:06.789',
  E'héllo, "wörld"\nnew line\ttab \\ backslash ☃', 'varchar', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"nested": {"a": [1, 2, {"b": null}]}, "s": "x,y"}', '{"k": [true, false], "z": 1.50}', '\x00ff10',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '(1.5,-2)', '((0,0),(1,1))', '<a>x &amp; y</a>',
  'the quick brown fox', 'ünïcode ☃', 12.34, B'1010', '[1,10)', 'pg_name', 'top.middle.leaf', 'a=>1, "b c"=>NULL', 42,
  '{1,NULL,3}', ARRAY['a', NULL, 'with "quotes", commas', '', 'NULL', E'multi\nline'], '{1.10,NULL,-2.05}',
  '{2024-01-01,NULL,infinity}', '{"2024-06-01 12:00:00+00",NULL}', '{t,f,NULL}', ARRAY['\x01'::bytea, NULL, '\x'::bytea],
  '{1.5,NaN,Infinity,-Infinity,NULL}', ARRAY['{"a": 1}'::jsonb, NULL], '{{1,2},{3,4}}', '{happy,NULL}',
  '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{"1 day",NULL}', '{"24:00:00","00:00:01"}'),
 (2, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, false, 0, 0, -9223372036854775808, 'NaN', '-Infinity', -0.01, 0, -0.000000001, 0, 1,
  '0044-03-15 BC', '24:00:00', '00:00:00-08', '0044-03-15 12:00:00 BC', '12022-01-01 00:00:00+00', '-1 days +02:00:00',
  '', '', '', '00000000-0000-0000-0000-000000000000', '""', '[]', '\x', '::1', '::/0', '00:00:00:00:00:00',
  '(0,0)', '((0,0),(0,0))', '', '', 'sad', 0, B'0000', 'empty', '', '', '', 0,
  '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
 (4, true, 1, 1, 1, 'Infinity', 'NaN', 99999999.99, -0.0000000001, 5, -1, 2,
  'infinity', '00:00:00', '23:59:59+14', 'infinity', '-infinity', '178000000 years',
  'NULL', ' ', 'x    ', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '"str"', '\x5c2c22', '255.255.255.255', '1.2.3.0/24',
  'ff:ff:ff:ff:ff:ff', '(1e+300,-1e-300)', '((1,2),(3,4))', '<x/>', 'a:1 b:2', 'happy', -99.99, B'1111', '(,)',
  'x', 'a', '', 4294967295,
  '{NULL}', '{NULL}', '{NULL}', '{-infinity}', '{infinity}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{{NULL}}',
  '{NULL}', '{NULL}', '{NULL}', '{NULL}'),
 (5, false, 2, 2, 2, '-Infinity', 1e308, -99999999.99, 9999999999999999999999999999.9999999999,
  -98765432109876543210.987654321, 0.01, 3,
  '-infinity', '12:34:56.5', '12:00:00-03:30', '-infinity', '1969-12-31 23:59:59.999999+00', '-3 mons -1 days',
  E'\u00e9\u4e2d\U0001F600', 'z', 'abcde', '12345678-1234-5678-1234-567812345678', '[1, "two", {"3": [4]}]',
  '{"a": {"b": {"c": {"d": "deep"}}}}', '\xdeadbeef', '10.1.2.3', '192.168.100.128/25', '01:23:45:67:89:ab',
  '(-1,-1)', '((-1,-1),(1,1))', '<r a="1"/>', 'fat:2 rat:3', 'sad', 1000000.01, B'0101', '[-5,5]', 'name5',
  'a.b', '"k"=>"v"', 1, '{-1}', '{"}"}', '{0.00}', '{0001-01-01}', '{"2000-01-01 00:00:00+00"}', '{true}',
  '{"\\x00"}', '{0}', '{"[]"}', '{{5}}', '{sad}', '{}', '{"-1 mons"}', '{"12:00:00"}');
"""

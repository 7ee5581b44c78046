// postgres.js, pg-query-stream (on node-postgres) and knex (pg driver) against one server: connect, a simple
// and a parameterized query over a table of many types, an error, streaming, and knex's schema introspection.
// Prints one JSON document; the test compares the output for the test Postgres and for bemidb.
// Run: NODE_PATH=<dir with node_modules> node drivers.js <connection string>
const postgres = require('postgres');
const { Client } = require('pg');
const QueryStream = require('pg-query-stream');
const knexFactory = require('knex');

const ALL = 'SELECT id, amount, label, at, day, doc, uid, ok, nums, words FROM kinds ORDER BY id';
const UID = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';

// A value as the client hands it over: its JS kind and its JSON form (Dates as ISO, Buffers as hex).
function seen(value) {
  if (value === null || value === undefined) return [String(value), null];
  if (value instanceof Date) return ['Date', value.toISOString()];
  if (Buffer.isBuffer(value)) return ['Buffer', value.toString('hex')];
  if (Array.isArray(value)) return ['Array', value.map(seen)];
  if (typeof value === 'bigint') return ['bigint', value.toString()];
  if (typeof value === 'object') return ['object', value];
  return [typeof value, value];
}

const rowsSeen = (rows) => rows.map((row) => Object.entries(row).map(([k, v]) => [k, seen(v)]));

async function guarded(out, label, run) {
  try {
    out[label] = await run();
  } catch (e) {
    out[label] = { error: e.code || String(e.message) };
  }
}

async function postgresJs(url) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const out = {};
  await guarded(out, 'connect', async () => (await sql`SELECT 1 AS one`).map((r) => r.one));
  await guarded(out, 'simple', async () => {
    const rows = await sql.unsafe(ALL);
    return { columns: rows.columns.map((c) => [c.name, c.type]), rows: rowsSeen(rows) };
  });
  // as text: the microseconds and digits a JS Date or number would round away
  await guarded(out, 'text forms', async () => rowsSeen(await sql.unsafe(
    'SELECT at::text AS at, amount::text AS amount, doc::text AS doc, nums::text AS nums, words::text AS words FROM kinds ORDER BY id')));
  await guarded(out, 'parameters', async () => {
    const rows = await sql`SELECT id, label FROM kinds
      WHERE uid = ${UID} AND day >= ${'2024-01-01'} AND amount > ${10} AND ok = ${true} ORDER BY id`;
    return { columns: rows.columns.map((c) => [c.name, c.type]), rows: rowsSeen(rows) };
  });
  await guarded(out, 'parameter arrays', async () => rowsSeen(await sql`SELECT id, nums FROM kinds
    WHERE id = ANY(${sql.array([1, 2], 23)}) AND label = ANY(${sql.array(['one', 'two'])}) ORDER BY id`));
  await guarded(out, 'parameter jsonb', async () => rowsSeen(
    await sql`SELECT id, doc->'a' AS a FROM kinds WHERE doc @> ${sql.json({ b: null })}::jsonb ORDER BY id`));
  // sql.json declares the parameter jsonb at Parse, so doc @> $1 is jsonb containment
  await guarded(out, 'parameter jsonb untyped', async () => rowsSeen(
    await sql`SELECT id FROM kinds WHERE doc @> ${sql.json({ b: null })} ORDER BY id`));
  // sql.array of numbers without a type is sent as text[]: Postgres finds no operator integer = text
  await guarded(out, 'error array type', async () => sql`SELECT id FROM kinds WHERE id = ANY(${sql.array([1, 2])})`);
  await guarded(out, 'error', async () => sql`SELECT no_such_column FROM kinds`);
  await guarded(out, 'error parameter', async () => sql`SELECT id FROM kinds WHERE id = ${'not a number'}`);
  await guarded(out, 'cursor', async () => {
    const pages = [];
    await sql`SELECT g::int AS g FROM generate_series(1, 25) AS t(g) ORDER BY 1`.cursor(10, (rows) => {
      pages.push(rows.map((r) => r.g));
    });
    return pages;
  });
  await guarded(out, 'cursor typed', async () => {
    const pages = [];
    await sql.unsafe(ALL).cursor(2, (rows) => { pages.push(rowsSeen(rows)); });
    return pages;
  });
  await sql.end();
  return out;
}

async function queryStream(url) {
  const client = new Client({ connectionString: url });
  await client.connect();
  const out = {};
  const streamed = (text, values, options) => new Promise((resolve, reject) => {
    const rows = [];
    const stream = client.query(new QueryStream(text, values, options));
    stream.on('data', (row) => rows.push(row));
    stream.on('error', reject);
    stream.on('end', () => resolve(rows));
  });
  await guarded(out, 'simple', async () => rowsSeen(await streamed(ALL, [], { batchSize: 2 })));
  await guarded(out, 'parameters', async () => rowsSeen(await streamed(
    'SELECT id, label, doc FROM kinds WHERE uid = $1 OR nums @> $2 OR at < $3 ORDER BY id',
    [UID, [2], new Date('2000-01-01T00:00:00Z')], { batchSize: 1 })));
  await guarded(out, 'error', async () => streamed('SELECT 1/0 AS x FROM kinds', [], {}));
  await guarded(out, 'after error', async () => rowsSeen(await streamed('SELECT count(*) AS n FROM kinds', [], {})));
  await guarded(out, 'many rows', async () => {
    const rows = await streamed('SELECT g::int AS g FROM generate_series(1, 1000) AS t(g) ORDER BY 1', [],
      { batchSize: 64, highWaterMark: 16 });
    return [rows.length, rows[0].g, rows[rows.length - 1].g];
  });
  await client.end();
  return out;
}

async function knexClient(url) {
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  const out = {};
  await guarded(out, 'connect', async () => (await knex.raw('SELECT 1 AS one')).rows);
  await guarded(out, 'simple', async () => rowsSeen(await knex('kinds').select('*').orderBy('id')));
  await guarded(out, 'parameters', async () => rowsSeen(await knex('kinds')
    .select('id', 'label', 'amount')
    .where('uid', UID).orWhere('day', '<', '2000-01-01').orWhereIn('id', [3])
    .orderBy('id')));
  await guarded(out, 'raw bindings', async () => {
    const r = await knex.raw('SELECT id, nums, words FROM kinds WHERE label = ? AND ok = ?', ['one', true]);
    return { fields: r.fields.map((f) => [f.name, f.dataTypeID]), rows: rowsSeen(r.rows) };
  });
  await guarded(out, 'error', async () => knex('no_such_table').select('*'));
  await guarded(out, 'stream', async () => {
    const rows = [];
    const stream = knex('kinds').select('id', 'label', 'at').orderBy('id').stream();
    for await (const row of stream) rows.push(row);
    return rowsSeen(rows);
  });
  await guarded(out, 'hasTable', async () => [await knex.schema.hasTable('kinds'),
    await knex.schema.hasTable('no_such_table')]);
  await guarded(out, 'hasColumn', async () => [await knex.schema.hasColumn('kinds', 'doc'),
    await knex.schema.hasColumn('kinds', 'nope')]);
  await guarded(out, 'columnInfo', async () => knex('kinds').columnInfo());
  await guarded(out, 'columnInfo one', async () => knex('kinds').columnInfo('label'));
  await knex.destroy();
  return out;
}

async function main() {
  const url = process.argv[2];
  const out = {
    'postgres.js': await postgresJs(url),
    'pg-query-stream': await queryStream(url),
    knex: await knexClient(url),
  };
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });

// node-postgres (pg) and pg-cursor against one server: untyped arrays and uuids as parameters, a cursor read in
// pages. Prints one JSON document; the test compares the output for the test Postgres and for bemidb.
// Run: NODE_PATH=<dir with node_modules> node clients.js <connection string>
const { Client } = require('pg');
const Cursor = require('pg-cursor');

async function main() {
  const client = new Client({ connectionString: process.argv[2] });
  await client.connect();
  const out = {};
  const q = async (label, text, values) => {
    try {
      const r = await client.query({ text, values, rowMode: 'array' });
      out[label] = { fields: r.fields.map((f) => [f.name, f.dataTypeID]), rows: r.rows };
    } catch (e) {
      out[label] = { error: e.code };
    }
  };
  await q('any text[]', 'SELECT id FROM people WHERE name = ANY($1) ORDER BY id', [['ann', 'cy']]);
  await q('any bigint[]', 'SELECT name FROM people WHERE id = ANY($1) ORDER BY id', [[1, 2]]);
  await q('uuid', 'SELECT id FROM people WHERE uid = $1', ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']);
  await q('date', 'SELECT id FROM people WHERE born < $1 ORDER BY id', ['1990-01-01']);
  await q('like', 'SELECT id FROM people WHERE name LIKE $1 ORDER BY id', ['%n%']);
  await client.query('BEGIN');
  const cursor = client.query(new Cursor('SELECT g::int AS g FROM generate_series(1, 25) AS t(g) ORDER BY 1'));
  const pages = [];
  for (;;) {
    const rows = await cursor.read(10);
    if (!rows.length) break;
    pages.push(rows.map((r) => r.g));
  }
  await cursor.close();
  await client.query('COMMIT');
  out.cursor = pages;
  await client.end();
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });

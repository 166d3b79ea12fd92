// @neondatabase/serverless against local Neon, with only the driver's endpoints pointed at it.
// Usage: node serverless.mjs <API port> <connection URI>; prints one JSON line with what it saw.
import { neon, neonConfig, Pool } from '@neondatabase/serverless';
import ws from 'ws';

const [port, uri] = process.argv.slice(2);

// The settings that point the driver at local Neon (on Node 22+ the global WebSocket makes the first unnecessary).
if (typeof WebSocket === 'undefined') neonConfig.webSocketConstructor = ws;
neonConfig.fetchEndpoint = `http://127.0.0.1:${port}/sql`;
neonConfig.wsProxy = () => `127.0.0.1:${port}/v2`;
neonConfig.useSecureWebSocket = false;

const out = {};
const sql = neon(uri);
out.http = await sql`SELECT ${'hello'}::text AS greeting, ${41}::int + 1 AS answer, now() IS NOT NULL AS ok`;
const full = await sql.query('SELECT $1::int AS n, NULL::text AS nothing', [7], { fullResults: true, arrayMode: true });
out.httpFull = { fields: full.fields, rows: full.rows, command: full.command, rowCount: full.rowCount, rowAsArray: full.rowAsArray };
await sql`CREATE TABLE IF NOT EXISTS js_items (id int PRIMARY KEY, name text)`;
await sql`DELETE FROM js_items`;
out.transaction = await sql.transaction(
  [sql`INSERT INTO js_items VALUES (1, 'one'), (2, 'two')`, sql`SELECT count(*)::int AS n FROM js_items`],
  { isolationLevel: 'Serializable' },
);
try {
  await sql.transaction([sql`INSERT INTO js_items VALUES (3, 'three')`, sql`SELECT 1/0`]);
} catch (err) {
  out.rolledBack = { code: err.code, message: err.message, name: err.name };
}
try {
  await sql.transaction([sql`INSERT INTO js_items VALUES (4, 'four')`], { readOnly: true });
} catch (err) {
  out.readOnly = { code: err.code };
}
out.afterFailures = await sql`SELECT count(*)::int AS n FROM js_items`;

const pool = new Pool({ connectionString: uri });
const client = await pool.connect();
try {
  await client.query('BEGIN');
  await client.query('INSERT INTO js_items VALUES ($1, $2)', [5, 'five']);
  out.insideTransaction = (await client.query('SELECT count(*)::int AS n FROM js_items')).rows;
  await client.query('ROLLBACK');
} finally {
  client.release();
}
out.pool = (await pool.query('SELECT count(*)::int AS n, current_user AS who FROM js_items')).rows;
await pool.end();
console.log(JSON.stringify(out));

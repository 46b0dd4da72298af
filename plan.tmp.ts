import postgres from 'postgres';
import { migrate } from './generator/db/migrate.ts';
import { startDatabase, withDatabase } from './generator/db/server.ts';
import { collectSample } from './generator/cli/samples/collect.ts';
const server = await startDatabase({ dataDir: '/tmp/rg-plan-collect-' + process.pid, persistent: false, preferEmbedded: true });
try {
  const m = postgres(server.url, { max: 1, onnotice: () => {} });
  await m.unsafe('CREATE DATABASE plan');
  await m.end();
  const url = withDatabase(server.url, 'plan');
  await migrate(url, { dir: 'migrations' });
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql.unsafe(collectSample.sql);
  await sql.unsafe(`INSERT INTO collect.clients (id, owned_by, name) SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g - 1 END, 'c' || g FROM generate_series(10, 5000) g`);
  await sql.unsafe(`INSERT INTO collect.debtors (id, file_number, client_id, operator_id, sales_id, clerk_id, access_id)
    SELECT g, 'F'||g, 10 + g % 4990, 'op'||(g % 500), 'op'||(g % 700), CASE WHEN g % 3 = 0 THEN NULL ELSE 'op'||(g % 300) END, CASE WHEN g % 3 = 0 THEN NULL ELSE 'op'||(g % 900) END
    FROM generate_series(1000, 300000) g`);
  await sql.unsafe('VACUUM ANALYZE collect.debtors');
  for (const who of (process.env.WHO ?? 'lou,nina,cara,admin,cleo').split(',')) {
    const rows = await sql.begin(async (tx) => {
      if (!process.env.SU) await tx.unsafe('SET LOCAL ROLE app_user');
      if (!process.env.SU) await tx.unsafe('SELECT collect.set_session($1)', [who]);
      const out = [];
      for (const q of (process.env.Q ?? 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT id, name FROM collect.debtors').split(';')) out.push(...(await tx.unsafe(q)), { 'QUERY PLAN': '' });
      return out;
    });
    console.log(`--- ${who}\n` + rows.map((r) => r['QUERY PLAN']).join('\n'));
  }
  await sql.end();
} finally { await server.stop(); }

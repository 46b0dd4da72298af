// A by-hand measurement, not a test: loads the Collect! sample plus 300k debtors over 5,000
// clients into a throwaway embedded PostgreSQL, then prints each persona's plan and time for
// `SELECT id, name FROM collect.debtors` as app_user. Run: npx tsx bench/collect-plans.ts
// (WHO=lou,nina to pick personas). The numbers in README "Reference model: collect" came from it.
import postgres from 'postgres';
import { collectSample } from '../generator/cli/samples/collect.ts';
import { migrate } from '../generator/db/migrate.ts';
import { startDatabase, withDatabase } from '../generator/db/server.ts';

const server = await startDatabase({ dataDir: `/tmp/rowguard-bench-collect-${process.pid}`, persistent: false, preferEmbedded: true });
try {
  const maintenance = postgres(server.url, { max: 1, onnotice: () => {} });
  await maintenance.unsafe('CREATE DATABASE bench');
  await maintenance.end();
  const url = withDatabase(server.url, 'bench');
  await migrate(url, { dir: 'migrations' });
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql.unsafe(collectSample.sql);
  await sql.unsafe(`INSERT INTO collect.clients (id, owned_by, name)
    SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g - 1 END, 'client ' || g FROM generate_series(10, 5000) g`);
  await sql.unsafe(`INSERT INTO collect.debtors (id, file_number, client_id, operator_id, sales_id, clerk_id, access_id)
    SELECT g, 'F' || g, 10 + g % 4990, 'op' || (g % 500), 'op' || (g % 700),
           CASE WHEN g % 3 = 0 THEN NULL ELSE 'op' || (g % 300) END,
           CASE WHEN g % 3 = 0 THEN NULL ELSE 'op' || (g % 900) END
    FROM generate_series(1000, 300000) g`);
  await sql.unsafe('VACUUM ANALYZE collect.debtors');
  for (const who of (process.env.WHO ?? 'lou,nina,cara,admin,cleo').split(',')) {
    const plan = await sql.begin(async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx.unsafe('SELECT collect.set_session($1)', [who]);
      return tx.unsafe('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT id, name FROM collect.debtors');
    });
    process.stdout.write(`--- ${who}\n${plan.map((r) => r['QUERY PLAN']).join('\n')}\n`);
  }
  await sql.end();
} finally {
  await server.stop();
}

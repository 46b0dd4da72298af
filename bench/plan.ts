// Prints one query's plan as a persona against the benchmark database kept by `npm run bench -- --reuse`:
//   npx tsx bench/plan.ts <model> <user id> "<query>"      (user "-" runs it as the owner, without RLS)
import postgres from 'postgres';
import { startDatabase, withDatabase } from '../generator/db/server.ts';

const [model, user, query] = process.argv.slice(2);
if (!model || !user || !query) {
  console.error('usage: npx tsx bench/plan.ts <model> <user id | -> "<query>"');
  process.exit(2);
}
const server = await startDatabase({ dataDir: '/tmp/rowguard-bench/pg', persistent: true, preferEmbedded: true, settings: { shared_buffers: '2GB', work_mem: '64MB', jit: 'off', random_page_cost: '1.1', effective_cache_size: '8GB' } });
try {
  const sql = postgres(withDatabase(server.url, `bench_${model}`), { max: 1, onnotice: () => {} });
  const rows = await sql.begin(async (tx) => {
    if (user !== '-') {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx.unsafe(`SELECT ${model}.set_session($1)`, [user]);
    }
    return tx.unsafe(`EXPLAIN (ANALYZE, BUFFERS, COSTS ON, TIMING ON) ${query}`);
  });
  console.log(rows.map((r) => r['QUERY PLAN']).join('\n'));
  await sql.end();
} finally {
  await server.stop();
}

// Prints one query's plan as a persona against the benchmark database kept by `npm run bench -- --reuse`:
//   npx tsx bench/plan.ts <model> <user id> "<query>"      (user "-" runs it as the owner, without RLS)
import { actAs, withKeptDatabase } from './server.ts';

const [model, user, query] = process.argv.slice(2);
if (!model || !user || !query) {
  console.error('usage: npx tsx bench/plan.ts <model> <user id | -> "<query>"');
  process.exit(2);
}
await withKeptDatabase(model, async (sql) => {
  const rows = await sql.begin(async (tx) => {
    if (user !== '-') await actAs(tx, model, user);
    return tx.unsafe(`EXPLAIN (ANALYZE, BUFFERS, COSTS ON, TIMING ON) ${query}`);
  });
  console.log(rows.map((r) => r['QUERY PLAN']).join('\n'));
});

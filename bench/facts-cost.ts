// How much of one statement is spent reading the signed identity: runs a query as a persona against
// the database kept by `npm run bench -- --reuse` with function tracking on, and prints each
// function's calls and time for that one statement (second run, so plpgsql caches are warm).
//   npx tsx bench/facts-cost.ts <model> <user id> "<query>"
import { actAs, withKeptDatabase } from './server.ts';

const [model, user, query] = process.argv.slice(2);
if (!model || !user || !query) {
  console.error('usage: npx tsx bench/facts-cost.ts <model> <user id> "<query>"');
  process.exit(2);
}
await withKeptDatabase(model, async (sql) => {
  await sql.unsafe(`SET track_functions = 'all'`);
  for (const round of [1, 2]) {
    const rows = await sql.begin(async (tx) => {
      await actAs(tx, model, user);
      const before = await tx.unsafe(`SELECT funcname, calls, total_time FROM pg_stat_xact_user_functions`);
      await tx.unsafe(query);
      const after = await tx.unsafe(`SELECT funcname, calls, total_time FROM pg_stat_xact_user_functions ORDER BY funcname`);
      const was = new Map(before.map((r) => [r.funcname as string, r]));
      return after
        .map((r) => ({ fn: r.funcname as string, calls: Number(r.calls) - Number(was.get(r.funcname)?.calls ?? 0), ms: Number(r.total_time) - Number(was.get(r.funcname)?.total_time ?? 0) }))
        .filter((r) => r.calls > 0);
    });
    if (round === 2) for (const r of rows) console.log(`${r.fn.padEnd(40)} ${String(r.calls).padStart(4)} calls ${r.ms.toFixed(3).padStart(8)} ms (total, nested included)`);
  }
});

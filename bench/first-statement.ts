// What a statement pays for being the first one after set_session. Runs a query as a persona against
// the database kept by `npm run bench -- --reuse`, prepared, at three places in a transaction, the
// three interleaved run by run, and times it as the benchmark times S (client wall time):
//   first    BEGIN; SET LOCAL ROLE app_user; set_session(user); <query>
//   second   … set_session(user); <query>; <query>               (the same statement again)
//   evicted  … set_session(user); <query>; <unrelated work>; <query>
// beside the round trip of a prepared `SELECT $1::text` after the same set_session ("floor") and
// without it ("bare": the same role, no identity). "second" is
// what the statement costs with warm caches; "evicted" shows whether the difference is the CPU's
// caches (work in between brings it back) or state the transaction keeps (it does not).
//   npx tsx bench/first-statement.ts <model> <user id> "<query>" [runs, default 1000]
import { PREPARED, stats } from './harness.ts';
import { setSession } from '../runtime/postgres.ts';
import { withKeptDatabase } from './server.ts';

const [model, user, query, runsArg] = process.argv.slice(2);
if (!model || !user || !query) {
  console.error('usage: npx tsx bench/first-statement.ts <model> <user id> "<query>" [runs]');
  process.exit(2);
}
const runs = Number(runsArg ?? 1000);
/** Unrelated work between the two executions: a sort of a few thousand strings. */
const UNRELATED = 'SELECT count(*) FROM (SELECT md5(x::text) FROM generate_series(1, 3000) AS x ORDER BY 1) AS s';
const places = ['bare', 'floor', 'first', 'second', 'evicted'] as const;

await withKeptDatabase(model, async (sql) => {
  const conn = await sql.reserve();
  try {
    const times = Object.fromEntries(places.map((p) => [p, [] as number[]])) as Record<(typeof places)[number], number[]>;
    for (let i = 0; i < runs + 50; i++) {
      for (const place of places) {
        await conn.unsafe('BEGIN');
        try {
          await conn.unsafe('SET LOCAL ROLE app_user');
          // set_session as the runtime sends it.
          if (place !== 'bare') await setSession(conn, { schema: model, id: user }, undefined, {});
          if (place === 'second' || place === 'evicted') await conn.unsafe(query, [], PREPARED);
          if (place === 'evicted') await conn.unsafe(UNRELATED, [], PREPARED);
          const t0 = process.hrtime.bigint();
          if (place === 'floor' || place === 'bare') await conn.unsafe('SELECT $1::text', [user] as never[], PREPARED);
          else await conn.unsafe(query, [], PREPARED);
          // The first 50 rounds warm the plans and caches up; they are not counted.
          if (i >= 50) times[place].push(Number(process.hrtime.bigint() - t0) / 1e3);
        } finally {
          await conn.unsafe('ROLLBACK');
        }
      }
    }
    for (const place of places) console.log(`${place.padEnd(8)} median ${stats(times[place]).medianMs.toFixed(1).padStart(7)} µs over ${runs} runs`);
  } finally {
    conn.release();
  }
});

// What a whole transaction costs through the runtime. Runs a read as a persona against the
// database kept by `npm run bench -- --reuse`, one transaction per run (BEGIN … COMMIT), the ways
// below taken in turn run by run, and prints each one's client wall time per transaction:
//   postgres.js  withPostgresSession, the user having acted on the client before: set_session
//                and the statement in one round trip
//   waiting      the same, but the statement sent once set_session has answered (what
//                withPostgresSession does in a user's first transaction on a client)
//   pg           withPgSession: BEGIN and set_session in one message, then the statement
//   pg prepare   the same with { prepare: true }: a statement with a parameter prepared once per kind
//   Kysely       withKyselySession (over pg): BEGIN, set_session, the statement
//   sessionPool  withKyselySession over sessionPool(pg): BEGIN with set_session, then the statement,
//                prepared once per kind when it has a parameter
//   owner        BEGIN, the statement as the owner (no RLS, no identity), COMMIT: a transaction's floor
// Each library sends the statement its default way: postgres.js prepared, pg and Kysely unnamed.
// A read with a parameter ($1, given after the ways) is sent with it, as Kysely compiles a value.
// Logs in as the owner and acts as app_user through { role: 'app_user' }, as a NOINHERIT login would.
// Which ways run can be chosen (a comma-separated list; all by default): interleaved with ways that
// use other connections, each transaction finds the server's caches as another backend left them.
//   npx tsx bench/transactions.ts <model> <user id> "<read>" [runs, default 2000] [ways] [$1]
import { CompiledQuery, Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { stats } from './harness.ts';
import { withKeptDatabase } from './server.ts';
import { sessionPool, withKyselySession, withPgSession, withPostgresSession } from '../runtime/index.ts';
import { setSession } from '../runtime/postgres.ts';

const [model, user, query, runsArg, waysArg, param] = process.argv.slice(2);
if (!model || !user || !query) {
  console.error('usage: npx tsx bench/transactions.ts <model> <user id> "<read>" [runs] [ways: postgres.js,waiting,pg,pg prepare,Kysely,sessionPool,owner] [$1]');
  process.exit(2);
}
const runs = Number(runsArg ?? 2000);
const identity = { schema: model, id: user };
const options = { role: 'app_user' };
const params = param === undefined ? [] : [param];

/** A new order of `items`, from a fixed sequence of pseudo-random numbers (the same every run). */
let seed = 1;
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let k = out.length - 1; k > 0; k--) {
    seed = (seed * 48271) % 2147483647;
    const j = seed % (k + 1);
    [out[k], out[j]] = [out[j]!, out[k]!];
  }
  return out;
}

await withKeptDatabase(model, async (_sql, url) => {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  // pg's pools end their clients without waiting for the sockets to close, and the server stops
  // right after: an idle client told so then would otherwise crash the process (its error reaches
  // the pool, which has no listener). A query's own errors reach the query.
  const pools = [0, 1, 2].map(() => new pg.Pool({ connectionString: url, max: 1 }));
  for (const p of pools) p.on('error', () => {});
  const [pool, kyselyPool, wrapped] = pools as [pg.Pool, pg.Pool, pg.Pool];
  const kysely = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: kyselyPool }) });
  const kyselyOverSessionPool = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(wrapped) }) });
  const compiled = CompiledQuery.raw(query, params);
  const prepared = { prepare: true };
  const pgRead = async (client: pg.PoolClient) => (await client.query(query, params)).rows;
  const kyselyRead = async (trx: Kysely<Record<string, never>>) => (await trx.executeQuery(compiled)).rows;
  const ways = {
    'postgres.js': () => withPostgresSession(sql, identity, (tx) => tx.unsafe(query, params, prepared), options),
    waiting: () =>
      sql.begin(async (tx) => {
        // As withPostgresSession does it for a user it has not seen on the client: the kind's mark awaited, then put before the statement.
        const mark = await setSession(tx, identity, options.role, options);
        return tx.unsafe(mark + query, params, prepared);
      }),
    pg: () => withPgSession(pool, identity, pgRead, options),
    'pg prepare': () => withPgSession(pool, identity, pgRead, { ...options, prepare: true }),
    Kysely: () => withKyselySession(kysely, identity, kyselyRead, options),
    sessionPool: () => withKyselySession(kyselyOverSessionPool, identity, kyselyRead, options),
    owner: () => sql.begin((tx) => tx.unsafe(query, params, prepared)),
  };
  type Way = keyof typeof ways;
  const names = waysArg ? waysArg.split(',') : Object.keys(ways);
  const unknown = names.filter((w) => !(w in ways));
  if (unknown.length > 0) throw new Error(`unknown ways: ${unknown.join(', ')} (known: ${Object.keys(ways).join(', ')})`);
  const chosen = names.map((w) => [w, ways[w as Way]] as [Way, () => Promise<readonly unknown[]>]);
  try {
    const rows = new Map<Way, number>();
    const times = Object.fromEntries(chosen.map(([w]) => [w, [] as number[]])) as Record<Way, number[]>;
    for (let i = 0; i < runs + 100; i++) {
      // In a new order each round (a fixed pseudo-random sequence), so each way follows each other
      // one about as often: what ran just before moves a transaction's time by up to ~0.3 ms here
      // (more after a transaction on another connection), more than the ways differ.
      for (const [way, run] of shuffled(chosen)) {
        const t0 = process.hrtime.bigint();
        const result = await run();
        // The first 100 rounds warm plans, caches and the adapters' records of the user up; they are not counted.
        if (i >= 100) times[way].push(Number(process.hrtime.bigint() - t0) / 1e6);
        rows.set(way, result.length);
      }
    }
    const secured = [...rows].filter(([way]) => way !== 'owner').map(([, n]) => n);
    if (new Set(secured).size > 1) throw new Error(`the adapters returned different row counts: ${JSON.stringify(Object.fromEntries(rows))}`);
    for (const [way] of chosen) {
      const t = stats(times[way]);
      console.log(`${way.padEnd(12)} median ${t.medianMs.toFixed(3)} ms  p95 ${t.p95Ms.toFixed(3)} ms per transaction, ${rows.get(way)} rows, ${runs} runs`);
    }
  } finally {
    await sql.end();
    await pool.end();
    await kysely.destroy();
    await kyselyOverSessionPool.destroy();
  }
});

// The benchmark's PostgreSQL: one data directory and one set of server settings, shared by
// `npm run bench` and the by-hand tools that read the database it keeps with --reuse.
import postgres from 'postgres';
import { startDatabase, withDatabase } from '../generator/db/server.ts';

/** Where `--reuse` keeps the database; ROWGUARD_BENCH_DIR moves it (e.g. to run two benchmarks side by side). */
export const BENCH_DATA_DIR = process.env.ROWGUARD_BENCH_DIR ?? '/tmp/rowguard-bench/pg';
export const BENCH_SETTINGS = { shared_buffers: '2GB', work_mem: '64MB', effective_cache_size: '8GB', max_wal_size: '8GB', jit: 'off', random_page_cost: '1.1' };

/** Starts the server on the kept data directory, runs `fn` on `bench_<model>` (a client and its URL), and stops it. */
export async function withKeptDatabase<T>(model: string, fn: (sql: postgres.Sql, url: string) => Promise<T>): Promise<T> {
  const server = await startDatabase({ dataDir: BENCH_DATA_DIR, persistent: true, preferEmbedded: true, settings: BENCH_SETTINGS });
  try {
    const url = withDatabase(server.url, `bench_${model}`);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      return await fn(sql, url);
    } finally {
      await sql.end();
    }
  } finally {
    await server.stop();
  }
}

/** Acts as `user` of `model` for the rest of the transaction, as an application would. */
export async function actAs(tx: postgres.TransactionSql, model: string, user: string): Promise<void> {
  await tx.unsafe('SET LOCAL ROLE app_user');
  await tx.unsafe(`SELECT ${model}.set_session($1)`, [user]);
}

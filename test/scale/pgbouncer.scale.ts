// PgBouncer in transaction pooling mode: 32 clients, thousands of transactions with random
// identities (and none) through 4 server connections. Every transaction must see exactly what its
// identity may see: an identity never outlives its transaction on a shared server connection.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompiledQuery, Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samples } from '../../generator/cli/samples/index.ts';
import { freePort } from '../../generator/db/server.ts';
import { ident } from '../../generator/sql/print.ts';
import { sessionPool, withKyselySession, withPostgresSession } from '../../runtime/index.ts';
import { DATABASE, postgresAccount, startPrimary, waitFor, type Primary } from './support.ts';

const CLIENTS = 32;
const TRANSACTIONS_PER_CLIENT = 100;
const POOL = 4;
const LOGIN = 'rg_pooled_app';

let primary: Primary;
let bouncer: ChildProcess | undefined;
let bouncerPort = 0;
let dir = '';
const log: string[] = [];

beforeAll(async () => {
  primary = await startPrimary('pgbouncer');
  const admin = postgres(primary.url, { max: 1, onnotice: () => {} });
  try {
    // The application's login: a member of app_user, never a superuser.
    await admin.unsafe(`CREATE ROLE ${LOGIN} LOGIN PASSWORD 'pooled' IN ROLE app_user`);
    // The control: the naive design rowguard avoids, an unsigned session-level setting.
    await admin.unsafe(`
      CREATE SCHEMA naive;
      GRANT USAGE ON SCHEMA naive TO app_user;
      CREATE TABLE naive.notes (id int PRIMARY KEY, owner text NOT NULL);
      INSERT INTO naive.notes VALUES (1, 'a'), (2, 'b'), (3, 'c');
      ALTER TABLE naive.notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY notes_owner ON naive.notes FOR SELECT TO app_user USING (owner = current_setting('naive.user', true));
      GRANT SELECT ON naive.notes TO app_user;`);
  } finally {
    await admin.end();
  }
  const server = new URL(primary.url);
  bouncerPort = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'rowguard-pgbouncer-'));
  writeFileSync(join(dir, 'userlist.txt'), `"${LOGIN}" "pooled"\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${DATABASE} = host=127.0.0.1 port=${server.port} dbname=${DATABASE}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${bouncerPort}`,
      `unix_socket_dir =`,
      'auth_type = md5',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${POOL}`,
      `max_db_connections = ${POOL}`,
      'reserve_pool_size = 0',
      'max_client_conn = 200',
      // No reset between clients in transaction mode: exactly the case where a session setting would leak.
      'server_reset_query =',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
    ].join('\n') + '\n',
  );
  const account = postgresAccount();
  chmodSync(dir, 0o755);
  if (account) for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), account.uid, account.gid);
  bouncer = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], { ...(account ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
  bouncer.stderr?.on('data', (d) => log.push(String(d)));
  bouncer.stdout?.on('data', (d) => log.push(String(d)));
  const probe = postgres(bouncerUrl(), { max: 1, prepare: false, onnotice: () => {}, connect_timeout: 2 });
  try {
    await waitFor('pgbouncer to accept connections', async () => (await probe`SELECT 1 AS ok`)[0]!.ok === 1, 30_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${log.join('')}`);
  } finally {
    await probe.end();
  }
}, 300_000);

afterAll(async () => {
  if (bouncer && bouncer.exitCode === null) {
    bouncer.kill('SIGINT');
    await new Promise((r) => bouncer!.once('exit', r));
  }
  await primary?.server.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function bouncerUrl(): string {
  return `postgres://${LOGIN}:pooled@127.0.0.1:${bouncerPort}/${DATABASE}`;
}

interface Outcome {
  readonly transactions: number;
  readonly wrong: string[];
}

/** One client: its own connection to PgBouncer, `count` transactions of random kinds. */
async function client(n: number, count: number, random: () => number): Promise<Outcome> {
  const sql: Sql = postgres(bouncerUrl(), { max: 1, prepare: false, onnotice: () => {} });
  const wrong: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const sample = samples[Math.floor(random() * samples.length)]!;
      const personas = sample.personas;
      const pick = Math.floor(random() * (personas.length + 2));
      const persona = pick < personas.length ? personas[pick] : undefined;
      const S = ident(sample.schema);
      const query = `SELECT id FROM ${S}.${ident(sample.table)} ORDER BY id`;
      const expected = persona ? [...persona.sees].map(String).sort() : [];
      const kind = persona ? (i % 7 === 0 ? 'rollback' : 'commit') : pick === personas.length ? 'none' : 'session-setting';
      const work = async (tx: TransactionSql) => {
        const rows = (await tx.unsafe(query)).map((r) => String(r.id)).sort();
        if (kind === 'rollback') throw Object.assign(new Error('rollback'), { rows });
        return rows;
      };
      // Every other identity goes through the runtime: SET LOCAL ROLE and set_session in one
      // simple query, nothing prepared for the next server connection to miss.
      const seen = await (persona && i % 2 === 0
        ? withPostgresSession(sql, { schema: sample.schema, id: persona.id }, work, { role: 'app_user' })
        : sql.begin(async (tx) => {
            await tx.unsafe('SET LOCAL ROLE app_user');
            if (persona) await tx.unsafe(`SELECT ${S}.set_session($1)`, [persona.id]);
            // An attacker's move: write the setting session-wide, hoping the next client on this
            // server connection inherits it. It carries no signature, so it never counts.
            if (kind === 'session-setting') await tx.unsafe(`SELECT set_config($1, $2, false)`, [`rowguard.${sample.schema}_user_id`, String(personas[0]!.id)]);
            return work(tx);
          })
      )
        .catch((e: { rows?: string[] }) => {
          if (e.rows) return e.rows;
          throw e;
        });
      if (JSON.stringify(seen) !== JSON.stringify(expected)) {
        wrong.push(`client ${n} tx ${i} (${kind}, ${sample.schema} as ${persona?.id ?? 'nobody'}): saw ${seen.join(',')}, expected ${expected.join(',')}`);
      }
    }
  } finally {
    await sql.end();
  }
  return { transactions: count, wrong };
}

/** A small seeded generator, so a failure can be replayed. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe(`PgBouncer, transaction pooling: ${CLIENTS} clients × ${TRANSACTIONS_PER_CLIENT} transactions over ${POOL} server connections`, () => {
  it('every transaction sees exactly what its identity may see, and nothing without one', async () => {
    const watcher = postgres(primary.url, { max: 1, onnotice: () => {} });
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [{ n }] = (await watcher`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ${LOGIN}`) as unknown as [{ n: number }];
        peak = Math.max(peak, n);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n, TRANSACTIONS_PER_CLIENT, seeded(1000 + n))));
    const elapsed = Date.now() - started;
    sampling = false;
    await sampler;
    await watcher.end();
    const total = results.reduce((a, r) => a + r.transactions, 0);
    const wrong = results.flatMap((r) => r.wrong);
    console.log(`pgbouncer: ${total} transactions in ${elapsed} ms, peak ${peak} server connections`);
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(total).toBe(CLIENTS * TRANSACTIONS_PER_CLIENT);
    // The pool really was shared: 32 clients on at most 4 server connections.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(POOL);
  });

  it('Kysely over sessionPool(pool, { prepare: false }): BEGIN with set_session in one message, statements with parameters unnamed, every transaction its identity\'s rows', async () => {
    const wrong: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, n) => {
        const random = seeded(3000 + n);
        const pool = new pg.Pool({ connectionString: bouncerUrl(), max: 1 });
        pool.on('error', () => {});
        const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(pool, { prepare: false }) }) });
        try {
          for (let i = 0; i < 50; i++) {
            const sample = samples[Math.floor(random() * samples.length)]!;
            const persona = sample.personas[Math.floor(random() * sample.personas.length)]!;
            const query = CompiledQuery.raw(`SELECT id FROM ${ident(sample.schema)}.${ident(sample.table)} WHERE $1::int = 1 ORDER BY id`, [1]);
            const seen = (await withKyselySession(db, { schema: sample.schema, id: persona.id }, (trx) => trx.executeQuery(query), { role: 'app_user' })).rows.map((r) => String((r as { id: unknown }).id)).sort();
            const expected = [...persona.sees].map(String).sort();
            if (JSON.stringify(seen) !== JSON.stringify(expected)) wrong.push(`kysely client ${n} tx ${i} (${sample.schema} as ${persona.id}): saw ${seen.join(',')}, expected ${expected.join(',')}`);
          }
        } finally {
          await db.destroy();
        }
      }),
    );
    expect(wrong.slice(0, 10)).toEqual([]);
  });

  it('control: the same pool leaks with a naive session-level identity, and the harness sees it', async () => {
    const leaks = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, n) => {
        const random = seeded(5000 + n);
        const sql = postgres(bouncerUrl(), { max: 1, prepare: false, onnotice: () => {} });
        let leaked = 0;
        try {
          for (let i = 0; i < 30; i++) {
            const owner = random() < 0.5 ? ['a', 'b', 'c'][Math.floor(random() * 3)] : undefined;
            const rows = await sql.begin(async (tx) => {
              await tx.unsafe('SET LOCAL ROLE app_user');
              if (owner) await tx.unsafe(`SELECT set_config('naive.user', $1, false)`, [owner]);
              return (await tx.unsafe('SELECT id FROM naive.notes')).length;
            });
            if (!owner && rows > 0) leaked++;
          }
        } finally {
          await sql.end();
        }
        return leaked;
      }),
    );
    const total = leaks.reduce((a, b) => a + b, 0);
    console.log(`control: ${total} transactions without identity saw another client's rows under the naive design`);
    expect(total).toBeGreaterThan(0);
  });
});

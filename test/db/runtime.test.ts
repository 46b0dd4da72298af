// The application runtime against real PostgreSQL: thousands of interleaved transactions with
// random identities on a small pool, some of them failing, for each client library. Every
// transaction must see exactly its persona's rows, and the pool must carry no identity afterwards.
import { CompiledQuery, Kysely, PostgresDialect, sql as ksql, type Transaction } from 'kysely';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import postgres from 'postgres';
import { beforeAll, describe, expect, it } from 'vitest';
import { samples } from '../../generator/cli/samples/index.ts';
import { fnv64, idLiteral, isSetSessionText, KIND_TEXT, kindOf, setSessionText } from '../../runtime/identity.ts';
import { sessionPool, withKyselySession, withPgSession, withPostgresSession, type Identity } from '../../runtime/index.ts';
import { lastKind, markedStrings, remember, REMEMBERED } from '../../runtime/postgres.ts';
import { KEPT_PER_CLIENT } from '../../runtime/prepared.ts';
import { byCodePoint } from '../../generator/sql/print.ts';
import { useTestDatabase } from '../support/db.ts';

const db = useTestDatabase(async (admin) => {
  for (const s of samples) await admin.unsafe(s.sql);
});

/** Applications log in as a member of app_user: the identity then costs one statement. */
const LOGIN = 'rowguard_test_app';
let appUrl = '';
beforeAll(async () => {
  await db.current.admin.unsafe(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${LOGIN}') THEN CREATE ROLE ${LOGIN} LOGIN PASSWORD 'app' IN ROLE app_user; END IF;
  END $$`);
  const u = new URL(db.current.url);
  u.username = LOGIN;
  u.password = 'app';
  appUrl = u.toString();
});

const cases = samples.flatMap((s) => s.personas.map((p) => ({ identity: { schema: s.schema, id: p.id } as Identity, table: `${s.schema}.${s.table}`, sees: p.sees.map(String) })));
const TRANSACTIONS = 1500;
const pick = (i: number) => cases[(i * 7919) % cases.length]!;

class Planned extends Error {}

/** The user a pg client acts as now (its current_user_id), as text. */
const pgActing = async (client: pg.PoolClient) => String((await client.query('SELECT smartoffice.current_user_id() AS id')).rows[0].id);

/** A pg pool of one client that records in `sent` the text of every query it sends. */
function recordingPool(sent: string[]): pg.Pool {
  const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text;
      if (text) sent.push(text);
      return query(...args);
    };
  });
  return pool;
}

/**
 * A TCP proxy in front of the test server that records, in order, which side sent each chunk:
 * whether a client waited for an answer before sending a statement. `cut` closes the connection
 * (unforwarded) at the first client chunk it accepts; `hold` keeps the server's chunks for that
 * many milliseconds and passes them on as one, so that answers arrive together.
 */
async function recordingProxy(url: string, options: { cut?: (text: string) => boolean; hold?: number } = {}): Promise<{ url: string; chunks: { from: 'client' | 'server'; text: string }[]; kill: () => void; close: () => Promise<void> }> {
  const target = new URL(url);
  const chunks: { from: 'client' | 'server'; text: string }[] = [];
  const sockets = new Set<net.Socket>();
  let cut = options.cut;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    let held: Buffer[] = [];
    client.on('data', (data) => {
      const text = data.toString('latin1');
      if (cut?.(text)) {
        cut = undefined;
        client.destroy();
        upstream.destroy();
        return;
      }
      chunks.push({ from: 'client', text });
      upstream.write(data);
    });
    const toClient = (data: Buffer) => {
      chunks.push({ from: 'server', text: data.toString('latin1') });
      client.write(data);
    };
    upstream.on('data', (data) => {
      if (!options.hold) return toClient(data);
      if (held.length === 0) setTimeout(() => void (toClient(Buffer.concat(held)), (held = [])), options.hold);
      held.push(data);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as net.AddressInfo).port);
  return {
    url: proxied.toString(),
    chunks,
    /** Closes every connection through the proxy (a connection lost), and keeps accepting new ones. */
    kill: () => {
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

async function hammer(run: (c: (typeof cases)[number], fail: boolean) => Promise<string[] | undefined>): Promise<{ wrong: string[]; failed: number }> {
  const wrong: string[] = [];
  let failed = 0;
  await Promise.all(
    Array.from({ length: TRANSACTIONS }, async (_, i) => {
      const c = pick(i);
      const fail = i % 10 === 3;
      try {
        const seen = await run(c, fail);
        if (seen && seen.join(',') !== c.sees.join(',')) wrong.push(`${c.identity.schema}/${c.identity.id}: ${seen.join(',')}`);
      } catch (error) {
        if (!(error instanceof Planned)) throw error;
        failed++;
      }
    }),
  );
  return { wrong, failed };
}

describe('runtime: withSession under concurrency', () => {
  it('postgres.js: 1,500 interleaved transactions on a pool of 3', async () => {
    const sql = postgres(appUrl, { max: 3, onnotice: () => {} });
    try {
      const { wrong, failed } = await hammer((c, fail) =>
        withPostgresSession(sql, c.identity, async (tx) => {
          const rows = await tx`SELECT id FROM ${tx(c.table)} ORDER BY id`;
          if (fail) throw new Planned();
          return rows.map((r) => String(r.id));
        }),
      );
      expect(wrong).toEqual([]);
      expect(failed).toBe(TRANSACTIONS / 10);
      for (const s of samples) {
        const leftover = await sql.begin((tx) => tx.unsafe(`SELECT count(*)::int AS n FROM ${s.schema}.${s.table}`));
        expect(leftover[0]!.n, `${s.schema} without withSession`).toBe(0);
      }
    } finally {
      await sql.end();
    }
  });

  it('pg: 1,500 interleaved transactions on a pool of 3', async () => {
    const pool = new pg.Pool({ connectionString: appUrl, max: 3 });
    let marking = 0;
    try {
      const { wrong, failed } = await hammer((c, fail) => {
        // Named queries, every other transaction marked with the user's kind (statementPerKind);
        // every third an unnamed query with a parameter, prepared for the kind (prepare).
        const m = marking++;
        return withPgSession(pool, c.identity, async (client) => {
          const { rows } = m % 3 === 0
            ? await client.query(`SELECT id FROM ${c.table} WHERE $1::int = 0 ORDER BY id`, [0])
            : await client.query({ name: `ids of ${c.table}`, text: `SELECT id FROM ${c.table} ORDER BY id` });
          if (fail) throw new Planned();
          return rows.map((r: { id: unknown }) => String(r.id));
        }, { statementPerKind: m % 2 === 0, prepare: m % 3 === 0 });
      });
      expect(wrong).toEqual([]);
      expect(failed).toBe(TRANSACTIONS / 10);
      for (const s of samples) expect((await pool.query(`SELECT count(*)::int AS n FROM ${s.schema}.${s.table}`)).rows[0].n).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it('Kysely: 1,500 interleaved transactions on a pool of 3', async () => {
    const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: appUrl, max: 3 }) }) });
    try {
      const { wrong, failed } = await hammer((c, fail) =>
        withKyselySession(kdb, c.identity, async (trx) => {
          const { rows } = await ksql<{ id: unknown }>`SELECT id FROM ${ksql.raw(c.table)} ORDER BY id`.execute(trx);
          if (fail) throw new Planned();
          return rows.map((r) => String(r.id));
        }),
      );
      expect(wrong).toEqual([]);
      expect(failed).toBe(TRANSACTIONS / 10);
      for (const s of samples) expect((await ksql<{ n: number }>`SELECT count(*)::int AS n FROM ${ksql.raw(`${s.schema}.${s.table}`)}`.execute(kdb)).rows[0]!.n).toBe(0);
    } finally {
      await kdb.destroy();
    }
  });

  it('Kysely over sessionPool: 1,500 interleaved transactions on a pool of 3, statements prepared per kind (every other transaction unmarked)', async () => {
    const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(new pg.Pool({ connectionString: appUrl, max: 3 })) }) });
    let marking = 0;
    try {
      const { wrong, failed } = await hammer((c, fail) =>
        withKyselySession(kdb, c.identity, async (trx) => {
          const { rows } = await ksql<{ id: unknown }>`SELECT id FROM ${ksql.raw(c.table)} WHERE ${0}::int = 0 ORDER BY id`.execute(trx);
          if (fail) throw new Planned();
          return rows.map((r) => String(r.id));
        }, { statementPerKind: marking++ % 2 === 0 }),
      );
      expect(wrong).toEqual([]);
      expect(failed).toBe(TRANSACTIONS / 10);
      for (const s of samples) expect((await ksql<{ n: number }>`SELECT count(*)::int AS n FROM ${ksql.raw(`${s.schema}.${s.table}`)}`.execute(kdb)).rows[0]!.n).toBe(0);
    } finally {
      await kdb.destroy();
    }
  });
});

describe('runtime: set_session as one simple query', () => {
  const john: Identity = { schema: 'smartoffice', id: 11 };
  const johnSees = [100, 102, 103, 104];
  const contacts = 'SELECT id FROM smartoffice.contacts ORDER BY id';
  const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

  it('postgres.js leaves no prepared set_session on the connection for later SQL to replace', async () => {
    for (const options of [{}, { prepare: false }]) {
      const sql = postgres(appUrl, { max: 1, onnotice: () => {}, ...options });
      try {
        // SQL in one session replaces any prepared set_session it can see with one for user 12...
        await withPostgresSession(sql, john, async (tx) => {
          for (const r of await tx.unsafe(`SELECT name FROM pg_prepared_statements WHERE NOT from_sql AND statement LIKE '%set_session%'`)) {
            await tx.unsafe(`DEALLOCATE "${String(r.name)}"`);
            await tx.unsafe(`PREPARE "${String(r.name)}"(text) AS SELECT smartoffice.set_session(12) FROM (SELECT $1) AS hijack`);
          }
        });
        // ...and the connection's next session still acts as its own user, with nothing prepared
        // that mentions set_session.
        const seen = await withPostgresSession(sql, { schema: 'smartoffice', id: 10 }, async (tx) => ({
          rows: (await tx.unsafe(contacts)).map((r) => Number(r.id)),
          user: Number((await tx.unsafe('SELECT smartoffice.current_user_id() AS id'))[0]!.id),
          prepared: (await tx.unsafe(`SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%set_session%'`)).length,
        }));
        expect(seen.user).toBe(10);
        expect(seen.prepared).toBe(0);
        expect(await withPostgresSession(sql, john, async (tx) => (await tx.unsafe(contacts)).map((r) => Number(r.id)))).toEqual(johnSees);
      } finally {
        await sql.end();
      }
    }
  });

  it('the id is a literal nothing can break out of, whatever the session set before', async () => {
    // In SJIS the second byte of a character may be 0x5C, a backslash: ā is C4 81 in UTF-8, and
    // 81 5C is one SJIS character, so a raw "ā\\" would leave a lone backslash to escape the quote.
    const tricky = ["o'brien", 'back\\slash', "\\'; SELECT 1; --", "'); SELECT pg_sleep(0); --", "E'x'", '$$', 'ñ😀\nline\r', '\\x27\\u0027\\047', "ā\\'); SELECT 1; --", ''];
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      for (const [scs, encoding, backslashQuote] of [['on', 'UTF8', 'safe_encoding'], ['off', 'UTF8', 'on'], ['on', 'SJIS', 'on'], ['off', 'SJIS', 'on'], ['on', 'LATIN1', 'safe_encoding'], ['off', 'LATIN1', 'on']]) {
        // Settings SQL run earlier on the connection could leave behind.
        await sql.unsafe(`SET standard_conforming_strings = ${scs}; SET client_encoding = '${encoding}'; SET backslash_quote = ${backslashQuote}`);
        for (const text of tricky) expect([scs, encoding, (await sql.unsafe(`SELECT md5(${idLiteral(text)}::text) AS v`))[0]!.v]).toEqual([scs, encoding, md5(text)]);
        // Collect!'s ids are text: an id written to break out is just an unknown operator (whose
        // error message, naming the id, SJIS cannot carry when it holds an ā: 22P05).
        for (const id of ["x'); SELECT 1; --", "ā\\'); SELECT 1; --"]) {
          const error = await withPostgresSession(sql, { schema: 'collect', id }, async () => 1).then(() => null, (e: { code?: string }) => e.code);
          expect([id, encoding, error]).toEqual([id, encoding, encoding !== 'UTF8' && id.startsWith('ā') ? '22P05' : '28000']);
        }
      }
      await sql.unsafe('RESET standard_conforming_strings; RESET client_encoding; RESET backslash_quote');
      expect(() => idLiteral('a\ud800')).toThrow(/lone surrogate/);
      expect(idLiteral('😀')).toBe("E'\\U0001f600'");
      await expect(withPostgresSession(sql, { schema: 'collect', id: 'a\0b' }, async () => 1)).rejects.toThrow(/cannot contain a NUL/);
      expect(idLiteral(null)).toBe('NULL');
      await expect(withPostgresSession(sql, { schema: 'smartoffice', id: null as never }, async () => 1)).rejects.toMatchObject({ code: '22004' });
    } finally {
      await sql.end();
    }
  });

  it('every adapter sends the role and set_session together, in one message', async () => {
    const sent: string[] = [];
    const asked = (q: string) => /set_session|SET LOCAL ROLE/.test(q);
    const sql = postgres(appUrl, { max: 1, onnotice: () => {}, debug: (_connection, query) => void sent.push(query) });
    const pool = recordingPool(sent);
    const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: recordingPool(sent) }) });
    const seeing = async (query: (text: string) => Promise<Array<Record<string, unknown>>>) => ({
      role: String((await query('SELECT current_user AS r'))[0]!.r),
      rows: (await query(contacts)).map((r) => Number(r.id)),
    });
    try {
      const seen = [
        await withPostgresSession(sql, john, (tx) => seeing((q) => tx.unsafe(q)), { role: 'app_user' }),
        await withPgSession(pool, john, (client) => seeing(async (q) => (await client.query(q)).rows), { role: 'app_user' }),
        await withKyselySession(kdb, john, (trx) => seeing(async (q) => (await ksql.raw<Record<string, unknown>>(q).execute(trx)).rows), { role: 'app_user' }),
      ];
      expect(seen).toEqual(Array(3).fill({ role: 'app_user', rows: johnSees }));
      // postgres.js asks what kind of user that made in the same message (see KIND_TEXT); pg
      // begins the transaction in it too (one round trip before the callback instead of two).
      const sent11 = `SET LOCAL ROLE "app_user"; SELECT "smartoffice".set_session(E'11')`;
      expect(sent.filter(asked)).toEqual([`${sent11}; ${KIND_TEXT}`, `BEGIN; ${sent11}`, sent11]);
      expect(sent.filter((q) => /^begin\s*$/i.test(q)), 'pg sends no BEGIN of its own; postgres.js and Kysely do').toHaveLength(2);
      // A role refused is refused before anything is sent (no ROLLBACK of a transaction never begun).
      const before = sent.length;
      await expect(withPgSession(pool, john, async () => 1, { role: 'none' })).rejects.toThrow(/SET ROLE NONE/);
      expect(sent.slice(before)).toEqual([]);
      // An unknown user: set_session's own error, the transaction BEGIN opened in the same message
      // rolled back, and the pool's one client serves the next session as before.
      const backend = async (client: pg.PoolClient) => Number((await client.query('SELECT pg_backend_pid() AS p')).rows[0].p);
      const first = await withPgSession(pool, john, backend);
      let ran = false;
      await expect(withPgSession(pool, { schema: 'smartoffice', id: 999999 }, async () => (ran = true))).rejects.toMatchObject({ code: '28000' });
      expect(ran).toBe(false);
      expect(sent.at(-1)).toBe('ROLLBACK');
      const after = await withPgSession(pool, john, async (client) => ({ pid: await backend(client), rows: (await client.query(contacts)).rows.map((r) => Number(r.id)) }));
      expect(after).toEqual({ pid: first, rows: johnSees });
    } finally {
      await sql.end();
      await pool.end();
      await kdb.destroy();
    }
  });

  it('a login that does not inherit app_user acts only with { role } (an empty role is none; the role none is refused), with every adapter', async () => {
    await db.current.admin.unsafe(`DROP ROLE IF EXISTS rowguard_test_noinherit; CREATE ROLE rowguard_test_noinherit LOGIN NOINHERIT PASSWORD 'app' IN ROLE app_user`);
    const u = new URL(appUrl);
    u.username = 'rowguard_test_noinherit';
    const sql = postgres(u.toString(), { max: 1, onnotice: () => {} });
    const pool = new pg.Pool({ connectionString: u.toString(), max: 1 });
    const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: u.toString(), max: 1 }) }) });
    const ids = (rows: Array<Record<string, unknown>>) => rows.map((r) => Number(r.id));
    const adapters: Record<string, (role?: string) => Promise<number[]>> = {
      'postgres.js': (role) => withPostgresSession(sql, john, async (tx) => ids(await tx.unsafe(contacts)), { role }),
      pg: (role) => withPgSession(pool, john, async (c) => ids((await c.query(contacts)).rows), { role }),
      kysely: (role) => withKyselySession(kdb, john, async (trx) => ids((await ksql.raw<Record<string, unknown>>(contacts).execute(trx)).rows), { role }),
    };
    try {
      for (const [name, run] of Object.entries(adapters)) {
        await expect(run(), `${name} without a role`).rejects.toMatchObject({ code: '42501' });
        await expect(run(''), `${name} with an empty role`).rejects.toMatchObject({ code: '42501' });
        await expect(run('none'), `${name} with the role none`).rejects.toThrow(/SET ROLE NONE/);
        expect(await run('app_user'), `${name} with { role: 'app_user' }`).toEqual(johnSees);
      }
    } finally {
      await sql.end();
      await pool.end();
      await kdb.destroy();
      await db.current.admin.unsafe('DROP ROLE rowguard_test_noinherit');
    }
  });

  it('every adapter acts as a non-ASCII id exactly, whatever client_encoding the connection was left with', async () => {
    const id = 'ñandú';
    await db.current.admin.unsafe(`INSERT INTO collect.operators (id, name) VALUES ('${id}', 'Ñandú') ON CONFLICT DO NOTHING`);
    const expected = md5(id);
    const acting = 'SELECT md5(collect.current_user_id()) AS h';
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: appUrl, max: 1 }) }) });
    try {
      await sql.unsafe(`SET client_encoding = 'LATIN1'`);
      const viaPostgres = await withPostgresSession(sql, { schema: 'collect', id }, async (tx) => String((await tx.unsafe(acting))[0]!.h));
      const client = await pool.connect();
      await client.query(`SET client_encoding = 'LATIN1'`);
      client.release();
      const viaPg = await withPgSession(pool, { schema: 'collect', id }, async (c) => String((await c.query(acting)).rows[0].h));
      await ksql`SET client_encoding = 'LATIN1'`.execute(kdb);
      const viaKysely = await withKyselySession(kdb, { schema: 'collect', id }, async (trx) => (await ksql.raw<{ h: string }>(acting).execute(trx)).rows[0]!.h);
      expect({ viaPostgres, viaPg, viaKysely }).toEqual({ viaPostgres: expected, viaPg: expected, viaKysely: expected });
    } finally {
      await sql.end();
      await pool.end();
      await kdb.destroy();
    }
  });
});

describe('runtime: nesting', () => {
  const john: Identity = { schema: 'smartoffice', id: 11 };
  const tom: Identity = { schema: 'smartoffice', id: 12 };
  const contacts = 'SELECT id FROM smartoffice.contacts ORDER BY id';

  it('postgres.js: an inner session runs in a savepoint; its failure does not abort the outer one; the outer identity returns', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      const seen = await withPostgresSession(sql, john, async (tx) => {
        const inner = await withPostgresSession(tx, tom, async (t) => (await t.unsafe(contacts)).map((r) => Number(r.id)));
        await expect(withPostgresSession(tx, tom, async () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
        return { inner, outer: (await tx.unsafe(contacts)).map((r) => Number(r.id)) };
      });
      expect(seen).toEqual({ inner: [101, 102, 103, 105], outer: [100, 102, 103, 104] });
    } finally {
      await sql.end();
    }
  });

  it('an inner session begun on an outer handle restores the identity in force, not that handle\'s first one', async () => {
    const acting = 'SELECT smartoffice.current_user_id() AS id';
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      const seen = await withPostgresSession(sql, { schema: 'smartoffice', id: 10 }, async (tx0) =>
        withPostgresSession(tx0, john, async () => {
          await withPostgresSession(tx0, tom, async () => undefined);
          return Number((await tx0.unsafe(acting))[0]!.id);
        }),
      );
      expect(seen).toBe(11);
    } finally {
      await sql.end();
    }
  });

  it('pg and Kysely nest the same way', async () => {
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    try {
      const seen = await withPgSession(pool, john, async (client) => {
        const inner = await withPgSession(client, tom, async (c) => (await c.query(contacts)).rows.map((r: { id: string }) => Number(r.id)));
        await expect(withPgSession(client, tom, async () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
        return { inner, outer: (await client.query(contacts)).rows.map((r: { id: string }) => Number(r.id)) };
      });
      expect(seen).toEqual({ inner: [101, 102, 103, 105], outer: [100, 102, 103, 104] });
    } finally {
      await pool.end();
    }
    const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: appUrl, max: 1 }) }) });
    try {
      const ids = async (t: Transaction<Record<string, never>>) => (await ksql<{ id: string }>`SELECT id FROM smartoffice.contacts ORDER BY id`.execute(t)).rows.map((r) => Number(r.id));
      const seen = await withKyselySession(kdb, john, async (trx) => {
        const inner = await withKyselySession(trx, tom, ids);
        await expect(withKyselySession(trx, tom, async () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
        return { inner, outer: await ids(trx) };
      });
      expect(seen).toEqual({ inner: [101, 102, 103, 105], outer: [100, 102, 103, 104] });
    } finally {
      await kdb.destroy();
    }
  });

  it('pg refuses a query sent on a withSession handle once its transaction is over, in every form pg takes one, whoever has the client by then; Kysely refuses its own', async () => {
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    try {
      for (const statementPerKind of [false, true]) {
        let kept: pg.PoolClient | undefined;
        let nestedKept: pg.PoolClient | undefined;
        let keptRelease: (() => void) | undefined;
        await withPgSession(pool, john, async (client) => {
          kept = client;
          keptRelease = client.release;
          await withPgSession(client, { schema: 'smartoffice', id: 12 }, async (inner) => void (nestedKept = inner));
        }, { statementPerKind });
        // The pool's one client now serves Tom; John's handles are refused inside Tom's transaction.
        const seen = await withPgSession(pool, { schema: 'smartoffice', id: 12 }, async (client) => {
          const refused: unknown[] = [];
          const reason = (e: Error) => refused.push(/transaction is over/.test(e.message));
          await kept!.query('SELECT 1').catch(reason);
          await kept!.query({ name: 'late', text: 'SELECT 1' }).catch(reason);
          await nestedKept!.query('SELECT 1').catch(reason);
          await new Promise<void>((resolve) => kept!.query('SELECT 1', (e: Error) => void (reason(e), resolve())));
          await new Promise<void>((resolve) => kept!.query('SELECT $1::int', [1], (e: Error) => void (reason(e), resolve())));
          await withPgSession(kept!, john, async () => 1).catch(reason);
          await new Promise<void>((resolve) => kept!.query({ text: 'SELECT 1', callback: (e: Error) => void (reason(e), resolve()) } as never));
          // A late release() would give back Tom's checkout, also when taken from the handle during the session.
          try {
            kept!.release();
          } catch (e) {
            reason(e as Error);
          }
          try {
            keptRelease!();
          } catch (e) {
            reason(e as Error);
          }
          // A Submittable (what a cursor or a COPY stream is to pg) is refused at once.
          try {
            kept!.query({ submit() {} } as never);
          } catch (e) {
            reason(e as Error);
          }
          return { refused, me: await pgActing(client), rows: (await client.query(contacts)).rows.map((r) => Number(r.id)) };
        });
        expect(seen).toEqual({ refused: [true, true, true, true, true, true, true, true, true, true], me: '12', rows: [101, 102, 103, 105] });
      }
      // Kysely refuses a finished transaction's queries itself, nested sessions' too.
      const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: appUrl, max: 1 }) }) });
      try {
        let keptTrx: Transaction<Record<string, never>> | undefined;
        await withKyselySession(kdb, john, async (trx) => void (keptTrx = trx));
        await expect(ksql`SELECT 1`.execute(keptTrx!)).rejects.toThrow(/already committed/);
        await expect(withKyselySession(keptTrx!, { schema: 'smartoffice', id: 12 }, async () => 1)).rejects.toThrow(/already committed/);
      } finally {
        await kdb.destroy();
      }
    } finally {
      await pool.end();
    }
  });

  it('pg sends a nested session in two messages: the savepoint with the identity, the RELEASE (or, on failure, the ROLLBACK TO) with the identity before it', async () => {
    const sent: string[] = [];
    const pool = recordingPool(sent);
    const call = (id: number) => `SELECT "smartoffice".set_session(E'${id}')`;
    try {
      const seen = await withPgSession(pool, john, async (client) => {
        const inner = await withPgSession(client, tom, async (c) => (await c.query(contacts)).rows.map((r: { id: string }) => Number(r.id)));
        await expect(withPgSession(client, tom, async () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
        // A set_session that fails inside: its error, and the outer identity back in a usable transaction.
        await expect(withPgSession(client, { schema: 'smartoffice', id: 999999 }, async () => 1)).rejects.toMatchObject({ code: '28000' });
        return { inner, outer: (await client.query(contacts)).rows.map((r: { id: string }) => Number(r.id)) };
      });
      expect(seen).toEqual({ inner: [101, 102, 103, 105], outer: [100, 102, 103, 104] });
      expect(sent).toEqual([
        `BEGIN; ${call(11)}`,
        `SAVEPOINT rowguard_session_1; ${call(12)}`,
        contacts,
        `RELEASE SAVEPOINT rowguard_session_1; ${call(11)}`,
        `SAVEPOINT rowguard_session_1; ${call(12)}`,
        'ROLLBACK TO SAVEPOINT rowguard_session_1; RELEASE SAVEPOINT rowguard_session_1',
        call(11),
        `SAVEPOINT rowguard_session_1; ${call(999999)}`,
        'ROLLBACK TO SAVEPOINT rowguard_session_1; RELEASE SAVEPOINT rowguard_session_1',
        call(11),
        contacts,
        'COMMIT',
      ]);
    } finally {
      await pool.end();
    }
  });

  it('a callback that catches a failed statement\'s error gets an error, not its result: pg says the transaction was rolled back, postgres.js rethrows', async () => {
    const sent: string[] = [];
    const pool = recordingPool(sent);
    try {
      await expect(
        withPgSession(pool, john, async (client) => {
          await client.query('CREATE TEMP TABLE rowguard_kept (x int)');
          await client.query('SELECT 1 / 0').catch(() => undefined);
          return 'done';
        }),
      ).rejects.toThrow(/rolled back, not committed/);
      // COMMIT ended it: no ROLLBACK after it.
      expect(sent.at(-1)).toBe('COMMIT');
      // Nothing of it was kept, and the client serves the next session.
      expect(await withPgSession(pool, john, async (c) => (await c.query(`SELECT to_regclass('pg_temp.rowguard_kept') IS NULL AS gone`)).rows[0].gone)).toBe(true);
    } finally {
      await pool.end();
    }
    // postgres.js rethrows the error the callback caught (README, "Applications").
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      const swallowing = withPostgresSession(sql, john, async (tx) => {
        await tx.unsafe('SELECT 1 / 0').catch(() => undefined);
        return 'done';
      });
      await expect(swallowing).rejects.toMatchObject({ code: '22012' });
    } finally {
      await sql.end();
    }
  });

  it('pg: a nested session begun in a transaction that failed already leaves it failed, after a nested session that failed before it', async () => {
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    try {
      let seen: unknown;
      const outer = withPgSession(pool, john, async (client) => {
        await client.query('CREATE TEMP TABLE rowguard_probe (x int) ON COMMIT DROP');
        await expect(withPgSession(client, tom, async () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
        await client.query('INSERT INTO rowguard_probe VALUES (1)');
        // The application swallows an error: the transaction is aborted from here on.
        await client.query('SELECT 1 / 0').catch(() => undefined);
        const nested = await withPgSession(client, tom, async () => 1).then(() => 'ran', (e: { code?: string }) => e.code);
        // Not rolled back to the first nested call's savepoint (which would drop the INSERT and
        // clear the failure): the transaction is still the failed one.
        const after = await client.query('SELECT count(*) AS n FROM rowguard_probe').then((r) => r.rows[0].n, (e: { code?: string }) => e.code);
        seen = { nested, after };
      });
      // And the outer call says its transaction was rolled back.
      await expect(outer).rejects.toThrow(/rolled back, not committed/);
      expect(seen).toEqual({ nested: '25P02', after: '25P02' });
    } finally {
      await pool.end();
    }
  });

  it('pg and Kysely nest two deep: each level acts as its own identity, and each level\'s identity returns when the one inside it ends', async () => {
    const ten: Identity = { schema: 'smartoffice', id: 10 };
    /** Two levels inside an outer session, then a failing inner one: who acts at each step. */
    const twoDeep = async <H>(nest: <T>(handle: H, who: Identity, fn: (h: H) => Promise<T>) => Promise<T>, id: (h: H) => Promise<number>, outer: H) =>
      nest(outer, ten, async (h0) =>
        nest(h0, john, async (h1) => {
          const deepest = await nest(h1, tom, id);
          const middle = await id(h1);
          await expect(nest(h1, tom, async () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
          return [deepest, middle, await id(h1)];
        }).then(async (inner) => [...inner, await id(h0)]),
      );
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    try {
      const id = async (c: pg.Pool | pg.PoolClient) => Number((await c.query('SELECT smartoffice.current_user_id() AS id')).rows[0].id);
      expect(await twoDeep<pg.Pool | pg.PoolClient>((h, who, fn) => withPgSession(h, who, fn), id, pool)).toEqual([12, 11, 11, 10]);
    } finally {
      await pool.end();
    }
    const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: appUrl, max: 1 }) }) });
    try {
      const id = async (t: Kysely<Record<string, never>>) => Number((await ksql<{ id: string }>`SELECT smartoffice.current_user_id() AS id`.execute(t)).rows[0]!.id);
      expect(await twoDeep<Kysely<Record<string, never>>>((h, who, fn) => withKyselySession(h, who, fn), id, kdb)).toEqual([12, 11, 11, 10]);
    } finally {
      await kdb.destroy();
    }
  });

  it('refuses a schema name that is not an identifier, before touching the database', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      await expect(withPostgresSession(sql, { schema: 'x"; drop table y; --', id: 1 }, async () => 1)).rejects.toThrow(/not a lower-case SQL identifier/);
    } finally {
      await sql.end();
    }
  });
});

describe('runtime: work a callback leaves running after its transaction', () => {
  const who = (id: number): Identity => ({ schema: 'smartoffice', id });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const current = (tx: postgres.TransactionSql) => tx`SELECT smartoffice.current_user_id() AS id`.then((r) => String(r[0]!.id));
  const tomSees = [101, 102, 103, 105];
  const tomsView = async (tx: postgres.TransactionSql) => ({ me: await current(tx), rows: (await tx`SELECT id FROM smartoffice.contacts ORDER BY id`).map((r) => Number(r.id)) });
  /** Settles to what `p` settled to, or 'pending' if it has not within `ms`. */
  const within = (p: Promise<unknown>, ms = 1000) => Promise.race([p.then((v) => ({ resolved: v }), (e: { code?: string; message: string }) => ({ rejected: e.code ?? e.message })), sleep(ms).then(() => 'pending')]);
  const over = expect.stringMatching(/transaction is over/);

  it('postgres.js: a savepoint or nested call the callback did not await is refused when the transaction ends, and sends nothing into the next user\'s', async () => {
    for (const variant of ['savepoint', 'nested withSession'] as const) {
      const sent: string[] = [];
      const sql = postgres(appUrl, { max: 1, onnotice: () => {}, debug: (_c, q) => void sent.push(q) });
      try {
        let late: Promise<unknown> | undefined;
        await withPostgresSession(sql, who(11), async (tx) => {
          const work = async (sp: postgres.TransactionSql) => {
            await sleep(30);
            await sp`SELECT 1`;
          };
          late = variant === 'savepoint' ? tx.savepoint(work) : withPostgresSession(tx, who(14), work);
          late.catch(() => {});
          return 'john';
        });
        const tom = await withPostgresSession(sql, who(12), async (tx) => {
          await sleep(80);
          return tomsView(tx);
        });
        expect([variant, tom, await within(late!)]).toEqual([variant, { me: '12', rows: tomSees }, { rejected: over }]);
        const tomBegan = sent.findIndex((q) => q.includes(`set_session(E'12')`));
        expect(sent.slice(tomBegan).filter((q) => /savepoint|set_session\(E'1[14]'\)/i.test(q))).toEqual([]);
      } finally {
        await sql.end();
      }
    }
  });

  it('postgres.js: after a lost connection, a savepoint or nested call in flight rejects, the callback goes on, and nothing is sent for the lost transaction', async () => {
    for (const variant of ['savepoint', 'nested withSession', 'nested call begun after the loss'] as const) {
      const proxy = await recordingProxy(appUrl);
      const sql = postgres(proxy.url, { max: 1, onnotice: () => {} });
      try {
        let inner: unknown;
        let callbackWentOn = false;
        let tomRuns!: () => void;
        const tomRunning = new Promise<void>((resolve) => (tomRuns = resolve));
        const john = withPostgresSession(sql, who(11), async (tx) => {
          await tx`SELECT 1`;
          const work = async (sp: postgres.TransactionSql) => {
            proxy.kill();
            await tomRunning;
            await sp`SELECT 2`;
          };
          try {
            if (variant === 'savepoint') await tx.savepoint(work);
            else if (variant === 'nested withSession') await withPostgresSession(tx, who(14), work);
            else {
              proxy.kill();
              await withPostgresSession(tx, who(14), async () => 1);
            }
          } catch (e) {
            inner = (e as { code?: string }).code ?? (e as Error).message;
          } finally {
            callbackWentOn = true;
          }
        });
        await expect(john).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
        const tom = await withPostgresSession(sql, who(12), async (tx) => {
          tomRuns();
          await sleep(50);
          return tomsView(tx);
        });
        expect([variant, tom, callbackWentOn, inner]).toEqual([variant, { me: '12', rows: tomSees }, true, expect.stringMatching(/CONNECTION_CLOSED|transaction is over/)]);
        const tomBegan = proxy.chunks.findIndex((c) => c.from === 'client' && c.text.includes(`set_session(E'12')`));
        expect(proxy.chunks.slice(tomBegan).filter((c) => c.from === 'client' && /rollback|release|set_session\(E'1[14]'\)/i.test(c.text))).toEqual([]);
      } finally {
        await sql.end();
        await proxy.close();
      }
    }
  });

  it('postgres.js: tx.file is asked when its text is in, so a file read across the end of the transaction (or a lost connection) never runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rowguard-fifo-'));
    const fifo = join(dir, 'late.sql');
    execFileSync('mkfifo', [fifo]);
    const proxy = await recordingProxy(appUrl);
    const sql = postgres(proxy.url, { max: 1, onnotice: () => {} });
    try {
      let johnDone!: (outcome: unknown) => void;
      const johnLate = new Promise<unknown>((resolve) => (johnDone = resolve));
      const john = withPostgresSession(sql, who(11), async (tx) => {
        // The file's text arrives only once Tom's transaction runs on the reconnected connection.
        const read = tx.file(fifo).then((rows) => johnDone({ ran: rows[0] }), (e: Error) => johnDone({ refused: e.message }));
        await sleep(30);
        proxy.kill();
        await read;
      });
      await expect(john).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
      const tom = await withPostgresSession(sql, who(12), async (tx) => {
        const fd = openSync(fifo, 'w');
        writeSync(fd, 'SELECT smartoffice.current_user_id() AS id, smartoffice.set_session(11)');
        closeSync(fd);
        return { lateJohn: await johnLate, ...(await tomsView(tx)) };
      });
      expect(tom).toEqual({ lateJohn: { refused: over }, me: '12', rows: tomSees });
    } finally {
      await sql.end();
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('postgres.js: a callback may return an array of queries, which run in the transaction (as postgres.js runs them)', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      for (let i = 0; i < 2; i++) {
        const [[who_], rows] = await withPostgresSession(sql, who(11), (tx) => [tx`SELECT smartoffice.current_user_id() AS id`, tx`SELECT id FROM smartoffice.contacts ORDER BY id`] as never as Promise<[postgres.RowList<postgres.Row[]>, postgres.RowList<postgres.Row[]>]>);
        expect([String(who_!.id), rows.map((r) => Number(r.id))]).toEqual(['11', [100, 102, 103, 104]]);
      }
    } finally {
      await sql.end();
    }
  });

  it('postgres.js: another connection\'s error in a callback (a client already ended) is the callback\'s error, not a lost transaction: nothing hangs', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    const other = postgres(appUrl, { max: 1, onnotice: () => {} });
    await other.end();
    try {
      // The first time for this user on the client (set_session awaited), then pipelined.
      for (let round = 0; round < 2; round++) {
        expect(await within(withPostgresSession(sql, who(11), async (tx) => {
          await tx`SELECT 1`;
          await other`SELECT 1`;
        }))).toEqual({ rejected: 'CONNECTION_ENDED' });
        // Caught in a savepoint, the outer transaction goes on as John.
        expect(await within(withPostgresSession(sql, who(11), async (tx) => {
          const caught = await tx.savepoint(async () => other`SELECT 1`).catch((e: { code?: string }) => e.code);
          return [caught, await current(tx)];
        }))).toEqual({ resolved: ['CONNECTION_ENDED', '11'] });
      }
      expect(await within(withPostgresSession(sql, who(12), tomsView))).toEqual({ resolved: { me: '12', rows: tomSees } });
    } finally {
      await sql.end();
    }
  });

  it('postgres.js: another client\'s lost connection, thrown through a savepoint or a nested call, is an error like any other: caught, the transaction goes on; not caught, it rejects', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    /** CONNECTION_DESTROYED, from a client ended while its statement runs. */
    const foreign = async () => {
      // Connected first, and no type query of its own in flight when it is ended.
      const other = postgres(appUrl, { max: 1, onnotice: () => {}, fetch_types: false });
      await other`SELECT 1`;
      const running = other`SELECT pg_sleep(1)`.execute();
      await sleep(50);
      void other.end({ timeout: 0 });
      await running;
    };
    const code = (e: { code?: string }) => e.code;
    try {
      for (let round = 0; round < 2; round++) {
        expect(await within(withPostgresSession(sql, who(11), (tx) => tx.savepoint(foreign)), 3000)).toEqual({ rejected: 'CONNECTION_DESTROYED' });
        expect(await within(withPostgresSession(sql, who(11), (tx) => withPostgresSession(tx, who(14), foreign)), 3000)).toEqual({ rejected: 'CONNECTION_DESTROYED' });
        expect(await within(withPostgresSession(sql, who(11), async (tx) => [await tx.savepoint(foreign).catch(code), await current(tx)]), 3000)).toEqual({ resolved: ['CONNECTION_DESTROYED', '11'] });
        expect(await within(withPostgresSession(sql, who(11), async (tx) => [await withPostgresSession(tx, who(14), foreign).catch(code), await current(tx)]), 3000)).toEqual({ resolved: ['CONNECTION_DESTROYED', '11'] });
      }
      expect(await within(withPostgresSession(sql, who(12), tomsView))).toEqual({ resolved: { me: '12', rows: tomSees } });
    } finally {
      await sql.end();
    }
  });

  it('postgres.js: withSession returns the callback\'s result as postgres.js gives it (a result keeps its count and command), and a savepoint runs an array of queries', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      for (let i = 0; i < 2; i++) {
        const result = await withPostgresSession(sql, who(11), (tx) => tx`SELECT id FROM smartoffice.contacts ORDER BY id`);
        expect([result.count, result.command, result.map((r) => Number(r.id))]).toEqual([4, 'SELECT', [100, 102, 103, 104]]);
        const inSavepoint = await withPostgresSession(sql, who(11), (tx) =>
          tx.savepoint((sp) => [sp`SELECT smartoffice.current_user_id() AS id`, sp`SELECT 2 AS two`] as never as Promise<postgres.Row[][]>),
        );
        expect(inSavepoint).toEqual([[{ id: '11' }], [{ two: 2 }]]);
      }
    } finally {
      await sql.end();
    }
  });

  it('pg: a nested call the callback did not await, ending after the session, leaves the next session\'s identity alone', async () => {
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    try {
      let late: Promise<unknown> = Promise.resolve();
      await withPgSession(pool, who(11), async (client) => {
        late = withPgSession(client, who(14), async () => sleep(100));
        late.catch(() => {});
        await sleep(10);
      });
      const tom = await withPgSession(pool, who(12), async (client) => {
        const before = await pgActing(client);
        const lateCall = await within(late);
        const nested = await withPgSession(client, who(13), pgActing);
        return { before, lateCall, nested, after: await pgActing(client) };
      });
      expect(tom).toEqual({ before: '12', lateCall: { rejected: over }, nested: '13', after: '12' });
      // And the pool's client, given directly, begins a session of its own.
      const client = await pool.connect();
      try {
        expect(await withPgSession(client, who(12), pgActing)).toBe('12');
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
  });

  it('pg: a nested call the callback did not await sends nothing once the session is over (no savepoint or identity in the next user\'s transaction)', async () => {
    for (const variant of ['inner returns', 'inner queries'] as const) {
      const sent: string[] = [];
      const pool = recordingPool(sent);
      try {
        let nested: Promise<unknown> | undefined;
        await withPgSession(pool, who(11), async (client) => {
          nested = withPgSession(client, who(14), async (inner) => {
            if (variant === 'inner queries') await inner.query('SELECT 1');
            return 1;
          });
          nested.catch(() => {});
        });
        const tom = await withPgSession(pool, who(12), async (client) => {
          await sleep(50);
          return { me: await pgActing(client), rows: (await client.query('SELECT id FROM smartoffice.contacts ORDER BY id')).rows.map((r) => Number(r.id)) };
        });
        expect([variant, tom, await within(nested!)]).toEqual([variant, { me: '12', rows: tomSees }, { rejected: over }]);
        const tomBegan = sent.findIndex((q) => q.includes(`set_session(E'12')`));
        expect(sent.slice(tomBegan + 1).filter((q) => /savepoint|set_session/i.test(q))).toEqual([]);
      } finally {
        await pool.end();
      }
    }
  });
});

describe('runtime: one prepared statement per kind of user (postgres.js by default, pg when asked, Kysely over sessionPool)', () => {
  const smart = samples.find((s) => s.schema === 'smartoffice')!;
  const sees = (id: number) => smart.personas.find((p) => p.id === id)!.sees.map(Number);
  const who = (id: number): Identity => ({ schema: 'smartoffice', id });
  /** The search_path set_session leaves, which tells the kinds of user apart (12 is of 11's kind; 14 and 15 of kinds of their own). */
  const pathOf = (sql: postgres.Sql, id: number) =>
    withPostgresSession(sql, who(id), async (tx) => String(Object.values((await tx.unsafe(KIND_TEXT))[0]!)[0]), { statementPerKind: false });
  const markOf = async (sql: postgres.Sql, id: number) => kindOf('', await pathOf(sql, id)).mark;
  /** This test's statements on the connection, with how often each was executed. */
  const preparedHere = async (sql: postgres.Sql, tag: string) =>
    (await sql.unsafe(`SELECT statement, generic_plans + custom_plans AS runs FROM pg_prepared_statements WHERE strpos(statement, '${tag}') > 0 AND strpos(statement, 'pg_prepared_statements') = 0`))
      .map((r) => [String(r.statement), Number(r.runs)] as const)
      .sort(([a], [b]) => byCodePoint(a, b));

  it('users of one kind share a statement, each other kind has its own, and every row is the acting user\'s', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      const marks = new Map(await Promise.all([11, 12, 14, 15].map(async (id) => [id, await markOf(sql, id)] as const)));
      expect(marks.get(12)).toBe(marks.get(11));
      expect(new Set(marks.values()).size).toBe(3);
      const order = [11, 14, 12, 15, 14, 11, 15, 12];
      for (const id of order) {
        const rows = await withPostgresSession(sql, who(id), (tx) => tx`SELECT id FROM smartoffice.contacts /* tagged */ WHERE id > ${0} ORDER BY id`);
        expect(rows.map((r) => Number(r.id)), `user ${id}`).toEqual(sees(id));
      }
      const text = (id: number) => `${marks.get(id)}SELECT id FROM smartoffice.contacts /* tagged */ WHERE id > $1 ORDER BY id`;
      expect(await preparedHere(sql, '/* tagged */')).toEqual([[text(11), 4], [text(14), 2], [text(15), 2]].sort(([a], [b]) => byCodePoint(String(a), String(b))));
      // The role asked for is part of the kind: a statement planned under another role is planned again too.
      await withPostgresSession(sql, who(11), (tx) => tx`SELECT 1 /* with a role */`, { role: 'app_user' });
      const withRole = kindOf('app_user', await pathOf(sql, 11)).mark;
      expect(withRole).not.toBe(marks.get(11));
      expect(await preparedHere(sql, '/* with a role */')).toEqual([[`${withRole}SELECT 1 /* with a role */`, 1]]);
    } finally {
      await sql.end();
    }
  });

  it('the mark follows the acting user into nested sessions and savepoints, marks unsafe only when prepared, and is off with statementPerKind: false', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      const [m11, m14, m15] = [await markOf(sql, 11), await markOf(sql, 14), await markOf(sql, 15)];
      const query = (tag: string) => `SELECT id FROM smartoffice.contacts /* ${tag} */ WHERE id > $1 ORDER BY id`;
      const prepared = { prepare: true };
      const ids = (rows: readonly Record<string, unknown>[]) => rows.map((r) => Number(r.id));
      const seen = await withPostgresSession(sql, who(11), async (tx) => {
        const inner = await withPostgresSession(tx, who(14), async (t) => [
          ids(await t.unsafe(query('nested'), [0], prepared)),
          ids(await t.savepoint((sp) => sp.unsafe(query('savepoint'), [0], prepared))),
          ids(await t.savepoint('named', (sp) => sp`SELECT id FROM smartoffice.contacts /* named savepoint */ WHERE id > ${0} ORDER BY id`)),
          // postgres.js runs a tagged template given to savepoint in a savepoint of its own (not in its typings).
          ids(await (t.savepoint as unknown as typeof t)`SELECT id FROM smartoffice.contacts /* tagged savepoint */ WHERE id > ${0} ORDER BY id`),
        ]);
        // A nested session that fails leaves the outer user's mark in force again.
        await expect(withPostgresSession(tx, who(15), async () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
        return [...inner, ids(await tx.unsafe(query('outer'), [0], prepared)), ids(await tx.unsafe(query('unprepared'), [0])), ids(await tx.unsafe(query('simple').replace('$1', '0'), [], prepared))];
      });
      expect(seen).toEqual([sees(14), sees(14), sees(14), sees(14), sees(11), sees(11), sees(11)]);
      expect(await preparedHere(sql, '/* named savepoint */')).toEqual([[`${m14}SELECT id FROM smartoffice.contacts /* named savepoint */ WHERE id > $1 ORDER BY id`, 1]]);
      expect(await preparedHere(sql, '/* tagged savepoint */')).toEqual([[`${m14}SELECT id FROM smartoffice.contacts /* tagged savepoint */ WHERE id > $1 ORDER BY id`, 1]]);
      await withPostgresSession(sql, who(15), async (tx) => void (await tx.unsafe(query('off'), [0], prepared)), { statementPerKind: false });
      expect(await preparedHere(sql, '/* nested */')).toEqual([[m14 + query('nested'), 1]]);
      expect(await preparedHere(sql, '/* savepoint */')).toEqual([[m14 + query('savepoint'), 1]]);
      expect(await preparedHere(sql, '/* outer */')).toEqual([[m11 + query('outer'), 1]]);
      expect(await preparedHere(sql, '/* unprepared */')).toEqual([]);
      expect(await preparedHere(sql, '/* simple */')).toEqual([]);
      expect(await preparedHere(sql, '/* off */')).toEqual([[query('off'), 1]]);
      expect(m15).not.toBe(m14);
    } finally {
      await sql.end();
    }
  });

  it('tx.file given parameters is marked with the kind acting when it runs, in nested sessions too; without parameters it is a simple query and prepares nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rowguard-file-'));
    const text = 'SELECT id FROM smartoffice.contacts /* file */ WHERE id > $1 ORDER BY id';
    const withParameters = join(dir, 'with-parameters.sql');
    const withoutParameters = join(dir, 'without-parameters.sql');
    writeFileSync(withParameters, text);
    writeFileSync(withoutParameters, 'SELECT id FROM smartoffice.contacts /* file without parameters */ ORDER BY id');
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    const ids = (rows: readonly Record<string, unknown>[]) => rows.map((r) => Number(r.id));
    try {
      const [m11, m14] = [await markOf(sql, 11), await markOf(sql, 14)];
      for (const id of [11, 14, 11]) {
        expect(ids(await withPostgresSession(sql, who(id), (tx) => tx.file(withParameters, [0]))), `user ${id}`).toEqual(sees(id));
        expect(ids(await withPostgresSession(sql, who(id), (tx) => tx.file(withoutParameters))), `user ${id}`).toEqual(sees(id));
      }
      const nested = await withPostgresSession(sql, who(11), (tx) => withPostgresSession(tx, who(14), async (t) => ids(await t.file(withParameters, [0]))));
      expect(nested).toEqual(sees(14));
      expect(await preparedHere(sql, '/* file */')).toEqual([[m11 + text, 2], [m14 + text, 2]].sort(([a], [b]) => byCodePoint(String(a), String(b))));
      expect(await preparedHere(sql, '/* file without parameters */')).toEqual([]);
    } finally {
      await sql.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a fragment stays as written (only the statement that runs is marked), one marked copy serves a template and a kind, and a client that renames columns is marked too', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {}, transform: postgres.camel });
    try {
      const m14 = await markOf(sql, 14);
      // A mark (a comment) inside `>=` would split the operator in two.
      const rows = await withPostgresSession(sql, who(14), (tx) => tx`SELECT id FROM smartoffice.contacts /* fragment */ WHERE id >${tx`=`} ${0} ORDER BY id`);
      expect(rows.map((r) => Number(r.id))).toEqual(sees(14));
      expect(await preparedHere(sql, '/* fragment */')).toEqual([[`${m14}SELECT id FROM smartoffice.contacts /* fragment */ WHERE id >= $1 ORDER BY id`, 1]]);
    } finally {
      await sql.end();
    }
    const template = (strings: TemplateStringsArray, ..._values: unknown[]) => strings;
    const site = () => template`SELECT ${1}`;
    expect(markedStrings(site(), 'a')).toBe(markedStrings(site(), 'a'));
    expect(markedStrings(site(), 'a')).not.toBe(markedStrings(site(), 'b'));
    expect(markedStrings(site(), 'a')).toEqual(['aSELECT ', '']);
  });

  it('pg with statementPerKind: a named query is a statement of the acting user\'s kind, its name led by the kind\'s digest, through nesting too', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    const paths = new Map(await Promise.all([11, 14, 15].map(async (id) => [id, await pathOf(sql, id)] as const)));
    await sql.end();
    const digest = (id: number, role = '') => kindOf(role, paths.get(id)!).digest;
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    const text = 'SELECT id FROM smartoffice.contacts /* pg named */ WHERE id > $1 ORDER BY id';
    // PostgreSQL keeps 63 bytes of a name: with the digest and a space, 46 bytes of the name's own.
    const [fits, long, multibyte] = ['y'.repeat(46), 'x'.repeat(47), 'é'.repeat(24)];
    const ids = async (client: pg.PoolClient, name = 'contacts', withText = true) =>
      (await client.query({ name, ...(withText ? { text } : {}), values: [0] } as pg.QueryConfig)).rows.map((r: { id: string }) => Number(r.id));
    const marked = { statementPerKind: true };
    try {
      for (const id of [11, 14, 12, 15, 14, 11, 15, 12]) expect(await withPgSession(pool, who(id), (client) => ids(client), marked), `user ${id}`).toEqual(sees(id));
      const nested = await withPgSession(pool, who(11), async (client) => {
        const inner = await withPgSession(client, who(14), (c) => ids(c, long));
        await expect(withPgSession(client, who(15), async () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
        return [inner, await ids(client, long), await ids(client, fits), await ids(client, multibyte)];
      }, marked);
      expect(nested).toEqual([sees(14), sees(11), sees(11), sees(11)]);
      // A client of the test's own, nested on itself: the inner call is marked too.
      const own = await pool.connect();
      try {
        expect(await withPgSession(own, who(11), () => withPgSession(own, who(14), (c) => ids(c, 'own client')), marked)).toEqual(sees(14));
      } finally {
        own.release();
      }
      // By name alone, the statement of the acting user's kind, made from the text the name was given with.
      expect(await withPgSession(pool, who(14), (client) => ids(client, 'again'), marked)).toEqual(sees(14));
      expect(await withPgSession(pool, who(15), (client) => ids(client, 'again', false), marked)).toEqual(sees(15));
      // The role asked for is part of the kind.
      expect(await withPgSession(pool, who(11), (client) => ids(client, 'with a role'), { ...marked, role: 'app_user' })).toEqual(sees(11));
      // Unmarked without the option: the name and text as given.
      expect(await withPgSession(pool, who(14), (client) => ids(client, 'plain'))).toEqual(sees(14));
      const { rows } = await pool.query(`SELECT name, statement, generic_plans + custom_plans AS runs FROM pg_prepared_statements WHERE strpos(statement, '/* pg named */') > 0`);
      const expected = [
        [`${digest(11)} contacts`, 4, digest(11)], [`${digest(14)} contacts`, 2, digest(14)], [`${digest(15)} contacts`, 2, digest(15)],
        [`${digest(14)} ${fnv64(long)}`, 1, digest(14)], [`${digest(11)} ${fnv64(long)}`, 1, digest(11)],
        [`${digest(11)} ${fits}`, 1, digest(11)], [`${digest(11)} ${fnv64(multibyte)}`, 1, digest(11)],
        [`${digest(14)} own client`, 1, digest(14)], [`${digest(14)} again`, 1, digest(14)], [`${digest(15)} again`, 1, digest(15)],
        [`${digest(11, 'app_user')} with a role`, 1, digest(11, 'app_user')],
      ].map(([name, runs, d]) => ({ name, statement: `/* rowguard kind ${d} */ ${text}`, runs: String(runs) }));
      const byName = (a: { name: unknown }, b: { name: unknown }) => byCodePoint(String(a.name), String(b.name));
      expect(rows.sort(byName)).toEqual([...expected, { name: 'plain', statement: text, runs: '1' }].sort(byName));
    } finally {
      await pool.end();
    }
  });

  it('pg with prepare: a query with parameters is a prepared statement of the acting user\'s kind, through nesting too; one without parameters, or given as a config, is sent as written', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    const kinds = new Map(await Promise.all([11, 14, 15].map(async (id) => [id, kindOf('', await pathOf(sql, id))] as const)));
    await sql.end();
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    const text = 'SELECT id FROM smartoffice.contacts /* pg prepare */ WHERE id > $1 ORDER BY id';
    const ids = async (client: pg.PoolClient, query = text) => (await client.query(query, [0])).rows.map((r: { id: string }) => Number(r.id));
    try {
      for (const id of [11, 14, 12, 15, 14, 11]) expect(await withPgSession(pool, who(id), (client) => ids(client), { prepare: true }), `user ${id}`).toEqual(sees(id));
      const nested = await withPgSession(pool, who(11), async (client) => [await withPgSession(client, who(15), (c) => ids(c)), await ids(client)], { prepare: true });
      expect(nested).toEqual([sees(15), sees(11)]);
      const asWritten = await withPgSession(pool, who(14), async (client) => [
        (await client.query('SELECT id FROM smartoffice.contacts /* pg prepare, no parameters */ ORDER BY id')).rows.map((r: { id: string }) => Number(r.id)),
        (await client.query({ text: 'SELECT id FROM smartoffice.contacts /* pg prepare, config */ WHERE id > $1 ORDER BY id', values: [0] })).rows.map((r: { id: string }) => Number(r.id)),
      ], { prepare: true });
      expect(asWritten).toEqual([sees(14), sees(14)]);
      expect(await withPgSession(pool, who(14), (client) => ids(client, text.replace('pg prepare', 'pg unprepared')))).toEqual(sees(14));
      // statementPerKind: false leaves every statement as written, prepare or not.
      expect(await withPgSession(pool, who(14), (client) => ids(client, text.replace('pg prepare', 'pg unprepared')), { prepare: true, statementPerKind: false })).toEqual(sees(14));
      const { rows } = await pool.query(`SELECT name, statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements WHERE strpos(statement, '/* pg') > 0 AND strpos(statement, 'pg_prepared_statements') = 0`);
      const expected = [[11, 4], [14, 2], [15, 2]].map(([id, runs]) => ({ name: `${kinds.get(id!)!.digest} ${fnv64(text)}`, statement: kinds.get(id!)!.mark + text, runs }));
      const byName = (a: { name: string }, b: { name: string }) => byCodePoint(a.name, b.name);
      expect((rows as { name: string }[]).sort(byName)).toEqual(expected.sort(byName));
    } finally {
      await pool.end();
    }
  });

  it('postgres.js sends the callback\'s first statements with set_session once the user has acted on the client (unmarked, always); they run only if it succeeds', async () => {
    const proxy = await recordingProxy(appUrl);
    const sql = postgres(proxy.url, { max: 1, onnotice: () => {} });
    const unmarked = postgres(proxy.url, { max: 1, onnotice: () => {}, prepare: false });
    const admin = db.current.admin;
    /** Whether the client had an answer from the server between sending set_session and sending the statement tagged `tag`. */
    const waited = (tag: string) => {
      const at = proxy.chunks.findIndex((c) => c.from === 'client' && c.text.includes(tag));
      let session = at;
      while (session >= 0 && !(proxy.chunks[session]!.from === 'client' && proxy.chunks[session]!.text.includes('set_session'))) session--;
      expect([tag, at >= 0, session >= 0]).toEqual([tag, true, true]);
      return proxy.chunks.slice(session, at).some((c) => c.from === 'server');
    };
    const contacts = (tx: postgres.TransactionSql, tag: string) => tx.unsafe(`SELECT id FROM smartoffice.contacts /* ${tag} */ WHERE id > $1 ORDER BY id`, [0], { prepare: true });
    const ids = (rows: readonly Record<string, unknown>[]) => rows.map((r) => Number(r.id));
    try {
      // The first transaction of a user on the client waits for set_session's answer (its kind
      // marks the statements); later ones send the first statement behind it.
      expect(ids(await withPostgresSession(sql, who(11), (tx) => contacts(tx, 'john first')))).toEqual(sees(11));
      expect(ids(await withPostgresSession(sql, who(11), (tx) => contacts(tx, 'john again')))).toEqual(sees(11));
      expect(ids(await withPostgresSession(sql, who(12), (tx) => contacts(tx, 'tom first')))).toEqual(sees(12));
      expect(ids(await withPostgresSession(unmarked, who(15), (tx) => contacts(tx, 'bea unmarked')))).toEqual(sees(15));
      expect([waited('john first'), waited('john again'), waited('tom first'), waited('bea unmarked')]).toEqual([true, false, true, false]);

      // A user who has acted on the client and no longer exists: the statements sent behind
      // set_session are refused (the transaction is aborted), the write lands nowhere, and
      // withSession fails with set_session's own error. The connection serves the next user.
      await admin.unsafe(`INSERT INTO smartoffice.users (id, office_id, name) VALUES (9901, (SELECT office_id FROM smartoffice.users WHERE id = 11), 'Gone')`);
      await withPostgresSession(sql, who(9901), (tx) => contacts(tx, 'gone first'));
      await admin.unsafe(`DELETE FROM smartoffice.users WHERE id = 9901`);
      const inside: unknown[] = [];
      const write = (tx: postgres.TransactionSql, tag: string) =>
        tx.unsafe(`INSERT INTO smartoffice.contacts (id, office_id, name) SELECT 9902, office_id, 'written /* ${tag} */' FROM smartoffice.users WHERE id = 11`).then(
          () => inside.push('written'),
          (e: { code?: string }) => inside.push(e.code),
        );
      await expect(withPostgresSession(sql, who(9901), (tx) => write(tx, 'gone again'))).rejects.toMatchObject({ code: '28000' });
      await expect(withPostgresSession(unmarked, { schema: 'smartoffice', id: 999999 }, (tx) => write(tx, 'never'))).rejects.toMatchObject({ code: '28000' });
      expect(inside).toEqual(['25P02', '25P02']);
      expect([waited('gone again'), waited('never')]).toEqual([false, false]);
      expect((await admin.unsafe(`SELECT count(*)::int AS n FROM smartoffice.contacts WHERE id = 9902`))[0]!.n).toBe(0);
      // The callback's own error comes second to set_session's, and a callback that throws at once is waited for too.
      await expect(withPostgresSession(unmarked, { schema: 'smartoffice', id: 999999 }, () => { throw new Planned(); })).rejects.toMatchObject({ code: '28000' });
      await expect(withPostgresSession(sql, who(11), () => { throw new Planned(); })).rejects.toBeInstanceOf(Planned);
      expect(ids(await withPostgresSession(sql, who(11), (tx) => contacts(tx, 'john after')))).toEqual(sees(11));
      expect(ids(await withPostgresSession(unmarked, who(11), (tx) => contacts(tx, 'john unmarked after')))).toEqual(sees(11));
    } finally {
      await admin.unsafe(`DELETE FROM smartoffice.users WHERE id = 9901`);
      await sql.end();
      await unmarked.end();
      await proxy.close();
    }
  });

  it('postgres.js remembers the last REMEMBERED users per client and role, each client its own', () => {
    const [a, b] = [{}, {}];
    const user = (id: number): Identity => ({ schema: 'smartoffice', id });
    for (let id = 0; id <= REMEMBERED; id++) remember(a, user(id), undefined, `mark ${id}`);
    // Acting again makes a user the newest: user 1 stays when user 2 is forgotten.
    remember(a, user(1), undefined, 'mark 1 again');
    remember(a, user(REMEMBERED + 1), undefined, 'last');
    expect([0, 1, 2, 3].map((id) => lastKind(a, user(id), undefined))).toEqual([undefined, 'mark 1 again', undefined, 'mark 3']);
    expect(lastKind(a, user(REMEMBERED + 1), undefined)).toBe('last');
    expect([lastKind(a, user(3), 'app_user'), lastKind(b, user(3), undefined), lastKind(a, { schema: 'collect', id: 3 }, undefined)]).toEqual([undefined, undefined, undefined]);
    // A string id and a number are one user, as set_session reads them.
    expect(lastKind(a, { schema: 'smartoffice', id: '3' }, undefined)).toBe('mark 3');
  });

  it('postgres.js: a user whose kind changed since their last transaction on the client has that transaction\'s first statements marked with the old kind, and the statements after set_session\'s answer with the new', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    const admin = db.current.admin;
    const query = (tag: string) => `SELECT id FROM smartoffice.contacts /* ${tag} */ WHERE id > $1 ORDER BY id`;
    const ids = (rows: readonly Record<string, unknown>[]) => rows.map((r) => Number(r.id));
    try {
      const before = await markOf(sql, 11);
      expect(ids(await withPostgresSession(sql, who(11), (tx) => tx.unsafe(query('kind before'), [0], { prepare: true })))).toEqual(sees(11));
      // An office administrator is a kind of user of their own (Ada's); John's contacts stay his.
      await admin.unsafe(`UPDATE smartoffice.users SET is_admin = true WHERE id = 11`);
      const after = await markOf(sql, 11);
      expect(after).not.toBe(before);
      const seen = await withPostgresSession(sql, who(11), async (tx) => [
        ids(await tx.unsafe(query('sent with set_session'), [0], { prepare: true })),
        ids(await tx.unsafe(query('sent after its answer'), [0], { prepare: true })),
      ]);
      expect(seen).toEqual([sees(11), sees(11)]);
      expect(await preparedHere(sql, '/* sent with set_session */')).toEqual([[before + query('sent with set_session'), 1]]);
      expect(await preparedHere(sql, '/* sent after its answer */')).toEqual([[after + query('sent after its answer'), 1]]);
      // The next transaction sends its first statement with the new kind.
      await withPostgresSession(sql, who(11), (tx) => tx.unsafe(query('next transaction'), [0], { prepare: true }));
      expect(await preparedHere(sql, '/* next transaction */')).toEqual([[after + query('next transaction'), 1]]);

      // The answers to set_session and to the first statement in one chunk, and the second
      // statement issued as soon as the first is answered (in its own reaction, not after an
      // await): it still carries the new kind, since set_session's answer is read first.
      const merging = await recordingProxy(appUrl, { hold: 5 });
      const merged = postgres(merging.url, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`UPDATE smartoffice.users SET is_admin = false WHERE id = 11`);
        // The first statement prepared under the old kind, so the next run sends it at once.
        await withPostgresSession(merged, who(11), (tx) => tx.unsafe(query('merged, first'), [0], { prepare: true }));
        await admin.unsafe(`UPDATE smartoffice.users SET is_admin = true WHERE id = 11`);
        const rows = await withPostgresSession(merged, who(11), (tx) =>
          tx.unsafe(query('merged, first'), [0], { prepare: true }).then(() => tx.unsafe(query('merged, second'), [0], { prepare: true })),
        );
        expect(ids(rows)).toEqual(sees(11));
        // One chunk answered set_session (SHOW search_path) and the first statement (John's four rows).
        expect(merging.chunks.some((c) => c.from === 'server' && c.text.includes('search_path') && c.text.includes('SELECT 4'))).toBe(true);
        expect(await preparedHere(merged, '/* merged, first */')).toEqual([[before + query('merged, first'), 2]]);
        expect(await preparedHere(merged, '/* merged, second */')).toEqual([[after + query('merged, second'), 1]]);
      } finally {
        await merged.end();
        await merging.close();
      }
    } finally {
      await admin.unsafe(`UPDATE smartoffice.users SET is_admin = false WHERE id = 11`);
      await sql.end();
    }
  });

  it('postgres.js refuses a statement sent on a withSession handle once its transaction is over, also when its connection was lost while the callback ran', async () => {
    const ids = (rows: readonly Record<string, unknown>[]) => rows.map((r) => Number(r.id));
    const current = (tx: postgres.TransactionSql) => tx`SELECT smartoffice.current_user_id() AS id`.then((r) => r[0]!.id as string | null);
    for (const options of [{}, { prepare: false }]) {
      const sql = postgres(appUrl, { max: 1, onnotice: () => {}, ...options });
      try {
        let kept: postgres.TransactionSql | undefined;
        let savepointKept: postgres.TransactionSql | undefined;
        await withPostgresSession(sql, who(11), async (tx) => {
          kept = tx;
          await tx.savepoint(async (sp) => void (savepointKept = sp));
        });
        const refused = /transaction is over/;
        await expect(kept!`SELECT 1`).rejects.toThrow(refused);
        await expect(kept!.unsafe('SELECT 1')).rejects.toThrow(refused);
        await expect(savepointKept!`SELECT 1`).rejects.toThrow(refused);
        await expect(kept!.savepoint(async () => 1)).rejects.toThrow(refused);
        await expect(withPostgresSession(kept!, who(12), async () => 1)).rejects.toThrow(refused);
        // A query made in the transaction and run only after it: refused too.
        let late: Promise<unknown> | undefined;
        await withPostgresSession(sql, who(11), async (tx) => void (late = tx.unsafe('SELECT 1')));
        await expect(late!).rejects.toThrow(refused);
        expect(ids(await withPostgresSession(sql, who(11), (tx) => tx`SELECT id FROM smartoffice.contacts ORDER BY id`))).toEqual(sees(11));
      } finally {
        await sql.end();
      }
    }

    // The connection is lost while set_session is on its way (John has acted on the client, so
    // his callback runs at once): postgres.js gives up on the transaction and reconnects for the
    // next user, Tom, while John's callback goes on. John's later statement would run in Tom's
    // transaction (as Tom); it is refused, and Tom's transaction is untouched.
    let cutting = false;
    const proxy = await recordingProxy(appUrl, { cut: (text) => cutting && text.includes(`set_session(E'11')`) });
    const sql = postgres(proxy.url, { max: 1, onnotice: () => {} });
    try {
      await withPostgresSession(sql, who(11), async () => 1);
      cutting = true;
      let tomRuns!: () => void;
      const tomRunning = new Promise<void>((resolve) => (tomRuns = resolve));
      let johnDone!: (outcome: unknown) => void;
      const johnLate = new Promise<unknown>((resolve) => (johnDone = resolve));
      const john = withPostgresSession(sql, who(11), async (tx) => {
        await tx`SELECT 1`.catch(() => {});
        await tomRunning;
        johnDone(await current(tx).then((id) => ({ ran: id }), (e: Error) => ({ refused: e.message })));
        return 'john';
      });
      await expect(john).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
      const tom = await withPostgresSession(sql, who(12), async (tx) => {
        tomRuns();
        const lateJohn = await johnLate;
        return { lateJohn, me: await current(tx), rows: ids(await tx`SELECT id FROM smartoffice.contacts ORDER BY id`) };
      });
      expect(tom).toEqual({ lateJohn: { refused: expect.stringMatching(/transaction is over/) }, me: '12', rows: sees(12) });
    } finally {
      await sql.end();
      await proxy.close();
    }
  });

  it('a client made with prepare: false, which prepares nothing, has its statements left as written and asks nothing more of set_session', async () => {
    const sent: string[] = [];
    const sql = postgres(appUrl, { max: 1, onnotice: () => {}, prepare: false, debug: (_connection, query) => void sent.push(query) });
    try {
      const rows = await withPostgresSession(sql, who(14), async (tx) => tx`SELECT id FROM smartoffice.contacts WHERE id > ${0} ORDER BY id`);
      expect(rows.map((r) => Number(r.id))).toEqual(sees(14));
      expect(sent.filter((q) => q.includes('smartoffice'))).toEqual([`SELECT "smartoffice".set_session(E'14')`, 'SELECT id FROM smartoffice.contacts WHERE id > $1 ORDER BY id']);
    } finally {
      await sql.end();
    }
  });

  describe('Kysely over sessionPool', () => {
    const text = 'SELECT id FROM smartoffice.contacts /* kysely */ WHERE id > $1 ORDER BY id';
    const ids = async (trx: Kysely<Record<string, never>>, query = text) => (await trx.executeQuery(CompiledQuery.raw(query, [0]))).rows.map((r) => Number((r as { id: string }).id));
    /** A Kysely over sessionPool of one client that records what pg is asked to send, in `sent`. */
    const kyselyRecording = (sent: string[]) => new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(recordingPool(sent)) }) });
    /** This describe's statements on the one connection: name, text and runs. */
    const prepared = async (kdb: Kysely<Record<string, never>>, tag: string) =>
      (await kdb.executeQuery(CompiledQuery.raw(`SELECT name, statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements WHERE strpos(statement, '${tag}') > 0 AND strpos(statement, 'pg_prepared_statements') = 0`)))
        .rows.map((r) => r as { name: string; statement: string; runs: number })
        .sort((a, b) => byCodePoint(a.name, b.name));

    it('BEGIN goes with set_session; a statement with parameters is prepared once per kind, named by the kind and the text; every row is the acting user\'s', async () => {
      const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
      const paths = new Map(await Promise.all([11, 14, 15].map(async (id) => [id, await pathOf(sql, id)] as const)));
      await sql.end();
      const kind = (id: number) => kindOf('', paths.get(id)!);
      const sent: string[] = [];
      const kdb = kyselyRecording(sent);
      try {
        for (const id of [11, 14, 12, 15, 14, 11, 15, 12]) expect(await withKyselySession(kdb, who(id), (trx) => ids(trx)), `user ${id}`).toEqual(sees(id));
        expect(await prepared(kdb, '/* kysely */')).toEqual(
          [[11, 4], [14, 2], [15, 2]].map(([id, runs]) => ({ name: `${kind(id!).digest} ${fnv64(text)}`, statement: kind(id!).mark + text, runs })).sort((a, b) => byCodePoint(a.name, b.name)),
        );
        // One message before the statement, where Kysely alone sends BEGIN and set_session in two.
        sent.length = 0;
        await withKyselySession(kdb, who(14), (trx) => ids(trx));
        expect(sent).toEqual([`begin; ${setSessionText(who(14))}; ${KIND_TEXT}`, kind(14).mark + text, 'commit']);
        // Unmarked when asked: BEGIN still goes with set_session, the statement as written and unnamed.
        sent.length = 0;
        expect(await withKyselySession(kdb, who(15), (trx) => ids(trx, text.replace('kysely', 'kysely unmarked')), { statementPerKind: false })).toEqual(sees(15));
        expect(sent).toEqual([`begin; ${setSessionText(who(15))}`, text.replace('kysely', 'kysely unmarked'), 'commit']);
        expect(await prepared(kdb, '/* kysely unmarked */')).toEqual([]);
        // With a role: SET LOCAL ROLE in the same message, and the role is part of the kind.
        sent.length = 0;
        expect(await withKyselySession(kdb, who(11), (trx) => ids(trx), { role: 'app_user' })).toEqual(sees(11));
        expect(sent).toEqual([`begin; ${setSessionText(who(11), 'app_user')}; ${KIND_TEXT}`, kindOf('app_user', paths.get(11)!).mark + text, 'commit']);
        // Outside withSession the pool is pg's own: Kysely's transaction sends its BEGIN alone, nothing is prepared.
        sent.length = 0;
        expect(await kdb.transaction().execute((trx) => ids(trx, text.replace('kysely', 'kysely outside')))).toEqual([]);
        expect(sent).toEqual(['begin', text.replace('kysely', 'kysely outside'), 'commit']);
        expect(await prepared(kdb, '/* kysely outside */')).toEqual([]);
      } finally {
        await kdb.destroy();
      }
    });

    it('sessionPool(pool, { prepare: false }) prepares nothing and asks no kind (behind PgBouncer\'s transaction pooling), and still sends BEGIN with set_session', async () => {
      const sent: string[] = [];
      const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(recordingPool(sent), { prepare: false }) }) });
      const unprepared = text.replace('kysely', 'kysely pool unprepared');
      try {
        for (const id of [11, 14]) expect(await withKyselySession(kdb, who(id), (trx) => ids(trx, unprepared))).toEqual(sees(id));
        expect(sent).toEqual([11, 14].flatMap((id) => [`begin; ${setSessionText(who(id))}`, unprepared, 'commit']));
        expect(await prepared(kdb, '/* kysely pool unprepared */')).toEqual([]);
      } finally {
        await kdb.destroy();
      }
    });

    it('a nested withSession\'s statements carry its kind, and the outer kind returns after it, failed or not', async () => {
      const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
      const [m11, m14] = [await markOf(sql, 11), await markOf(sql, 14)];
      await sql.end();
      const kdb = kyselyRecording([]);
      const tagged = (tag: string) => text.replace('kysely', tag);
      try {
        const seen = await withKyselySession(kdb, who(11), async (trx) => {
          const inner = await withKyselySession(trx, who(14), (t) => ids(t, tagged('kysely nested')));
          await expect(withKyselySession(trx, who(15), async (t) => { await ids(t, tagged('kysely failed')); throw new Planned(); })).rejects.toBeInstanceOf(Planned);
          return [inner, await ids(trx, tagged('kysely outer'))];
        });
        expect(seen).toEqual([sees(14), sees(11)]);
        expect((await prepared(kdb, '/* kysely nested */')).map((r) => r.statement)).toEqual([m14 + tagged('kysely nested')]);
        expect((await prepared(kdb, '/* kysely outer */')).map((r) => r.statement)).toEqual([m11 + tagged('kysely outer')]);
      } finally {
        await kdb.destroy();
      }
    });

    it('set_session failing in the message with BEGIN rolls that transaction back: the caller sees 28000, and the connection serves the next user', async () => {
      const sent: string[] = [];
      const kdb = kyselyRecording(sent);
      try {
        let ran = false;
        await expect(withKyselySession(kdb, { schema: 'smartoffice', id: 999999 }, async () => (ran = true))).rejects.toMatchObject({ code: '28000' });
        expect(ran).toBe(false);
        expect(sent.at(-1)).toBe('ROLLBACK');
        expect(await withKyselySession(kdb, who(14), (trx) => ids(trx))).toEqual(sees(14));
        // Not in a transaction after it: a statement outside withSession commits on its own.
        expect((await kdb.executeQuery(CompiledQuery.raw('SELECT now() = statement_timestamp() AS alone'))).rows).toEqual([{ alone: true }]);
      } finally {
        await kdb.destroy();
      }
    });

    it('a kind that cannot be read (a pool whose type parsers turn text into objects) fails the call and leaves no transaction or identity on the connection', async () => {
      const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 25 ? (v: string) => ({ text: v }) : pg.types.getTypeParser(oid, format)) };
      const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(new pg.Pool({ connectionString: appUrl, max: 1, types } as pg.PoolConfig)) }) });
      try {
        await expect(withKyselySession(kdb, who(11), async () => 1)).rejects.toThrow(/gave no text/);
        const [row] = (await kdb.executeQuery(CompiledQuery.raw('SELECT now() = statement_timestamp() AS alone, smartoffice.current_user_id() AS acting'))).rows;
        expect(row).toEqual({ alone: true, acting: null });
        expect(await withKyselySession(kdb, who(14), (trx) => ids(trx), { statementPerKind: false })).toEqual(sees(14));
      } finally {
        await kdb.destroy();
      }
    });

    it('a transaction the callback opens over a sessionPool is not given the identity, whatever pool the withSession itself runs on', async () => {
      const plain = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: appUrl, max: 1 }) }) });
      const other = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(new pg.Pool({ connectionString: appUrl, max: 1 })) }) });
      const acting = async (k: Kysely<Record<string, never>>) => (await k.executeQuery(CompiledQuery.raw('SELECT smartoffice.current_user_id() AS id'))).rows[0];
      try {
        for (const outer of [plain, kyselyRecording([])]) {
          const seen = await withKyselySession(outer, who(11), async (trx) => [
            await acting(trx),
            await other.transaction().execute((t) => acting(t)),
            await other.transaction().setIsolationLevel('serializable').execute((t) => ids(t)),
          ]);
          expect(seen).toEqual([{ id: '11' }, { id: null }, []]);
          if (outer !== plain) await outer.destroy();
        }
      } finally {
        await plain.destroy();
        await other.destroy();
      }
    });

    it('one pg Pool wrapped twice keeps each wrapper\'s options', async () => {
      const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
      const preparing = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(pool) }) });
      const plain = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(pool, { prepare: false }) }) });
      const twice = text.replace('kysely', 'kysely wrapped twice');
      try {
        expect(await withKyselySession(preparing, who(14), (trx) => ids(trx))).toEqual(sees(14));
        expect(await withKyselySession(plain, who(14), (trx) => ids(trx, twice))).toEqual(sees(14));
        expect(await prepared(plain, '/* kysely wrapped twice */')).toEqual([]);
      } finally {
        await preparing.destroy();
        await plain.destroy().catch(() => {});
      }
    });

    it('recognizes the texts setSessionText makes, and nothing else', () => {
      for (const id of [11, 'nina', "o'brien", 'ā\\x', null]) {
        expect(isSetSessionText(setSessionText({ schema: 'collect', id: id as string }))).toBe(true);
        expect(isSetSessionText(setSessionText({ schema: 'collect', id: id as string }, 'app_user'))).toBe(true);
      }
      for (const other of ["SELECT collect.set_session('x')", `${setSessionText({ schema: 'collect', id: 1 })}; SELECT 1`, `SELECT "collect".set_session(E'a'); SELECT 'b')`, 'SAVEPOINT rowguard_session_1']) {
        expect(isSetSessionText(other), other).toBe(false);
      }
    });
  });

  /**
   * The two ways the runtime prepares statements with parameters for a kind of user on a pg pool
   * of one connection: `run` as user `id` in withSession, `plain` outside it, and the pool itself.
   */
  const preparing = {
    'Kysely over sessionPool': () => {
      const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
      const kdb = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: sessionPool(pool) }) });
      return {
        pool,
        run: (id: number, text: string, values: unknown[]) => withKyselySession(kdb, who(id), async (trx) => (await trx.executeQuery(CompiledQuery.raw(text, values))).rows),
        plain: async (text: string) => (await kdb.executeQuery(CompiledQuery.raw(text))).rows,
        end: () => kdb.destroy(),
      };
    },
    'pg with prepare': () => {
      const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
      return {
        pool,
        run: (id: number, text: string, values: unknown[]) => withPgSession(pool, who(id), async (client) => (await client.query(text, values)).rows, { prepare: true }),
        plain: async (text: string) => (await pool.query(text)).rows,
        end: () => pool.end(),
      };
    },
  };

  for (const [via, make] of Object.entries(preparing)) {
    describe(`${via}: statements with parameters prepared per kind, and migrations`, () => {
      /** The statements on the connection whose text holds `tag`: name, text and runs. */
      const statements = async (plain: (text: string) => Promise<unknown[]>, tag: string) =>
        ((await plain(`SELECT name, statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements WHERE strpos(statement, '${tag}') > 0 AND strpos(statement, 'pg_prepared_statements') = 0`)) as { name: string; statement: string; runs: number }[])
          .sort((x, y) => byCodePoint(x.name, y.name));

      it('a statement prepared before a migration fails once on each connection and kind, and is then parsed again under a new name, the stale one deallocated: changed result columns, changed column types, statements dropped by hand', async () => {
        const admin = db.current.admin;
        await admin.unsafe(`DROP TABLE IF EXISTS public.kind_columns;
          CREATE TABLE public.kind_columns (id int, n int, doc text); INSERT INTO public.kind_columns VALUES (1, 1, 'a');
          GRANT SELECT, INSERT, UPDATE ON public.kind_columns TO app_user`);
        const { run, plain, end } = make();
        const star = () => run(14, 'SELECT * FROM public.kind_columns WHERE id > $1 ORDER BY n', [0]);
        const insert = (n: string) => run(14, 'INSERT INTO public.kind_columns (id, n) VALUES (2, $1) RETURNING n', [n]);
        const update = () => run(14, 'UPDATE public.kind_columns SET doc = $1 WHERE id = 1 RETURNING doc', ['{"a": 1}']);
        const parts = async () => (await statements(plain, 'public.kind_columns')).map((r) => [r.statement.slice(r.statement.indexOf('*/') + 3, r.statement.indexOf('*/') + 9), r.name.split(' ').length]);
        try {
          expect(await star()).toEqual([{ id: 1, n: 1, doc: 'a' }]);
          expect(await insert('5')).toEqual([{ n: 5 }]);
          expect(await update()).toEqual([{ doc: '{"a": 1}' }]);
          // An insert's error of its own (a value out of range) costs a parse, no more.
          await expect(insert('3000000000')).rejects.toMatchObject({ code: '22003' });
          await admin.unsafe('DELETE FROM public.kind_columns WHERE id = 2; ALTER TABLE public.kind_columns ALTER COLUMN n TYPE bigint, ALTER COLUMN doc TYPE jsonb USING to_jsonb(doc)');
          await expect(star()).rejects.toMatchObject({ code: '0A000' });
          await expect(update()).rejects.toMatchObject({ code: '42804' });
          expect(await star()).toEqual([{ id: 1, n: '1', doc: '{"a": 1}' }]);
          expect(await insert('3000000000')).toEqual([{ n: '3000000000' }]);
          expect(await update()).toEqual([{ doc: { a: 1 } }]);
          expect(await star()).toHaveLength(2);
          // The stale statements were deallocated once their transactions were over: one of each text is left.
          expect((await parts()).sort()).toEqual([['INSERT', 3], ['SELECT', 3], ['UPDATE', 3]]);
          // Dropped by hand (DEALLOCATE ALL, DISCARD ALL) outside withSession: pg still takes them for prepared.
          await plain('DEALLOCATE ALL');
          await expect(star()).rejects.toMatchObject({ code: '26000' });
          expect(await star()).toHaveLength(2);
        } finally {
          await end();
          await admin.unsafe('DROP TABLE public.kind_columns');
        }
      });

      it('a statement whose only runs before a migration failed after its parse (bad input, a duplicate key) is renamed after it too; a policy\'s refusal renames nothing', async () => {
        const admin = db.current.admin;
        await admin.unsafe(`DROP TABLE IF EXISTS public.kind_first; CREATE TABLE public.kind_first (id int PRIMARY KEY, n int);
          INSERT INTO public.kind_first VALUES (1, 1); GRANT SELECT, INSERT ON public.kind_first TO app_user`);
        const { run, plain, end } = make();
        const star = (n: string) => run(14, 'SELECT * FROM public.kind_first WHERE n = $1', [n]);
        const insert = (id: number) => run(14, 'INSERT INTO public.kind_first (id, n) VALUES ($1, 1) RETURNING *', [id]);
        // A policy's refusal (42501) on a statement parsed before: the call's own error, no new name.
        const refused = () => run(14, 'INSERT INTO smartoffice.contacts (id, office_id, name) VALUES ($1, 1, $2)', [90001, 'refused']);
        try {
          await expect(star('x')).rejects.toMatchObject({ code: '22P02' });
          await expect(insert(1)).rejects.toMatchObject({ code: '23505' });
          for (let i = 0; i < 3; i++) await expect(refused()).rejects.toMatchObject({ code: '42501' });
          await admin.unsafe('ALTER TABLE public.kind_first ADD COLUMN extra text');
          await expect(star('1')).rejects.toMatchObject({ code: '0A000' });
          await expect(insert(2)).rejects.toMatchObject({ code: '0A000' });
          expect(await star('1')).toEqual([{ id: 1, n: 1, extra: null }]);
          expect(await insert(2)).toEqual([{ id: 2, n: 1, extra: null }]);
          expect((await statements(plain, 'public.kind_first')).map((r) => r.name.split(' ').length)).toEqual([3, 3]);
          expect((await statements(plain, 'VALUES ($1, 1, $2)')).map((r) => [r.name.split(' ').length, r.runs])).toEqual([[2, 3]]);
        } finally {
          await end();
          await admin.unsafe('DROP TABLE public.kind_first');
        }
      });

      it('a connection reset by hand (DISCARD ALL) between transactions costs one failed run, not one per statement', async () => {
        const { run, plain, end } = make();
        const texts = [1, 2, 3].map((n) => `SELECT id FROM smartoffice.contacts /* kind reset ${n} */ WHERE id > $1 ORDER BY id`);
        const outcomes: string[] = [];
        try {
          for (let round = 0; round < 3; round++) {
            for (const text of texts) {
              outcomes.push(await run(14, text, [0]).then((rows) => (JSON.stringify(rows.map((r) => Number((r as { id: string }).id))) === JSON.stringify(sees(14)) ? 'ok' : 'wrong'), (e: { code?: string }) => e.code ?? 'error'));
            }
            await plain('DISCARD ALL');
          }
          // Each reset's first run of a statement parsed before it fails, and retires them all.
          expect(outcomes).toEqual(['ok', 'ok', 'ok', '26000', 'ok', 'ok', 'ok', '26000', 'ok']);
        } finally {
          await end();
        }
      });

      it(`a client keeps at most ${KEPT_PER_CLIENT} statements of kinds: past that, the least recently run is deallocated and parsed again when it runs again`, async () => {
        const { run, plain, end } = make();
        const texts = Array.from({ length: KEPT_PER_CLIENT + 20 }, (_, n) => `SELECT $1::int + ${n} AS n /* kind kept */`);
        try {
          // In one transaction per 50 statements, each its own text.
          for (let i = 0; i < texts.length; i += 50) {
            await run(14, 'SELECT $1::int AS n /* kind kept batch */', [0]);
            for (const text of texts.slice(i, i + 50)) await run(14, text, [1]);
          }
          const kept = await statements(plain, '/* kind kept');
          expect(kept.length).toBeLessThanOrEqual(KEPT_PER_CLIENT);
          // The first text was retired; it runs again under a new name.
          expect(await run(14, texts[0]!, [1])).toEqual([{ n: 1 }]);
          expect((await statements(plain, '$1::int + 0 AS n')).map((r) => r.name.split(' ').length)).toEqual([3]);
        } finally {
          await end();
        }
      });

      it('bad input alternating with good does not grow the statements on the server or pg\'s record of them', async () => {
        const { pool, run, plain, end } = make();
        const lookup = (id: string) => run(14, 'SELECT id FROM smartoffice.contacts /* kind input */ WHERE id = $1', [id]);
        try {
          for (let i = 0; i < 40; i++) {
            if (i % 2) await expect(lookup('nope')).rejects.toMatchObject({ code: '22P02' });
            else expect(await lookup('103')).toEqual([{ id: '103' }]);
          }
          expect((await statements(plain, '/* kind input */')).length).toBeLessThanOrEqual(1);
          const client = await pool.connect();
          try {
            const names = Object.keys((client as unknown as { connection: { parsedStatements: Record<string, string> } }).connection.parsedStatements);
            expect(names.filter((n) => /^[0-9a-f]{16} [0-9a-f]{16}/.test(n)).length).toBeLessThanOrEqual(2);
          } finally {
            client.release();
          }
        } finally {
          await end();
        }
      });
    });
  }
});

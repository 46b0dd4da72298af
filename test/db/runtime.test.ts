// The application runtime against real PostgreSQL: thousands of interleaved transactions with
// random identities on a small pool, some of them failing, for each client library. Every
// transaction must see exactly its persona's rows, and the pool must carry no identity afterwards.
import { Kysely, PostgresDialect, sql as ksql, type Transaction } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { beforeAll, describe, expect, it } from 'vitest';
import { samples } from '../../generator/cli/samples/index.ts';
import { withKyselySession, withPgSession, withPostgresSession, type Identity } from '../../runtime/index.ts';
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
          const rows = await tx.unsafe(`SELECT id FROM ${c.table} ORDER BY id`);
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
    try {
      const { wrong, failed } = await hammer((c, fail) =>
        withPgSession(pool, c.identity, async (client) => {
          const { rows } = await client.query(`SELECT id FROM ${c.table} ORDER BY id`);
          if (fail) throw new Planned();
          return rows.map((r: { id: unknown }) => String(r.id));
        }),
      );
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
});

describe('runtime: set_session prepared once per connection', () => {
  const john: Identity = { schema: 'smartoffice', id: 11 };
  const johnSees = [100, 102, 103, 104];
  const contacts = 'SELECT id FROM smartoffice.contacts ORDER BY id';
  const prepared = `SELECT name, statement FROM pg_prepared_statements WHERE statement LIKE '%set_session%' ORDER BY name`;

  it('postgres.js prepares it unless its instance or the call says not to', async () => {
    const seenWith = async (options: postgres.Options<Record<string, never>>, sessionOptions?: { prepare?: boolean }) => {
      const sql = postgres(appUrl, { max: 1, onnotice: () => {}, ...options });
      try {
        // The second transaction on the same connection finds the first one's statement.
        await withPostgresSession(sql, john, async () => undefined, sessionOptions);
        return await withPostgresSession(sql, john, async (tx) => ({
          rows: (await tx.unsafe(contacts)).map((r) => Number(r.id)),
          statements: (await tx.unsafe(prepared)).map((r) => String(r.statement)),
        }), sessionOptions);
      } finally {
        await sql.end();
      }
    };
    expect(await seenWith({})).toEqual({ rows: johnSees, statements: ['SELECT "smartoffice".set_session($1)'] });
    // A pooler in transaction mode: the instance's prepare: false wins (test/scale/pgbouncer.scale.ts).
    expect(await seenWith({ prepare: false })).toEqual({ rows: johnSees, statements: [] });
    expect(await seenWith({}, { prepare: false })).toEqual({ rows: johnSees, statements: [] });
  });

  it('pg names it only when asked, and reuses it across transactions and nested sessions', async () => {
    const pool = new pg.Pool({ connectionString: appUrl, max: 1 });
    try {
      const run = (prepare?: boolean) =>
        withPgSession(pool, john, async (client) => ({
          rows: (await client.query(contacts)).rows.map((r: { id: string }) => Number(r.id)),
          inner: await withPgSession(client, { schema: 'smartoffice', id: 12 }, async (c) => (await c.query(contacts)).rows.map((r: { id: string }) => Number(r.id)), { prepare }),
          names: (await client.query(prepared)).rows.map((r: { name: string }) => r.name),
        }), { prepare });
      expect(await run()).toEqual({ rows: johnSees, inner: [101, 102, 103, 105], names: [] });
      for (let i = 0; i < 3; i++) expect(await run(true)).toEqual({ rows: johnSees, inner: [101, 102, 103, 105], names: ['rowguard_set_session_smartoffice'] });
    } finally {
      await pool.end();
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

  it('refuses a schema name that is not an identifier, before touching the database', async () => {
    const sql = postgres(appUrl, { max: 1, onnotice: () => {} });
    try {
      await expect(withPostgresSession(sql, { schema: 'x"; drop table y; --', id: 1 }, async () => 1)).rejects.toThrow(/not a lower-case SQL identifier/);
    } finally {
      await sql.end();
    }
  });
});

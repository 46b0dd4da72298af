// withSession for postgres.js.
import type { Sql, TransactionSql } from 'postgres';
import { setSessionText, type Identity, type SessionOptions } from './identity.ts';

type AnySql = Sql<Record<string, unknown>> | TransactionSql<Record<string, unknown>>;
/**
 * The identity in force in one transaction, shared by its handle and every savepoint's: a nested
 * call restores what was in force when it began, whichever of the handles it was given.
 */
const sessions = new WeakMap<object, { current: Identity }>();

/**
 * `set_session` (after `SET LOCAL ROLE` when given a role) as one simple query (see
 * setSessionText): one round trip. Exported for the benchmark, which sends it the same way.
 */
export async function setSession(sql: Pick<TransactionSql<Record<string, unknown>>, 'unsafe'>, identity: Identity, role?: string): Promise<void> {
  await sql.unsafe(setSessionText(identity, role));
}

/**
 * Runs `fn` in one transaction acting as `identity`: BEGIN, `<schema>.set_session(id)`, `fn`,
 * COMMIT — or ROLLBACK when `fn` throws (the error is rethrown). The identity is transaction-local,
 * so it never reaches the next user of the pooled connection. Inside another withSession the call
 * runs in a savepoint, and the identity in force before it is back afterwards.
 */
export async function withSession<T>(sql: AnySql, identity: Identity, fn: (tx: TransactionSql<Record<string, unknown>>) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const session = sessions.get(sql);
  if (session && 'savepoint' in sql) {
    const tx = sql as TransactionSql<Record<string, unknown>>;
    const outer = session.current;
    try {
      return (await tx.savepoint(async (sp) => {
        await setSession(sp, identity);
        session.current = identity;
        sessions.set(sp, session);
        return fn(sp);
      })) as T;
    } finally {
      session.current = outer;
      await setSession(tx, outer);
    }
  }
  return (await (sql as Sql<Record<string, unknown>>).begin(async (tx) => {
    await setSession(tx, identity, options.role);
    sessions.set(tx, { current: identity });
    return fn(tx);
  })) as T;
}

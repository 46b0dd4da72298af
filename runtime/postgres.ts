// withSession for postgres.js.
import type { Sql, TransactionSql } from 'postgres';
import { setRoleSql, setSessionSql, type Identity, type SessionOptions } from './identity.ts';

type AnySql = Sql<Record<string, unknown>> | TransactionSql<Record<string, unknown>>;
const active = new WeakMap<object, { identity: Identity; options: SessionOptions }>();

/**
 * `set_session`, prepared unless the instance or the options say not to: postgres.js prepares a
 * query only where its instance's `prepare` is on, whatever the query asks. Unprepared, a statement
 * with parameters costs postgres.js two round trips (it describes the statement first).
 */
async function setSession(tx: TransactionSql<Record<string, unknown>>, identity: Identity, options: SessionOptions): Promise<void> {
  await tx.unsafe(setSessionSql(identity), [identity.id as never], { prepare: options.prepare ?? true });
}

/**
 * Runs `fn` in one transaction acting as `identity`: BEGIN, `<schema>.set_session(id)`, `fn`,
 * COMMIT — or ROLLBACK when `fn` throws (the error is rethrown). The identity is transaction-local,
 * so nothing reaches the next user of the pooled connection. Inside another withSession the call
 * runs in a savepoint, and the outer identity is back afterwards.
 */
export async function withSession<T>(sql: AnySql, identity: Identity, fn: (tx: TransactionSql<Record<string, unknown>>) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const outer = active.get(sql);
  if (outer && 'savepoint' in sql) {
    const tx = sql as TransactionSql<Record<string, unknown>>;
    try {
      return (await tx.savepoint(async (sp) => {
        await setSession(sp, identity, options);
        active.set(sp, { identity, options });
        return fn(sp);
      })) as T;
    } finally {
      await setSession(tx, outer.identity, outer.options);
    }
  }
  return (await (sql as Sql<Record<string, unknown>>).begin(async (tx) => {
    if (options.role) await tx.unsafe(setRoleSql(options.role));
    await setSession(tx, identity, options);
    active.set(tx, { identity, options });
    return fn(tx);
  })) as T;
}

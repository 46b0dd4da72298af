// withSession for postgres.js.
import type { Sql, TransactionSql } from 'postgres';
import { setRoleSql, setSessionText, type Identity, type SessionOptions } from './identity.ts';

type AnySql = Sql<Record<string, unknown>> | TransactionSql<Record<string, unknown>>;
const active = new WeakMap<object, Identity>();

/**
 * `set_session` (after `SET LOCAL ROLE` when given a role) as one simple query: one round trip.
 * postgres.js sends a statement with parameters either prepared, which would leave set_session on
 * the connection for any later SQL to replace (see setSessionText), or described first, a second
 * round trip. Exported for the benchmark, which sends it the same way.
 */
export async function setSession(sql: Pick<TransactionSql<Record<string, unknown>>, 'unsafe'>, identity: Identity, role?: string): Promise<void> {
  const text = setSessionText(identity);
  await sql.unsafe(role ? `${setRoleSql(role)}; ${text}` : text);
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
        await setSession(sp, identity);
        active.set(sp, identity);
        return fn(sp);
      })) as T;
    } finally {
      await setSession(tx, outer);
    }
  }
  return (await (sql as Sql<Record<string, unknown>>).begin(async (tx) => {
    await setSession(tx, identity, options.role);
    active.set(tx, identity);
    return fn(tx);
  })) as T;
}

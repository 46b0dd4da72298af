// withSession for Kysely.
import { sql, type Kysely, type Transaction } from 'kysely';
import { savepointName, setSessionText, type Identity, type SessionOptions } from './identity.ts';

const active = new WeakMap<object, { identity: Identity; depth: number }>();

async function setSession<DB>(db: Kysely<DB>, identity: Identity, role?: string): Promise<void> {
  // No parameters: pg sends it as a simple query (see setSessionText).
  await sql.raw(setSessionText(identity, role)).execute(db);
}

/** Runs `fn` in one Kysely transaction acting as `identity` (see the postgres.js adapter). */
export async function withSession<DB, T>(db: Kysely<DB>, identity: Identity, fn: (trx: Transaction<DB>) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const outer = active.get(db);
  if (outer) {
    const trx = db as Transaction<DB>;
    const name = savepointName(outer.depth + 1);
    await sql.raw(`SAVEPOINT ${name}`).execute(trx);
    active.set(trx, { identity, depth: outer.depth + 1 });
    try {
      await setSession(trx, identity);
      const result = await fn(trx);
      await sql.raw(`RELEASE SAVEPOINT ${name}`).execute(trx);
      return result;
    } catch (error) {
      await sql.raw(`ROLLBACK TO SAVEPOINT ${name}`).execute(trx);
      throw error;
    } finally {
      active.set(trx, outer);
      await setSession(trx, outer.identity);
    }
  }
  return db.transaction().execute(async (trx) => {
    await setSession(trx, identity, options.role);
    active.set(trx, { identity, depth: 0 });
    return fn(trx);
  });
}

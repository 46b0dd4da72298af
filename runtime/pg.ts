// withSession for node-postgres (pg): a Pool or a client.
import type { Pool, PoolClient } from 'pg';
import { savepointName, setSessionText, type Identity, type SessionOptions } from './identity.ts';

const active = new WeakMap<object, { identity: Identity; depth: number }>();

/**
 * Runs `fn` with a client in one transaction acting as `identity` (see the postgres.js adapter).
 * Given a Pool it checks a client out and always returns it; a client whose transaction failed to
 * roll back is destroyed rather than reused. Given a client inside withSession, it nests with a
 * savepoint.
 */
export async function withSession<T>(db: Pool | PoolClient, identity: Identity, fn: (client: PoolClient) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const outer = active.get(db);
  if (outer) {
    const client = db as PoolClient;
    const name = savepointName(outer.depth + 1);
    await client.query(`SAVEPOINT ${name}`);
    active.set(client, { identity, depth: outer.depth + 1 });
    try {
      await client.query(setSessionText(identity));
      const result = await fn(client);
      await client.query(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (error) {
      await client.query(`ROLLBACK TO SAVEPOINT ${name}`);
      throw error;
    } finally {
      active.set(client, outer);
      await client.query(setSessionText(outer.identity));
    }
  }
  const isPool = 'totalCount' in db;
  const client = isPool ? await (db as Pool).connect() : (db as PoolClient);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      await client.query(setSessionText(identity, options.role));
      active.set(client, { identity, depth: 0 });
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw error;
    } finally {
      active.delete(client);
    }
  } finally {
    if (isPool) client.release(broken);
  }
}

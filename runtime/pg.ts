// withSession for node-postgres (pg): a Pool or a client.
import type { Pool, PoolClient } from 'pg';
import { Sessions, setSessionText, type Identity, type SessionOptions } from './identity.ts';

const sessions = new Sessions();

/**
 * Runs `fn` with a client in one transaction acting as `identity` (see the postgres.js adapter).
 * Given a Pool it checks a client out and always returns it; a client whose transaction failed to
 * roll back is destroyed rather than reused. Given a client inside withSession, it nests with a
 * savepoint.
 */
export async function withSession<T>(db: Pool | PoolClient, identity: Identity, fn: (client: PoolClient) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  if (sessions.has(db)) {
    const client = db as PoolClient;
    return sessions.nest(client, (text) => client.query(text), identity, () => fn(client));
  }
  const isPool = 'totalCount' in db;
  const client = isPool ? await (db as Pool).connect() : (db as PoolClient);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      await client.query(setSessionText(identity, options.role));
      sessions.begin(client, identity);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw error;
    } finally {
      sessions.end(client);
    }
  } finally {
    if (isPool) client.release(broken);
  }
}

// withSession for Kysely.
import { sql, type Kysely, type Transaction } from 'kysely';
import { Sessions, setSessionText, type Identity, type SessionOptions } from './identity.ts';

const sessions = new Sessions();

/** Sends one SQL text without parameters, which pg sends as a simple query (see setSessionText). */
const run = <DB>(trx: Transaction<DB>) => (text: string) => sql.raw(text).execute(trx);

/** Runs `fn` in one Kysely transaction acting as `identity` (see the postgres.js adapter). */
export async function withSession<DB, T>(db: Kysely<DB>, identity: Identity, fn: (trx: Transaction<DB>) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  if (sessions.has(db)) {
    const trx = db as Transaction<DB>;
    return sessions.nest(trx, run(trx), identity, () => fn(trx));
  }
  return db.transaction().execute(async (trx) => {
    await run(trx)(setSessionText(identity, options.role));
    sessions.begin(trx, identity);
    return fn(trx);
  });
}

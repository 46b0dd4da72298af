// withSession for Kysely, and sessionPool: a pg Pool for Kysely's PostgresDialect through which
// withSession begins in one round trip and prepares each statement once per kind of user.
import { AsyncLocalStorage } from 'node:async_hooks';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Pool, PoolClient, QueryResult } from 'pg';
import { Sessions, setSessionText, isSetSessionText, type Identity, type Kind, type SessionOptions } from './identity.ts';
import { answerOf, deallocateStale, runPrepared, sendWithKind, type Query } from './prepared.ts';

const sessions = new Sessions();

/** Sends one SQL text without parameters, which pg sends as a simple query (see setSessionText). */
const run = <DB>(trx: Transaction<DB>) => (text: string) => sql.raw(text).execute(trx);

/**
 * What the outermost withSession tells a sessionPool client about the transaction it is opening:
 * the set_session text that follows BEGIN, and whether to learn the acting user's kind. The first
 * BEGIN sent in its context takes it (`taken`), so a transaction the callback opens on another
 * Kysely of a sessionPool is not given this identity.
 */
interface Opening {
  readonly text: string;
  readonly role: string | undefined;
  readonly perKind: boolean;
  taken: boolean;
}
const opening = new AsyncLocalStorage<Opening>();

/** Runs `fn` in one Kysely transaction acting as `identity` (see the postgres.js adapter, and sessionPool). */
export async function withSession<DB, T>(db: Kysely<DB>, identity: Identity, fn: (trx: Transaction<DB>) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  if (sessions.has(db)) {
    const trx = db as Transaction<DB>;
    return sessions.nest(trx, run(trx), identity, () => fn(trx));
  }
  const text = setSessionText(identity, options.role);
  const context: Opening = { text, role: options.role, perKind: options.statementPerKind ?? true, taken: false };
  return opening.run(context, () =>
    db.transaction().execute(async (trx) => {
      // Taken by now when `db` is over a sessionPool; otherwise no BEGIN the callback sends (on
      // another Kysely, over a sessionPool) may take this identity.
      context.taken = true;
      // Through a sessionPool this was sent with BEGIN, and is answered without a round trip.
      await run(trx)(text);
      sessions.begin(trx, identity);
      return fn(trx);
    }),
  );
}

/** A sessionPool client inside withSession: the acting user's kind, and set_session's answer when it went with BEGIN. */
interface InSession {
  kind: Kind | undefined;
  readonly role: string | undefined;
  answer: { readonly text: string; readonly result: unknown } | undefined;
}
const inSession = new WeakMap<PoolClient, InSession>();
/** BEGIN as Kysely's PostgresDialect sends it: `begin`, or `start transaction` with settings. */
const BEGIN = /^(begin|start transaction( [a-z ]+)?)$/;

/** A sessionPool client going back to the pool: its session ends, and its stale statements are deallocated (see deallocateStale). */
function released(client: PoolClient, query: Query, error: unknown): void {
  inSession.delete(client);
  deallocateStale(client, query, error);
}

/**
 * BEGIN, set_session and (for the kind) KIND_TEXT in one message (see sendWithKind). When a
 * statement after BEGIN fails, the transaction it began is rolled back here, since Kysely rolls
 * back only a transaction whose BEGIN succeeded: the error is set_session's (28000 for an unknown
 * user, say).
 */
async function open(client: PoolClient, query: Query, begin: string, context: Opening, prepare: boolean): Promise<unknown> {
  let results: QueryResult[];
  const session: InSession = { kind: undefined, role: context.role, answer: undefined };
  const text = `${begin}; ${context.text}`;
  try {
    // Reading the kind inside the try: one that cannot be read (a pool whose type parsers turn
    // text into something else) must not leave the transaction open on the connection either.
    if (prepare && context.perKind) {
      const sent = await sendWithKind(query, text, context.role);
      session.kind = sent.kind;
      results = sent.results;
    } else {
      results = (await query(text)) as QueryResult[];
    }
  } catch (error) {
    await query('ROLLBACK').catch(() => {});
    throw error;
  }
  session.answer = { text: context.text, result: answerOf(results.slice(1)) };
  inSession.set(client, session);
  return results[0];
}

/**
 * The client handle a sessionPool gives out. Only the form Kysely's PostgresDialect uses,
 * `query(text, values)`, is looked at; any other form goes to pg as it is.
 * - BEGIN sent by withSession's transaction goes with its set_session (one round trip, not two),
 *   and set_session is then answered from that message.
 * - Inside the session, a statement with parameters runs as a prepared statement of the acting
 *   user's kind (see SessionOptions.statementPerKind), and a set_session of a nested withSession
 *   asks for the new kind in its own message.
 * - COMMIT, ROLLBACK and release() end the session on the client.
 */
function sessionHandle(client: PoolClient, prepare: boolean, handles: WeakMap<PoolClient, PoolClient>): PoolClient {
  const known = handles.get(client);
  if (known) return known;
  const query = client.query.bind(client) as Query;
  // pg-pool listens for a client's connection errors only while it is idle, and Kysely does not:
  // a connection lost between two statements of a checked-out client would be an uncaught
  // 'error' event. The next statement on that client fails with it instead.
  client.on('error', () => {});
  const made = new Proxy(client, {
    get(target, key) {
      if (key === 'query') {
        return (...args: unknown[]) => {
          const [text, values] = args;
          if (args.length !== 2 || typeof text !== 'string' || !Array.isArray(values)) return query(...args);
          const session = inSession.get(target);
          if (!session) {
            const context = opening.getStore();
            if (context && !context.taken && values.length === 0 && BEGIN.test(text)) {
              context.taken = true;
              return open(target, query, text, context, prepare);
            }
            return query(text, values);
          }
          if (values.length === 0) {
            const { answer } = session;
            session.answer = undefined;
            if (answer?.text === text) return Promise.resolve(answer.result);
            if (text === 'commit' || text === 'rollback') {
              inSession.delete(target);
              return query(text, values);
            }
            if (session.kind && isSetSessionText(text)) {
              return sendWithKind(query, text, session.role).then(({ kind, results }) => {
                session.kind = kind;
                return answerOf(results);
              });
            }
            return query(text, values);
          }
          session.answer = undefined;
          if (!session.kind) return query(text, values);
          return runPrepared(target, query, session.kind, text, values);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function' || key === 'constructor') return value;
      return (...args: unknown[]) => {
        if (key === 'release') released(target, query, args[0]);
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result === target ? made : result;
      };
    },
  });
  handles.set(client, made);
  return made;
}

/**
 * A pg Pool for Kysely's PostgresDialect (`new PostgresDialect({ pool: sessionPool(pool) })`).
 * Outside withSession its clients are pg's own. Inside it, BEGIN goes with set_session (one round
 * trip less per transaction) and each statement with parameters is prepared once per kind of
 * user on each connection (`statementPerKind: false` turns that off for a call, `prepare: false`
 * for the pool: behind PgBouncer's transaction pooling, say). Kysely prepares nothing otherwise,
 * so every statement would be planned at every execution.
 */
export function sessionPool<P extends Pool>(pool: P, options: { readonly prepare?: boolean } = {}): P {
  const prepare = options.prepare ?? true;
  // The handle given out for each client, so Kysely (which keys its connections by client) sees
  // one object; one map per call, so a pool wrapped twice keeps each wrapper's options.
  const handles = new WeakMap<PoolClient, PoolClient>();
  const handle = (client: PoolClient) => sessionHandle(client, prepare, handles);
  const made: P = new Proxy(pool, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (key === 'connect') {
        return (callback?: (error: Error | undefined, client: PoolClient | undefined, done: (release?: unknown) => void) => void) => {
          if (callback) {
            return target.connect((error, client, done) => {
              if (!client) return callback(error, client, done);
              const query = client.query.bind(client) as Query;
              callback(error, handle(client), (release?: unknown) => {
                released(client, query, release);
                done(release);
              });
            });
          }
          return target.connect().then(handle);
        };
      }
      if (typeof value !== 'function' || key === 'constructor') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result === target ? made : result;
      };
    },
  });
  return made;
}

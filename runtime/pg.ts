// withSession for node-postgres (pg): a Pool or a client.
import type { Pool, PoolClient } from 'pg';
import { fnv64, Sessions, setSessionText, type Identity, type Kind, type SessionOptions } from './identity.ts';
import { deallocateStale, runPrepared, sendWithKind, type Query } from './prepared.ts';

const sessions = new Sessions();

/**
 * The kind acting on each client whose withSession marks named statements, the role that goes
 * into it, and whether queries with parameters are prepared too (`prepare`).
 */
interface Mark {
  kind: Kind;
  readonly role: string | undefined;
  readonly prepare: boolean;
}
const marking = new WeakMap<PoolClient, Mark>();
/**
 * The outermost withSession running on each client: whether it is over for its callback. The
 * handles it gives out (nested calls' too) refuse queries once it is, whoever has the client then.
 */
const running = new WeakMap<PoolClient, { ended: boolean }>();
/** The client behind each handle withSession gave out, and the session it was given for. */
const clients = new WeakMap<object, { readonly client: PoolClient; readonly state: { readonly ended: boolean } }>();

/** PostgreSQL keeps the first 63 bytes of a statement's name. */
const NAME_BYTES = 63;

/** `text` (set_session's, see setSessionText), and with `mark` the acting user's kind asked in the same message (see KIND_TEXT). */
async function act(client: PoolClient, text: string, mark?: Mark): Promise<void> {
  if (!mark) {
    await client.query(text);
    return;
  }
  mark.kind = (await sendWithKind(client.query.bind(client) as Query, text, mark.role)).kind;
}

/** The texts of the named queries each client has run, by the name given: a query by name alone runs it again. */
const texts = new WeakMap<PoolClient, Map<string, string>>();

/** A plain query config with a name (not a Submittable such as a cursor); its text may be left out to run a named statement again. */
function named(config: unknown): config is { name: string; text?: unknown } {
  const c = config as { name?: unknown; submit?: unknown } | null;
  return typeof c === 'object' && c !== null && typeof c.name === 'string' && c.name !== '' && typeof c.submit !== 'function';
}

/** Why a query sent on a handle after its transaction was refused. */
const over = () =>
  new Error("rowguard: this withSession's transaction is over; a query sent on its client handle afterwards is refused (the client is back in the pool, or serving another user's transaction)");

/**
 * A query refused: its callback (the last argument, or the config's `callback`) gets the error, a
 * Submittable (a cursor, a COPY stream) is refused at once, and otherwise the promise pg would
 * return is rejected.
 */
function refused(config: unknown, rest: readonly unknown[]): unknown {
  if (typeof (config as { submit?: unknown } | null)?.submit === 'function') throw over();
  const last = rest.at(-1);
  const callback = typeof last === 'function' ? last : (config as { callback?: unknown } | null)?.callback;
  if (typeof callback === 'function') return void process.nextTick(callback, over());
  return Promise.reject(over());
}

/**
 * The handle `fn` gets: the client, but a query sent on it once the session is over is refused
 * (see `running`), and with `statementPerKind` (`mark`) a named query (`{ name, text }`, the only
 * kind pg prepares) runs as a statement of the acting user's kind: its name begins with the kind's
 * digest (the name's own digest instead of the name when the two would pass 63 bytes) and its
 * text with the kind's mark. With `prepare` too, `query(text, values)` with values runs as a
 * prepared statement of the kind (runtime/prepared.ts).
 */
function sessionHandle(client: PoolClient, state: { readonly ended: boolean }, mark: Mark | undefined): PoolClient {
  const query = client.query as (...a: unknown[]) => unknown;
  const made = new Proxy(client, {
    get(target, key) {
      if (key === 'query') {
        return (config: unknown, ...rest: unknown[]) => {
          if (state.ended) return refused(config, rest);
          // With `prepare`, `query(text, values)` with values: a prepared statement of the kind (runtime/prepared.ts).
          if (mark?.prepare && typeof config === 'string' && rest.length === 1 && Array.isArray(rest[0]) && rest[0].length > 0) {
            return runPrepared(target, query.bind(target) as Query, mark.kind, config, rest[0]);
          }
          if (!mark || !named(config)) return query.call(target, config, ...rest);
          let known = texts.get(target);
          if (!known) texts.set(target, (known = new Map()));
          if (typeof config.text === 'string') known.set(config.name, config.text);
          const text = known.get(config.name);
          // A name pg has not seen with a text: as pg would run it.
          if (text === undefined) return query.call(target, config, ...rest);
          const { digest, mark: comment } = mark.kind;
          const name = Buffer.byteLength(config.name) + digest.length + 1 <= NAME_BYTES ? `${digest} ${config.name}` : `${digest} ${fnv64(config.name)}`;
          return query.call(target, { ...config, name, text: comment + text }, ...rest);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function' || key === 'constructor') return value;
      // A method that returns the client (`on`, …) returns this handle, so a chained query is marked
      // too. A late release() (or end()) would give back the client's next checkout, another user's.
      const late = key === 'release' || key === 'end';
      return (...args: unknown[]) => {
        if (late && state.ended) throw over();
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result === target ? made : result;
      };
    },
  });
  clients.set(made, { client, state });
  return made;
}

/**
 * Runs `fn` with a client in one transaction acting as `identity` (see the postgres.js adapter).
 * Given a Pool it checks a client out and always returns it; a client whose transaction failed to
 * roll back is destroyed rather than reused. Given a client inside withSession, it nests with a
 * savepoint. With `statementPerKind: true` (pg prepares only named queries, so it is off by
 * default) named queries are marked with the acting user's kind, and with `prepare: true` queries
 * with values are prepared for it too. A query sent on the handle once
 * the session is over is refused (see sessionHandle).
 */
export async function withSession<T>(db: Pool | PoolClient, identity: Identity, fn: (client: PoolClient) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const handed = clients.get(db);
  // A handle of a session that is over, whatever session its client serves now.
  if (handed?.state.ended) throw over();
  const given = handed?.client ?? db;
  if (sessions.has(given)) {
    const client = given as PoolClient;
    const state = running.get(client)!;
    const mark = marking.get(client);
    // Marked inside a marked session whichever handle of the client it was given.
    const handle = clients.has(db) ? (db as PoolClient) : sessionHandle(client, state, mark);
    // pg sends a text without parameters as one simple query: the savepoint and the RELEASE go in
    // the messages that set the identities. What the nested call sends goes through the session's
    // state too: a nested call still running when the session ends sends nothing more (no
    // ROLLBACK TO or set_session into the transaction of whoever has the client then).
    const send = (text: string) => (state.ended ? Promise.reject(over()) : client.query(text));
    return sessions.nest(client, send, identity, () => fn(handle), (who, before = '') => (state.ended ? Promise.reject(over()) : act(client, before + setSessionText(who), mark)), true);
  }
  // BEGIN goes in set_session's message: one round trip before `fn` where it took two. A schema
  // or role refused here is refused before a client is checked out.
  const begin = `BEGIN; ${setSessionText(identity, options.role)}`;
  const isPool = 'totalCount' in db;
  const client = isPool ? await (db as Pool).connect() : (db as PoolClient);
  let broken: Error | undefined;
  const state = { ended: false };
  // Once COMMIT has answered, the transaction is over whatever it answered: no ROLLBACK to send.
  let ended = false;
  try {
    // statementPerKind: false leaves every statement as written, prepare or not.
    const marked = options.statementPerKind ?? options.prepare ?? false;
    const mark = marked ? { kind: { digest: '', mark: '' }, role: options.role, prepare: options.prepare ?? false } : undefined;
    // When a statement of that message fails, the transaction is rolled back below (a caller's
    // own client already in a failed transaction gets its ROLLBACK too, and sees the 25P02).
    await act(client, begin, mark);
    sessions.begin(client, identity);
    running.set(client, state);
    if (mark) marking.set(client, mark);
    let result: T;
    try {
      result = await fn(sessionHandle(client, state, mark));
    } finally {
      // Before COMMIT or ROLLBACK: a query the callback sends after this is refused.
      state.ended = true;
    }
    // PostgreSQL answers the COMMIT of a failed transaction with ROLLBACK and no error: a
    // statement failed and the callback caught its error. Nothing was committed; say so.
    const committed = await client.query('COMMIT');
    ended = true;
    if (committed.command === 'ROLLBACK') {
      throw new Error('rowguard: the transaction was rolled back, not committed: a statement in it failed and the callback caught its error');
    }
    return result;
  } catch (error) {
    if (!ended) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw error;
  } finally {
    state.ended = true;
    sessions.end(client);
    running.delete(client);
    marking.delete(client);
    try {
      // The transaction is over: statements `prepare` retired are deallocated, ahead of whatever the client runs next.
      deallocateStale(client, client.query.bind(client) as Query, broken);
    } finally {
      if (isPool) client.release(broken);
    }
  }
}

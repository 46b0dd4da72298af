// withSession for postgres.js.
import { readFile } from 'node:fs';
import type { Sql, TransactionSql } from 'postgres';
import { KIND_TEXT, kindFromRow, setSessionText, type Identity, type SessionOptions } from './identity.ts';

type Tx = TransactionSql<Record<string, unknown>>;
type AnySql = Sql<Record<string, unknown>> | Tx;

/**
 * One transaction's session, shared by its handle and every savepoint's: who acts now, and the
 * mark of that user's kind (see kindOf). A nested call restores what was in force when it began,
 * whichever of the handles it was given.
 */
interface Session {
  identity: Identity;
  mark: string;
  /** Whether statements are marked, and the role in force (the outermost call's) that goes into the mark. */
  readonly kind: { readonly role?: string } | undefined;
  /**
   * The transaction is over for the callback: its work is done (COMMIT or ROLLBACK follows), or
   * its connection was lost. A statement a handle sends after that is refused (see whenRun).
   */
  ended: boolean;
  /**
   * Rejected when the transaction ends (see end): a savepoint or nested call still running then
   * is rejected with it, while postgres.js's own promise for it is left waiting (see settled).
   */
  readonly abandoned: Promise<never>;
  readonly abandon: (error: unknown) => void;
}

/** A session of `identity`, not over yet. */
function newSession(identity: Identity, mark: string, kind: Session['kind']): Session {
  let abandon!: (error: unknown) => void;
  const abandoned = new Promise<never>((_, reject) => (abandon = reject));
  // Only a savepoint or nested call still running when the transaction ends ever sees it.
  abandoned.catch(() => {});
  return { identity, mark, kind, ended: false, abandoned, abandon };
}

/** The transaction is over for the callback: every handle refuses statements from now on. */
function end(session: Session, why: unknown = over()): void {
  if (session.ended) return;
  session.ended = true;
  session.abandon(why);
}

/**
 * postgres.js's errors for a connection gone (CONNECTION_ENDED is only ever the pool's, never a
 * transaction's), when a statement of a session raised them: the transaction went with its
 * connection. Another connection's error (another client's, say) says nothing of it.
 */
const CONNECTION_GONE = new Set(['CONNECTION_CLOSED', 'CONNECTION_DESTROYED']);
const lostHere = new WeakSet<object>();
const connectionGone = (error: unknown): boolean => typeof error === 'object' && error !== null && lostHere.has(error);

/** Notes `error` when it says the connection of a statement the session sent is gone. */
function noteLost(error: unknown): void {
  if (typeof error === 'object' && error !== null && CONNECTION_GONE.has(String((error as { code?: unknown }).code))) lostHere.add(error);
}

/** `promise`, a statement (or statements) the session sent, with its error noted (see noteLost). */
const sent = <T>(promise: Promise<T>): Promise<T> =>
  promise.catch((error: unknown) => {
    noteLost(error);
    throw error;
  });

/** A callback's return value as postgres.js's begin and savepoint take it: an array of queries runs together. */
const together = <T>(value: T): Promise<T> => (Array.isArray(value) ? (Promise.all(value) as Promise<T>) : Promise.resolve(value));

/**
 * A savepoint's or nested call's work, in postgres.js's savepoint: its outcome, or the reason the
 * transaction ended if it ends first. postgres.js's savepoint is left waiting then (see settled),
 * so it sends no ROLLBACK TO or RELEASE where another transaction may run by then.
 */
function inSavepoint<T>(session: Session, open: (work: (sp: Tx) => Promise<T>) => Promise<unknown>, work: (sp: Tx) => Promise<T>): Promise<T> {
  if (session.ended) return Promise.reject(over());
  const opened = open((sp) =>
    settled(session, () =>
      session.ended
        ? Promise.reject(over())
        : work(sp).catch((error: unknown) => {
            if (typeof error === 'object' && error !== null) fromWork.add(error);
            throw error;
          }),
    ),
  ).catch((error: unknown) => {
    // postgres.js's own SAVEPOINT, ROLLBACK TO or RELEASE lost the connection; what the work
    // threw was noted already if a statement of the session raised it (another client's is not).
    if (typeof error !== 'object' || error === null || !fromWork.has(error)) noteLost(error);
    throw error;
  });
  return Promise.race([opened as Promise<T>, session.abandoned]);
}

/** What savepoints' and nested calls' work threw (see inSavepoint). */
const fromWork = new WeakSet<object>();

/** Why a statement sent on a handle after its transaction was refused. */
const over = () =>
  new Error("rowguard: this withSession's transaction is over; a statement sent on its handle afterwards is refused (it would run outside the transaction, on a connection that may serve another user by then)");

/** The handles withSession gave out: the transaction's own handle behind each, and its session. */
const sessions = new WeakMap<object, { readonly raw: Tx; readonly session: Session }>();

/**
 * `set_session` (after `SET LOCAL ROLE` when given `role`) as one simple query (see
 * setSessionText): one round trip. Given `kind`, the same message asks what kind of user that
 * made, and the kind's mark is returned (kindOf, with `kind.role`); '' otherwise. Exported for
 * the benchmark, which sends it the same way.
 */
export function setSession(sql: Pick<Tx, 'unsafe'>, identity: Identity, role?: string, kind?: { readonly role?: string }): Promise<string> {
  let text: string;
  try {
    text = setSessionText(identity, role);
  } catch (error) {
    return Promise.reject(error);
  }
  if (!kind) return sql.unsafe(text).then(() => '');
  // Read as soon as the answer is in (a reaction of the query itself): a callback's statements
  // that follow it on the connection are answered later, so they see the mark (see lastKind).
  return sql.unsafe(`${text}; ${KIND_TEXT}`).then((results) => kindFromRow((results as unknown as Array<Array<Record<string, unknown>>>).at(-1)?.[0], kind.role).mark);
}

/** The strings with `mark` before the first. */
const withMark = (strings: readonly string[], mark: string): string[] => [mark + strings[0], ...strings.slice(1)];

const markedCopies = new WeakMap<readonly string[], Map<string, readonly string[]>>();

/**
 * The strings with `mark` before the first, one array per strings array and mark: postgres.js keeps
 * a record of every tagged template's strings array for good (its origin for error stacks), so a
 * new array at every run would grow without end. A template's array lives as long as its call
 * site, and so do its marked copies (one per kind). Exported for the tests.
 */
export function markedStrings(strings: readonly string[], mark: string): readonly string[] {
  let copies = markedCopies.get(strings);
  if (!copies) markedCopies.set(strings, (copies = new Map()));
  let marked = copies.get(mark);
  if (!marked) copies.set(mark, (marked = Object.freeze(withMark(strings, mark))));
  return marked;
}

/** What postgres.js's Query holds that matters here (not in its typings). */
interface QueryInternals {
  handler: ((query: QueryInternals) => unknown) & { debug?: unknown };
  strings: readonly string[];
  /** A tagged template's (its strings array lives as long as its call site), not `unsafe`'s (a new array per call). */
  tagged: boolean;
  options: { prepare?: boolean; simple?: boolean };
  reject: (error: unknown) => void;
}

/** Whether postgres.js will prepare `query`, as it decides: unless told not to or sent as a simple query. */
const willPrepare = (query: QueryInternals): boolean => query.options.prepare !== false && !query.options.simple;

/**
 * Refuses `query` if it runs once the transaction is over (postgres.js would send it on the
 * connection anyway, outside the transaction, where a pool may have begun another user's), and
 * marks it when it runs if the session marks statements and postgres.js will prepare it: its handler (which postgres.js calls once, when the query is executed) first puts the mark
 * of the kind acting then before its text. A fragment (a tagged template used inside another) is
 * never executed, so it stays as written.
 */
function whenRun<Q>(query: Q, session: Session): Q {
  const q = query as unknown as QueryInternals;
  if (!(query instanceof Promise) || typeof q.handler !== 'function') return query;
  const run = q.handler;
  q.handler = Object.assign((x: QueryInternals) => {
    if (session.ended) return x.reject(over());
    if (session.kind && willPrepare(x)) {
      // An `unsafe` text is a new array at every call: nothing to keep a copy for.
      x.strings = x.tagged ? markedStrings(x.strings, session.mark) : withMark(x.strings, session.mark);
    }
    // (postgres.js itself handles every transaction's statement's rejection; so this adds none.)
    Promise.prototype.then.call(x, undefined, noteLost);
    return run(x);
  }, { debug: run.debug });
  return query;
}

/**
 * `tx.file(path, args?, options?)` as postgres.js makes it (prepared when given parameters, unless
 * told otherwise; a simple query without them), read when it is executed, as postgres.js reads
 * it. The read takes time, so the text is put in first and the statement then handed to whenRun's
 * handler: refused if the transaction is over by then, marked with the kind acting then.
 */
function fileQuery(raw: Tx, session: Session, args: unknown[]): unknown {
  const path = args[0] as string;
  const [params, options] = args.length === 2 && !Array.isArray(args[1]) ? [[], args[1] as object] : [(args[1] ?? []) as unknown[], (args[2] ?? {}) as object];
  // postgres.js prepares a file's statement unless told not to; `unsafe` does not unless told to.
  const query = whenRun((raw.unsafe as (...a: unknown[]) => unknown)('', params, { prepare: true, ...options }), session);
  const q = query as QueryInternals;
  const sendText = q.handler;
  q.handler = Object.assign((x: QueryInternals) => {
    readFile(path, 'utf8', (error, text) => {
      if (error) return x.reject(error);
      x.strings = [text];
      sendText(x);
    });
  }, { debug: sendText.debug });
  return query;
}

/**
 * The handle `fn` gets: `raw`, but a statement sent on it (or a savepoint's handle) once the
 * transaction is over is refused, and when the session marks statements, every statement
 * postgres.js prepares (a tagged template, or `unsafe` told `prepare: true` and not sent as a
 * simple query) begins with the mark of the kind of user acting. So each kind of user has
 * statements of its own on the connection, planned for its planner marks, and a pool serving users
 * of several kinds does not plan them again at every change of kind. `tx.file` given parameters is
 * marked too (see fileQuery). A savepoint runs as a nested call does (see inSavepoint). Helpers
 * (`tx(ids)`, `tx.json`, …) and fragments pass through untouched.
 */
function handle(raw: Tx, session: Session): Tx {
  const made: Tx = new Proxy(raw, {
    apply(target, self, args: unknown[]) {
      return whenRun(Reflect.apply(target, self, args), session);
    },
    get(target, key) {
      if (key === 'unsafe') return (...args: unknown[]) => whenRun((target.unsafe as (...a: unknown[]) => unknown)(...args), session);
      if (key === 'file') return (...args: unknown[]) => fileQuery(target, session, args);
      if (key === 'savepoint') {
        return (...args: unknown[]) => {
          // `tx.savepoint\`…\`` runs one statement in a savepoint, as postgres.js does.
          if (Array.isArray((args[0] as { raw?: unknown } | undefined)?.raw)) return made.savepoint((sp) => sp(...(args as [TemplateStringsArray, ...never[]])));
          const fn = args.pop() as (sp: Tx) => unknown;
          return inSavepoint(session, (work) => (target.savepoint as (...a: unknown[]) => Promise<unknown>)(...args, work), (sp) => together(fn(handle(sp, session))));
        };
      }
      return Reflect.get(target, key, target);
    },
  });
  sessions.set(made, { raw, session });
  return made;
}

/**
 * Runs `fn` in one transaction acting as `identity`: BEGIN, `<schema>.set_session(id)`, `fn`,
 * COMMIT — or ROLLBACK when `fn` throws (the error is rethrown). The identity is transaction-local,
 * so it never reaches the next user of the pooled connection. Inside another withSession the call
 * runs in a savepoint, and the identity in force before it is back afterwards. Unless
 * `statementPerKind` is false, or the client was made with `prepare: false`, the statements `fn`
 * prepares are marked with the acting user's kind (see `handle`). Once the user has acted on this
 * client, `fn` runs without waiting for set_session's answer, and its first statements follow it
 * in one round trip (see lastKind); if set_session fails, they fail unrun, and withSession rejects
 * with set_session's error when `fn` has settled.
 */
export async function withSession<T>(sql: AnySql, identity: Identity, fn: (tx: Tx) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const outer = sessions.get(sql);
  if (outer) {
    const { raw, session } = outer;
    if (session.ended) throw over();
    const before = session.identity;
    let failed = false;
    try {
      return await inSavepoint(session, (work) => raw.savepoint(work), async (sp) => {
        session.mark = await sent(setSession(sp, identity, undefined, session.kind));
        session.identity = identity;
        return fn(handle(sp, session));
      });
    } catch (error) {
      failed = true;
      // The connection went, and the transaction with it (postgres.js tells the transaction so
      // only a little later): nothing more is sent for it.
      if (connectionGone(error)) end(session, error);
      throw error;
    } finally {
      session.identity = before;
      // When the call failed, its error is the one to see, not a failure to restore. Nothing is
      // sent once the transaction is over.
      if (!session.ended) {
        session.mark = await sent(setSession(raw, before, undefined, session.kind)).catch((error: unknown) => {
          if (!failed) throw error;
          return session.mark;
        });
      }
    }
  }
  // A schema, role or id refused is refused before anything is sent.
  setSessionText(identity, options.role);
  // A client made with `prepare: false` prepares nothing.
  const perKind = options.statementPerKind ?? (sql as { options?: { prepare?: boolean } }).options?.prepare !== false;
  const kind = perKind ? { role: options.role } : undefined;
  const known = kind ? lastKind(sql, identity, options.role) : '';
  const session = newSession(identity, known ?? '', kind);
  // As postgres.js's begin takes it: a callback may return an array of queries to run together.
  const call = (tx: Tx): Promise<T> => new Promise<T>((resolve) => resolve(together(fn(handle(tx, session))) as Promise<T>));
  const run = async (tx: Tx): Promise<T> => {
    const setting = sent(setSession(tx, identity, options.role, kind));
    if (known === undefined) {
      session.mark = await setting;
      remember(sql, identity, options.role, session.mark);
      return call(tx);
    }
    // The callback's first statements go out right behind set_session, in its round trip (see
    // lastKind): PostgreSQL runs them after it, in a transaction its failure aborts.
    const set = setting.then((mark) => {
      if (kind) remember(sql, identity, options.role, mark);
      // Unless a nested call acts now: it sets the mark itself, and restores this one after.
      if (session.identity === identity) session.mark = mark;
    });
    // Handled here, and awaited once the callback has settled.
    set.catch(() => {});
    const outcome = await call(tx).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    // set_session's error before the callback's (which is then "current transaction is aborted").
    await set;
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  };
  try {
    // Over before postgres.js sends COMMIT or ROLLBACK.
    return (await (sql as Sql<Record<string, unknown>>).begin((tx) => settled(session, () => run(tx)).finally(() => end(session)))) as T;
  } catch (error) {
    // Also when postgres.js gave up on the transaction early: its connection closed while the
    // callback ran (the callback goes on, and a pool may hand the connection, reconnected, to
    // another user's transaction).
    end(session, error);
    throw error;
  }
}

/**
 * What a transaction's (or savepoint's) callback gives postgres.js: `work`'s outcome, unless
 * the transaction is over meanwhile (its connection closed, and withSession has rejected; or, for
 * a savepoint, the transaction's callback finished without waiting for it). Then it never
 * settles, so that postgres.js, which would go on to send COMMIT or ROLLBACK (RELEASE or ROLLBACK
 * TO) when the callback settles, sends nothing on a connection that may serve another user's
 * transaction by then, or none at all. What awaits a savepoint or nested call is told by
 * inSavepoint's race instead; the abandoned transaction is then unreachable and collected.
 */
async function settled<T>(session: Session, work: () => Promise<T>): Promise<T> {
  let outcome: { value: T } | { error: unknown };
  try {
    outcome = { value: await work() };
  } catch (error) {
    outcome = { error };
  }
  // The connection went: postgres.js tells the transaction so only a little later, and would
  // send ROLLBACK (TO) on the closed connection meanwhile.
  if ('error' in outcome && connectionGone(outcome.error)) end(session, outcome.error);
  if (session.ended) return new Promise<T>(() => {});
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}

/** The kinds identities acted as on each client, newest last (see lastKind). */
const lastKinds = new WeakMap<object, Map<string, string>>();
/** Identities remembered per client: a pool serving more users asks again for the ones it forgot. */
export const REMEMBERED = 4096;

const identityKey = (identity: Identity, role: string | undefined): string => `${role ?? ''}\n${identity.schema}\n${String(identity.id)}`;

/**
 * The mark of the kind `identity` acted as in its last transaction on this client, or undefined
 * when it has not acted there (or was forgotten). Known, withSession does not wait for
 * set_session's answer before the callback runs: the callback's first statements are marked with
 * it and sent right behind set_session (postgres.js pipelines what a transaction sends), one round
 * trip less per transaction. The mark only chooses which of a connection's prepared statements
 * runs; a stale one (the user's kind changed since) costs a plan, since PostgreSQL plans a cached
 * statement again under another search_path (and a round trip for a statement with parameters the
 * old kind had not prepared), and the statements the callback issues after set_session's answer
 * carry the new one. Unmarked sessions (statementPerKind false) need no mark and never wait.
 */
export function lastKind(sql: object, identity: Identity, role: string | undefined): string | undefined {
  return lastKinds.get(sql)?.get(identityKey(identity, role));
}

/** Records the kind `identity` acted as on this client, forgetting the least recently recorded beyond REMEMBERED. Exported for the tests. */
export function remember(sql: object, identity: Identity, role: string | undefined, mark: string): void {
  let known = lastKinds.get(sql);
  if (!known) lastKinds.set(sql, (known = new Map()));
  const key = identityKey(identity, role);
  known.delete(key);
  known.set(key, mark);
  if (known.size > REMEMBERED) known.delete(known.keys().next().value!);
}

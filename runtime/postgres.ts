// withSession for postgres.js.
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
}

/** The handles withSession gave out: the transaction's own handle behind each, and its session. */
const sessions = new WeakMap<object, { readonly raw: Tx; readonly session: Session }>();

/**
 * `set_session` (after `SET LOCAL ROLE` when given `role`) as one simple query (see
 * setSessionText): one round trip. Given `kind`, the same message asks what kind of user that
 * made, and the kind's mark is returned (kindOf, with `kind.role`); '' otherwise. Exported for
 * the benchmark, which sends it the same way.
 */
export async function setSession(sql: Pick<Tx, 'unsafe'>, identity: Identity, role?: string, kind?: { readonly role?: string }): Promise<string> {
  const text = setSessionText(identity, role);
  if (!kind) {
    await sql.unsafe(text);
    return '';
  }
  const results = (await sql.unsafe(`${text}; ${KIND_TEXT}`)) as unknown as Array<Array<Record<string, unknown>>>;
  return kindFromRow(results.at(-1)?.[0], kind.role).mark;
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
}

/** Whether postgres.js will prepare `query`, as it decides: unless told not to or sent as a simple query. */
const willPrepare = (query: QueryInternals): boolean => query.options.prepare !== false && !query.options.simple;

/**
 * Marks `query` when it runs, if postgres.js will prepare it: its handler (which postgres.js calls
 * once, when the query is executed) first puts the mark of the kind acting then before its text.
 * A fragment (a tagged template used inside another) is never executed, so it stays as written.
 */
function markWhenRun<Q>(query: Q, session: Session): Q {
  const q = query as unknown as QueryInternals;
  if (!(query instanceof Promise) || typeof q.handler !== 'function') return query;
  const run = q.handler;
  q.handler = Object.assign((x: QueryInternals) => {
    if (willPrepare(x)) {
      // An `unsafe` text is a new array at every call: nothing to keep a copy for.
      x.strings = x.tagged ? markedStrings(x.strings, session.mark) : withMark(x.strings, session.mark);
    }
    return run(x);
  }, { debug: run.debug });
  return query;
}

/**
 * Marks a `file` query when it runs, if postgres.js will prepare it (given parameters, unless told
 * otherwise): postgres.js reads the file only when the query is executed, and puts its text in
 * the query's `strings` just before sending it, so the mark of the kind acting then goes before
 * the text as it is put there.
 */
function markFileWhenRun<Q>(query: Q, session: Session): Q {
  const q = query as unknown as QueryInternals;
  if (!(query instanceof Promise) || !Array.isArray(q.strings)) return query;
  let strings: readonly string[] = q.strings;
  Object.defineProperty(q, 'strings', {
    configurable: true,
    enumerable: true,
    get: () => strings,
    set: (text: readonly string[]) => {
      strings = text.length > 0 && willPrepare(q) ? withMark(text, session.mark) : text;
    },
  });
  return query;
}

/**
 * The handle `fn` gets: `raw`, but every statement postgres.js prepares (a tagged template, or
 * `unsafe` told `prepare: true` and not sent as a simple query) begins with the mark of the kind
 * of user acting, and a savepoint's handle does the same. So each kind of user has statements of
 * its own on the connection, planned for its planner marks, and a pool serving users of several
 * kinds does not plan them again at every change of kind. `tx.file` given parameters is marked
 * too (see markFileWhenRun). Helpers (`tx(ids)`, `tx.json`, …) and fragments pass through untouched.
 */
function handle(raw: Tx, session: Session): Tx {
  const made: Tx = !session.kind ? raw : new Proxy(raw, {
    apply(target, self, args: unknown[]) {
      return markWhenRun(Reflect.apply(target, self, args), session);
    },
    get(target, key) {
      if (key === 'unsafe') return (...args: unknown[]) => markWhenRun((target.unsafe as (...a: unknown[]) => unknown)(...args), session);
      if (key === 'file') return (...args: unknown[]) => markFileWhenRun((target.file as (...a: unknown[]) => unknown)(...args), session);
      if (key === 'savepoint') {
        return (...args: unknown[]) => {
          // `tx.savepoint\`…\`` runs one statement in a savepoint, as postgres.js does.
          if (Array.isArray((args[0] as { raw?: unknown } | undefined)?.raw)) return made.savepoint((sp) => sp(...(args as [TemplateStringsArray, ...never[]])));
          const fn = args.pop() as (sp: Tx) => unknown;
          return (target.savepoint as (...a: unknown[]) => unknown)(...args, (sp: Tx) => fn(handle(sp, session)));
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
 * prepares are marked with the acting user's kind (see `handle`).
 */
export async function withSession<T>(sql: AnySql, identity: Identity, fn: (tx: Tx) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const outer = sessions.get(sql);
  if (outer) {
    const { raw, session } = outer;
    const before = session.identity;
    let failed = false;
    try {
      return (await raw.savepoint(async (sp) => {
        session.mark = await setSession(sp, identity, undefined, session.kind);
        session.identity = identity;
        return fn(handle(sp, session));
      })) as T;
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      session.identity = before;
      // When the call failed, its error is the one to see, not a failure to restore (a lost connection).
      session.mark = await setSession(raw, before, undefined, session.kind).catch((error: unknown) => {
        if (!failed) throw error;
        return session.mark;
      });
    }
  }
  // A client made with `prepare: false` prepares nothing.
  const perKind = options.statementPerKind ?? (sql as { options?: { prepare?: boolean } }).options?.prepare !== false;
  const kind = perKind ? { role: options.role } : undefined;
  return (await (sql as Sql<Record<string, unknown>>).begin(async (tx) => {
    const session: Session = { identity, mark: await setSession(tx, identity, options.role, kind), kind };
    return fn(handle(tx, session));
  })) as T;
}

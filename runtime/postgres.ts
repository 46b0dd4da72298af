// withSession for postgres.js.
import type { Sql, TransactionSql } from 'postgres';
import { KIND_TEXT, kindMark, setSessionText, type Identity, type SessionOptions } from './identity.ts';

type Tx = TransactionSql<Record<string, unknown>>;
type AnySql = Sql<Record<string, unknown>> | Tx;

/**
 * One transaction's session, shared by its handle and every savepoint's: who acts now, and the
 * mark of that user's kind (see kindMark). A nested call restores what was in force when it began,
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
 * made, and the kind's mark is returned (kindMark, with `kind.role`); '' otherwise. Exported for
 * the benchmark, which sends it the same way.
 */
export async function setSession(sql: Pick<Tx, 'unsafe'>, identity: Identity, role?: string, kind?: { readonly role?: string }): Promise<string> {
  const text = setSessionText(identity, role);
  if (!kind) {
    await sql.unsafe(text);
    return '';
  }
  const results = (await sql.unsafe(`${text}; ${KIND_TEXT}`)) as unknown as Array<Array<{ search_path: string }>>;
  return kindMark(kind.role ?? '', results.at(-1)![0]!.search_path);
}

/** A template's strings with `mark` before the first, so postgres.js names the statement anew. */
function markedStrings(strings: TemplateStringsArray, mark: string): TemplateStringsArray {
  const marked = [mark + strings[0], ...strings.slice(1)];
  return Object.assign(marked, { raw: [mark + strings.raw[0], ...strings.raw.slice(1)] }) as unknown as TemplateStringsArray;
}

/**
 * The handle `fn` gets: `raw`, but every statement postgres.js prepares (a tagged template, or
 * `unsafe` told `prepare: true` and not sent as a simple query) begins with the mark of the kind of user acting when it runs, and
 * a savepoint's handle does the same. So each kind of user has statements of its own on the
 * connection, planned for its planner marks, and a pool serving users of several kinds does not
 * plan them again at every change of kind. Fragments and helpers (`tx(ids)`, `tx.json`, …) pass
 * through untouched; a fragment made by a tagged template carries the mark too, which is only a
 * comment inside the statement.
 */
function handle(raw: Tx, session: Session): Tx {
  const made: Tx = !session.kind ? raw : new Proxy(raw, {
    apply(target, self, args: unknown[]) {
      const strings = args[0] as TemplateStringsArray | undefined;
      if (strings && Array.isArray(strings.raw)) return Reflect.apply(target, self, [markedStrings(strings, session.mark), ...args.slice(1)]);
      return Reflect.apply(target, self, args);
    },
    get(target, key) {
      if (key === 'unsafe') {
        return (text: string, ...rest: unknown[]) => {
          const [args, options] = (rest.length === 1 && !Array.isArray(rest[0]) ? [[], rest[0]] : rest) as [unknown[] | undefined, { prepare?: boolean; simple?: boolean } | undefined];
          // As postgres.js decides: prepared when told, unless sent as a simple query (the default without parameters).
          const prepared = options?.prepare && ('simple' in options ? !options.simple : (args?.length ?? 0) > 0);
          return (target.unsafe as (...a: unknown[]) => unknown)(prepared ? session.mark + text : text, ...rest);
        };
      }
      if (key === 'savepoint') {
        return (...args: unknown[]) => {
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
    try {
      return (await raw.savepoint(async (sp) => {
        session.mark = await setSession(sp, identity, undefined, session.kind);
        session.identity = identity;
        return fn(handle(sp, session));
      })) as T;
    } finally {
      session.identity = before;
      session.mark = await setSession(raw, before, undefined, session.kind);
    }
  }
  // A client made with `prepare: false` prepares nothing (a reserved connection does not say).
  const perKind = options.statementPerKind ?? (sql as { options?: { prepare?: boolean } }).options?.prepare !== false;
  const kind = perKind ? { role: options.role } : undefined;
  return (await (sql as Sql<Record<string, unknown>>).begin(async (tx) => {
    const session: Session = { identity, mark: await setSession(tx, identity, options.role, kind), kind };
    return fn(handle(tx, session));
  })) as T;
}

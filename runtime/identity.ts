// What every client adapter shares: who is acting, and the one statement that says so.

/** The acting user of one model: `{ schema: 'smartoffice', id: 7 }`. */
export interface Identity<S extends string = string, Id = string | number | bigint> {
  readonly schema: S;
  readonly id: Id;
}

export interface SessionOptions {
  /**
   * Also `SET LOCAL ROLE <role>` first, sent with `set_session` in one message by every adapter.
   * Needed when the login is a member of app_user that does not inherit its rights (NOINHERIT);
   * not needed, and not recommended, when it inherits them. An empty role is no role. A nested
   * withSession ignores it: the role of the outermost call stays in force.
   */
  readonly role?: string;
  /**
   * Mark each statement the transaction prepares with the acting user's kind, so users of
   * different kinds on one pooled connection keep a plan each instead of planning again at every
   * change of kind (see kindOf). postgres.js, which prepares every tagged template: default true,
   * or false for a client made with `prepare: false`. pg, which prepares only named queries
   * (`{ name, text }`): default false. Kysely over sessionPool (runtime/kysely.ts), which then
   * prepares each statement with parameters: default true; Kysely over a plain pg Pool prepares
   * nothing and ignores it. False leaves the statements as written and asks set_session nothing
   * more. A nested withSession keeps the outermost call's choice.
   */
  readonly statementPerKind?: boolean;
  /**
   * pg: also send each query given as `query(text, values)` with values as a prepared statement of
   * the acting user's kind, named by the kind's digest and the text's (as Kysely's sessionPool
   * sends its statements; runtime/prepared.ts), where pg sends it unnamed and PostgreSQL plans it
   * at every execution. Marks named queries too (statementPerKind), unless statementPerKind is
   * false, which leaves every statement as written. Default false; a nested withSession keeps the
   * outermost call's choice. The other adapters ignore it (postgres.js follows its client's own
   * `prepare`, Kysely its sessionPool's).
   */
  readonly prepare?: boolean;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function checked(name: string, what: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`rowguard: ${what} "${name}" is not a lower-case SQL identifier`);
  return name;
}

/**
 * The id as an SQL constant of unknown type, which PostgreSQL casts to set_session's parameter
 * type, for a statement sent without parameters; `NULL` for a missing id (set_session refuses
 * it). An E'' string of printable ASCII only: a backslash and a quote are doubled, and every other
 * character is a \u or \U escape. So the text means the same whatever the session's
 * standard_conforming_strings says, and whatever client_encoding SQL earlier on the connection set
 * (in SJIS, say, a byte of a UTF-8 character could otherwise swallow an escaping backslash).
 */
export function idLiteral(id: Identity['id'] | null | undefined): string {
  if (id === null || id === undefined) return 'NULL';
  let body = '';
  for (const ch of String(id)) {
    const code = ch.codePointAt(0)!;
    if (code === 0) throw new Error('rowguard: an identity id cannot contain a NUL character');
    // A lone surrogate (a pair is one code point above U+FFFF here): sent as a bound parameter
    // it would arrive as U+FFFD, the same as another id's.
    if (code >= 0xd800 && code <= 0xdfff) throw new Error('rowguard: an identity id must be well-formed Unicode (it holds a lone surrogate)');
    if (ch === '\\' || ch === "'") body += ch + ch;
    else if (code >= 0x20 && code < 0x7f) body += ch;
    else body += code > 0xffff ? `\\U${code.toString(16).padStart(8, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return `E'${body}'`;
}

/**
 * `SELECT "schema".set_session(E'<id>')`, after `SET LOCAL ROLE "<role>"; ` when given a role: the
 * identity for the rest of the transaction, with the id in the text, for the simple query
 * protocol: one round trip with every client library, nothing prepared (a prepared set_session
 * would outlive the transaction on the connection, where SQL run in a later session could replace
 * it with one that asserts another user), and no parameter decoded in whatever client_encoding the
 * connection was left with.
 */
export function setSessionText(identity: Identity, role?: string): string {
  const call = `SELECT "${checked(identity.schema, 'schema')}".set_session(${idLiteral(identity.id)})`;
  if (!role) return call;
  // PostgreSQL reads the role name none, quoted or not, as SET ROLE NONE: back to the login.
  if (checked(role, 'role') === 'none') throw new Error('rowguard: role "none" would reset the role to the login (SET ROLE NONE), not set one');
  return `SET LOCAL ROLE "${role}"; ${call}`;
}

/** Whether `text` is one setSessionText made: a nested withSession's, or the identity set back after it. */
export function isSetSessionText(text: string): boolean {
  return /^(SET LOCAL ROLE "[a-z_][a-z0-9_]*"; )?SELECT "[a-z_][a-z0-9_]*"\.set_session\((NULL|E'([^']|'')*')\)$/.test(text);
}

/**
 * What PostgreSQL's plan cache tells one kind of user from another, asked right after set_session:
 * the search_path, where set_session leaves the user's planner marks. A cached statement is planned
 * again when it runs under another search_path (or role) than it was planned with, so one statement
 * serving users of several kinds in turn is planned at nearly every run. A utility statement: no
 * planning, about 10 µs in set_session's message where a SELECT of the same costs 35.
 */
export const KIND_TEXT = 'SHOW search_path';

/** One kind of user: the digest of its role and search_path, and the comment made of it. */
export interface Kind {
  readonly digest: string;
  /** `/* rowguard kind <digest> *\/ `, put before the statements of this kind. */
  readonly mark: string;
}

const kinds = new Map<string, Kind>();

/** 64-bit FNV-1a of the UTF-16 code units, as 16 hex digits. */
export function fnv64(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) hash = BigInt.asUintN(64, (hash ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n);
  return hash.toString(16).padStart(16, '0');
}

/**
 * The kind of a user acting under `role` (`SessionOptions.role`, '' for the login's) with
 * `searchPath`: a digest of the two (a collision costs only planning, as without the mark). The
 * same role and search_path give the same kind on every connection.
 */
export function kindOf(role: string, searchPath: string): Kind {
  const text = `${role}\n${searchPath}`;
  let kind = kinds.get(text);
  if (kind === undefined) {
    const digest = fnv64(text);
    kind = { digest, mark: `/* rowguard kind ${digest} */ ` };
    // The kinds an application sees are few; a cap keeps paths set by hand from growing it.
    if (kinds.size >= 1024) kinds.clear();
    kinds.set(text, kind);
  }
  return kind;
}

/** The kind from the row KIND_TEXT returned, whatever the client's transform calls its column (postgres.camel: searchPath). */
export function kindFromRow(row: Record<string, unknown> | undefined, role: string | undefined): Kind {
  const path = Object.values(row ?? {})[0];
  if (typeof path !== 'string') throw new Error(`rowguard: ${KIND_TEXT} after set_session gave no text (a transform of the client's rows?); pass { statementPerKind: false }`);
  return kindOf(role ?? '', path);
}

/**
 * The sessions in force on one client library's handles (a pg client, a Kysely transaction): who
 * acts on each, and how deeply withSession is nested there. postgres.js hands each savepoint a
 * handle of its own and keeps its own record (runtime/postgres.ts).
 */
export class Sessions {
  readonly #active = new WeakMap<object, { identity: Identity; depth: number }>();

  /** Whether withSession runs on this handle already, so a call on it nests. */
  has(handle: object): boolean {
    return this.#active.has(handle);
  }

  /** The outermost withSession on this handle acts as `identity` from now on. */
  begin(handle: object, identity: Identity): void {
    this.#active.set(handle, { identity, depth: 0 });
  }

  /** The outermost withSession on this handle has ended. */
  end(handle: object): void {
    this.#active.delete(handle);
  }

  /**
   * A withSession nested on `handle`: a savepoint (named by its depth), `identity`, `fn`, then
   * RELEASE, or ROLLBACK TO when `fn` throws (the error is rethrown), and the identity in force
   * before it is set again. `run` sends one SQL text on the handle; `act` sets an identity (by
   * default set_session through `run`), after `before` in the same message when it is given one:
   * with `together` the savepoint goes in the message that sets `identity`, and the RELEASE in the
   * one that sets the identity back (two round trips where four were sent), for a client that
   * sends a text without parameters as one simple query (pg); Kysely's dialects need not.
   * Calls on one handle must not overlap (no `Promise.all` of them): the savepoints and the
   * identity are the transaction's, one at a time.
   */
  async nest<T>(
    handle: object,
    run: (text: string) => Promise<unknown>,
    identity: Identity,
    fn: () => Promise<T>,
    act: (identity: Identity, before?: string) => Promise<unknown> = (who, before = '') => run(before + setSessionText(who)),
    together = false,
  ): Promise<T> {
    const outer = this.#active.get(handle);
    if (!outer) throw new Error('rowguard: nest() needs a handle inside withSession');
    const name = `rowguard_session_${outer.depth + 1}`;
    if (!together) await run(`SAVEPOINT ${name}`);
    const mine = { identity, depth: outer.depth + 1 };
    this.#active.set(handle, mine);
    let failed = false;
    let restored = false;
    // When the call failed, its error is the one to see, not a failure to roll back or restore (a lost connection).
    const unlessFailed = (error: unknown) => {
      if (!failed) throw error;
    };
    try {
      await act(identity, together ? `SAVEPOINT ${name}; ` : undefined);
      const result = await fn();
      if (together) {
        await act(outer.identity, `RELEASE SAVEPOINT ${name}; `);
        restored = true;
      } else {
        await run(`RELEASE SAVEPOINT ${name}`);
      }
      return result;
    } catch (error) {
      failed = true;
      // ROLLBACK TO keeps the savepoint. With `together` it is released in the same message, so no
      // savepoint of this name outlives the call: a later call whose message failed before making
      // its own (the transaction aborted already) finds none to roll back to and stays aborted,
      // rather than rolling back to this one's and undoing what ran in between. Without
      // `together` the SAVEPOINT is sent before the try, so a call whose SAVEPOINT failed never
      // gets here.
      await run(together ? `ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}` : `ROLLBACK TO SAVEPOINT ${name}`).catch(unlessFailed);
      throw error;
    } finally {
      // Unless the session ended meanwhile (a call its callback did not wait for) and the handle
      // (a pg client back in the pool) serves another session now: that one's record stays.
      if (this.#active.get(handle) === mine) this.#active.set(handle, outer);
      if (!restored) await act(outer.identity).catch(unlessFailed);
    }
  }
}

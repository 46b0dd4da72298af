// What every client adapter shares: who is acting, and the one statement that says so.

/** The acting user of one model: `{ schema: 'smartoffice', id: 7 }`. */
export interface Identity<S extends string = string, Id = string | number | bigint> {
  readonly schema: S;
  readonly id: Id;
}

export interface SessionOptions {
  /**
   * Also `SET LOCAL ROLE <role>` first (one more statement). Not needed, and not recommended, when
   * the application logs in as a role that is a member of app_user: then the identity costs one
   * statement, `set_session`.
   */
  readonly role?: string;
  /**
   * Send `set_session` as a prepared statement, parsed once per connection instead of once per
   * transaction. postgres.js: on by default, following the instance's own `prepare` option (set
   * `prepare: false` there for a pooler in transaction mode; then `set_session` costs a second
   * round trip, postgres.js's describe of an unprepared statement with parameters). pg: off by
   * default (a named statement fails behind a pooler that does not track them: PgBouncer before
   * 1.21, or `max_prepared_statements = 0`); `true` names it `rowguard_set_session_<schema>`.
   * Kysely's pg dialect cannot name a statement and ignores this.
   */
  readonly prepare?: boolean;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function checked(name: string, what: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`rowguard: ${what} "${name}" is not a lower-case SQL identifier`);
  return name;
}

/** `SELECT "schema".set_session($1)`: the identity for the rest of the transaction. */
export function setSessionSql(identity: Identity): string {
  return `SELECT "${checked(identity.schema, 'schema')}".set_session($1)`;
}

/** The name node-postgres gives set_session's prepared statement, one per schema (see SessionOptions.prepare). */
export function setSessionStatementName(identity: Identity): string {
  return `rowguard_set_session_${checked(identity.schema, 'schema')}`;
}

export function setRoleSql(role: string): string {
  return `SET LOCAL ROLE "${checked(role, 'role')}"`;
}

/** Savepoint names for nested sessions: unique per nesting depth. */
export function savepointName(depth: number): string {
  return `rowguard_session_${depth}`;
}

export function sameIdentity(a: Identity, b: Identity): boolean {
  return a.schema === b.schema && String(a.id) === String(b.id);
}

// Statements with parameters sent as prepared statements of the acting user's kind on a pg
// client (Kysely's sessionPool, and pg's adapter with `prepare`), and what a migration does to them.
import type { PoolClient, QueryResult } from 'pg';
import { fnv64, KIND_TEXT, kindFromRow, type Kind } from './identity.ts';

/** pg's client.query, bound. */
export type Query = (...args: unknown[]) => Promise<unknown>;

/**
 * `text` (ending in a set_session) and KIND_TEXT as one simple query on a pg client: the acting
 * user's kind, and the results of `text`'s own statements.
 */
export async function sendWithKind(query: Query, text: string, role: string | undefined): Promise<{ kind: Kind; results: QueryResult[] }> {
  const results = (await query(`${text}; ${KIND_TEXT}`)) as QueryResult[];
  return { kind: kindFromRow(results.at(-1)?.rows[0], role), results: results.slice(0, -1) };
}

/** What pg answers for a text of these statements' results: the one result, or the array of them. */
export const answerOf = (results: QueryResult[]): unknown => (results.length === 1 ? results[0] : results);

/**
 * How many statements of kinds one client keeps prepared. Past it, the least recently run is
 * deallocated once the transaction is over, and parsed again under a new name when it runs again:
 * a statement whose text varies (a value written into it) costs the server ~40 kB each, on every
 * connection, for as long as the connection lives.
 */
export const KEPT_PER_CLIENT = 500;

/**
 * The statements prepared for kinds of user on each pg client: the names in use, least recently
 * run first, each with its base (the kind's and the text's digests); how often each base was
 * renamed (the count goes after the name); and the names to deallocate once the transaction is
 * over (a failed one cannot).
 */
interface Prepared {
  readonly inUse: Map<string, string>;
  readonly renamed: Map<string, number>;
  readonly stale: string[];
}
const preparedOn = new WeakMap<PoolClient, Prepared>();

function preparedFor(client: PoolClient): Prepared {
  let prepared = preparedOn.get(client);
  if (!prepared) preparedOn.set(client, (prepared = { inUse: new Map(), renamed: new Map(), stale: [] }));
  return prepared;
}

/**
 * The names pg's client takes for parsed on its connection (pg sends no Parse for them), or
 * undefined for a client that keeps no such record. Not in pg's typings; pg 8 keeps it there.
 */
const parsedOn = (client: PoolClient): Record<string, string> | undefined => (client as { connection?: { parsedStatements?: Record<string, string> } }).connection?.parsedStatements;

/** The statement a query with parameters runs as for `kind`: named by the kind and the text's digest, its text led by the kind's mark. */
function kindStatement(prepared: Prepared, kind: Kind, text: string): { base: string; name: string; text: string } {
  const base = `${kind.digest} ${fnv64(text)}`;
  const again = prepared.renamed.get(base);
  return { base, name: again ? `${base} ${again}` : base, text: kind.mark + text };
}

/**
 * The errors a statement parsed before a migration may fail with at every run on its connection,
 * where the same statement parsed again would run. PostgreSQL fixes a prepared statement's
 * parameter types when it parses it: after a column's type changes, a value out of range of the
 * old type (22003), not of its syntax (22P02, 22007) or its range of dates (22008), a mismatched
 * type (42804), no operator or function for the old type (42883, 42725) or no cast (42846). After
 * a statement's result columns change it fails with "cached plan must not change result type"
 * (0A000, known by the routine that raises it: the message is translated under another
 * lc_messages). The same codes also come from a call's own bad input, which then costs a parse
 * and a DEALLOCATE; a policy's refusal (42501) and the rest are the call's own.
 */
const STALE_CODES = new Set(['22003', '22P02', '22007', '22008', '42804', '42883', '42725', '42846']);
function stale(error: unknown): boolean {
  const e = error as { code?: unknown; routine?: unknown } | null;
  return STALE_CODES.has(String(e?.code)) || (e?.code === '0A000' && e.routine === 'RevalidateCachedQuery');
}

/** Retires `name`: its base gets a new name for its next run, and it is deallocated once the transaction is over. */
function retire(prepared: Prepared, name: string, base: string): void {
  prepared.inUse.delete(name);
  prepared.renamed.set(base, (prepared.renamed.get(base) ?? 0) + 1);
  prepared.stale.push(name);
}

/**
 * Runs the statement of `kind` for `text`. One that pg sent without a Parse (parsed on an earlier
 * run, whether that run succeeded or not) and that fails as a stale one would (see stale) is
 * retired: parsed again under a new name at its next run, and deallocated once the transaction is
 * over (deallocateStale). A 26000 (the server has no statement of that name: a DEALLOCATE ALL or
 * DISCARD ALL by hand) retires every statement on the client, as such a reset drops them all: one
 * failed run per reset, not one per statement. Past KEPT_PER_CLIENT, the least recently run one is
 * retired too.
 */
export function runPrepared(client: PoolClient, query: Query, kind: Kind, text: string, values: unknown[]): Promise<unknown> {
  const prepared = preparedFor(client);
  const statement = kindStatement(prepared, kind, text);
  const parsed = parsedOn(client);
  const reused = parsed ? statement.name in parsed : prepared.inUse.has(statement.name);
  // Most recently run last.
  prepared.inUse.delete(statement.name);
  prepared.inUse.set(statement.name, statement.base);
  if (prepared.inUse.size > KEPT_PER_CLIENT) {
    const [oldest, base] = prepared.inUse.entries().next().value as [string, string];
    retire(prepared, oldest, base);
  }
  return query({ name: statement.name, text: statement.text, values }).catch((error: unknown) => {
    if ((error as { code?: unknown } | null)?.code === '26000') {
      for (const [name, base] of [...prepared.inUse]) retire(prepared, name, base);
    } else if (reused && stale(error) && prepared.inUse.get(statement.name) === statement.base) {
      retire(prepared, statement.name, statement.base);
    }
    throw error;
  });
}

/**
 * A client whose transaction is over (going back to the pool, not destroyed: `error` unset or
 * false): its retired statements are deallocated, queued ahead of its next statements, outside any
 * transaction, and leave pg's record of parsed names. One that fails (dropped already, by a reset
 * or by hand) fails alone.
 */
export function deallocateStale(client: PoolClient, query: Query, error?: unknown): void {
  const prepared = preparedOn.get(client);
  if (!prepared || error) return;
  const parsed = parsedOn(client);
  for (const name of prepared.stale.splice(0)) {
    query(`DEALLOCATE "${name}"`).catch(() => {});
    if (parsed) delete parsed[name];
  }
}

// Statements with parameters sent as prepared statements of the acting user's kind on a pg
// client (Kysely's sessionPool, and pg's adapter with `prepare`), and what a migration does to them.
import type { PoolClient } from 'pg';
import { fnv64, type Kind } from './identity.ts';

/** pg's client.query, bound. */
export type Query = (...args: unknown[]) => Promise<unknown>;

/**
 * The statements prepared for kinds of user on each pg client: the names sent (for a client
 * without pg's record of parsed names), how often each text and kind was renamed (the count goes
 * after the name), and the stale names to deallocate once the transaction is over (a failed one
 * cannot).
 */
interface Prepared {
  readonly sent: Set<string>;
  readonly renamed: Map<string, number>;
  readonly stale: string[];
}
const preparedOn = new WeakMap<PoolClient, Prepared>();

function preparedFor(client: PoolClient): Prepared {
  let prepared = preparedOn.get(client);
  if (!prepared) preparedOn.set(client, (prepared = { sent: new Set(), renamed: new Map(), stale: [] }));
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

/**
 * Runs the statement of `kind` for `text`. One that pg sent without a Parse (parsed on an earlier
 * run, whether that run succeeded or not) and that fails as a stale one would (see stale) is parsed
 * again under a new name at its next run, and the stale one deallocated once the transaction is
 * over (deallocateStale); one the server no longer has (26000: a DEALLOCATE ALL or DISCARD ALL by
 * hand) is parsed again too.
 */
export function runPrepared(client: PoolClient, query: Query, kind: Kind, text: string, values: unknown[]): Promise<unknown> {
  const prepared = preparedFor(client);
  const statement = kindStatement(prepared, kind, text);
  const parsed = parsedOn(client);
  const reused = parsed ? statement.name in parsed : prepared.sent.has(statement.name);
  prepared.sent.add(statement.name);
  return query({ name: statement.name, text: statement.text, values }).catch((error: unknown) => {
    const gone = (error as { code?: unknown } | null)?.code === '26000';
    if (gone || (reused && stale(error))) {
      prepared.renamed.set(statement.base, (prepared.renamed.get(statement.base) ?? 0) + 1);
      if (gone) forget(client, prepared, statement.name);
      else prepared.stale.push(statement.name);
    }
    throw error;
  });
}

/** A renamed statement's name leaves the client's records (so they do not grow with each rename). */
function forget(client: PoolClient, prepared: Prepared, name: string): void {
  prepared.sent.delete(name);
  const parsed = parsedOn(client);
  if (parsed) delete parsed[name];
}

/**
 * A client whose transaction is over (going back to the pool, not destroyed: `error` unset or
 * false): its stale statements are deallocated, queued ahead of its next statements, outside any
 * transaction. One that fails (deallocated by hand since) fails alone.
 */
export function deallocateStale(client: PoolClient, query: Query, error?: unknown): void {
  const prepared = preparedOn.get(client);
  if (!prepared || error) return;
  for (const name of prepared.stale.splice(0)) {
    query(`DEALLOCATE "${name}"`).catch(() => {});
    forget(client, prepared, name);
  }
}

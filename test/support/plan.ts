// Plan-shape checks as app_user: what the planner does with a query once the generated policies
// are added to it. Every fact is an InitPlan whose value the planner does not know; the persona
// matters for the share it sees and for the planner hints set_session gives it (which facts are
// small for it: generator/emit/hints.ts).
import { expect, it } from 'vitest';
import { exprContext, printExpr } from '../../generator/emit/expr.ts';
import { planHints } from '../../generator/emit/hints.ts';
import type { ModelNode } from '../../generator/model/nodes.ts';
import { literal } from '../../generator/sql/print.ts';
import { statementOutcomes, type TestDatabase, type Tx } from './db.ts';

/** Takes set_session's planner marks out of the transaction's search_path, as for a login that never calls it. */
export async function dropMarks(tx: Pick<Tx, 'unsafe'>): Promise<void> {
  await tx.unsafe('SET LOCAL search_path = "$user", public');
}

/**
 * What `statements` return or refuse for `user` with the marks set_session sets, and with none (a
 * search_path without them), each in a rolled-back transaction: the two must be equal wherever
 * the hints are right.
 */
export async function markedAndUnmarked(db: TestDatabase, schema: string, user: string | number, statements: readonly string[]): Promise<[(number[] | string)[], (number[] | string)[]]> {
  const run = (unmarked: boolean) =>
    db.as(schema, user, async (tx) => {
      if (unmarked) await dropMarks(tx);
      return statementOutcomes(tx, statements);
    });
  return [await run(false), await run(true)];
}

/**
 * The EXPLAIN text of `query` run as app_user acting as `user` (printed when RG_SHOW_PLAN is set);
 * `unmarked`: planned without the marks set_session put in the search_path, as for a login that
 * never calls it.
 */
export async function explain(db: TestDatabase, schema: string, user: string | number, query: string, options: { verbose?: boolean; unmarked?: boolean } = {}): Promise<string> {
  const text = await db.as(schema, user, async (tx) => {
    if (options.unmarked) await dropMarks(tx);
    return planText(tx, `${options.verbose ? '(VERBOSE) ' : ''}${query}`);
  });
  if (process.env.RG_SHOW_PLAN) console.log(`-- ${schema} as ${user}: ${query}\n${text}`);
  return text;
}

/** Names the prepared statements of explainGeneric apart. */
let generic = 0;

/**
 * The EXPLAIN text of `query` (parameters $1, $2, …) as a prepared statement's generic plan, the
 * plan PostgreSQL keeps for a prepared statement once it finds it no dearer than the custom ones
 * (postgres.js prepares every tagged query): planned without the parameters' values, run as
 * app_user acting as `user`.
 */
export async function explainGeneric(db: TestDatabase, schema: string, user: string | number, query: string, params: readonly string[]): Promise<string> {
  const text = await db.as(schema, user, async (tx) => {
    await tx.unsafe('SET LOCAL plan_cache_mode = force_generic_plan');
    // A prepared statement outlives the transaction: each gets a name of its own, and a failed
    // EXPLAIN leaves one behind that nothing else uses.
    const name = `rg_generic_${++generic}`;
    await tx.unsafe(`PREPARE ${name} AS ${query}`);
    const plan = await planText(tx, `EXECUTE ${name}(${params.map(literal).join(', ')})`);
    await tx.unsafe(`DEALLOCATE ${name}`);
    return plan;
  });
  if (process.env.RG_SHOW_PLAN) console.log(`-- ${schema} as ${user}, generic plan: ${query}\n${text}`);
  return text;
}

/** The transaction's search_path, as PostgreSQL shows it. */
export async function searchPath(tx: Pick<Tx, 'unsafe'>): Promise<string> {
  return (await tx.unsafe("SELECT current_setting('search_path') AS p"))[0]!.p as string;
}

/** The planner-hint marks in the transaction's search_path (generator/emit/hints.ts), in order. */
export async function planMarks(tx: Pick<Tx, 'unsafe'>): Promise<string[]> {
  return (await searchPath(tx)).split(', ').filter((s) => s.startsWith('rg_plan_'));
}

/**
 * The acting user's guard marks (not-true and true) as the facts' own functions decide them, and
 * as set_session set them: plan_marks computes the guards' facts its own way (together, and
 * array facts of one table in one scan: generator/emit/expr.ts, fuseArrayReads), and must agree.
 */
export async function guardMarks(tx: Pick<Tx, 'unsafe'>, model: ModelNode): Promise<{ set: string[]; byFacts: string[] }> {
  const { folds, trues } = planHints(model);
  const ctx = exprContext(model);
  const guards = [
    ...folds.map((f) => ({ mark: f.notSchema, test: `(${printExpr(f.when, ctx)}) IS NOT TRUE` })),
    ...trues.map((f) => ({ mark: f.isSchema, test: `(${printExpr(f.when, ctx)}) IS TRUE` })),
  ];
  const row = (await tx.unsafe(`SELECT array_remove(ARRAY[${guards.map((g) => `CASE WHEN ${g.test} THEN ${literal(g.mark)} END`).join(', ')}]::text[], NULL) AS marks`))[0]!;
  const set = (await planMarks(tx)).filter((m) => guards.some((g) => g.mark === m)).sort();
  return { set, byFacts: [...(row.marks as string[])].sort() };
}

/** The EXPLAIN text of `statement` (which may start with EXPLAIN's options) in the caller's transaction. */
export async function planText(tx: Pick<Tx, 'unsafe'>, statement: string): Promise<string> {
  return (await tx.unsafe(`EXPLAIN ${statement}`)).map((r) => r['QUERY PLAN'] as string).join('\n');
}

/**
 * A selective persona's plan: no sequential scan of `table`, and no policy expression run as a
 * SubPlan (per row, or hashed) instead of an InitPlan. Not caught here: `ORDER BY id LIMIT n`
 * walking the primary key with the whole policy as its Filter, which the planner prefers when it
 * overestimates the visible share; the planner-hint tests of SmartOffice, PolicyCenter and
 * SuperOffice check that one.
 */
export function expectSelectivePlan(plan: string, table: string): void {
  // "Parallel Seq Scan on" matches too; VERBOSE plans qualify the table with its schema.
  expect(plan, plan).not.toMatch(new RegExp(`Seq Scan on (\\w+\\.)?${table}\\b`));
  expect(plan, plan).not.toMatch(/\bSubPlan\b/);
}

/**
 * A broad persona's count answered by the BitmapOr alone: every arm of the policy is an index
 * condition, so PostgreSQL does not re-check the policy on the rows the bitmap returns (a per-row
 * Filter that searches the facts' arrays row by row).
 */
export function expectPolicyCoveredByBitmap(plan: string, table: string): void {
  expect(plan, plan).toMatch(new RegExp(`Bitmap Heap Scan on (\\w+\\.)?${table}\\b[\\s\\S]*BitmapOr`));
  expect(plan, plan).not.toMatch(/Filter:/);
}

/**
 * The index condition of a lookup read's widening arm (PolicySpec.lookup): `id >= <InitPlan's
 * NULL>` on its own, which PostgreSQL 17 and later print as `(InitPlan n).col1`, earlier
 * versions as `$n`.
 */
export const WIDENING_ARM = /Index Cond: \(id >= (?:\$\d+|\(InitPlan \d+\)\.col1)\)$/m;

/**
 * The schema-qualified functions a VERBOSE plan calls inside its InitPlans, each computed once per
 * statement. PostgreSQL 18 prints `InitPlan 1`, earlier versions `InitPlan 1 (returns $0)`; both
 * are followed by the Result node whose Output is the expression.
 */
export function initPlanFunctions(plan: string): string[] {
  return Object.keys(initPlanCalls(plan)).sort();
}

/** How many InitPlans of a VERBOSE plan call each function: once per policy clause that PostgreSQL keeps. */
export function initPlanCalls(plan: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const [, output] of plan.matchAll(/InitPlan \d+[^\n]*\n[^\n]*->\s+Result\b[^\n]*\n\s*Output: ([^\n]*)/g)) {
    for (const [, name] of output!.matchAll(/\b(\w+\.\w+)\(/g)) calls[name!] = (calls[name!] ?? 0) + 1;
  }
  return calls;
}

/** How many rows of `table` the persona sees, as app_user. */
export async function visibleRows(db: TestDatabase, schema: string, user: string | number, table: string): Promise<number> {
  return db.as(schema, user, async (tx) => Number((await tx.unsafe(`SELECT count(*) AS n FROM ${schema}.${table}`))[0]!.n));
}

export interface PlanShapeSpec {
  readonly schema: string;
  /** The model's large table, which a selective persona must never scan whole. */
  readonly table: string;
  /** How many rows the test's load put into `table`: the persona must see under 1% of them. */
  readonly rows: number;
  readonly persona: string | number;
  /** Who the persona is, for the test names ("a locked-out operator"). */
  readonly who: string;
  /** The least the persona sees, so "selective" is not "sees nothing". */
  readonly minVisible: number;
  /** [what, query] pairs, each planned as the persona. */
  readonly queries: readonly (readonly [string, string])[];
  /**
   * An equality search with its value as $1, and the value: planned as a prepared statement's
   * generic plan, with a primary-key lookup and a keyset page of `table`.
   */
  readonly preparedSearch: readonly [string, string];
  /** What the count's InitPlans are, in words, and exactly which functions they call. */
  readonly initPlans: { readonly what: string; readonly functions: readonly string[] };
}

/** The plan-shape tests every model shares: selective plans, a small real share, exact InitPlans. */
export function planShapeTests(db: { readonly current: TestDatabase }, spec: PlanShapeSpec): void {
  const { schema, table } = spec;
  for (const [what, query] of spec.queries) {
    it(`${spec.who}'s ${what}: no sequential scan of ${table}, no per-row SubPlan`, async () => {
      expectSelectivePlan(await explain(db.current, schema, spec.persona, query), table);
    });
  }
  // The same kinds of reads as prepared statements (postgres.js prepares every tagged query),
  // whose generic plans PostgreSQL makes without the parameters' values.
  const prepared: [string, string, string][] = [
    ['primary-key lookup', `SELECT * FROM ${schema}.${table} WHERE id = $1`, '5'],
    ['keyset page', `SELECT * FROM ${schema}.${table} WHERE id > $1 ORDER BY id LIMIT 50`, '100'],
    ['equality search', ...spec.preparedSearch],
  ];
  for (const [what, query, param] of prepared) {
    it(`${spec.who}'s prepared ${what}, its generic plan: no sequential scan of ${table}, no per-row SubPlan`, async () => {
      expectSelectivePlan(await explainGeneric(db.current, schema, spec.persona, query, [param]), table);
    });
  }
  it('the persona sees a realistic, small share', async () => {
    const n = await visibleRows(db.current, schema, spec.persona, table);
    expect(n).toBeGreaterThanOrEqual(spec.minVisible);
    expect(n).toBeLessThan(spec.rows / 100);
  });
  it(`${spec.initPlans.what} are InitPlans, computed once per statement`, async () => {
    const plan = await explain(db.current, schema, spec.persona, `SELECT count(*) FROM ${schema}.${table}`, { verbose: true });
    expect(await byWhatTheyCombine(db.current, initPlanFunctions(plan))).toEqual(spec.initPlans.functions);
  });
}

/**
 * `names`, with each function that computes a statement value of several facts in one call
 * (generator/emit/combined.ts, named by a hash) named by the functions its comment says it
 * stands for: `superoffice.rg_once(contact_scopes_with_read, current_user_id)`.
 */
async function byWhatTheyCombine(db: TestDatabase, names: readonly string[]): Promise<string[]> {
  const rows = await db.admin`
    SELECT n.nspname || '.' || p.proname AS name, obj_description(p.oid, 'pg_proc') AS comment
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname LIKE 'rg\_once\_%'`;
  const comments = new Map(rows.map((r) => [r.name as string, r.comment as string]));
  return names
    .map((name) => {
      const comment = comments.get(name);
      if (comment === undefined) return name;
      const combined = [...comment.slice(comment.indexOf(': ')).matchAll(/"\w+"\."(\w+)"\(/g)].map(([, fn]) => fn);
      return `${name.slice(0, name.indexOf('.'))}.rg_once(${combined.join(', ')})`;
    })
    .sort();
}

/** Every planner-hint mark schema of `schema`'s model (generator/emit/hints.ts), in order. */
export async function everyMark(tx: Pick<Tx, 'unsafe'>, schema: string): Promise<string[]> {
  return (await tx.unsafe("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 ORDER BY 1", [`rg\\_plan\\_${schema}\\_%`])).map((r) => r.nspname as string);
}

/**
 * The statements' outcomes (statementOutcomes) as the acting user, then again with `marks` added
 * to the search_path by hand (and the marks `dropped` taken out of it), as whoever forges them
 * would: [own, forged].
 */
export async function ownAndForged(tx: Tx, statements: readonly string[], marks: readonly string[], dropped: readonly string[] = []): Promise<[(number[] | string)[], (number[] | string)[]]> {
  const own = await statementOutcomes(tx, statements);
  const kept = (await searchPath(tx)).split(', ').filter((s) => !dropped.includes(s));
  await tx.unsafe(`SELECT set_config('search_path', $1, true)`, [[...kept, ...marks].join(', ')]);
  return [own, await statementOutcomes(tx, statements)];
}

/**
 * A forged planner mark may only hide rows: each statement's outcome with it (statementOutcomes)
 * is refused, no rows (a write whose own rows the mark hid, where without it the write was
 * refused by WITH CHECK), or a subset of the rows without it. `skip`: a statement whose rows need
 * not nest (a first page of fewer rows is no subset of the first page).
 */
export function expectOnlyFewer(own: readonly (number[] | string)[], forged: readonly (number[] | string)[], statements: readonly string[], skip: string): void {
  own.forEach((rows, i) => {
    const less = forged[i]!;
    if (statements[i] === skip || typeof less === 'string' || less.length === 0) return;
    expect(typeof rows, statements[i]).not.toBe('string');
    expect(less.every((id) => (rows as number[]).includes(id)), statements[i]).toBe(true);
  });
}

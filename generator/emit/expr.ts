// Expressions → SQL. One case per node kind; the `satisfies` table makes a missing kind a compile error.
//
// Shapes matter for speed as much as for meaning:
// - everything about the acting user (facts, the identity) is printed as `(select f())`, which
//   PostgreSQL plans as an InitPlan evaluated once per statement instead of once per row;
// - set membership is `x = any((select f())::T[])`: the cast turns the sub-select into an array
//   expression (without it, `= any((select …))` is the subquery form and fails to type-check),
//   and an index on x can drive the scan from the array.
import type { Expr, ExprKind, ModelNode, QueryNode } from '../model/nodes.ts';
import { elementOf, TypeResolver, typeMaximum, typeMinimum, UNKNOWN } from '../model/types.ts';
import { ident, literal, qualified } from '../sql/print.ts';
import { NEW_SCOPE, OLD_SCOPE, ROW_SCOPE } from '../dsl/model.ts';
import { closureRead } from './closure.ts';
import { keyListOf } from './counters.ts';
import { foldTest, hintConjunct, standInText, type HintedArm, type StandIn } from './hints.ts';
import type { CombinedValues } from './combined.ts';

export interface ExprContext {
  readonly model: ModelNode;
  readonly types: TypeResolver;
  /** How the policy's own row is printed: `"contacts"` in a policy, `d` in a view; '' for bare names. */
  readonly rowQualifier?: string;
  /** Raw-SQL reasons met while printing, so the statement can say so in a comment. */
  readonly rawReasons: string[];
  /** How the acting user is printed; a fact body reads it once into a variable (default: the InitPlan call). */
  readonly sessionUser?: string;
  /**
   * Facts printed as their own expression (cast to their type) instead of a call: inside a fact's
   * body, which already runs as the definer with the identity read, another fact's call would
   * only add a SECURITY DEFINER call and a second reading of the identity.
   */
  readonly inlineFacts?: ReadonlyMap<string, { readonly expr: Expr; readonly type: string }>;
  /**
   * Inside a fact body: lookups of the acting user's own row (`SELECT col FROM <identity table>
   * WHERE <key> = me`) read fields of one record variable instead, and the columns they need are
   * collected here so the body fetches that row once (see identityRowRead).
   */
  readonly identityRow?: {
    readonly variable: string;
    readonly columns: Set<string>;
    /**
     * Lookups that test the row, and EXISTS of it, read the record too: set where the body reads
     * the record anyway (a plain lookup needs it), where they cost a field read instead of a
     * sub-select each. Alone they keep their sub-select, which costs less than filling the record.
     */
    readonly readsTested?: boolean;
  };
  /** Scopes printed as another qualifier (an identity-row lookup's scope as its record variable). */
  readonly scopeAliases?: ReadonlyMap<string, string>;
  /**
   * The expression is evaluated once where it is printed (a PL/pgSQL IF or RETURN, an assignment,
   * the inside of a hoisted sub-select), not once per row. Facts, the identity and walker calls
   * then print as plain calls: a sub-select there would only add a plan node for PostgreSQL to
   * plan and set up on every statement, and it turns a PL/pgSQL expression that PostgreSQL could
   * evaluate directly into a query. Cleared inside queries, whose expressions run per row.
   */
  readonly evaluatedOnce?: boolean;
  /**
   * Inside plan_marks' counts of how many elements a fact has (see hints.ts): every set a query
   * reads is cut at this many elements, so a count costs little even when the sets it is built
   * from are large. The count is then a guess for plans only, never a value a rule reads.
   */
  readonly boundedSets?: number;
  /** Facts read from a row's columns instead (plan_marks computes the facts its guards read once). */
  readonly factColumns?: ReadonlyMap<string, string>;
  /**
   * The SQL runs as the definer (a fact's body), which reads closure tables itself: walks print
   * as the closure read in place of the walker's call (see closureRead).
   */
  readonly readsClosures?: boolean;
  /** Arms of the policy clause being printed that carry a planner hint (see hints.ts). */
  readonly planHints?: ReadonlyMap<Expr, HintedArm>;
  /** Disjuncts of the read policy's USING being printed that get a stand-in (see hints.ts, StandIn). */
  readonly standIns?: ReadonlyMap<Expr, StandIn>;
  /** Where a policy is printed: statement values of several facts become one call each (combined.ts). */
  readonly combined?: CombinedValues;
}

export function exprContext(model: ModelNode, rowQualifier?: string, sessionUser?: string): ExprContext {
  return {
    model,
    types: new TypeResolver(model),
    rawReasons: [],
    ...(rowQualifier !== undefined ? { rowQualifier } : {}),
    ...(sessionUser !== undefined ? { sessionUser } : {}),
  };
}

/** The acting identity inside SQL: a sub-select, so a policy or view runs it once per statement, not per row. */
export function sessionUserSql(schema: string): string {
  return `(select ${sessionUserCall(schema)})`;
}

/**
 * The acting identity in a PL/pgSQL assignment or IF of its own: a plain call keeps the statement
 * a "simple expression" that PL/pgSQL evaluates without starting an executor, where a sub-select
 * would run a query (~5 µs per fact per statement). Only where it is evaluated once anyway.
 */
export function sessionUserCall(schema: string): string {
  return `${qualified(schema, 'current_user_id')}()`;
}

/** A fact's plain call; where a row is checked it is wrapped as factCallSql (see onceCall). */
export function factCall(schema: string, name: string): string {
  return `${qualified(schema, name)}()`;
}

export function factCallSql(schema: string, name: string): string {
  return `(select ${factCall(schema, name)})`;
}

/** The context for an expression evaluated once where it is printed (see ExprContext.evaluatedOnce). */
export function evaluatedOnce(ctx: ExprContext): ExprContext {
  return ctx.evaluatedOnce ? ctx : { ...ctx, evaluatedOnce: true };
}

/** A call the statement computes once: plain where the expression is evaluated once, else a sub-select. */
function onceCall(call: string, ctx: ExprContext): string {
  return ctx.evaluatedOnce ? call : `(select ${call})`;
}

/** `hint`: the planner hint of this very node, if it has one (see printExpr). */
type Printers = { [K in ExprKind]: (e: Extract<Expr, { kind: K }>, ctx: ExprContext, hint?: HintedArm) => string };

const printers = {
  column: (e, ctx) => {
    const q = scopeQualifier(e.scope, ctx);
    return q ? `${q}.${ident(e.column)}` : ident(e.column);
  },
  'unknown-column': (e) => `/* unknown column ${e.table}.${e.column} */ NULL`,
  literal: (e) => (e.type && e.value !== null ? `${literal(e.value)}::${e.type}` : literal(e.value)),
  'session-user': (_e, ctx) => ctx.sessionUser ?? onceCall(sessionUserCall(ctx.model.schema), ctx),
  fact: (e, ctx) => {
    const column = ctx.factColumns?.get(e.name);
    if (column !== undefined) return column;
    const inline = ctx.inlineFacts?.get(e.name);
    return inline ? `(${printExpr(inline.expr, ctx)})::${inline.type}` : onceCall(factCall(ctx.model.schema, e.name), ctx);
  },
  compare: (e, ctx, hint) => guardedArm(`${comparand(e.left, ctx)} ${e.op} ${comparand(e.right, ctx)}`, hint, ctx),
  'distinct-from': (e, ctx) => `${comparand(e.left, ctx)} IS ${e.negated ? 'NOT ' : ''}DISTINCT FROM ${comparand(e.right, ctx)}`,
  'in-set': (e, ctx, hint) => {
    const set = setOperand(e.set, ctx);
    const item = comparand(e.item, ctx);
    return hintedSetArm(`${item} = any(${set})`, item, hint, ctx);
  },
  // The hint goes on the columns' array (hints.ts: `@>` an empty array, true for every row).
  'any-in-set': (e, ctx, hint) => {
    const items = itemsArray(e, ctx);
    return hintedSetArm(`${items} && ${setOperand(e.set, ctx)}`, items, hint, ctx);
  },
  'all-in-set': (e, ctx) => `${itemsArray(e, ctx)} <@ ${setOperand(e.set, ctx)}`,
  'is-null': (e, ctx) => `${operand(e.expr, ctx)} IS ${e.negated ? 'NOT ' : ''}NULL`,
  and: (e, ctx) => joinBool('AND', e.items, ctx),
  or: (e, ctx) => joinBool('OR', e.items, ctx),
  not: (e, ctx) => `NOT ${operand(e.item, ctx)}`,
  exists: (e, ctx) => identityRowExists(e.query, ctx) ?? `EXISTS (${printQuery(e.query, ctx, '1')})`,
  'array-of': (e, ctx) =>
    ctx.boundedSets === undefined ? `ARRAY(${printQuery(e.query, ctx)})` : `ARRAY(${boundedRows(printQuery(e.query, ctx), '*', ctx.boundedSets)})`,
  'scalar-of': (e, ctx) => identityRowRead(e.query, ctx) ?? `(${printQuery(e.query, ctx)} LIMIT 1)`,
  array: (e, ctx) => {
    const type = e.type ?? elementOf(ctx.types.of(e));
    return `ARRAY[${e.items.map((i) => printExpr(i, ctx)).join(', ')}]${type === UNKNOWN ? '' : `::${type}[]`}`;
  },
  'set-union': (e, ctx) => {
    const type = ctx.types.of(e);
    const cast = type === UNKNOWN ? '' : `::${type}`;
    return e.items.map((i) => `${needsParens(i) ? `(${printExpr(i, ctx)})` : printExpr(i, ctx)}${cast}`).join(' || ');
  },
  'hierarchy-set': (e, ctx) => {
    const h = ctx.readsClosures ? ctx.model.hierarchies.find((x) => x.name === e.hierarchy) : undefined;
    if (h) return closureRead(ctx.model, h, e.direction, printExpr(e.of, ctx), elementOf(ctx.types.of(e)), e.includeSelf);
    const fn = qualified(ctx.model.schema, hierarchyFunctionName(e.hierarchy, e.direction));
    const call = `${fn}(${printExpr(e.of, ctx)}, ${e.includeSelf ? 'true' : 'false'})`;
    return dependsOnRow(e.of) ? call : onceCall(call, ctx);
  },
  case: (e, ctx) =>
    `CASE ${e.branches.map((b) => `WHEN ${printExpr(b.when, ctx)} THEN ${printExpr(b.then, ctx)}`).join(' ')} ELSE ${printExpr(e.else, ctx)} END`,
  coalesce: (e, ctx) => `coalesce(${e.items.map((i) => printExpr(i, ctx)).join(', ')})`,
  'array-position': (e, ctx) => `array_position(ARRAY[${e.array.map((l) => literal(l)).join(', ')}]::text[], ${printExpr(e.item, ctx)})`,
  // The scope once, then one key per element: a fact of my office and the agents I stand in for.
  'list-keys': (e, ctx) => {
    // In the columns' own types, whose text the triggers' keys are made of (validation requires
    // these types; the casts keep a varchar or an unknown-typed value from printing otherwise).
    const k = keyListOf(ctx.model, e.table, e.column);
    const typed = (sql: string, type: string | undefined) => (type === undefined || type.startsWith(UNKNOWN) ? sql : `(${sql})::${type}`);
    const scope = typed(printExpr(e.scope, ctx), k && ctx.types.columnType(e.table, k.list.scope));
    const values = typed(printExpr(e.values, ctx), k && `${ctx.types.columnType(k.from, k.list.value)}[]`);
    return `ARRAY(SELECT ${listKey('k.rg_scope', 'v.rg_value')} FROM (SELECT ${scope} AS rg_scope) AS k, pg_catalog.unnest(${values}) AS v(rg_value) WHERE v.rg_value IS NOT NULL)`;
  },
  raw: (e, ctx) => {
    ctx.rawReasons.push(e.reason);
    return `(${e.sql})`;
  },
  // Why not `OR (select bypass())`: a bare boolean arm has no index condition, so the whole OR
  // loses its BitmapOr and every user pays a sequential scan. A range on the primary key is an
  // index condition; when the condition is false the bounds are NULL and the index scan of this
  // arm returns nothing at once, when true it covers every row. An upper bound where the type has
  // a greatest value: the planner then estimates the arm as a narrow range (see typeMaximum).
  'every-row-when': (e, ctx, hint) => {
    const range = keyRange(e.table, ROW_SCOPE, e.when, ctx);
    if (range === undefined) throw new Error(`internal: everyRowWhen on "${e.table}" needs a primary key with a least value (validation reports this)`);
    const arm = guardedArm(range, hint, ctx);
    // While set_session finds the guard true the planner keeps the second part: the guard alone,
    // which it estimates as half the table (see hints.ts).
    if (hint?.kind !== 'fold' || hint.whenTrue === undefined) return arm;
    return joinParts('OR', [`(${arm})`, `(${qualified(ctx.model.schema, hint.whenTrue)}() AND (SELECT ${printExpr(e.when, evaluatedOnce(ctx))}))`]);
  },
} satisfies Printers as Printers;

/**
 * The set of an `in` or `anyOf(…).in` arm with its array cast, computed once per statement. Hoisted
 * only with the cast: `= any((SELECT …))` without one is the sub-query form of ANY.
 */
function setOperand(e: Expr, ctx: ExprContext): string {
  const setType = ctx.types.of(e);
  const cast = setType === UNKNOWN ? '' : `::${setType}`;
  const hoist = cast !== '' && hoisted(e, ctx);
  const [members, membersCtx] = asMembers(e, ctx);
  const set = hoist ? `(SELECT ${onceValue(members, membersCtx)})` : printExpr(members, membersCtx);
  return `${needsParens(e) && !hoist ? `(${set})` : set}${cast}`;
}

/**
 * A key list's key (m.keyList; emit/counters.ts keeps the lists): the scope's text, a colon, then
 * the value's text (`3:11`: office 3, user 11). A colon or percent sign in the scope's text is
 * percent-encoded, so the first colon ends the scope and a key names one pair whatever the types
 * (for text scopes `a:b` + `c` and `a` + `b:c` would otherwise be one key).
 */
export function listKey(scope: string, value: string): string {
  return `(${listKeyPrefix(scope)} || ${value}::text)`;
}

/** The part of every key of a row's list that its scope decides, colon included (rewritten when the scope changes). */
export function listKeyPrefix(scope: string): string {
  return `pg_catalog.replace(pg_catalog.replace(${scope}::text, '%', '%25'), ':', '%3A') || ':'`;
}

/** The columns of an `anyOf(…).in` arm (or the values of `allOf(…).in`) as one array of the set's element type, as its GIN index reads them (anyOfIndexes in grants.ts); a key list's column itself. */
export function itemsArray(e: Extract<Expr, { kind: 'any-in-set' | 'all-in-set' }>, ctx: ExprContext): string {
  if (e.kind === 'any-in-set' && e.spread) return printExpr(e.items[0]!, ctx);
  const type = elementOf(ctx.types.of(e.set));
  return printExpr(type === UNKNOWN ? { kind: 'array', items: e.items } : { kind: 'array', items: e.items, type }, ctx);
}

/** A set arm with its planner hint: the range that narrows its estimate (on `item`: the column, or an anyOf arm's array), under its guard's fold. */
function hintedSetArm(arm: string, item: string, hint: HintedArm | undefined, ctx: ExprContext): string {
  const range = hint?.kind === 'range' ? hint : hint?.range;
  const narrowed = range ? joinParts('AND', [arm, hintConjunct(range, ctx.model.schema, item)]) : arm;
  return hint?.kind === 'fold' ? guardedArm(narrowed, hint, ctx) : narrowed;
}

/** A guarded arm with the test the planner folds to drop it (hints.ts), when it has one. */
function guardedArm(arm: string, hint: HintedArm | undefined, ctx: ExprContext): string {
  return hint ? `${foldTest(hint, ctx.model.schema)} AND ${arm}` : arm;
}

/**
 * `when` as a range on the primary key of `table` (read in `scope`), or undefined if the key has
 * no least value. Only the lower bound carries the condition, so it is computed once per
 * statement; the upper bound is the type's greatest value as a literal, which makes the pair a
 * range the planner estimates as narrow (an unknown bound counts as 0.5% of the table). With no
 * condition (null) the lower bound is NULL: the range admits no row, estimated the same.
 */
function keyRange(table: string, scope: string, when: Expr | null, ctx: ExprContext): string | undefined {
  const key = ctx.model.tables.find((t) => t.name === table)?.primaryKey[0];
  const type = key === undefined ? UNKNOWN : ctx.types.columnType(table, key);
  const minimum = typeMinimum(type);
  if (key === undefined || minimum === undefined) return undefined;
  const column = printExpr({ kind: 'column', scope, table, column: key }, ctx);
  const bound = when === null ? `NULL::${type}` : `CASE WHEN ${printExpr(when, evaluatedOnce(ctx))} THEN ${minimum} END`;
  const lower = `${column} >= (SELECT ${bound})`;
  const maximum = typeMaximum(type);
  return maximum === undefined ? lower : `${lower} AND ${column} <= ${maximum}`;
}

/**
 * A node's planner hint is printed only where the hints were found: reached from the clause
 * through AND and OR. The same node object may appear elsewhere too (a DSL value used twice), and
 * under NOT a dropped arm would widen what the policy admits, so below any other node the hints
 * are gone.
 */
export function printExpr(e: Expr, ctx: ExprContext): string {
  const hint = ctx.planHints?.get(e);
  const hinted = ctx.planHints !== undefined || ctx.standIns !== undefined;
  const plain = hinted ? { ...ctx, planHints: undefined, standIns: undefined } : ctx;
  const text = (printers[e.kind] as (e: Expr, ctx: ExprContext, hint?: HintedArm) => string)(e, e.kind === 'and' || e.kind === 'or' ? ctx : plain, hint);
  const standIn = ctx.standIns?.get(e);
  return standIn === undefined ? text : standInText(standIn, ctx.model.schema, text, standing(e, standIn.with, plain));
}

/** What stands in (hints.ts, StandIn), as printed. */
function standing(e: Expr, by: StandIn['with'], ctx: ExprContext): string[] {
  if (by.kind === 'key') {
    const nullRange = keyRange(by.table, ROW_SCOPE, null, ctx);
    if (nullRange === undefined) throw new Error(`internal: a stand-in on "${by.table}" needs a primary key with a least value (validation reports this)`);
    return [...by.rowConditions.map((c) => operand(c, ctx)), nullRange];
  }
  const none = `(SELECT NULL::${by.type})`;
  // With its cast: `= any((SELECT …))` alone is the sub-query form of ANY.
  if (e.kind === 'in-set' && by.operand === 'set') return [`${comparand(e.item, ctx)} = any(${none}::${by.type})`];
  // Containment, not overlap: as NULL as `&&` and read by the same GIN index, but estimated at
  // PostgreSQL's default 0.5%, not 1%. At 1% the stand-in alone turned Collect!'s 1% client login's
  // ILIKE page into a key walk (36 → 560 ms); the per-column arms it replaced stood in at ~0.1% each.
  // Only where the key has no least or no greatest value (hints.ts stands in a NULL key range
  // otherwise), and nothing beside it: a bitmap scan drops its per-row check of the policy only
  // when every arm is index conditions alone. A NULL test before the containment (migration 0149,
  // to spare a key walk each row's array) kept that check on every row, and with it the search of
  // the client set, quadratic in the client tree: with 10^5 clients the client login's ILIKE page
  // took 66 ms (B2 19).
  if (e.kind === 'any-in-set' && by.operand === 'set') return [`${itemsArray(e, ctx)} @> ${none}::${by.type}`];
  if (e.kind === 'compare' && by.operand !== 'set') return [`${by.operand === 'left' ? none : comparand(e.left, ctx)} ${e.op} ${by.operand === 'right' ? none : comparand(e.right, ctx)}`];
  throw new Error(`internal: a stand-in of its ${by.operand} on a ${e.kind} arm`);
}

export function hierarchyFunctionName(hierarchy: string, direction: 'descendants' | 'ancestors'): string {
  return `${hierarchy}_${direction}`;
}

/**
 * A fact inlined as the set of `x = any(<set>)` (inside another fact's body), without the DISTINCT
 * of the queries that build its value (through its CASE branches and unions too): ANY ignores
 * duplicates, and a DISTINCT is a hash aggregate on every call (SmartOffice's
 * my_office_contacts_assigned_to_me_or_my_agents inlined contacts_assigned_to_me_or_my_agents, until
 * migration 0184 replaced both: the agent's 191 assignment rows, 184 contacts, ~0.59 -> ~0.44 ms a call). The fact's own function
 * keeps it (an application may read the array), and so does a set written in place with
 * `distinct: true` (asked for there) and a set cut at `boundedSets` elements (a LIMIT of rows
 * with duplicates could leave a distinct value out of the count).
 */
function asMembers(set: Expr, ctx: ExprContext): readonly [Expr, ExprContext] {
  if (ctx.boundedSets !== undefined || set.kind !== 'fact' || ctx.factColumns?.has(set.name)) return [set, ctx];
  const inline = ctx.inlineFacts?.get(set.name);
  if (inline === undefined) return [set, ctx];
  const expr = withoutDistinct(inline.expr);
  if (expr === inline.expr) return [set, ctx];
  const inlineFacts = new Map(ctx.inlineFacts);
  inlineFacts.set(set.name, { ...inline, expr });
  return [set, { ...ctx, inlineFacts }];
}

/** `set` with no DISTINCT in the queries whose rows are its elements; `set` itself if it has none. */
function withoutDistinct(set: Expr): Expr {
  switch (set.kind) {
    case 'array-of':
      return set.query.distinct ? { ...set, query: { ...set.query, distinct: false } } : set;
    case 'case': {
      const branches = set.branches.map((b) => ({ ...b, then: withoutDistinct(b.then) }));
      const otherwise = withoutDistinct(set.else);
      return branches.every((b, i) => b.then === set.branches[i]?.then) && otherwise === set.else ? set : { ...set, branches, else: otherwise };
    }
    case 'set-union': {
      const items = set.items.map(withoutDistinct);
      return items.every((x, i) => x === set.items[i]) ? set : { ...set, items };
    }
    default:
      return set;
  }
}

function scopeQualifier(scope: string, ctx: ExprContext): string {
  const alias = ctx.scopeAliases?.get(scope);
  if (alias !== undefined) return alias;
  if (scope === OLD_SCOPE) return 'OLD';
  if (scope === NEW_SCOPE) return 'NEW';
  if (scope === ROW_SCOPE) {
    if (ctx.rowQualifier === undefined) throw new Error('internal: a row column was printed where no row is in scope');
    return ctx.rowQualifier; // '' prints bare column names (CHECK constraints)
  }
  return ident(scope);
}

/**
 * A fact that reads several columns of the acting user's row (is_external, view_all_users,
 * organization_id) would otherwise run one sub-select per mention, each an index probe whose plan
 * node the executor sets up on every statement; PolicyCenter's producer-code fact had three. With
 * `identityRow` set, such a lookup prints as fields of a record the body fills with one query: at
 * most one row matches the identity key. No row (a user deleted while their transaction is open)
 * leaves every field NULL, and the lookup must then be NULL as the sub-select of no row is: a
 * value that is not NULL for a row of NULLs (`security IS DISTINCT FROM true`, which read "off"
 * for a removed Collect! operator until the thirty-fifth round) is `CASE WHEN <found> THEN
 * <value> END`, found being the key read back not NULL. Lookups with raw SQL inside keep their
 * sub-select (raw text may name the scope).
 *
 * The lookup may also test the row (`WHERE id = me AND security = true`: Collect!'s client of a
 * secured operator, and its EXISTS facts): then it is the row's value only when the row was found
 * and the tests hold, `CASE WHEN <found> AND (<tests>) THEN <value> END`; an EXISTS is `<found>
 * AND (<tests>) IS TRUE` (see identityRowExists), where the body reads the record anyway
 * (identityRow.readsTested). A test that reads another query
 * written in place (an exists, array or scalar of one) keeps the sub-select. In plan_marks, which
 * reads the row for its guards, that spares Collect! six sub-selects of the operator (11–12 µs a
 * transaction).
 */
function identityRowRead(q: QueryNode, ctx: ExprContext): string | undefined {
  if (!q.select || q.distinct) return undefined;
  const row = identityRowLookup(q, ctx, q.select);
  if (row === undefined) return undefined;
  const value = `(${printExpr(q.select, row.ctx)})`;
  if (row.tests.length > 0) return `(CASE WHEN ${row.found} AND ${rowTests(row.tests, row.ctx)} THEN ${value} END)`;
  // A value that is NULL for a row of NULLs (a column, a comparison with one) is NULL for a missing
  // row as the sub-select's no row is; any other (a coalesce, an IS NULL) asks whether it was found.
  return nullForNullRow(q.select, q.scope) ? value : `(CASE WHEN ${row.found} THEN ${value} END)`;
}

/** `EXISTS (SELECT 1 FROM <identity table> WHERE <key> = me AND <tests>)` as a test of the acting user's row (see identityRowRead). */
function identityRowExists(q: QueryNode, ctx: ExprContext): string | undefined {
  const row = identityRowLookup(q, ctx, undefined);
  if (row === undefined) return undefined;
  return row.tests.length === 0 ? `(${row.found})` : `(${row.found} AND ${rowTests(row.tests, row.ctx)} IS TRUE)`;
}

function rowTests(tests: readonly Expr[], ctx: ExprContext): string {
  return tests.length === 1 ? operand(tests[0]!, ctx) : `(${printExpr({ kind: 'and', items: tests }, ctx)})`;
}

/**
 * A query of the acting user's own row by the identity key, inside a fact body (ctx.identityRow):
 * the other conjuncts of its WHERE (the tests of the row), a context that prints the query's scope
 * as the record, and the test that the row was found. Undefined for any other query, or one whose
 * select or tests read raw SQL or another query.
 */
function identityRowLookup(q: QueryNode, ctx: ExprContext, select: Expr | undefined): { readonly tests: readonly Expr[]; readonly ctx: ExprContext; readonly found: string } | undefined {
  const identity = ctx.model.identity;
  const row = ctx.identityRow;
  if (!identity || !row || ctx.sessionUser === undefined || q.table !== identity.table || !q.where) return undefined;
  const isKey = (x: Expr) => x.kind === 'column' && x.scope === q.scope && x.column === identity.column;
  const isLookup = (w: Expr) => w.kind === 'compare' && w.op === '=' && ((isKey(w.left) && w.right.kind === 'session-user') || (isKey(w.right) && w.left.kind === 'session-user'));
  const conjuncts = flattenAnd(q.where);
  const lookup = conjuncts.findIndex(isLookup);
  if (lookup < 0) return undefined;
  const tests = conjuncts.filter((_, i) => i !== lookup);
  // The identity column is unique (validated: identity-not-unique), so the record holds the row a
  // sub-select of the key would find.
  if ((tests.length > 0 || select === undefined) && !row.readsTested) return undefined;
  const columns: string[] = [];
  let opaque = false;
  for (const e of [...(select ? [select] : []), ...tests]) {
    visit(e, (n) => {
      if (n.kind === 'raw' || n.kind === 'unknown-column' || n.kind === 'every-row-when') opaque = true;
      // A select may read another query (printed inside the record's value); a test that does
      // keeps the sub-select.
      else if (e !== select && (n.kind === 'exists' || n.kind === 'array-of' || n.kind === 'scalar-of')) opaque = true;
      else if (n.kind === 'column' && n.scope === q.scope) columns.push(n.column);
    });
  }
  if (opaque) return undefined;
  // Whether the row was found is asked unless the value is NULL for a row of NULLs anyway.
  if (tests.length > 0 || select === undefined || !nullForNullRow(select, q.scope)) columns.push(identity.column);
  columns.forEach((c) => row.columns.add(c));
  const aliases = new Map(ctx.scopeAliases ?? []);
  aliases.set(q.scope, row.variable);
  return { tests, ctx: { ...ctx, scopeAliases: aliases }, found: `${row.variable}.${ident(identity.column)} IS NOT NULL` };
}

/** Is `e` NULL whenever every column of `scope` is: a column of it, or a strict operator over one. */
function nullForNullRow(e: Expr, scope: string): boolean {
  switch (e.kind) {
    case 'column':
      return e.scope === scope;
    case 'compare':
      return nullForNullRow(e.left, scope) || nullForNullRow(e.right, scope);
    case 'not':
      return nullForNullRow(e.item, scope);
    default:
      return false;
  }
}

function flattenAnd(e: Expr): Expr[] {
  return e.kind === 'and' ? e.items.flatMap(flattenAnd) : [e];
}

/**
 * How many rows `q` returns, counted up to `limit` only. The query is a MATERIALIZED CTE, planned
 * for all its rows and read only as far as the LIMIT: a LIMIT on the query itself would have the
 * planner bet on finding a few matches early in a sequential scan (PolicyCenter's producer codes
 * of a handful of organizations: every code read, where the organization index finds them).
 */
export function boundedRowCount(q: QueryNode, ctx: ExprContext, limit: number): string {
  return `(SELECT count(*) FROM (${boundedRows(printQuery(q, ctx), '1', limit)}) AS rg_bound)`;
}

function boundedRows(query: string, select: string, limit: number): string {
  return `WITH rg_rows AS MATERIALIZED (${query}) SELECT ${select} FROM rg_rows LIMIT ${limit}`;
}

function printQuery(q: QueryNode, outer: ExprContext, selectList?: string): string {
  const ctx = outer.evaluatedOnce ? { ...outer, evaluatedOnce: false } : outer;
  const select = selectList ?? (q.select ? printExpr(q.select, ctx) : '1');
  const where = q.where ? ` WHERE ${printWhere(q, q.where, ctx)}` : '';
  return `SELECT ${q.distinct ? 'DISTINCT ' : ''}${select} FROM ${qualified(ctx.model.schema, q.table)} AS ${ident(q.scope)}${where}`;
}

/**
 * A query's WHERE. An OR whose arms mix per-row conditions with statement constants (a flag such
 * as "I view all") gets the constants as one range on the primary key, for the reason
 * everyRowWhen exists: a bare boolean arm has no index condition, so the OR would lose its
 * BitmapOr and the fact would read the whole table on every statement of every user.
 */
function printWhere(q: QueryNode, where: Expr, ctx: ExprContext): string {
  if (where.kind !== 'or') return printExpr(where, ctx);
  const constant = where.items.filter(isStatementValue);
  if (constant.length === 0 || constant.length === where.items.length) return printExpr(where, ctx);
  const when: Expr = constant.length === 1 ? constant[0]! : { kind: 'or', items: constant };
  const range = keyRange(q.table, q.scope, when, ctx);
  if (range === undefined) return printExpr(where, ctx);
  const rest = where.items.filter((i) => !constant.includes(i)).map((i) => operand(i, ctx));
  return joinParts('OR', [`(${range})`, ...rest]);
}

/** What reads the identity, a fact or a table. */
const STATE_KINDS: ReadonlySet<ExprKind> = new Set<ExprKind>(['session-user', 'fact', 'exists', 'array-of', 'scalar-of', 'hierarchy-set']);

/**
 * A value PostgreSQL can compute once per statement: it reads no row of any enclosing query or
 * policy, and it reads the identity, a fact or a table. Literals alone are left out: PostgreSQL
 * folds them while planning, and places that admit no sub-select (index predicates) may hold them.
 */
function isStatementValue(e: Expr): boolean {
  const bound = new Set<string>();
  const used: string[] = [];
  let opaque = false;
  let readsState = false;
  visit(e, (n) => {
    if (n.kind === 'exists' || n.kind === 'array-of' || n.kind === 'scalar-of') bound.add(n.query.scope);
    else if (n.kind === 'column') used.push(n.scope);
    else if (n.kind === 'every-row-when' || n.kind === 'raw' || n.kind === 'unknown-column') opaque = true;
    if (STATE_KINDS.has(n.kind)) readsState = true;
  });
  return readsState && !opaque && used.every((scope) => bound.has(scope));
}

const ATOMIC: ReadonlySet<ExprKind> = new Set<ExprKind>([
  'column', 'unknown-column', 'literal', 'session-user', 'fact', 'scalar-of', 'array', 'hierarchy-set', 'coalesce', 'array-position', 'raw', 'exists', 'array-of', 'case',
  'list-keys',
]);

function needsParens(e: Expr): boolean {
  return !ATOMIC.has(e.kind);
}

/**
 * A value computed from statement constants (a CASE over facts, a coalesce, a union of sets) is
 * printed as its own sub-select, which PostgreSQL runs once as an InitPlan. Left inline it stays
 * an index condition but is computed again for every row the scan's filter checks: SuperOffice's
 * rights arms (`owner_id = CASE WHEN 'own' = any(<scopes>) THEN <me> END`) cost a count over all
 * contacts twice the hand-written query's time.
 */
const HOISTED: ReadonlySet<ExprKind> = new Set<ExprKind>(['case', 'coalesce', 'set-union']);
function hoisted(e: Expr, ctx: ExprContext): boolean {
  return !ctx.evaluatedOnce && HOISTED.has(e.kind) && isStatementValue(e);
}

function comparand(e: Expr, ctx: ExprContext): string {
  return hoisted(e, ctx) ? `(SELECT ${onceValue(e, ctx)})` : operand(e, ctx);
}

/** The inside of a hoisted value's sub-select: one call where the policy combines its facts (combined.ts). */
function onceValue(e: Expr, ctx: ExprContext): string {
  return ctx.combined?.call(e, ctx) ?? printExpr(e, evaluatedOnce(ctx));
}

function operand(e: Expr, ctx: ExprContext): string {
  const s = printExpr(e, ctx);
  return needsParens(e) ? `(${s})` : s;
}

function joinBool(op: 'AND' | 'OR', items: readonly Expr[], ctx: ExprContext): string {
  if (items.length === 0) return op === 'AND' ? 'true' : 'false';
  return joinParts(op, items.map((i) => operand(i, ctx)));
}

function joinParts(op: 'AND' | 'OR', parts: readonly string[]): string {
  const flat = parts.join(` ${op} `);
  if (flat.length <= 100 && !flat.includes('\n')) return flat;
  // One operand a line, operator first, nested lines indented: readable in sql/ and in \d+.
  return parts.map((p, i) => `${i === 0 ? '' : `${op} `}${p.replaceAll('\n', '\n  ')}`).join('\n');
}

/** Does the expression read the policy's row (or OLD/NEW)? Row-independent parts can be InitPlans. */
export function dependsOnRow(e: Expr): boolean {
  let found = false;
  visit(e, (n) => {
    if (n.kind === 'column' && (n.scope === ROW_SCOPE || n.scope === OLD_SCOPE || n.scope === NEW_SCOPE)) found = true;
    if (n.kind === 'every-row-when') found = true;
  });
  return found;
}

/**
 * Built of the row's own columns, literals, comparisons and logic only (array literals too where
 * `arrays`): no fact, identity, query or other scope's column. A partial index's predicate
 * (grants.ts) and a stand-in's row conditions (hints.ts, StandIn) must be.
 */
export function readsRowOnly(e: Expr, options: { readonly arrays: boolean }): boolean {
  let plain = true;
  visit(e, (n) => {
    if (!ROW_ONLY_KINDS.has(n.kind) && !(options.arrays && n.kind === 'array')) plain = false;
    if (n.kind === 'column' && n.scope !== ROW_SCOPE) plain = false;
  });
  return plain;
}

const ROW_ONLY_KINDS: ReadonlySet<ExprKind> = new Set<ExprKind>(['column', 'literal', 'compare', 'distinct-from', 'is-null', 'not', 'and', 'or']);

/** Depth-first walk over an expression and the expressions inside its queries. */
/**
 * visit, and on through the definition of every fact `e` reads, at any depth, each fact once:
 * what a fact's value depends on once the facts it reads are inlined.
 */
export function visitThroughFacts(e: Expr, facts: ReadonlyMap<string, { readonly expr: Expr }>, fn: (n: Expr) => void, seen = new Set<string>()): void {
  visit(e, (n) => {
    fn(n);
    if (n.kind !== 'fact' || seen.has(n.name)) return;
    seen.add(n.name);
    const definition = facts.get(n.name);
    if (definition) visitThroughFacts(definition.expr, facts, fn, seen);
  });
}

/** Does `e` hold a node that `test` accepts, itself or in a fact it reads (at any depth)? */
export function reaches(e: Expr | undefined, facts: ReadonlyMap<string, { readonly expr: Expr }>, test: (n: Expr) => boolean): boolean {
  let found = false;
  if (e) {
    visitThroughFacts(e, facts, (n) => {
      if (test(n)) found = true;
    });
  }
  return found;
}

export function visit(e: Expr, fn: (n: Expr) => void): void {
  fn(e);
  const sub = (x: Expr | undefined) => x && visit(x, fn);
  const q = (query: QueryNode) => {
    sub(query.where);
    sub(query.select);
  };
  switch (e.kind) {
    case 'compare':
    case 'distinct-from':
      sub(e.left);
      sub(e.right);
      break;
    case 'in-set':
      sub(e.item);
      sub(e.set);
      break;
    case 'any-in-set':
    case 'all-in-set':
      e.items.forEach(sub);
      sub(e.set);
      break;
    case 'is-null':
      sub(e.expr);
      break;
    case 'and':
    case 'or':
    case 'coalesce':
    case 'set-union':
    case 'array':
      e.items.forEach(sub);
      break;
    case 'not':
      sub(e.item);
      break;
    case 'exists':
    case 'array-of':
    case 'scalar-of':
      q(e.query);
      break;
    case 'hierarchy-set':
      sub(e.of);
      break;
    case 'case':
      e.branches.forEach((b) => {
        sub(b.when);
        sub(b.then);
      });
      sub(e.else);
      break;
    case 'array-position':
      sub(e.item);
      break;
    case 'list-keys':
      sub(e.scope);
      sub(e.values);
      break;
    case 'every-row-when':
      sub(e.when);
      break;
    default:
      break;
  }
}

/** An array fact as fuseArrayReads sees it: `ARRAY(SELECT …)`, alone or under one condition with NULL otherwise. */
interface ArrayRead {
  readonly condition?: Expr;
  readonly query: QueryNode & { readonly select: Expr };
  readonly conjuncts: readonly Expr[];
}

function arrayRead(e: Expr): ArrayRead | undefined {
  // Raw text may name a scope or be volatile; the others have no one meaning to print.
  let opaque = false;
  visit(e, (n) => (opaque ||= n.kind === 'raw' || n.kind === 'unknown-column' || n.kind === 'every-row-when'));
  if (opaque) return undefined;
  const read = (x: Expr, condition?: Expr): ArrayRead | undefined => {
    // An untyped literal has no type for array_agg to take; DISTINCT would need one per fact.
    if (x.kind !== 'array-of' || x.query.select === undefined || x.query.select.kind === 'literal' || x.query.distinct) return undefined;
    const where = x.query.where;
    // A top-level OR is printed with a key range (printWhere).
    if (where?.kind === 'or') return undefined;
    const query = x.query as ArrayRead['query'];
    const conjuncts = where === undefined ? [] : where.kind === 'and' ? where.items : [where];
    return condition === undefined ? { query, conjuncts } : { condition, query, conjuncts };
  };
  if (e.kind === 'array-of') return read(e);
  if (e.kind === 'case' && e.branches.length === 1 && e.else.kind === 'literal' && e.else.value === null) return read(e.branches[0]!.then, e.branches[0]!.when);
  return undefined;
}

/** `<a column of the read> = <a statement value>` (or `= any(<set>)`): what an index on the column drives. */
function keyCondition(c: Expr, scope: string): boolean {
  const own = (x: Expr) => x.kind === 'column' && x.scope === scope;
  const value = (x: Expr) => {
    let mentions = false;
    visit(x, (n) => (mentions ||= n.kind === 'column' && n.scope === scope));
    return x.kind !== 'literal' && !mentions;
  };
  if (c.kind === 'in-set') return own(c.item) && value(c.set);
  return c.kind === 'compare' && c.op === '=' && ((own(c.left) && value(c.right)) || (own(c.right) && value(c.left)));
}

/**
 * Facts computed together in one statement (plan_marks' guards), where several are arrays read
 * from the same table under the same condition and share a key condition (SuperOffice's 16 scope
 * lists: the role's rights, one object type and level each): each group becomes one scan of the
 * table by the shared conjuncts, with an `array_agg(…) FILTER (WHERE <the rest>)` per fact, in
 * place of a sub-select, and a plan node to set up, per fact (SuperOffice's plan_marks: 286 →
 * 90 µs). Only where the shared conjuncts hold a key condition and no fact's own conjuncts do: two
 * facts keyed on different columns (owner = me, assistant = me) are two index probes, which one
 * scan by what they share would not beat. `ARRAY(SELECT …)` of no rows is `'{}'`, as the COALESCE
 * keeps it; the order of elements was never defined. The condition is tested before the scan as
 * well, a constant PostgreSQL tests once: a user it does not hold for reads nothing, as before.
 * Returns the fused facts' columns (by fact name) and the FROM items that compute them.
 */
export function fuseArrayReads(facts: readonly { readonly name: string; readonly type: string; readonly expr: Expr }[], ctx: ExprContext): { columns: Map<string, string>; from: string[] } {
  const source = 'rg_src';
  // Printed inside a query (not evaluated once), with the read's own scope as the scan's alias and
  // no other: a fact inlined in a conjunct keeps its own sub-select and alias. A read that meets raw
  // SQL in a fact it inlines is left as it was (its reasons are recorded where it is printed).
  const rawReasons: string[] = [];
  const inQuery = (scope?: string): ExprContext => ({
    ...ctx,
    rawReasons,
    evaluatedOnce: false,
    ...(scope === undefined ? {} : { scopeAliases: new Map([...(ctx.scopeAliases ?? []), [scope, source]]) }),
  });
  const reads = facts.flatMap((f) => {
    const read = arrayRead(f.expr);
    if (read === undefined) return [];
    const own = inQuery(read.query.scope);
    const conjuncts = read.conjuncts.map((c) => ({ text: operand(c, own), key: keyCondition(c, read.query.scope) }));
    const condition = read.condition === undefined ? undefined : printExpr(read.condition, inQuery());
    const select = printExpr(read.query.select, own);
    if (rawReasons.splice(0).length > 0) return [];
    return [{ ...f, read, condition, conjuncts, select }];
  });
  const groups = new Map<string, typeof reads>();
  for (const r of reads) {
    const key = `${r.read.query.table}\u0000${r.condition ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const columns = new Map<string, string>();
  const from: string[] = [];
  for (const members of groups.values()) {
    const shared = (c: string) => members.every((m) => m.conjuncts.some((x) => x.text === c));
    const common = members[0]!.conjuncts.filter((c) => shared(c.text));
    const rests = members.map((m) => m.conjuncts.filter((c) => !shared(c.text)));
    if (members.length < 2 || !common.some((c) => c.key) || rests.some((rest) => rest.some((c) => c.key))) continue;
    const alias = `rg_fused_${from.length + 1}`;
    const aggregates = members.map((m, i) => {
      const rest = rests[i]!.map((c) => c.text);
      const filter = rest.length === 0 ? '' : ` FILTER (WHERE ${joinParts('AND', rest).replaceAll('\n', '\n        ')})`;
      const agg = `COALESCE(pg_catalog.array_agg(${m.select})${filter}, '{}')`;
      columns.set(m.name, `${alias}.${ident(m.name)}`);
      return `(${m.condition === undefined ? agg : `CASE WHEN ${m.condition} THEN ${agg} ELSE NULL END`})::${m.type} AS ${ident(m.name)}`;
    });
    const table = qualified(ctx.model.schema, members[0]!.read.query.table);
    const condition = members[0]!.condition;
    const where = [...(condition === undefined ? [] : [`(${condition})`]), ...common.map((c) => c.text)];
    from.push(`(SELECT\n      ${aggregates.join(',\n      ')}\n    FROM ${table} AS ${source} WHERE ${joinParts('AND', where).replaceAll('\n', '\n    ')}) AS ${alias}`);
  }
  return { columns, from };
}

// Planner hints: the acting user's shape, told to the planner without ever changing a result.
//
// The planner cannot see a fact's value (an InitPlan): it estimates `office_id = any(<fact>)` as
// ten elements, whoever acts. For an enterprise user with 1,111 offices that is about right; for
// an agent whose array is empty it is 1% of the table instead of none, so `ORDER BY id LIMIT 50`
// walks the primary key and filters a million rows (100–400 ms) where a bitmap of the agent's
// few hundred rows and a sort would take 1 ms. And a prepared statement keeps whichever plan its
// first user got: an agent's plan made the root user's first page take 4.5 s.
//
// So an arm `col = any(<fact>)` on a non-key column, in a policy's USING, is printed as
//
//   col = any(<fact>) AND (NOT <schema>.plan_hint_<fact>() OR (col >= (SELECT <min>) AND col <= (SELECT <max>)))
//
// - plan_hint_<fact>() is IMMUTABLE with no arguments, so PostgreSQL folds it while planning. It
//   is true when the transaction's search_path names an (empty) schema rg_plan_<schema>_few_<fact>,
//   which set_session appends when the fact has at most FEW_ELEMENTS elements for the user it
//   sets. A fact declared with `planHint: false` gets none. The IMMUTABLE label is true only of
//   what PostgreSQL does with it here, folding it into a plan; it must never be used where a
//   value is stored (an index, a generated column) or cached by PL/pgSQL.
// - No hint: `true OR x` folds to true and the conjunct vanishes: the plan is exactly as without.
// - Hint: the range is true for every non-NULL value, and it is an index condition on the
//   arm's own index (no Filter), but with bounds the planner cannot see it counts as a narrow
//   range (0.5%), which is what this user's arm is.
// - Either way `A AND (NOT h OR range)` has A's value in three-valued logic (when A is true the column
//   is not NULL, so the range is true): a wrong, stale or forged hint changes a plan, never a row.
// - PostgreSQL re-plans a cached statement when the search_path has changed, so a prepared
//   statement is planned for the marks of the user acting now, never kept from its first user
//   (a connection that alternates users of different classes re-plans at each change).
// - A role that reaches app_user without inheriting its privileges (NOINHERIT, no SET ROLE)
//   lacks USAGE on the mark schemas: current_schemas() leaves them out and its plans are unhinted.
//
// Not where a policy on the same table has an "every row when" arm: its range on the key (NULL
// unless the condition holds) is estimated as 0.5% of the table whoever acts, and PostgreSQL
// merges every further range on the key into that one estimate, so no conjunct can lower it and
// a hint there would only cost set_session the fact's computation (measured on PolicyCenter's
// accounts: the agency user's first page kept its primary-key walk).
//
// Reporting logins (bound by a DBA, never calling set_session) have no hint schemas in their path
// and keep today's plans.
import { createHash } from 'node:crypto';
import type { Expr, ModelNode, PolicyNode } from '../model/nodes.ts';
import { elementOf, TypeResolver, typeMaximum, typeMinimum, UNKNOWN } from '../model/types.ts';
import { byCodePoint, ident, identifierBytes, literal, MAX_IDENTIFIER_BYTES, qualified } from '../sql/print.ts';
import { ROW_SCOPE } from '../dsl/model.ts';
import { closureWalkSize } from './closure.ts';
import { boundedRowCount, printExpr, type ExprContext } from './expr.ts';
import { createFunction, factBody, factDefinitions, type FactDefinitions } from './functions.ts';
import { APP_ROLE, REPORTING_ROLE } from './roles.ts';
import { statement, type Section } from './statement.ts';

/** A fact with at most this many elements marks its arms as narrow (see the file comment). */
export const FEW_ELEMENTS = 10;

/** Fact names may not start with it: the hint functions are named with it. */
export const PLAN_HINT_PREFIX = 'plan_hint_';

export interface HintedFact {
  readonly fact: string;
  /** The IMMUTABLE function the planner folds, in the model's schema. */
  readonly hint: string;
  /** The empty schema set_session puts in the search_path when the fact is small. */
  readonly fewSchema: string;
}

/** How a hinted arm's range is printed: the bounds of its column's type. */
export interface HintedArm {
  readonly hint: string;
  readonly minimum: string;
  readonly maximum: string;
}

export interface PlanHints {
  /** By fact name. */
  readonly facts: readonly HintedFact[];
  /** By policy: the `in-set` nodes of its USING that get the conjunct. */
  readonly arms: ReadonlyMap<PolicyNode, ReadonlyMap<Expr, HintedArm>>;
}

/**
 * The arms that get a hint: `col = any(<fact>)` where col is a column of the policy's row other
 * than the first key column (a key arm is already estimated as ten rows), of a type with a least
 * and a greatest value, reached from USING through AND and OR only (under NOT a narrower estimate
 * would mean a wider one).
 */
export function planHints(model: ModelNode): PlanHints {
  const types = new TypeResolver(model);
  const arms = new Map<PolicyNode, Map<Expr, HintedArm>>();
  const facts = new Map<string, HintedFact>();
  const optedOut = new Set(model.facts.filter((f) => f.planHint === false).map((f) => f.name));
  const walk = (e: Expr, policy: PolicyNode) => {
    if (e.kind === 'and' || e.kind === 'or') return e.items.forEach((i) => walk(i, policy));
    const { table } = policy;
    if (e.kind !== 'in-set' || e.set.kind !== 'fact' || e.item.kind !== 'column' || e.item.scope !== ROW_SCOPE) return;
    const key = model.tables.find((t) => t.name === table)?.primaryKey[0];
    if (e.item.column === key || elementOf(types.of(e.set)) === UNKNOWN || optedOut.has(e.set.name)) return;
    const type = types.columnType(table, e.item.column);
    const minimum = typeMinimum(type);
    const maximum = typeMaximum(type);
    if (minimum === undefined || maximum === undefined) return;
    const fact = e.set.name;
    const found = facts.get(fact) ?? { fact, hint: fitName(`${PLAN_HINT_PREFIX}${fact}`), fewSchema: fitName(`rg_plan_${model.schema}_few_${fact}`) };
    facts.set(fact, found);
    if (!arms.has(policy)) arms.set(policy, new Map());
    arms.get(policy)!.set(e, { hint: found.hint, minimum, maximum });
  };
  const read = model.policies.filter((p) => p.using !== undefined && p.command !== 'insert');
  const floored = new Set(read.filter((p) => p.mode === 'permissive' && hasEveryRowArm(p.using!)).map((p) => p.table));
  if (model.identity) {
    for (const p of read) if (!floored.has(p.table)) walk(p.using!, p);
  }
  return { facts: [...facts.values()].sort((a, b) => byCodePoint(a.fact, b.fact)), arms };
}

/** The conjunct after a hinted arm, its column printed as `column`. */
export function hintConjunct(arm: HintedArm, schema: string, column: string): string {
  return `(NOT ${qualified(schema, arm.hint)}() OR (${column} >= (SELECT ${arm.minimum}) AND ${column} <= (SELECT ${arm.maximum})))`;
}

/** The definer function that tells set_session which marks the acting user gets. */
export const PLAN_MARKS = 'plan_marks';

/** The hint schemas and functions, and the function that computes the marks. */
export function planHintsSection(model: ModelNode, factTypes: ReadonlyMap<string, string>): Section {
  const hinted = planHints(model).facts;
  const facts = factDefinitions(model, factTypes);
  const marks = hinted.length === 0
    ? []
    : [
        createFunction({
          schema: model.schema,
          name: PLAN_MARKS,
          args: [],
          returns: 'text[]',
          volatility: 'STABLE',
          securityDefiner: true,
          grantTo: [APP_ROLE],
          comment: `Internal, for set_session: the planner-hint schemas of the facts that have at most ${FEW_ELEMENTS} elements for the acting user (counted no further than that).`,
          body: factBody(model, facts, (ctx) =>
            `pg_catalog.array_remove(ARRAY[\n    ${hinted
              .map((f) => `CASE WHEN ${boundedSize({ kind: 'fact', name: f.fact }, ctx, facts)} <= ${FEW_ELEMENTS} THEN ${literal(f.fewSchema)} END`)
              .join(',\n    ')}\n  ]::text[], NULL)`,
          ),
        }),
      ];
  return {
    title: 'Planner hints: which facts are small for the acting user (plans only, never results)',
    statements: [...marks, ...hinted.flatMap((f) => [
      statement(
        `hint-schema ${f.fewSchema}`,
        [
          `-- Empty on purpose: set_session puts it in the search_path when ${model.schema}.${f.fact}() has at most ${FEW_ELEMENTS} elements.`,
          `CREATE SCHEMA ${ident(f.fewSchema)};`,
          `REVOKE ALL ON SCHEMA ${ident(f.fewSchema)} FROM PUBLIC;`,
          // current_schemas() lists only the schemas the role may use.
          `GRANT USAGE ON SCHEMA ${ident(f.fewSchema)} TO ${ident(APP_ROLE)};`,
        ].join('\n'),
        `DROP SCHEMA ${ident(f.fewSchema)};`,
      ),
      createFunction({
        schema: model.schema,
        name: f.hint,
        args: [],
        returns: 'boolean',
        volatility: 'IMMUTABLE',
        securityDefiner: false,
        // A pinned search_path would hide the very entry it reads; every name below is qualified.
        pinSearchPath: false,
        grantTo: [APP_ROLE, REPORTING_ROLE],
        comment: `Planner hint, folded while planning: true when set_session found that ${model.schema}.${f.fact}() has at most ${FEW_ELEMENTS} elements (schema ${f.fewSchema} in the search_path). Changes plans, never results.`,
        body: ['BEGIN', `  RETURN ${literal(f.fewSchema)} OPERATOR(pg_catalog.=) ANY (pg_catalog.current_schemas(false));`, 'END'].join('\n'),
      }),
    ])],
  };
}

/**
 * How many elements a fact's value has, counted up to FEW_ELEMENTS + 1 only where its shape allows
 * (a query's rows, a walker's nodes, a CASE or a concatenation of those): set_session needs only
 * "at most FEW_ELEMENTS?", and the enterprise user's 1,111 offices need not be built for that.
 */
function boundedSize(e: Expr, ctx: ExprContext, facts: FactDefinitions): string {
  const limit = FEW_ELEMENTS + 1;
  const size = (x: Expr) => boundedSize(x, ctx, facts);
  switch (e.kind) {
    case 'fact': {
      const definition = facts.get(e.name);
      if (definition) return size(definition.expr);
      break;
    }
    case 'literal':
      if (e.value === null) return '0';
      break;
    case 'case':
      return `CASE ${e.branches.map((b) => `WHEN ${printExpr(b.when, ctx)} THEN ${size(b.then)}`).join(' ')} ELSE ${size(e.else)} END`;
    case 'set-union':
      return `LEAST(${limit}, ${e.items.map(size).join(' + ')})`;
    case 'array-of':
      return boundedRowCount(e.query, ctx, limit);
    case 'hierarchy-set': {
      const h = ctx.model.hierarchies.find((x) => x.name === e.hierarchy);
      if (h) return closureWalkSize(ctx.model, h, e.direction, `(${printExpr(e.of, ctx)})`, e.includeSelf, limit);
      break;
    }
    default:
      break;
  }
  return `COALESCE(pg_catalog.cardinality(${printExpr(e, ctx)}), 0)`;
}

/**
 * set_session's last step: the search_path without this model's hint schemas, plus one per fact
 * that is small for the user just set. Transaction-local, like the identity.
 */
export function hintSearchPathSql(model: ModelNode): string[] {
  const { facts } = planHints(model);
  if (facts.length === 0) return [];
  const ours = facts.map((f) => f.fewSchema).join('|');
  // [[:space:]] rather than \s, which a backslash-sensitive string setting would turn into "s".
  const kept = `pg_catalog.regexp_replace(pg_catalog.current_setting('search_path'), ${literal(`(^|,)[[:space:]]*(${ours})(?=[[:space:]]*(,|$))`)}, '', 'g')`;
  return [
    `  -- Planner hints (see ${model.schema}.${facts[0]!.hint} and its siblings): mark the facts that are small for this`,
    '  -- user, so the planner plans for them; the conditions they guard keep their meaning either way.',
    // The trim drops the separator left before a mark that came first, or before no mark at all.
    `  PERFORM pg_catalog.set_config('search_path', pg_catalog.btrim(pg_catalog.concat_ws(', ', VARIADIC`,
    `    ARRAY[${kept}] OPERATOR(pg_catalog.||) ${qualified(model.schema, PLAN_MARKS)}()), ', '), true);`,
  ];
}

/** USING is an "every row when" arm, or an OR with one among its arms (see the file comment). */
function hasEveryRowArm(e: Expr): boolean {
  return e.kind === 'every-row-when' || (e.kind === 'or' && e.items.some(hasEveryRowArm));
}

/** `plain`, or a prefix of it and a hash of the whole when it is longer than PostgreSQL keeps. */
function fitName(plain: string): string {
  if (identifierBytes(plain) <= MAX_IDENTIFIER_BYTES) return plain;
  return `${plain.slice(0, MAX_IDENTIFIER_BYTES - 9)}_${createHash('sha256').update(plain).digest('hex').slice(0, 8)}`;
}

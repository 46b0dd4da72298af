// Conditions in words a DBA reads without the DSL: `office_id is one of enterprise_office_ids`.
// One case per expression kind (the `satisfies` table makes a missing kind a compile error). The
// words name columns and facts exactly as they appear in the schema, so they can be looked up.
import type { CompareOp, Expr, ExprKind, QueryNode } from '../model/nodes.ts';
import { NEW_SCOPE, OLD_SCOPE, ROW_SCOPE } from '../dsl/model.ts';
import { visit } from '../emit/expr.ts';

/**
 * Where the words are read: a policy's condition runs as the caller, so its sub-queries see only
 * the rows the caller may see of their tables (under those tables' policies); a fact runs as its
 * definer and sees every row.
 */
export interface WordsContext {
  readonly asCaller: boolean;
}

type Words = { [K in ExprKind]: (e: Extract<Expr, { kind: K }>, c: WordsContext) => string };

const DEFINER: WordsContext = { asCaller: false };

const COMPARE: Record<CompareOp, string> = {
  '=': 'is',
  '<>': 'is not',
  '<': 'is less than',
  '<=': 'is at most',
  '>': 'is greater than',
  '>=': 'is at least',
};

const words = {
  column: (e) => (e.scope === ROW_SCOPE ? e.column : e.scope === OLD_SCOPE ? `old ${e.column}` : e.scope === NEW_SCOPE ? `new ${e.column}` : `${e.table}.${e.column}`),
  'unknown-column': (e) => `(unknown column ${e.table}.${e.column})`,
  literal: (e) => (e.value === null ? 'NULL' : typeof e.value === 'string' ? `'${e.value}'` : String(e.value)),
  'session-user': () => 'me (the acting user)',
  fact: (e) => e.name,
  compare: (e, c) => {
    if (e.op === '=' && e.right.kind === 'literal' && typeof e.right.value === 'boolean') return `${part(e.left, c)} is ${e.right.value}`;
    return `${part(e.left, c)} ${COMPARE[e.op]} ${part(e.right, c)}`;
  },
  'distinct-from': (e, c) => {
    if (e.right.kind === 'literal' && e.right.value !== null) {
      // isNotTrue(): NULL counts as "not true".
      if (!e.negated && e.right.kind === 'literal' && e.right.value === true) return `${part(e.left, c)} is not true (false or NULL)`;
      return `${part(e.left, c)} is ${e.negated ? '' : 'not '}${describeExpr(e.right, c)}${e.negated ? '' : ' (or NULL)'}`;
    }
    return e.negated ? `${part(e.left, c)} is ${part(e.right, c)} (NULLs equal)` : `${part(e.left, c)} differs from ${part(e.right, c)} (NULLs equal)`;
  },
  'in-set': (e, c) => `${part(e.item, c)} is one of ${part(e.set, c)}`,
  'any-in-set': (e, c) =>
    e.spread ? `a key of ${part(e.items[0]!, c)} is one of ${part(e.set, c)}` : `one of ${e.items.map((x) => part(x, c)).join(', ')} is one of ${part(e.set, c)}`,
  'all-in-set': (e, c) => `each of ${e.items.map((x) => part(x, c)).join(', ')} is one of ${part(e.set, c)}`,
  'is-null': (e, c) => `${part(e.expr, c)} is ${e.negated ? 'set (not NULL)' : 'NULL'}`,
  and: (e, c) => (e.items.length === 0 ? 'always' : e.items.map((x) => part(x, c)).join(' and ')),
  or: (e, c) => (e.items.length === 0 ? 'never' : `either ${e.items.map((x) => part(x, c)).join(', or ')}`),
  not: (e, c) => `not ${part(e.item, c)}`,
  exists: (e, c) => `there is ${article(e.query.table)} ${e.query.table} row${seen(c)}${whereWords(e.query, c)}`,
  'array-of': (e, c) => `every ${selectWords(e.query, c)} of ${e.query.table} rows${seen(c)}${whereWords(e.query, c)}`,
  'scalar-of': (e, c) =>
    !e.query.select || e.query.select.kind === 'column'
      ? `the ${selectWords(e.query, c)} of the ${e.query.table} row${seen(c)}${whereWords(e.query, c)}`
      : `whether ${selectWords(e.query, c)}, for the ${e.query.table} row${seen(c)}${whereWords(e.query, c)}`,
  array: (e, c) => `[${e.items.map((x) => describeExpr(x, c)).join(', ')}]`,
  'set-union': (e, c) => e.items.map((x) => part(x, c)).join(' together with '),
  'hierarchy-set': (e, c) => {
    const rel = e.direction === 'descendants' ? 'below' : 'above';
    return `${e.includeSelf ? `${part(e.of, c)} and ` : ''}every node ${rel} ${part(e.of, c)} in ${e.hierarchy}`;
  },
  case: (e, c) => {
    const branches = e.branches.map((b) => `if ${describeExpr(b.when, c)}: ${describeExpr(b.then, c)}`).join('; else ');
    const otherwise = e.else.kind === 'literal' && e.else.value === null ? 'NULL' : describeExpr(e.else, c);
    return `${branches}; otherwise ${otherwise}`;
  },
  coalesce: (e, c) => `the first non-NULL of ${e.items.map((x) => part(x, c)).join(', ')}`,
  'array-position': (e, c) => `the rank of ${part(e.item, c)} in [${e.array.join(', ')}]`,
  'list-keys': (e, c) => `the ${e.table}.${e.column} keys of ${part(e.scope, c)} with each of ${part(e.values, c)}`,
  raw: (e) => `raw SQL (${e.reason}): ${e.sql}`,
  'every-row-when': (e, c) => `every row, when ${describeExpr(e.when, c)}`,
} satisfies Words as Words;

/** The expression in words; `context.asCaller` for a policy's condition (see WordsContext). */
export function describeExpr(e: Expr, context: WordsContext = DEFINER): string {
  return (words[e.kind] as (e: Expr, c: WordsContext) => string)(e, context);
}

/** Said of a sub-query's rows in a policy: PostgreSQL applies their table's policies to them. */
function seen(c: WordsContext): string {
  return c.asCaller ? ' I can see' : '';
}

const BARE: ReadonlySet<ExprKind> = new Set<ExprKind>(['column', 'unknown-column', 'literal', 'session-user', 'fact', 'array', 'hierarchy-set']);

/** Nested logic gets brackets so "a and (b or c)" keeps its meaning. */
function part(e: Expr, c: WordsContext): string {
  const s = describeExpr(e, c);
  return BARE.has(e.kind) || e.kind === 'exists' || e.kind === 'array-of' || e.kind === 'scalar-of' ? s : `(${s})`;
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

function whereWords(q: QueryNode, c: WordsContext): string {
  return q.where ? ` where ${describeExpr(q.where, c)}` : '';
}

function selectWords(q: QueryNode, c: WordsContext): string {
  return q.select ? describeExpr(q.select, c) : 'row';
}

/** The facts an expression reads, in first-use order (facts used by facts are not followed). */
export function factsUsed(e: Expr): string[] {
  const names: string[] = [];
  visit(e, (n) => {
    if (n.kind === 'fact' && !names.includes(n.name)) names.push(n.name);
  });
  return names;
}

/** The policy row's own columns an expression reads. */
export function rowColumnsUsed(e: Expr): string[] {
  const names: string[] = [];
  visit(e, (n) => {
    if (n.kind === 'column' && n.scope === ROW_SCOPE && !names.includes(n.column)) names.push(n.column);
  });
  return names;
}

export function usesSessionUser(e: Expr): boolean {
  let found = false;
  visit(e, (n) => {
    if (n.kind === 'session-user') found = true;
  });
  return found;
}

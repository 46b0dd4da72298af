// Conditions in words a DBA reads without the DSL: `office_id is one of enterprise_office_ids`.
// One case per expression kind (the `satisfies` table makes a missing kind a compile error). The
// words name columns and facts exactly as they appear in the schema, so they can be looked up.
import type { CompareOp, Expr, ExprKind, QueryNode } from '../model/nodes.ts';
import { NEW_SCOPE, OLD_SCOPE, ROW_SCOPE } from '../dsl/model.ts';
import { visit } from '../emit/expr.ts';

type Words = { [K in ExprKind]: (e: Extract<Expr, { kind: K }>) => string };

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
  compare: (e) => {
    if (e.op === '=' && e.right.kind === 'literal' && typeof e.right.value === 'boolean') return `${part(e.left)} is ${e.right.value}`;
    return `${part(e.left)} ${COMPARE[e.op]} ${part(e.right)}`;
  },
  'distinct-from': (e) => {
    if (e.right.kind === 'literal' && e.right.value !== null) {
      // isNotTrue(): NULL counts as "not true".
      if (!e.negated && e.right.kind === 'literal' && e.right.value === true) return `${part(e.left)} is not true (false or NULL)`;
      return `${part(e.left)} is ${e.negated ? '' : 'not '}${describeExpr(e.right)}${e.negated ? '' : ' (or NULL)'}`;
    }
    return e.negated ? `${part(e.left)} is ${part(e.right)} (NULLs equal)` : `${part(e.left)} differs from ${part(e.right)} (NULLs equal)`;
  },
  'in-set': (e) => `${part(e.item)} is one of ${part(e.set)}`,
  'any-in-set': (e) => `one of ${e.items.map(part).join(', ')} is one of ${part(e.set)}`,
  'all-in-set': (e) => `each of ${e.items.map(part).join(', ')} is one of ${part(e.set)}`,
  'is-null': (e) => `${part(e.expr)} is ${e.negated ? 'set (not NULL)' : 'NULL'}`,
  and: (e) => (e.items.length === 0 ? 'always' : e.items.map(part).join(' and ')),
  or: (e) => (e.items.length === 0 ? 'never' : `either ${e.items.map(part).join(', or ')}`),
  not: (e) => `not ${part(e.item)}`,
  exists: (e) => `there is ${article(e.query.table)} ${e.query.table} row${whereWords(e.query)}`,
  'array-of': (e) => `every ${selectWords(e.query)} of ${e.query.table} rows${whereWords(e.query)}`,
  'scalar-of': (e) =>
    !e.query.select || e.query.select.kind === 'column'
      ? `the ${selectWords(e.query)} of the ${e.query.table} row${whereWords(e.query)}`
      : `whether ${selectWords(e.query)}, for the ${e.query.table} row${whereWords(e.query)}`,
  array: (e) => `[${e.items.map(describeExpr).join(', ')}]`,
  'set-union': (e) => e.items.map(part).join(' together with '),
  'hierarchy-set': (e) => {
    const rel = e.direction === 'descendants' ? 'below' : 'above';
    return `${e.includeSelf ? `${part(e.of)} and ` : ''}every node ${rel} ${part(e.of)} in ${e.hierarchy}`;
  },
  case: (e) => {
    const branches = e.branches.map((b) => `if ${describeExpr(b.when)}: ${describeExpr(b.then)}`).join('; else ');
    const otherwise = e.else.kind === 'literal' && e.else.value === null ? 'NULL' : describeExpr(e.else);
    return `${branches}; otherwise ${otherwise}`;
  },
  coalesce: (e) => `the first non-NULL of ${e.items.map(part).join(', ')}`,
  'array-position': (e) => `the rank of ${part(e.item)} in [${e.array.join(', ')}]`,
  raw: (e) => `raw SQL (${e.reason}): ${e.sql}`,
  'every-row-when': (e) => `every row, when ${describeExpr(e.when)}`,
} satisfies Words as Words;

export function describeExpr(e: Expr): string {
  return (words[e.kind] as (e: Expr) => string)(e);
}

const BARE: ReadonlySet<ExprKind> = new Set<ExprKind>(['column', 'unknown-column', 'literal', 'session-user', 'fact', 'array', 'hierarchy-set']);

/** Nested logic gets brackets so "a and (b or c)" keeps its meaning. */
function part(e: Expr): string {
  const s = describeExpr(e);
  return BARE.has(e.kind) || e.kind === 'exists' || e.kind === 'array-of' || e.kind === 'scalar-of' ? s : `(${s})`;
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

function whereWords(q: QueryNode): string {
  return q.where ? ` where ${describeExpr(q.where)}` : '';
}

function selectWords(q: QueryNode): string {
  return q.select ? describeExpr(q.select) : 'row';
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

// Expression builders. `E` wraps a model `Expr` node so conditions read like code
// (`c.office_id.in(visibleOffices)`); the model itself only ever stores the plain nodes.
import type { CompareOp, Expr, QueryNode, SqlType } from '../model/nodes.ts';

export type Value = E | string | number | boolean | null;

export class E {
  constructor(readonly node: Expr) {}

  eq(other: Value): E { return compare('=', this, other); }
  ne(other: Value): E { return compare('<>', this, other); }
  lt(other: Value): E { return compare('<', this, other); }
  le(other: Value): E { return compare('<=', this, other); }
  gt(other: Value): E { return compare('>', this, other); }
  ge(other: Value): E { return compare('>=', this, other); }
  /** NULL-safe inequality: `a IS DISTINCT FROM b`. */
  isDistinctFrom(other: Value): E { return new E({ kind: 'distinct-from', negated: false, left: this.node, right: toNode(other) }); }
  isNotDistinctFrom(other: Value): E { return new E({ kind: 'distinct-from', negated: true, left: this.node, right: toNode(other) }); }
  /** Membership in an array-valued expression (a fact, a hierarchy set, `arrayOf`). Printed as
   *  `x = any(set)`, which an index on x can drive when the set is computed once per statement. */
  in(set: E): E { return new E({ kind: 'in-set', item: this.node, set: set.node }); }
  isNull(): E { return new E({ kind: 'is-null', negated: false, expr: this.node }); }
  isNotNull(): E { return new E({ kind: 'is-null', negated: true, expr: this.node }); }
  /** A nullable boolean read as "true, and NULL counts as false". */
  isTrue(): E { return compare('=', this, true); }
  /** A nullable boolean read as "false or NULL". */
  isNotTrue(): E { return new E({ kind: 'distinct-from', negated: false, left: this.node, right: { kind: 'literal', value: true } }); }
  and(...others: E[]): E { return and(this, ...others); }
  or(...others: E[]): E { return or(this, ...others); }
  not(): E { return not(this); }
}

export function toNode(value: Value): Expr {
  if (value instanceof E) return value.node;
  return { kind: 'literal', value };
}

function compare(op: CompareOp, left: Value, right: Value): E {
  return new E({ kind: 'compare', op, left: toNode(left), right: toNode(right) });
}

export function lit(value: string | number | boolean | null, type?: SqlType): E {
  return new E(type === undefined ? { kind: 'literal', value } : { kind: 'literal', value, type });
}

export function and(...items: E[]): E {
  return junction('and', items);
}

export function or(...items: E[]): E {
  return junction('or', items);
}

/** Nested ANDs (ORs) are flattened: `or(or(a, b), c)` prints as `a OR b OR c`. */
function junction(kind: 'and' | 'or', items: E[]): E {
  if (items.length === 1) return items[0]!;
  const flat = items.flatMap((i) => (i.node.kind === kind ? i.node.items : [i.node]));
  return new E({ kind, items: flat });
}

/**
 * Routing columns read as one: `anyOf(d.operator_id, d.sales_id).in(myTeams)` holds when some
 * non-NULL one of the columns is in the set, is NULL when the set is NULL, and is false otherwise
 * (where `or` of `.in` arms may be NULL: the same rows in a policy's AND and OR, not under `not`).
 * Where the `or` computes the set once per column and reads one index per column, this computes it
 * once and reads one GIN index over the columns' array, which rowguard creates. The columns must be
 * the row's own and have the set's element type.
 */
export function anyOf(...items: E[]): { in(set: E): E } {
  return { in: (set: E) => new E({ kind: 'any-in-set', items: items.map((i) => i.node), set: set.node }) };
}

/**
 * `allOf(lit('read'), lit('write')).in(myRights)` holds when every one of the values is in the set
 * (`ARRAY[…] <@ set`), is NULL when the set is NULL, and is false otherwise. Where `and` of `.in`
 * tests reads the set once per value (a fact's definition, inlined, is printed at each), this reads
 * it once. The values must have the set's element type.
 */
export function allOf(...items: E[]): { in(set: E): E } {
  return { in: (set: E) => new E({ kind: 'all-in-set', items: items.map((i) => i.node), set: set.node }) };
}

export function not(item: E): E {
  return new E({ kind: 'not', item: item.node });
}

/** CASE WHEN … THEN … ELSE … END. `otherwise` defaults to NULL. */
export function when(condition: E, then: Value, otherwise: Value = null): E {
  return new E({ kind: 'case', branches: [{ when: condition.node, then: toNode(then) }], else: toNode(otherwise) });
}

export function coalesce(...items: Value[]): E {
  return new E({ kind: 'coalesce', items: items.map(toNode) });
}

/** Union of array-valued expressions (duplicates do not matter to `in`). */
export function union(...sets: E[]): E {
  return new E({ kind: 'set-union', items: sets.map((s) => s.node) });
}

export function array(items: Value[], type?: SqlType): E {
  return new E(type === undefined ? { kind: 'array', items: items.map(toNode) } : { kind: 'array', items: items.map(toNode), type });
}

/** The 1-based position of a value in an ordered list of labels: turns ordered levels
 *  (none < read < create …) stored as text into comparable integers. */
export function rank(levels: readonly string[], item: E): E {
  return new E({ kind: 'array-position', array: levels, item: item.node });
}

export function exists(query: QueryNode): E {
  return new E({ kind: 'exists', query });
}

/** `array(select …)`: the selected column of every matching row. */
export function arrayOf(query: QueryNode): E {
  return new E({ kind: 'array-of', query });
}

/** `(select … limit 1)`: one value, or NULL when no row matches. */
export function scalarOf(query: QueryNode): E {
  return new E({ kind: 'scalar-of', query });
}

/**
 * The escape hatch. The SQL is pasted as written (it must be a complete, parenthesised
 * expression) and every generated statement that contains it says so in a comment, with `reason`.
 */
export function raw(sql: string, options: { type: SqlType; reason: string }): E {
  return new E({ kind: 'raw', sql, type: options.type, reason: options.reason });
}

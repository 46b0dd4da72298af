// Type inference over expressions: enough to declare fact functions' return types and to cast
// array-valued sets for `= any(...)`, and to catch comparisons of unrelated types at generate time.
import type { Expr, FactNode, ModelNode, SqlType } from './nodes.ts';

export const UNKNOWN = 'unknown';

export class TypeResolver {
  private readonly factTypes = new Map<string, SqlType>();
  private readonly resolving = new Set<string>();

  constructor(private readonly model: ModelNode) {}

  columnType(table: string, column: string): SqlType {
    const t = this.model.tables.find((x) => x.name === table);
    return t?.columns.find((c) => c.name === column)?.type ?? UNKNOWN;
  }

  factType(name: string): SqlType {
    const known = this.factTypes.get(name);
    if (known) return known;
    const fact: FactNode | undefined = this.model.facts.find((f) => f.name === name);
    if (!fact) return UNKNOWN;
    if (fact.type) return fact.type;
    if (this.resolving.has(name)) return UNKNOWN; // a cycle; validation reports it
    this.resolving.add(name);
    const type = this.of(fact.expr);
    this.resolving.delete(name);
    this.factTypes.set(name, type);
    return type;
  }

  of(e: Expr): SqlType {
    switch (e.kind) {
      case 'column':
      case 'unknown-column':
        return this.columnType(e.table, e.column);
      case 'literal':
        if (e.type) return e.type;
        if (typeof e.value === 'string') return 'text';
        if (typeof e.value === 'boolean') return 'boolean';
        if (typeof e.value === 'number') return Number.isInteger(e.value) ? 'bigint' : 'numeric';
        return UNKNOWN;
      case 'session-user':
        return this.model.identity?.type ?? UNKNOWN;
      case 'fact':
        return this.factType(e.name);
      case 'compare':
      case 'distinct-from':
      case 'in-set':
      case 'any-in-set':
      case 'all-in-set':
      case 'is-null':
      case 'and':
      case 'or':
      case 'not':
      case 'exists':
        return 'boolean';
      case 'array-of':
        return e.query.select ? arrayOf(this.of(e.query.select)) : UNKNOWN;
      case 'scalar-of':
        return e.query.select ? this.of(e.query.select) : UNKNOWN;
      case 'array':
        if (e.type) return arrayOf(e.type);
        return arrayOf(firstKnown(e.items.map((i) => this.of(i))));
      case 'set-union':
        return firstKnown(e.items.map((i) => this.of(i)));
      case 'hierarchy-set': {
        const h = this.model.hierarchies.find((x) => x.name === e.hierarchy);
        return h ? arrayOf(this.columnType(h.table, h.child)) : UNKNOWN;
      }
      case 'case':
        return firstKnown([...e.branches.map((b) => this.of(b.then)), this.of(e.else)]);
      case 'coalesce':
        return firstKnown(e.items.map((i) => this.of(i)));
      case 'array-position':
        return 'integer';
      case 'list-keys':
        return 'text[]';
      case 'raw':
        return e.type;
      case 'every-row-when':
        return 'boolean';
    }
  }
}

export function arrayOf(type: SqlType): SqlType {
  return type === UNKNOWN ? UNKNOWN : `${type}[]`;
}

export function elementOf(type: SqlType): SqlType {
  return type.endsWith('[]') ? type.slice(0, -2) : UNKNOWN;
}

function firstKnown(types: SqlType[]): SqlType {
  return types.find((t) => t !== UNKNOWN) ?? UNKNOWN;
}

/** Families that PostgreSQL compares without an explicit cast. */
export function comparable(a: SqlType, b: SqlType): boolean {
  if (a === UNKNOWN || b === UNKNOWN) return true;
  return family(a) === family(b);
}

function family(t: SqlType): string {
  if (/^(bigint|integer|smallint|numeric.*)$/.test(t)) return 'number';
  if (/^(text|varchar.*|character.*)$/.test(t)) return 'text';
  return t;
}

/**
 * The least value of a type, as SQL: `everyRowWhen` compares the primary key with it, so the
 * comparison holds for every row. Types without one (boolean, arrays, …) cannot key that shape.
 */
export function typeMinimum(type: SqlType): string | undefined {
  if (type === 'bigint') return "'-9223372036854775808'::bigint";
  if (type === 'integer') return "'-2147483648'::integer";
  if (type === 'smallint') return "'-32768'::smallint";
  // The empty string sorts first in every collation.
  if (type === 'text' || /^(varchar|character varying)/.test(type)) return `''::${type}`;
  if (type === 'date' || type === 'timestamptz' || type === 'timestamp') return `'-infinity'::${type}`;
  if (type === 'numeric' || type.startsWith('numeric(')) return "'-Infinity'::numeric";
  if (type === 'uuid') return "'00000000-0000-0000-0000-000000000000'::uuid";
  return undefined;
}

/**
 * The greatest value of a type, as SQL, where there is one (text has none: a planner hint on text
 * is `>= ALL` of an empty array instead, see hints.ts). With it,
 * `everyRowWhen` prints `pk >= lo AND pk <= <greatest>`, which the planner estimates as a narrow
 * range (0.5% of rows) while `lo` is unknown; a lone `pk >= lo` is estimated at a third of the
 * table, enough to push every restricted user's query to a sequential scan.
 */
export function typeMaximum(type: SqlType): string | undefined {
  if (type === 'bigint') return "'9223372036854775807'::bigint";
  if (type === 'integer') return "'2147483647'::integer";
  if (type === 'smallint') return "'32767'::smallint";
  if (type === 'date' || type === 'timestamptz' || type === 'timestamp') return `'infinity'::${type}`;
  // PostgreSQL sorts NaN above Infinity, and a numeric key may hold NaN.
  if (type === 'numeric' || type.startsWith('numeric(')) return "'NaN'::numeric";
  if (type === 'uuid') return "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid";
  return undefined;
}

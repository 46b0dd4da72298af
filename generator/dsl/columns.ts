// Column declarations: `t.bigint().references('offices')`. Immutable: each call returns a new spec.
import type { SqlType } from '../model/nodes.ts';
import { toNode, type Value } from './expr.ts';
import type { Expr } from '../model/nodes.ts';

export interface ColumnSpecData {
  readonly type: SqlType;
  readonly nullable: boolean;
  readonly primaryKey: boolean;
  readonly default?: Expr;
  readonly references?: { readonly table: string; readonly column?: string; readonly onDelete?: 'cascade' | 'set null' | 'restrict' };
  readonly oneOf?: readonly (string | number)[];
  readonly unique: boolean;
}

export class ColumnSpec {
  constructor(readonly data: ColumnSpecData) {}

  private with(patch: Partial<ColumnSpecData>): ColumnSpec {
    return new ColumnSpec({ ...this.data, ...patch });
  }

  /** NOT NULL. Columns are nullable unless declared otherwise, as in SQL. */
  notNull(): ColumnSpec { return this.with({ nullable: false }); }
  primaryKey(): ColumnSpec { return this.with({ primaryKey: true, nullable: false }); }
  unique(): ColumnSpec { return this.with({ unique: true }); }
  default(value: Value): ColumnSpec { return this.with({ default: toNode(value) }); }
  /** A foreign key to the referenced table's primary key (or `column`). Nullability is stated
   *  separately with `notNull()`, as in SQL. */
  references(table: string | { readonly name: string }, options: { column?: string; onDelete?: 'cascade' | 'set null' | 'restrict' } = {}): ColumnSpec {
    const name = typeof table === 'string' ? table : table.name;
    return this.with({ references: { table: name, ...options } });
  }
  /** The allowed values, printed as a CHECK (col IN (...)). */
  oneOf(values: readonly (string | number)[]): ColumnSpec { return this.with({ oneOf: values }); }
}

function column(type: SqlType): ColumnSpec {
  return new ColumnSpec({ type, nullable: true, primaryKey: false, unique: false });
}

export const t = {
  bigint: () => column('bigint'),
  integer: () => column('integer'),
  text: () => column('text'),
  boolean: () => column('boolean'),
  date: () => column('date'),
  timestamptz: () => column('timestamptz'),
  numeric: (precision: number, scale: number) => column(`numeric(${precision},${scale})`),
};

// The model's schema and base tables, with foreign keys added after every table exists
// (so declaration order and reference cycles do not matter), and RLS enabled and forced.
import type { ModelNode, TableNode } from '../model/nodes.ts';
import { ident, literal, qualified } from '../sql/print.ts';
import { exprContext, printExpr } from './expr.ts';
import { APP_ROLE, DEFINER_ROLE, REPORTING_ROLE } from './roles.ts';
import { statement, type Section, type Statement } from './statement.ts';

export function primaryKeyOf(model: ModelNode, table: string): readonly string[] {
  return model.tables.find((t) => t.name === table)?.primaryKey ?? [];
}

export function schemaSection(model: ModelNode): Section {
  const s = ident(model.schema);
  return {
    title: 'Schema',
    statements: [
      statement(
        `schema ${model.schema}`,
        [
          `CREATE SCHEMA ${s};`,
          `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC;`,
          `GRANT USAGE ON SCHEMA ${s} TO ${ident(APP_ROLE)}, ${ident(REPORTING_ROLE)};`,
          `-- The definer role owns the generated helper functions and views, which needs CREATE here.`,
          `GRANT USAGE, CREATE ON SCHEMA ${s} TO ${ident(DEFINER_ROLE)};`,
        ].join('\n'),
        `DROP SCHEMA ${s};`,
      ),
    ],
  };
}

export function tablesSection(model: ModelNode): Section {
  const statements: Statement[] = [];
  for (const table of model.tables) statements.push(createTable(model, table));
  for (const table of model.tables) {
    for (const col of table.columns) {
      if (!col.references) continue;
      const target = col.references.column || primaryKeyOf(model, col.references.table)[0] || 'id';
      const name = constraintName(table.name, col.name, 'fkey');
      const onDelete = col.references.onDelete ? ` ON DELETE ${col.references.onDelete.toUpperCase()}` : '';
      statements.push(
        statement(
          `foreign key ${model.schema}.${table.name}.${col.name}`,
          `ALTER TABLE ${qualified(model.schema, table.name)}\n  ADD CONSTRAINT ${ident(name)} FOREIGN KEY (${ident(col.name)}) REFERENCES ${qualified(model.schema, col.references.table)} (${ident(target)})${onDelete};`,
          `ALTER TABLE ${qualified(model.schema, table.name)} DROP CONSTRAINT ${ident(name)};`,
        ),
      );
    }
  }
  return { title: 'Tables', statements };
}

export function rlsSection(model: ModelNode): Section {
  return {
    title: 'Row-level security: enabled and forced, so the owner is filtered too',
    statements: model.tables.map((t) =>
      statement(
        `rls ${model.schema}.${t.name}`,
        `ALTER TABLE ${qualified(model.schema, t.name)} ENABLE ROW LEVEL SECURITY;\nALTER TABLE ${qualified(model.schema, t.name)} FORCE ROW LEVEL SECURITY;`,
        `ALTER TABLE ${qualified(model.schema, t.name)} NO FORCE ROW LEVEL SECURITY;\nALTER TABLE ${qualified(model.schema, t.name)} DISABLE ROW LEVEL SECURITY;`,
      ),
    ),
  };
}

function createTable(model: ModelNode, table: TableNode): Statement {
  const ctx = exprContext(model, '');
  const lines: string[] = table.columns.map((c) => {
    const parts = [`${ident(c.name)} ${c.type}`];
    if (!c.nullable && !(table.primaryKey.length === 1 && table.primaryKey[0] === c.name)) parts.push('NOT NULL');
    if (c.default) parts.push(`DEFAULT ${printExpr(c.default, ctx)}`);
    if (c.unique) parts.push('UNIQUE');
    if (c.oneOf) parts.push(`CHECK (${ident(c.name)} IN (${c.oneOf.map((v) => literal(v)).join(', ')}))`);
    return parts.join(' ');
  });
  if (table.primaryKey.length > 0) lines.push(`PRIMARY KEY (${table.primaryKey.map(ident).join(', ')})`);
  for (const check of table.checks) lines.push(`CONSTRAINT ${ident(check.name)} CHECK (${printExpr(check.condition, ctx)})`);
  return statement(
    `table ${model.schema}.${table.name}`,
    `CREATE TABLE ${qualified(model.schema, table.name)} (\n${lines.map((l) => `  ${l}`).join(',\n')}\n);`,
    `DROP TABLE ${qualified(model.schema, table.name)};`,
  );
}

/** PostgreSQL's own naming pattern, refused by validation when it would pass 63 bytes. */
export function constraintName(table: string, column: string, suffix: string): string {
  return `${table}_${column}_${suffix}`;
}

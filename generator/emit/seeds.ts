// Seed rows and membership functions.
//
// Seeds run before row-level security is enabled and forced, so a migration role that owns the
// tables without being a superuser can still insert them. ON CONFLICT DO NOTHING keeps a re-run
// (or rows a DBA already added) harmless; the down migration deletes exactly the seeded keys.
import type { MembershipFunctionNode, ModelNode, SeedNode } from '../model/nodes.ts';
import { ident, literal, qualified } from '../sql/print.ts';
import { evaluatedOnce, exprContext, printExpr, sessionUserCall } from './expr.ts';
import { createFunction, holdsRawSql } from './functions.ts';
import { APP_ROLE, REPORTING_ROLE } from './roles.ts';
import { statement, type Section } from './statement.ts';

export function seedsSection(model: ModelNode): Section {
  return { title: 'Seed data', statements: model.seeds.map((s) => seed(model, s)) };
}

function seed(model: ModelNode, node: SeedNode): ReturnType<typeof statement> {
  const table = model.tables.find((t) => t.name === node.table)!;
  const columns = table.columns.map((c) => c.name).filter((c) => node.rows.some((r) => c in r));
  const values = node.rows.map((r) => `  (${columns.map((c) => literal(r[c] ?? null)).join(', ')})`);
  const name = qualified(model.schema, node.table);
  const key = table.primaryKey;
  const keys = node.rows.map((r) => `(${key.map((k) => literal(r[k] ?? null)).join(', ')})`);
  return statement(
    `seed ${model.schema}.${node.table}`,
    `INSERT INTO ${name} (${columns.map(ident).join(', ')}) VALUES\n${values.join(',\n')}\nON CONFLICT DO NOTHING;`,
    `DELETE FROM ${name} WHERE (${key.map(ident).join(', ')}) IN (${keys.join(', ')});`,
    `${node.origin.path}: ${node.rows.length} row(s)`,
  );
}

export function membershipFunctionsSection(model: ModelNode, factTypes: ReadonlyMap<string, string>): Section {
  return { title: 'Questions applications may ask about the acting user', statements: model.membershipFunctions.map((f) => membershipFunction(model, f, factTypes)) };
}

function membershipFunction(model: ModelNode, node: MembershipFunctionNode, factTypes: ReadonlyMap<string, string>): ReturnType<typeof statement> {
  const ctx = evaluatedOnce(exprContext(model));
  const setType = node.set.kind === 'fact' ? factTypes.get(node.set.name) : undefined;
  return createFunction({
    schema: model.schema,
    name: node.name,
    args: [[node.argument, node.type]],
    returns: 'boolean',
    volatility: 'STABLE',
    securityDefiner: true,
    grantTo: [APP_ROLE, REPORTING_ROLE],
    ...(node.description ? { comment: node.description } : {}),
    // Raw SQL, here or in a fact it calls, may do what parallel mode forbids (see factBody).
    ...(holdsRawSql(model, node.set) ? { parallel: 'UNSAFE' as const } : {}),
    body: [
      'BEGIN',
      `  IF ${sessionUserCall(model.schema)} IS NULL THEN`,
      '    RETURN false;',
      '  END IF;',
      `  RETURN coalesce($1 = any((${printExpr(node.set, ctx)})${setType ? `::${setType}` : ''}), false);`,
      'END',
    ].join('\n'),
  });
}

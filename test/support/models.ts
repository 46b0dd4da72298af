// Every model in policies/ and its sample data, so the adversarial suites cover each model that is
// added without being edited. Models come from the same loader `rowguard generate` uses.
import type { Sql } from 'postgres';
import { loadModels } from '../../generator/load.ts';
import { samples } from '../../generator/cli/samples/index.ts';
import type { Sample } from '../../generator/cli/samples/sample.ts';
import type { ModelNode, TableNode } from '../../generator/model/nodes.ts';
import { ident, qualified } from '../../generator/sql/print.ts';

const loaded = await loadModels(process.cwd(), 'policies');
if (loaded.problems.length > 0) throw new Error(`policies/ has problems: ${loaded.problems.map((p) => `${p.file} ${p.path}: ${p.message}`).join('; ')}`);

export const models: readonly ModelNode[] = loaded.models;

export function sampleOf(schema: string): Sample | undefined {
  return samples.find((s) => s.schema === schema);
}

/** Every model's sample rows, loaded as the superuser. */
export async function loadSamples(admin: Sql): Promise<void> {
  for (const s of samples) await admin.unsafe(s.sql);
}

/** Ids that can act: the sample personas of the model. */
export function personasOf(schema: string): readonly (number | string)[] {
  return sampleOf(schema)?.personas.map((p) => p.id) ?? [];
}

/** A value of the identity's type that names no user. */
export function unknownId(model: ModelNode): string | number {
  return /int|numeric/.test(model.identity?.type ?? '') ? 987_654_321 : 'rowguard-no-such-user';
}

export function tableSql(model: ModelNode, table: string): string {
  return qualified(model.schema, table);
}

/** `ROW(t.pk…)::text`: a row's primary key as one comparable string. */
export function keySql(table: TableNode, alias = 't'): string {
  return `ROW(${table.primaryKey.map((c) => `${alias}.${ident(c)}`).join(', ')})::text`;
}

export function hasPolicy(model: ModelNode, table: string, command: 'select' | 'insert' | 'update' | 'delete'): boolean {
  return model.policies.some((p) => p.table === table && p.mode === 'permissive' && (p.command === command || p.command === 'all'));
}

/** Views and materialized views of a schema, from the catalog (closure views, masked views, anything added later). */
export async function viewsOf(admin: Sql, schema: string): Promise<string[]> {
  const rows = await admin`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema} AND c.relkind IN ('v', 'm') ORDER BY 1`;
  return rows.map((r) => r.relname as string);
}

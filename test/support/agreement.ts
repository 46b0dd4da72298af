// Explain's verdict against PostgreSQL's: what explain predicts `… WHERE <key>` does, and what the
// real statement does as app_user after set_session.
import { explainRow, type Explanation } from '../../generator/explain/explain.ts';
import type { ExplainCommand } from '../../generator/explain/plan.ts';
import type { ModelNode, TableNode } from '../../generator/model/nodes.ts';
import { ident, qualified } from '../../generator/sql/print.ts';
import type { TestDatabase, Tx } from './db.ts';

export type Outcome = 'allowed' | 'skipped' | 'refused';

/** What explain predicts. USING filters rows out silently; a failing WITH CHECK or a missing privilege raises 42501. */
export function predicted(x: Explanation): Outcome {
  if (x.allowed) return 'allowed';
  if (!x.privileges.ok) return 'refused';
  return x.stages.find((s) => !s.admitted)?.clause === 'check' ? 'refused' : 'skipped';
}

/** What PostgreSQL does, as app_user (in the caller's transaction, which is rolled back). */
export async function actual(tx: Tx, model: ModelNode, table: TableNode, key: Record<string, string>, command: ExplainCommand): Promise<Outcome> {
  const target = qualified(model.schema, table.name);
  const cols = Object.keys(key);
  const where = cols.map((c, i) => `${ident(c)} = $${i + 1}`).join(' AND ');
  const params = cols.map((c) => key[c]!);
  const statement =
    command === 'select'
      ? `SELECT 1 FROM ${target} WHERE ${where}`
      : command === 'delete'
        ? `DELETE FROM ${target} WHERE ${where}`
        : `UPDATE ${target} SET ${ident(cols[0]!)} = ${ident(cols[0]!)} WHERE ${where}`;
  try {
    const result = await tx.unsafe(statement, params as never[]);
    return result.count > 0 ? 'allowed' : 'skipped';
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === '42501') return 'refused';
    // The policies let the DELETE reach the row; a referencing row (not filtered by RLS) blocks it.
    if (code === '23503' && command === 'delete') return 'allowed';
    throw error;
  }
}

export async function keysOf(db: TestDatabase, model: ModelNode, table: TableNode, limit: number): Promise<Record<string, string>[]> {
  const pk = table.primaryKey;
  const rows = await db.admin.unsafe(
    `SELECT ${pk.map((c) => `${ident(c)}::text AS ${ident(c)}`).join(', ')} FROM ${qualified(model.schema, table.name)} ORDER BY ${pk.map(ident).join(', ')} LIMIT ${limit}`,
  );
  return rows.map((r) => Object.fromEntries(pk.map((c) => [c, String((r as Record<string, unknown>)[c])])));
}

export interface AgreementRun {
  readonly cases: number;
  readonly outcomes: Record<Outcome, number>;
  readonly disagreements: string[];
}

/** Every persona × every row (up to `limit` per table) of the given tables, for one command. */
export async function checkAgreement(
  db: TestDatabase,
  models: readonly ModelNode[],
  model: ModelNode,
  personas: readonly (string | number)[],
  command: ExplainCommand,
  limitFor: (table: TableNode) => number,
): Promise<AgreementRun> {
  const run: AgreementRun = { cases: 0, outcomes: { allowed: 0, skipped: 0, refused: 0 }, disagreements: [] };
  for (const table of model.tables) {
    if (table.primaryKey.length === 0) continue;
    for (const key of await keysOf(db, model, table, limitFor(table))) {
      for (const persona of personas) {
        const x = await explainRow(db.admin, models, { schema: model.schema, table: table.name, user: String(persona), id: key, command });
        const real = await db.as(model.schema, persona, (tx) => actual(tx, model, table, key, command));
        (run as { cases: number }).cases++;
        run.outcomes[real]++;
        const said = predicted(x);
        const where = `${table.name} ${JSON.stringify(key)} as ${persona}`;
        if (said !== real) run.disagreements.push(`${where}: explain says ${said}, PostgreSQL ${real}\n${x.summary}`);
        if (x.warnings.length > 0) run.disagreements.push(`${where}: warnings ${x.warnings.join('; ')}`);
      }
    }
  }
  return run;
}

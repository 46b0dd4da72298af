// `rowguard explain` must agree with what PostgreSQL enforces. For every model that has sample
// data (generator/cli/samples), every persona and every row of every table (up to a cap per
// table): explain's verdict for SELECT, UPDATE and DELETE is compared with what the real statement
// does as app_user after set_session — visible or not; updated, skipped (0 rows) or refused (42501);
// deleted or skipped. New models are covered as soon as their sample is listed.
import { describe, expect, it } from 'vitest';
import { loadModels } from '../../generator/load.ts';
import { samples } from '../../generator/cli/samples/index.ts';
import { explainRow, type Explanation } from '../../generator/explain/explain.ts';
import { EXPLAIN_COMMANDS, type ExplainCommand } from '../../generator/explain/plan.ts';
import type { ModelNode, TableNode } from '../../generator/model/nodes.ts';
import { ident, qualified } from '../../generator/sql/print.ts';
import { useTestDatabase, type Tx } from '../support/db.ts';

/** Rows per table: every row of the samples for SELECT; for writes, the main table in full and a
 *  few rows of the others (each write case is a real statement in its own transaction). */
const ROWS_PER_TABLE = 25;
const WRITE_ROWS_PER_OTHER_TABLE = 6;

const db = useTestDatabase(async (admin) => {
  for (const sample of samples) await admin.unsafe(sample.sql);
});

type Outcome = 'allowed' | 'skipped' | 'refused';

/** What explain predicts the statement `… WHERE <key>` does. */
function predicted(x: Explanation): Outcome {
  if (x.allowed) return 'allowed';
  if (!x.privileges.ok) return 'refused';
  const failed = x.stages.find((s) => !s.admitted);
  // USING filters rows out silently; a failing WITH CHECK raises 42501.
  return failed?.clause === 'check' ? 'refused' : 'skipped';
}

/** What PostgreSQL does, as app_user. */
async function actual(tx: Tx, model: ModelNode, table: TableNode, key: Record<string, string>, command: ExplainCommand): Promise<Outcome> {
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

async function keysOf(model: ModelNode, table: TableNode, limit: number): Promise<Record<string, string>[]> {
  const pk = table.primaryKey;
  const rows = await db.current.admin.unsafe(
    `SELECT ${pk.map((c) => `${ident(c)}::text AS ${ident(c)}`).join(', ')} FROM ${qualified(model.schema, table.name)} ORDER BY ${pk.map(ident).join(', ')} LIMIT ${limit}`,
  );
  return rows.map((r) => Object.fromEntries(pk.map((c) => [c, String((r as Record<string, unknown>)[c])])));
}

const loaded = await loadModels(process.cwd(), 'policies');

describe('explain agrees with PostgreSQL', () => {
  it('loads the policy models without problems', () => {
    expect(loaded.problems).toEqual([]);
  });

  for (const sample of samples) {
    const model = loaded.models.find((m) => m.schema === sample.schema);
    it(`${sample.schema}: has a policy model`, () => expect(model).toBeDefined());
    if (!model) continue;
    for (const command of EXPLAIN_COMMANDS) {
      const rows = command === 'select' ? 'every row' : `every ${sample.table} row and ${WRITE_ROWS_PER_OTHER_TABLE} rows of each other table`;
      it(`${sample.schema}: ${command.toUpperCase()} for every persona × ${rows}`, async () => {
        const disagreements: string[] = [];
        let cases = 0;
        const outcomes: Record<Outcome, number> = { allowed: 0, skipped: 0, refused: 0 };
        for (const table of model.tables) {
          if (table.primaryKey.length === 0) continue;
          const limit = command === 'select' || table.name === sample.table ? ROWS_PER_TABLE : WRITE_ROWS_PER_OTHER_TABLE;
          for (const key of await keysOf(model, table, limit)) {
            for (const persona of sample.personas) {
              const id = Object.values(key).join(',');
              const x = await explainRow(db.current.admin, loaded.models, { schema: model.schema, table: table.name, user: String(persona.id), id, command });
              const real = await db.current.as(model.schema, persona.id, (tx) => actual(tx, model, table, key, command));
              cases++;
              outcomes[real]++;
              const said = predicted(x);
              if (said !== real) disagreements.push(`${table.name} ${id} as ${persona.id}: explain says ${said}, PostgreSQL ${real}\n${x.summary}`);
              if (x.warnings.length > 0) disagreements.push(`${table.name} ${id} as ${persona.id}: warnings ${x.warnings.join('; ')}`);
            }
          }
        }
        expect(disagreements).toEqual([]);
        expect(cases).toBeGreaterThan(0);
        // The sample must exercise both verdicts, or the agreement proves little.
        expect(outcomes.allowed).toBeGreaterThan(0);
        expect(outcomes.skipped + outcomes.refused).toBeGreaterThan(0);
      });
    }
  }
});

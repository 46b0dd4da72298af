// `rowguard explain` must agree with what PostgreSQL enforces. For every model that has sample
// data (generator/cli/samples), every persona and every row of every table: explain's verdict for
// SELECT is compared with what the real statement does as app_user after set_session; for UPDATE
// and DELETE, on every row of the sample's main table and a few rows of each other table (updated,
// skipped with 0 rows, or refused with 42501; deleted or skipped). New models are covered as soon
// as their sample is listed in generator/cli/samples/index.ts.
import { describe, expect, it } from 'vitest';
import { loadModels } from '../../generator/load.ts';
import { samples } from '../../generator/cli/samples/index.ts';
import { EXPLAIN_COMMANDS } from '../../generator/explain/plan.ts';
import { checkAgreement } from '../support/agreement.ts';
import { useTestDatabase } from '../support/db.ts';

const ROWS_PER_TABLE = 25;
const WRITE_ROWS_PER_OTHER_TABLE = 6;

const db = useTestDatabase(async (admin) => {
  for (const sample of samples) await admin.unsafe(sample.sql);
});
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
      const rows = command === 'select' ? `every row (up to ${ROWS_PER_TABLE} per table)` : `every ${sample.table} row and ${WRITE_ROWS_PER_OTHER_TABLE} rows of each other table`;
      it(`${sample.schema}: ${command.toUpperCase()} for every persona × ${rows}`, async () => {
        const limit = (t: { name: string }) => (command === 'select' || t.name === sample.table ? ROWS_PER_TABLE : WRITE_ROWS_PER_OTHER_TABLE);
        const run = await checkAgreement(db.current, loaded.models, model, sample.personas.map((p) => p.id), command, limit);
        expect(run.disagreements).toEqual([]);
        // The sample must exercise both verdicts, or the agreement proves little.
        expect(run.outcomes.allowed).toBeGreaterThan(0);
        expect(run.outcomes.skipped + run.outcomes.refused).toBeGreaterThan(0);
      });
    }
  }
});

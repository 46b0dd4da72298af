// Every model's reporting view shows exactly the rows of its table the caller may see, for every
// persona, with no identity nothing; the joined columns come through the caller's own policies.
import { describe, expect, it } from 'vitest';
import { samples } from '../../generator/cli/samples/index.ts';
import { ids, useTestDatabase } from '../support/db.ts';

const db = useTestDatabase(async (admin) => {
  for (const s of samples) await admin.unsafe(s.sql);
});

const VIEWS: Record<string, { view: string; table: string }> = {
  smartoffice: { view: 'contacts_report', table: 'contacts' },
  collect: { view: 'debtors_report', table: 'debtors' },
  policycenter: { view: 'accounts_report', table: 'accounts' },
  superoffice: { view: 'companies_report', table: 'companies' },
};

describe('reporting views', () => {
  for (const sample of samples) {
    const { view, table } = VIEWS[sample.schema]!;
    it(`${sample.schema}.${view}: the same rows as ${table} for every persona, none without identity`, async () => {
      for (const persona of sample.personas) {
        await db.current.as(sample.schema, persona.id, async (tx) => {
          expect(await ids(tx, `SELECT id FROM ${sample.schema}.${view}`), `${persona.name}`).toEqual(await ids(tx, `SELECT id FROM ${sample.schema}.${table}`));
        });
      }
      expect(await db.current.as(sample.schema, null, (tx) => ids(tx, `SELECT id FROM ${sample.schema}.${view}`))).toEqual([]);
    });
  }
  // A reporting tool's scan of a large table gets parallel workers like the owner's (the facts are
  // PARALLEL RESTRICTED, computed in the leader): forced here on the small sample tables.
  it('in parallel workers every view and its table return the same rows for every persona', async () => {
    const parallel = [
      'SET LOCAL max_parallel_workers_per_gather = 2',
      'SET LOCAL parallel_setup_cost = 0',
      'SET LOCAL parallel_tuple_cost = 0',
      'SET LOCAL min_parallel_table_scan_size = 0',
      'SET LOCAL min_parallel_index_scan_size = 0',
    ].join('; ');
    for (const sample of samples) {
      const { view, table } = VIEWS[sample.schema]!;
      // A selective persona's few rows may still be read by one index scan, whatever it costs.
      let gathered = 0;
      for (const persona of sample.personas) {
        const [serialView, serialTable] = await db.current.as(sample.schema, persona.id, async (tx) => [await ids(tx, `SELECT id FROM ${sample.schema}.${view}`), await ids(tx, `SELECT id FROM ${sample.schema}.${table}`)]);
        const [plans, parallelView, parallelTable] = await db.current.as(sample.schema, persona.id, async (tx) => {
          await tx.unsafe(parallel);
          const plan = async (from: string) => (await tx.unsafe(`EXPLAIN (COSTS OFF) SELECT id FROM ${sample.schema}.${from}`)).map((r) => r['QUERY PLAN'] as string).join('\n');
          return [[await plan(view), await plan(table)], await ids(tx, `SELECT id FROM ${sample.schema}.${view}`), await ids(tx, `SELECT id FROM ${sample.schema}.${table}`)] as const;
        });
        gathered += plans.filter((plan) => /Gather/.test(plan)).length;
        expect(parallelView, `${sample.schema} ${persona.name}`).toEqual(serialView);
        expect(parallelTable, `${sample.schema} ${persona.name}`).toEqual(serialTable);
      }
      expect(gathered, `${sample.schema}: parallel plans`).toBeGreaterThan(0);
    }
  });

  it('joined columns: SmartOffice office names and assignees', async () => {
    const rows = await db.current.as('smartoffice', 13, (tx) => tx`SELECT id, office_name, parent_office_name, assignees FROM smartoffice.contacts_report WHERE id IN (100, 102) ORDER BY id`);
    expect(rows.map((r) => ({ ...r, id: Number(r.id), assignees: [...(r.assignees as string[])].sort() }))).toEqual([
      { id: 100, office_name: 'Branch A', parent_office_name: 'Region', assignees: ['John (agent)'] },
      { id: 102, office_name: 'Branch A', parent_office_name: 'Region', assignees: ['John (agent)', 'Tom (agent)'] },
    ]);
  });
});

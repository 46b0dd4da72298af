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
  it('joined columns: SmartOffice office names and assignees', async () => {
    const rows = await db.current.as('smartoffice', 13, (tx) => tx`SELECT id, office_name, parent_office_name, assignees FROM smartoffice.contacts_report WHERE id IN (100, 102) ORDER BY id`);
    expect(rows.map((r) => ({ ...r, id: Number(r.id), assignees: [...(r.assignees as string[])].sort() }))).toEqual([
      { id: 100, office_name: 'Branch A', parent_office_name: 'Region', assignees: ['John (agent)'] },
      { id: 102, office_name: 'Branch A', parent_office_name: 'Region', assignees: ['John (agent)', 'Tom (agent)'] },
    ]);
  });
});

// Sample data for the SuperOffice model: used by `npm start` and by the tests. The roles and their
// rights are the predefined ones the migration seeds (policies/superoffice.ts, PREDEFINED_ROLES).
//
// Groups: 1 Sales, 2 Support, 3 Marketing. Every object table holds the same six rows, offset by
// 100 (companies 100-105, contacts 200-205, projects 300-305, sales 400-405).
import type { Sample } from './sample.ts';

/** The same six (owner, group, published) rows in each object table, ids from `base`. */
const ROWS: readonly (readonly [number, number, boolean])[] = [
  [1, 1, false],
  [2, 1, false],
  [3, 2, true],
  [4, 3, true],
  [8, 2, false],
  [7, 3, false],
];
const rows = (table: string, base: number) =>
  `INSERT INTO superoffice.${table} (id, name, owner_id, group_id, published) VALUES\n${ROWS.map(([owner, group, published], i) => `  (${base + i}, '${table} ${base + i}', ${owner}, ${group}, ${published})`).join(',\n')};`;

export const superofficeSample: Sample = {
  schema: 'superoffice',
  table: 'companies',
  sql: `
INSERT INTO superoffice.user_groups (id, name) VALUES (1, 'Sales'), (2, 'Support'), (3, 'Marketing');
INSERT INTO superoffice.users (id, name, role_id, primary_group_id, kind) VALUES
  (1, 'Alice (User level 2, Sales; also Support)', 3, 1, 'internal'),
  (2, 'Bob (User level 3, Sales)', 4, 1, 'internal'),
  (3, 'Carol (User level 4, Support)', 5, 2, 'internal'),
  (4, 'Dave (User level 5, Marketing)', 6, 3, 'internal'),
  (5, 'Erin (external)', 10, 3, 'external'),
  (6, 'Anon (anonymous)', 11, 3, 'anonymous'),
  (7, 'Sys (system)', 12, 3, 'system'),
  (8, 'Frank (User level 0)', 1, 2, 'internal'),
  (9, 'Gina (Local user, Sales)', 9, 1, 'internal');
INSERT INTO superoffice.user_secondary_groups (user_id, group_id) VALUES (1, 2);
${rows('companies', 100)}
${rows('contacts', 200)}
${rows('projects', 300)}
${rows('sales', 400)}
`,
  personas: [
    { id: 1, name: 'Alice (User level 2: full in her groups, read beyond)', sees: [100, 101, 102, 103, 104, 105] },
    { id: 2, name: 'Bob (User level 3: full own, read elsewhere)', sees: [100, 101, 102, 103, 104, 105] },
    { id: 3, name: 'Carol (User level 4: nothing beyond her group)', sees: [102, 104] },
    { id: 4, name: 'Dave (User level 5: create own, read most)', sees: [100, 101, 102, 103, 104, 105] },
    { id: 9, name: 'Gina (Local user: own and own group)', sees: [100, 101] },
    { id: 5, name: 'Erin (external: published only)', sees: [102, 103] },
    { id: 6, name: 'Anon (anonymous: nothing)', sees: [] },
    { id: 7, name: 'Sys (system: everything)', sees: [100, 101, 102, 103, 104, 105] },
  ],
};

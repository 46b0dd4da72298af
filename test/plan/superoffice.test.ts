// Plan shape as app_user on 50,000 SuperOffice contacts of 10,000 companies, owned by 5,000 users
// in 1,000 groups: a user whose role reads only their own groups' rows must reach contacts through
// the owner and group indexes, never by scanning the whole table nor by a per-row SubPlan, so a
// regression in the generated rights-matrix shapes fails CI.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { explain, planShapeTests } from '../support/plan.ts';

const CONTACTS = 50_000;
const db = useTestDatabase(async (admin) => {
  await admin.unsafe(`
    -- 1,000 groups of five users. Roles are the seeded predefined ones: User level 2 (3) reads
    -- every row, User level 4 (5) only its own groups' rows; one user in 500 is a system user.
    INSERT INTO superoffice.user_groups (id, name) SELECT g, 'group ' || g FROM generate_series(1, 1000) g;
    INSERT INTO superoffice.users (id, name, role_id, primary_group_id, kind)
      SELECT g, 'user ' || g, CASE WHEN g % 3 = 0 THEN 3 ELSE 5 END, 1 + (g - 1) / 5, CASE WHEN g % 500 = 0 THEN 'system' ELSE 'internal' END
      FROM generate_series(1, 5000) g;
    INSERT INTO superoffice.user_secondary_groups (user_id, group_id) SELECT g, 1 + (g * 7) % 1000 FROM generate_series(1, 5000, 4) g;
    -- Each row is owned by a user and filed under that user's primary group; 10% published.
    INSERT INTO superoffice.companies (id, name, owner_id, group_id, published)
      SELECT g, 'company ' || g, o, 1 + (o - 1) / 5, g % 10 = 0 FROM (SELECT g, 1 + (g * 31) % 5000 AS o FROM generate_series(1, 10000) g) s;
    INSERT INTO superoffice.contacts (id, company_id, name, owner_id, group_id)
      SELECT g, 1 + (g * 7919) % 10000, 'contact ' || g, o, 1 + (o - 1) / 5 FROM (SELECT g, 1 + (g * 13) % 5000 AS o FROM generate_series(1, ${CONTACTS}) g) s;
    ANALYZE;
  `);
});

// User 1 (User level 4, primary group 1, secondary group 8): own, primary- and secondary-group
// rows only, "others" none.
const PERSONA = 1;

describe('superoffice plan shapes', () => {
  planShapeTests(db, {
    schema: 'superoffice',
    table: 'contacts',
    rows: CONTACTS,
    persona: PERSONA,
    who: 'a group-bound user',
    minVisible: 21,
    queries: [
      ['count', 'SELECT count(*) FROM superoffice.contacts'],
      ['first page', 'SELECT * FROM superoffice.contacts ORDER BY id LIMIT 50'],
      ['equality search', 'SELECT * FROM superoffice.contacts WHERE company_id = 4242'],
      [
        'join with companies',
        'SELECT c.id, c.name, co.name AS company FROM superoffice.contacts c JOIN superoffice.companies co ON co.id = c.company_id ORDER BY c.id LIMIT 50',
      ],
    ],
    initPlans: {
      what: 'the identity, the groups and the scopes the role reads',
      functions: [
        'superoffice.contact_scopes_with_read',
        'superoffice.current_user_id',
        'superoffice.i_am_system',
        'superoffice.my_primary_group_id',
        'superoffice.my_secondary_group_ids',
      ],
    },
  });
  it('the rights tests run once per statement, not in the filter of every row', async () => {
    const plan = await explain(db.current, 'superoffice', PERSONA, 'SELECT * FROM superoffice.contacts ORDER BY id LIMIT 50');
    const perRow = plan.split('\n').filter((line) => /^\s*(Filter|Recheck Cond|Index Cond):/.test(line) && line.includes('CASE'));
    expect(perRow).toEqual([]);
  });
});

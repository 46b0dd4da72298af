// Plan shape as app_user on a generated office tree with 50,000 contacts: a selective persona's
// query must not scan the whole contacts table nor run a per-row SubPlan, so a regression in the
// generated policy shapes fails CI. (Speed itself belongs in benchmarks, not here.)
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { expectPolicyCoveredByBitmap, explain, planShapeTests, visibleRows } from '../support/plan.ts';

const CONTACTS = 50_000;
const db = useTestDatabase(async (admin) => {
  await admin.unsafe(`
    -- 1,000 offices in a 10-ary tree, 10 users each, secured.
    INSERT INTO smartoffice.offices (id, parent_id, name, office_security)
      SELECT g, CASE WHEN g = 1 THEN NULL ELSE (g - 2) / 10 + 1 END, 'office ' || g, true FROM generate_series(1, 1000) g;
    INSERT INTO smartoffice.users (id, office_id, name, enterprise_view)
      SELECT g, (g - 1) / 10 + 1, 'user ' || g, g = 11 FROM generate_series(1, 10000) g;
    -- 2% private, 10% unassigned, the rest assigned to one user of the contact's office.
    INSERT INTO smartoffice.contacts (id, office_id, name, is_private, private_owner_id)
      SELECT g, 1 + (g / 7) % 1000, 'contact ' || g, g % 50 = 0, CASE WHEN g % 50 = 0 THEN ((g / 7) % 1000) * 10 + 1 END FROM generate_series(1, ${CONTACTS}) g;
    INSERT INTO smartoffice.contact_assignments (contact_id, user_id)
      SELECT g, ((g / 7) % 1000) * 10 + 1 + g % 10 FROM generate_series(1, ${CONTACTS}) g WHERE g % 10 <> 0;
    ANALYZE;
  `);
});

// User 503 is an agent in office 51: a few hundredths of a percent of the contacts are theirs.
const PERSONA = 503;

describe('smartoffice plan shapes', () => {
  planShapeTests(db, {
    schema: 'smartoffice',
    table: 'contacts',
    rows: CONTACTS,
    persona: PERSONA,
    who: 'a selective agent',
    minVisible: 4,
    queries: [
      ['count', 'SELECT count(*) FROM smartoffice.contacts'],
      ['first page', 'SELECT * FROM smartoffice.contacts ORDER BY id LIMIT 50'],
      ['equality search', "SELECT * FROM smartoffice.contacts WHERE name = 'contact 50'"],
    ],
    initPlans: {
      what: 'identity and visible sets',
      functions: [
        'smartoffice.contacts_shared_with_me',
        'smartoffice.enterprise_office_ids',
        'smartoffice.my_office_contacts_assigned_to_me_or_my_agents',
        'smartoffice.my_office_id',
        'smartoffice.my_open_office_id',
        'smartoffice.private_owner_ids_visible_to_me',
      ],
    },
  });

  // User 11 has enterprise view over office 2's subtree (about a tenth of the contacts). Every arm
  // of contacts_select is answered by an index (generated arm indexes: emit/grants.ts), so the
  // rows the BitmapOr returns are exactly the visible ones: no per-row re-evaluation of the policy,
  // whose office_id = any(<hundreds of offices>) is a linear search per row.
  it('a broad persona counts through the BitmapOr with no per-row policy Filter', async () => {
    expect(await visibleRows(db.current, 'smartoffice', 11, 'contacts')).toBeGreaterThan(CONTACTS / 20);
    const plan = await explain(db.current, 'smartoffice', 11, 'SELECT count(*) FROM smartoffice.contacts');
    expectPolicyCoveredByBitmap(plan, 'contacts');
    expect(plan, plan).not.toMatch(/Recheck Cond: \(\(is_private/);
  });
});

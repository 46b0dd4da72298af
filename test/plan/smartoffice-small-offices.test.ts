// Plan shape when offices are small (five contacts each) and the tree is large (10,000 offices):
// PostgreSQL then prefers a one-column office_id index for any arm that compares office_id, so an
// arm written as two conditions (office_id = my office AND id = any(assigned)) would leave part of
// the policy outside its index, and the whole policy would be re-checked on every row the bitmap
// returns, searching the enterprise arm's array of offices row by row (4.3 s for a count of
// 98,000 rows at 10^6 contacts). Every arm of contacts_select must be answered by its index alone.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { expectPolicyCoveredByBitmap, explain, visibleRows } from '../support/plan.ts';

const OFFICES = 10_000;
const CONTACTS = 50_000;
const db = useTestDatabase(async (admin) => {
  await admin.unsafe(`
    INSERT INTO smartoffice.offices (id, parent_id, name, office_security)
      SELECT g, CASE WHEN g = 1 THEN NULL ELSE (g - 2) / 10 + 1 END, 'office ' || g, true FROM generate_series(1, ${OFFICES}) g;
    -- One user an office; user 2 has enterprise view over office 2's subtree (1,111 offices).
    INSERT INTO smartoffice.users (id, office_id, name, enterprise_view)
      SELECT g, g, 'user ' || g, g = 2 FROM generate_series(1, ${OFFICES}) g;
    INSERT INTO smartoffice.contacts (id, office_id, name, is_private, private_owner_id)
      SELECT g, 1 + g % ${OFFICES}, 'contact ' || g, g % 50 = 0, CASE WHEN g % 50 = 0 THEN 1 + g % ${OFFICES} END FROM generate_series(1, ${CONTACTS}) g;
    INSERT INTO smartoffice.contact_assignments (contact_id, user_id)
      SELECT g, 1 + g % ${OFFICES} FROM generate_series(1, ${CONTACTS}) g WHERE g % 10 <> 0;
    ANALYZE;
  `);
});

describe('smartoffice plan shapes with small offices', () => {
  it('a broad enterprise persona counts through the BitmapOr with no per-row policy Filter', async () => {
    expect(await visibleRows(db.current, 'smartoffice', 2, 'contacts')).toBeGreaterThan(CONTACTS / 20);
    const plan = await explain(db.current, 'smartoffice', 2, 'SELECT count(*) FROM smartoffice.contacts');
    expectPolicyCoveredByBitmap(plan, 'contacts');
  });

  // Its marks drop the arms this user cannot need (rule 2's assigned contacts among them, since
  // migration 0164); a login that never calls set_session plans every arm, and so does this.
  it('and so it does planned without its marks, every arm of the policy in the BitmapOr', async () => {
    const plan = await explain(db.current, 'smartoffice', 2, 'SELECT count(*) FROM smartoffice.contacts', { unmarked: true });
    expectPolicyCoveredByBitmap(plan, 'contacts');
    // Rule 4's shared contacts, `id = any(<fact>)`, and rule 2's assigned ones through the partial
    // GIN index of the assignee keys: one index for the arm, so no office_id index and re-check.
    expect(plan.match(/Bitmap Index Scan on contacts_id_arm_\w+_idx/g), plan).toHaveLength(1);
    expect(plan.match(/Bitmap Index Scan on contacts_assignee_keys_any_\w+_idx/g), plan).toHaveLength(1);
  });
});

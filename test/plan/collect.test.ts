// Plan shape as app_user on 50,000 Collect! debtors routed to 1,000 operators and 100 nested
// teams over a 1,111-client tree: a locked-out operator's query must not scan the whole debtors
// table nor run a per-row SubPlan, so a regression in the generated policy shapes fails CI.
import { describe } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { planShapeTests } from '../support/plan.ts';

const DEBTORS = 50_000;
const db = useTestDatabase(async (admin) => {
  await admin.unsafe(`
    -- 1,111 clients in a balanced 10-ary tree of depth 3.
    INSERT INTO collect.clients (id, owned_by, name)
      SELECT g, CASE WHEN g = 1 THEN NULL ELSE (g - 2) / 10 + 1 END, 'client ' || g FROM generate_series(1, 1111) g;
    -- 100 teams nested in a binary tree (t1 contains t2 and t3, …); 1,000 operators with Security
    -- on and locked out by default, twenty in each leaf team (t51..t100).
    INSERT INTO collect.teams (id, name) SELECT 't' || g, 'team ' || g FROM generate_series(1, 100) g;
    INSERT INTO collect.team_members (team_id, member_id) SELECT 't' || (g / 2), 't' || g FROM generate_series(2, 100) g;
    INSERT INTO collect.operators (id, name, security, locked_out) SELECT 'op' || g, 'operator ' || g, true, true FROM generate_series(1, 1000) g;
    INSERT INTO collect.team_members (team_id, member_id) SELECT 't' || (51 + g % 50), 'op' || g FROM generate_series(1, 1000) g;
    -- Every debtor has an operator; 10% a salesperson; 10% are open accounts (no Clerk, no
    -- Access); 2% have a team as Access, 10% an operator.
    INSERT INTO collect.debtors (id, file_number, client_id, name, operator_id, sales_id, clerk_id, access_id, last_worked, owing)
      SELECT g, 'F' || lpad(g::text, 8, '0'), 1 + (g * 7919) % 1111, 'debtor ' || g,
             'op' || (1 + (g * 31) % 1000),
             CASE WHEN g % 10 = 1 THEN 'op' || (1 + (g * 17) % 1000) END,
             CASE WHEN g % 10 = 3 THEN NULL ELSE 'op' || (1 + (g * 13) % 1000) END,
             CASE WHEN g % 10 = 3 THEN NULL WHEN g % 50 = 7 THEN 't' || (1 + (g * 3) % 100) WHEN g % 10 = 5 THEN 'op' || (1 + (g * 11) % 1000) END,
             date '2026-01-01' + g % 300, (g % 10000) / 10.0
      FROM generate_series(1, ${DEBTORS}) g;
    ANALYZE;
  `);
});

// Operator op7 is locked out: only the debtors naming op7, or t57 or a team above it, in one of
// the four routing fields.
const PERSONA = 'op7';

describe('collect plan shapes', () => {
  planShapeTests(db, {
    schema: 'collect',
    table: 'debtors',
    rows: DEBTORS,
    persona: PERSONA,
    who: 'a locked-out operator',
    minVisible: 21,
    queries: [
      ['count', 'SELECT count(*) FROM collect.debtors'],
      ['first page', 'SELECT * FROM collect.debtors ORDER BY id LIMIT 50'],
      ['equality search', 'SELECT * FROM collect.debtors WHERE client_id = 500'],
      ['join with clients', 'SELECT d.id, d.name, c.name AS client FROM collect.debtors d JOIN collect.clients c ON c.id = d.client_id ORDER BY d.id LIMIT 50'],
    ],
    initPlans: {
      // The switchboard's every-row arms (security off, open accounts) are dropped for this operator.
      what: 'the principal and client sets',
      functions: ['collect.debtor_client_ids_for_me', 'collect.my_principal_ids'],
    },
  });
});

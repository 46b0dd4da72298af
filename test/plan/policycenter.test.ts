// Plan shape as app_user on 50,000 PolicyCenter accounts over 8,000 producer codes of 2,000
// organizations in 400 security zones: an internal user whose groups cover one zone must reach
// accounts through the producer-code index, never by scanning the whole table nor by a per-row
// SubPlan, so a regression in the generated policy shapes fails CI.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { expectSelectivePlan, explain, initPlanFunctions, planShapeTests } from '../support/plan.ts';

const ACCOUNTS = 50_000;
const db = useTestDatabase(async (admin) => {
  await admin.unsafe(`
    -- 400 zones of five organizations each; two groups per organization, in its zone.
    INSERT INTO policycenter.security_zones (id, name) SELECT g, 'zone ' || g FROM generate_series(1, 400) g;
    INSERT INTO policycenter.organizations (id, name, security_zone_id) SELECT g, 'organization ' || g, 1 + (g - 1) / 5 FROM generate_series(1, 2000) g;
    INSERT INTO policycenter.groups (id, organization_id, name, security_zone_id)
      SELECT g, 1 + (g - 1) / 2, 'group ' || g, 1 + (g - 1) / 10 FROM generate_series(1, 4000) g;
    -- Five users per organization, each in the first group of it; one in 500 has View All Users.
    INSERT INTO policycenter.users (id, organization_id, name, view_all_users)
      SELECT g, 1 + (g - 1) / 5, 'user ' || g, g % 500 = 0 FROM generate_series(1, 10000) g;
    INSERT INTO policycenter.group_members (group_id, user_id) SELECT 2 * ((g - 1) / 5) + 1, g FROM generate_series(1, 10000) g;
    -- Four producer codes per organization; accounts spread over every code.
    INSERT INTO policycenter.producer_codes (id, organization_id, code) SELECT g, 1 + (g - 1) / 4, 'PC' || g FROM generate_series(1, 8000) g;
    INSERT INTO policycenter.accounts (id, name, producer_code_id, created_by)
      SELECT g, 'account ' || g, 1 + (g * 7919) % 8000, 1 + (g * 31) % 10000 FROM generate_series(1, ${ACCOUNTS}) g;
    ANALYZE;
  `);
});

// User 1 is internal, in group 1 of organization 1 (zone 1): the accounts of the twenty producer
// codes of zone 1's five organizations.
const PERSONA = 1;

describe('policycenter plan shapes', () => {
  planShapeTests(db, {
    schema: 'policycenter',
    table: 'accounts',
    rows: ACCOUNTS,
    persona: PERSONA,
    who: 'a zone-bound user',
    minVisible: 21,
    queries: [
      ['count', 'SELECT count(*) FROM policycenter.accounts'],
      ['first page', 'SELECT * FROM policycenter.accounts ORDER BY id LIMIT 50'],
      ['equality search', 'SELECT * FROM policycenter.accounts WHERE created_by = 4242'],
      [
        'join with producer codes',
        'SELECT a.id, a.name, p.code FROM policycenter.accounts a JOIN policycenter.producer_codes p ON p.id = a.producer_code_id ORDER BY a.id LIMIT 50',
      ],
    ],
    initPlans: {
      what: 'the View All Users flag and the producer codes seen through zones or organization',
      functions: ['policycenter.i_view_all', 'policycenter.producer_code_ids_by_zone_or_organization'],
    },
  });
  it('group memberships are found by group, not by probing groups once per membership', async () => {
    const plan = await explain(db.current, 'policycenter', PERSONA, 'SELECT * FROM policycenter.group_members');
    expectSelectivePlan(plan, 'group_members');
  });
  it('the visible producer codes and groups are found by index, not by reading every code or group', async () => {
    // The View All Users flag is OR'd into each fact's query; as a bare boolean it would cost
    // every user a sequential scan of the table per statement.
    const scans = await db.current.as('policycenter', PERSONA, async (tx) => {
      await tx`SELECT cardinality(policycenter.visible_producer_code_ids()) AS codes, cardinality(policycenter.visible_group_ids()) AS groups`;
      const rows = await tx`SELECT relname, seq_scan::int AS seq FROM pg_stat_xact_user_tables WHERE schemaname = 'policycenter' AND relname IN ('producer_codes', 'groups')`;
      return Object.fromEntries(rows.map((r) => [r.relname === 'producer_codes' ? 'codes' : 'groups', r.seq]));
    });
    expect(scans).toEqual({ codes: 0, groups: 0 });
  });
  it('in the join, the producer-code facts are InitPlans too', async () => {
    const plan = await explain(
      db.current,
      'policycenter',
      PERSONA,
      'SELECT a.id, p.code FROM policycenter.accounts a JOIN policycenter.producer_codes p ON p.id = a.producer_code_id',
      { verbose: true },
    );
    expect(initPlanFunctions(plan)).toEqual([
      'policycenter.i_view_all',
      'policycenter.my_external_organization_id',
      'policycenter.organization_ids_in_my_zones',
      'policycenter.producer_code_ids_by_zone_or_organization',
    ]);
  });
});

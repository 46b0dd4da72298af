// Plan shape as app_user on 50,000 PolicyCenter accounts over 8,000 producer codes of 2,000
// organizations in 400 security zones: an internal user whose groups cover one zone must reach
// accounts through the producer-code index, never by scanning the whole table nor by a per-row
// SubPlan, so a regression in the generated policy shapes fails CI.
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { asOwner, ids, rolledBack, statementOutcomes, useTestDatabase, type Tx } from '../support/db.ts';
import { expectOnlyFewer, markedAndUnmarked, expectSelectivePlan, explain, initPlanCalls, initPlanFunctions, ownAndForged, planMarks, planShapeTests, planText, WIDENING_ARM } from '../support/plan.ts';

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
    -- User 7 is external (the four codes of their organization); user 10001 is in no group.
    UPDATE policycenter.users SET is_external = true WHERE id = 7;
    INSERT INTO policycenter.users (id, organization_id, name) VALUES (10001, 1, 'in no group');
    INSERT INTO policycenter.group_members (group_id, user_id) SELECT 2 * ((g - 1) / 5) + 1, g FROM generate_series(1, 10000) g;
    -- User 10002 is in a group of each of the first 40 zones: 200 organizations, 10% of the codes.
    INSERT INTO policycenter.users (id, organization_id, name) VALUES (10002, 1, 'forty zones');
    INSERT INTO policycenter.group_members (group_id, user_id) SELECT 10 * z + 1, 10002 FROM generate_series(0, 39) z;
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
    preparedSearch: ["SELECT * FROM policycenter.accounts WHERE created_by = $1", '4242'],
    // The View All arm is a NULL range for this user (not View All, codes not few: a stand-in that
    // keeps the arm's estimate), so View All is not computed.
    initPlans: {
      what: 'the producer codes seen through zones or organization',
      functions: ['policycenter.producer_code_ids_by_zone_or_organization'],
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
    // The external organization's arm is dropped for an internal user of few organizations (its
    // not-true mark), and its fact is not computed; nor is View All (its arms stand in as NULL ranges).
    expect(initPlanFunctions(plan)).toEqual([
      'policycenter.organization_ids_in_my_zones',
      'policycenter.producer_code_ids_by_zone_or_organization',
    ]);
  });
  it('an UPDATE computes the visible codes once for the rows it finds and once for the new row: its policy repeats the read\'s text, which PostgreSQL applies once', async () => {
    // The read applies too (the UPDATE reads rows, and RETURNING returns them): four InitPlans
    // when the two policies were printed apart.
    const update = await explain(db.current, 'policycenter', 10002, "UPDATE policycenter.accounts SET name = 'renamed' WHERE id = 5 RETURNING id", { verbose: true });
    expect(initPlanCalls(update)['policycenter.producer_code_ids_by_zone_or_organization']).toBe(2);
    // DELETE needs a usable code, which is another condition: its own, and the read's.
    const remove = await explain(db.current, 'policycenter', 10002, 'DELETE FROM policycenter.accounts WHERE id = 5', { verbose: true });
    expect(initPlanCalls(remove)).toMatchObject({ 'policycenter.producer_code_ids_by_zone_or_organization': 1, 'policycenter.usable_producer_code_ids': 1 });
  });
});

// Dropped every-row arms (generator/emit/hints.ts): for a user without View All Users whose
// producer codes are few, set_session marks both, and the planner drops the arm
// `everyRowWhen(i_view_all)`. The arm cannot hold for that user, so no row changes; a forged mark
// can only hide rows. A user with many codes keeps the arm (its estimate keeps the key walk).
// For the View All user set_session marks i_view_all true, and the planner reads the arm as
// `(SELECT i_view_all())`, half the table, instead of a range on the key, 0.5%.
describe('policycenter dropped every-row arms', () => {
  // The first is cut to PostgreSQL's 63 bytes, with a hash of the whole name.
  const [FEW_ORGS, FEW_CODES, NOT_EXTERNAL, NOT_EVERY_CODE, NOT_VIEW_ALL, IS_VIEW_ALL] = [
    'rg_plan_policycenter_few_organization_ids_in_my_zones',
    'rg_plan_policycenter_few_producer_code_ids_by_zone_or__0732b874',
    'rg_plan_policycenter_not_i_am_external',
    'rg_plan_policycenter_not_i_may_use_every_code',
    'rg_plan_policycenter_not_i_view_all',
    'rg_plan_policycenter_is_i_view_all',
  ];
  const MARKS = [FEW_ORGS, FEW_CODES, NOT_EXTERNAL, NOT_EVERY_CODE, NOT_VIEW_ALL];
  const [EXTERNAL, NO_GROUP, VIEW_ALL] = [7, 10001, 500];
  const FIRST_PAGE = 'SELECT id FROM policycenter.accounts ORDER BY id LIMIT 50';
  const count = async (tx: Tx) => Number((await tx.unsafe('SELECT count(*)::int AS n FROM policycenter.accounts'))[0]!.n);

  it('set_session marks View All, every code and external not true, and the codes and organizations few, per user; a plan with both read marks has no View All arm, the others\' and the unmarked plan have', async () => {
    // The View All user (without producer code security) may also use every code.
    const expectations = [
      [EXTERNAL, [FEW_ORGS, FEW_CODES, NOT_EVERY_CODE, NOT_VIEW_ALL]],
      [NO_GROUP, MARKS],
      [PERSONA, [FEW_ORGS, NOT_EXTERNAL, NOT_EVERY_CODE, NOT_VIEW_ALL]],
      [VIEW_ALL, [FEW_ORGS, NOT_EXTERNAL, IS_VIEW_ALL]],
    ] as const;
    for (const [user, expected] of expectations) {
      expect(await db.current.as('policycenter', user, planMarks), `user ${user}`).toEqual(expected);
    }
    const dropped = await explain(db.current, 'policycenter', EXTERNAL, FIRST_PAGE, { verbose: true });
    expect(dropped, dropped).not.toContain('i_view_all');
    const unmarked = await explain(db.current, 'policycenter', EXTERNAL, FIRST_PAGE, { verbose: true, unmarked: true });
    expect(unmarked, unmarked).toContain('policycenter.i_view_all()');
    expect(await explain(db.current, 'policycenter', VIEW_ALL, FIRST_PAGE, { verbose: true })).toContain('policycenter.i_view_all()');
    // The user of many codes without View All keeps the arm's range on the key, its estimate, but
    // as a stand-in that is NULL for every row: View All is not computed.
    const standing = await explain(db.current, 'policycenter', PERSONA, FIRST_PAGE, { verbose: true });
    expect(standing, standing).not.toContain('i_view_all');
    expect(standing, standing).toMatch(/Output: NULL::bigint[\s\S]*accounts\.id >= (?:\$\d+|\(InitPlan \d+\)\.col1)\) AND \(accounts\.id <= '9223372036854775807'::bigint\)/);
    // The View All user's arm is the fact alone: no range on the key is left for the planner to
    // take for 0.5% of the accounts, in the first page or in a count.
    for (const query of [FIRST_PAGE, 'SELECT count(*) FROM policycenter.accounts']) {
      const whole = await explain(db.current, 'policycenter', VIEW_ALL, query);
      expect(whole, whole).not.toMatch(/\bid >= /);
      expect(whole, whole).not.toContain('BitmapOr');
    }
  });

  // Reads, an UPDATE that keeps the rows where they are, one that moves them to another producer
  // code (WITH CHECK), a DELETE and an INSERT (WITH CHECK): their rows, or the SQLSTATE refusing them.
  const STATEMENTS = [
    FIRST_PAGE,
    'SELECT id FROM policycenter.accounts',
    'SELECT a.id FROM policycenter.accounts a JOIN policycenter.producer_codes p ON p.id = a.producer_code_id WHERE p.organization_id < 50',
    'UPDATE policycenter.accounts SET name = name WHERE id % 7 = 0 RETURNING id',
    'UPDATE policycenter.accounts SET producer_code_id = 5 WHERE id % 13 = 0 RETURNING id',
    'DELETE FROM policycenter.accounts WHERE id % 11 = 0 RETURNING id',
    "INSERT INTO policycenter.accounts (id, name, producer_code_id, created_by) VALUES (900001, 'new', 5, 1) RETURNING id",
  ];

  it('rows are the same with the marks set_session sets as with none: reads, updates (in place and moved), deletes and inserts, for users with and without View All', async () => {
    const written = new Set<string>();
    for (const user of [EXTERNAL, NO_GROUP, PERSONA, VIEW_ALL]) {
      const [own, unmarked] = await markedAndUnmarked(db.current, 'policycenter', user, STATEMENTS);
      own.slice(3).forEach((o, i) => typeof o !== 'string' && o.length > 0 && written.add(`${i}`));
      expect(unmarked, `user ${user}`).toEqual(own);
    }
    // Every write was admitted for someone (the moving UPDATE and the INSERT are refused for others).
    expect([...written].sort()).toEqual(['0', '1', '2', '3']);
  });

  it('a forged mark only hides rows: a View All user who adds the marks (and drops their own) reads, changes and inserts a subset of what they may', async () => {
    // With their own true mark kept, the arm stays as the fact itself, which no mark drops.
    const [own, forged] = await db.current.as('policycenter', VIEW_ALL, (tx) => ownAndForged(tx, STATEMENTS, MARKS, [IS_VIEW_ALL]));
    expect((own[1] as number[]).length).toBe(ACCOUNTS);
    expect((forged[1] as number[]).length).toBeLessThan(ACCOUNTS);
    // The DELETE policy's every-code arm (folded by the forged not-every-code mark) hid rows too.
    expect((forged[5] as number[]).length).toBeLessThan((own[5] as number[]).length);
    expectOnlyFewer(own, forged, STATEMENTS, FIRST_PAGE);
  });

  it('a forged true mark changes no row: users without View All who add it read, change and insert exactly what they may', async () => {
    for (const user of [EXTERNAL, NO_GROUP, PERSONA]) {
      const [own, forged] = await db.current.as('policycenter', user, (tx) => ownAndForged(tx, STATEMENTS, [IS_VIEW_ALL]));
      expect(forged, `user ${user}`).toEqual(own);
    }
  });

  it('a prepared statement is planned again when the next user\'s marks differ, even with a generic plan, and returns that user\'s rows', async () => {
    const conn = postgres(db.current.url, { max: 1, onnotice: () => {} });
    try {
      await conn.unsafe('SET ROLE app_user');
      await conn.unsafe('SET plan_cache_mode = force_generic_plan');
      await conn.unsafe('PREPARE every_account AS SELECT id FROM policycenter.accounts ORDER BY id');
      for (const user of [EXTERNAL, VIEW_ALL, EXTERNAL, PERSONA, VIEW_ALL]) {
        const rows = await conn.begin(async (tx) => {
          await tx.unsafe('SELECT policycenter.set_session($1)', [user]);
          return (await tx.unsafe('EXECUTE every_account')).map((r) => Number(r.id));
        });
        expect(rows, `user ${user}`).toEqual(await db.current.as('policycenter', user, (tx) => ids(tx, 'SELECT id FROM policycenter.accounts ORDER BY id')));
      }
    } finally {
      await conn.end();
    }
  });

  it('losing View All takes effect at the next statement, and so does gaining it: the write retires the not-true mark', async () => {
    await rolledBack(db.current.admin, async (tx) => {
      const as = async (user: number) => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx.unsafe('SELECT policycenter.set_session($1)', [user]);
      };
      const owner = (sql: string) => asOwner(tx, () => tx.unsafe(sql));
      await as(VIEW_ALL);
      expect(await count(tx)).toBe(ACCOUNTS);
      await owner(`UPDATE policycenter.users SET view_all_users = false WHERE id = ${VIEW_ALL}`);
      const revoked = await count(tx);
      expect(revoked).toBeLessThan(ACCOUNTS);
      await as(VIEW_ALL);
      expect(await count(tx)).toBe(revoked);

      await as(NO_GROUP);
      expect(await planMarks(tx)).toEqual(MARKS);
      expect(await count(tx)).toBe(0);
      await owner(`UPDATE policycenter.users SET view_all_users = true WHERE id = ${NO_GROUP}`);
      // The trigger on users took this transaction's marks out of its search_path.
      expect(await planMarks(tx)).toEqual([]);
      expect(await count(tx)).toBe(ACCOUNTS);
      await as(NO_GROUP);
      expect(await planMarks(tx)).not.toContain('rg_plan_policycenter_not_i_view_all');
      expect(await count(tx)).toBe(ACCOUNTS);
    });
  });
});

// Producer codes are a lookup (PolicySpec.lookup): a user whose zones hold more than a few
// organizations gets `OR id >= (SELECT NULL)` on the codes, NULL for every row, which the planner
// counts as a third of them. Without it the join from accounts multiplies the accounts' estimate
// by the codes' 1% and sorts every visible account; with it the join walks the accounts' key.
describe('policycenter producer codes as a lookup', () => {
  const [FORTY_ZONES, FEW_ORGS] = [10002, 'rg_plan_policycenter_few_organization_ids_in_my_zones'];
  const JOIN = 'SELECT a.id, p.code FROM policycenter.accounts a JOIN policycenter.producer_codes p ON p.id = a.producer_code_id ORDER BY a.id LIMIT 50';
  const STATEMENTS = [
    JOIN,
    'SELECT id FROM policycenter.producer_codes',
    'SELECT a.id FROM policycenter.accounts a JOIN policycenter.producer_codes p ON p.id = a.producer_code_id',
  ];

  it('a user of many organizations keeps the widening arm, and the join keeps a third of the accounts\' estimate; with the few-organizations mark the arm is gone and the join expects a few rows', async () => {
    // At 10^6 accounts that estimate decides between walking the accounts' key and sorting every
    // visible account (bench/HISTORY.md, "Fourteenth round"); at this test's 50,000 both estimates
    // choose the sort, so the test checks the estimate itself.
    const joinRows = (plan: string) => Number(/(?:Hash Join|Nested Loop|Merge Join)\s+\(cost=[\d.]+\.\.[\d.]+ rows=(\d+)/.exec(plan)?.[1]);
    const accountRows = (plan: string) => Number(/on (?:policycenter\.)?accounts a\s+\(cost=[\d.]+\.\.[\d.]+ rows=(\d+)/.exec(plan)?.[1]);
    expect(await db.current.as('policycenter', FORTY_ZONES, planMarks)).not.toContain(FEW_ORGS);
    const wide = await explain(db.current, 'policycenter', FORTY_ZONES, JOIN);
    expect(wide, wide).toMatch(WIDENING_ARM);
    expect(joinRows(wide), wide).toBeGreaterThanOrEqual(accountRows(wide) / 4);
    const few = await db.current.as('policycenter', FORTY_ZONES, async (tx) => {
      await tx.unsafe(`SELECT set_config('search_path', current_setting('search_path') || ', ${FEW_ORGS}', true)`);
      return planText(tx, JOIN);
    });
    expect(few, few).not.toMatch(WIDENING_ARM);
    expect(joinRows(few) * 10, few).toBeLessThan(joinRows(wide));
  });

  it('a user of few organizations gets no widening arm', async () => {
    expect(await db.current.as('policycenter', PERSONA, planMarks)).toContain(FEW_ORGS);
    const count = await explain(db.current, 'policycenter', PERSONA, 'SELECT count(*) FROM policycenter.producer_codes');
    expect(count, count).not.toMatch(WIDENING_ARM);
    // Its first page of codes is a probe of its organizations' codes, not a walk of the codes' key.
    const page = await explain(db.current, 'policycenter', PERSONA, 'SELECT id FROM policycenter.producer_codes ORDER BY id LIMIT 50');
    expect(page, page).not.toContain('Index Scan using producer_codes_pkey');
  });

  it('the arm itself changes no row: with it cut from the policy, users of many and of few organizations read exactly the same', async () => {
    // The policy as generated (sql/policycenter.sql, what the migrations applied), and the same
    // text without its last arm, created in its place inside a rolled-back transaction.
    const generated = /CREATE POLICY "producer_codes_select"[\s\S]*?\n  \);/.exec(readFileSync(new URL('../../sql/policycenter.sql', import.meta.url), 'utf8'))![0];
    const arm = /\n    OR \(NOT "policycenter"\."[a-z_0-9]+"\(\) AND "producer_codes"\."id" >= \(SELECT NULL::bigint\)\)(?=\n  \);)/;
    expect(generated).toMatch(arm);
    const outcomes = async (user: number, cut: boolean) => {
      let found: (number[] | string)[] = [];
      await rolledBack(db.current.admin, async (tx) => {
        if (cut) await tx.unsafe(`DROP POLICY "producer_codes_select" ON "policycenter"."producer_codes"; ${generated.replace(arm, '')}`);
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx.unsafe('SELECT policycenter.set_session($1)', [user]);
        found = await statementOutcomes(tx, STATEMENTS);
        // The many-organizations user's plan shows the arm exactly when it is there.
        if (user === FORTY_ZONES) {
          const plan = await planText(tx, 'SELECT count(*) FROM policycenter.producer_codes');
          if (cut) expect(plan, plan).not.toMatch(WIDENING_ARM);
          else expect(plan, plan).toMatch(WIDENING_ARM);
        }
      });
      return found;
    };
    for (const user of [FORTY_ZONES, PERSONA, 7]) {
      const own = await outcomes(user, false);
      expect((own[1] as number[]).length, `user ${user}`).toBeGreaterThan(0);
      expect(await outcomes(user, true), `user ${user}`).toEqual(own);
    }
  });

  it('the widening arm changes no row: with the few-organizations mark forged, the many-organizations user reads exactly the same', async () => {
    const [own, forged] = await db.current.as('policycenter', FORTY_ZONES, (tx) => ownAndForged(tx, STATEMENTS, [FEW_ORGS]));
    expect((own[1] as number[]).length).toBe(800);
    expect(forged).toEqual(own);
  });
});

// plan_marks builds the organizations of the user's zones once (generator/emit/hints.ts,
// sharedCountedSets): its few-organizations mark reads that set's length, and the producer codes'
// count reads the same set. Each mark must still say what the facts' own functions say, at ten
// elements (few) and at eleven (not).
describe('policycenter marks of sets plan_marks builds once', () => {
  const [FEW_ORGS, FEW_CODES] = ['rg_plan_policycenter_few_organization_ids_in_my_zones', 'rg_plan_policycenter_few_producer_code_ids_by_zone_or_'];
  it('the few-organizations and few-codes marks agree with the facts at ten and eleven elements', async () => {
    const seen: Record<number, { orgs: number; codes: number; fewOrgs: boolean; fewCodes: boolean }> = {};
    await rolledBack(db.current.admin, async (tx) => {
      // Zones 9001 and 9002: two organizations each, with 5 + 5 and 5 + 6 codes. Zones 9003 and
      // 9004: eleven and ten organizations, no codes. One group a zone, users 20001–20004 one a group;
      // user 20005 is in the first two zones' groups, external user 20006 belongs to organization 9004.
      await tx.unsafe(`
        INSERT INTO policycenter.security_zones (id, name) SELECT z, 'zone ' || z FROM generate_series(9001, 9004) z;
        INSERT INTO policycenter.organizations (id, name, security_zone_id)
          VALUES (9001, 'a', 9001), (9002, 'b', 9001), (9003, 'c', 9002), (9004, 'd', 9002);
        INSERT INTO policycenter.organizations (id, name, security_zone_id)
          SELECT 9100 + g, 'e' || g, CASE WHEN g <= 11 THEN 9003 ELSE 9004 END FROM generate_series(1, 21) g;
        INSERT INTO policycenter.producer_codes (id, organization_id, code)
          SELECT 90000 + g, 9001 + (g - 1) / 5, 'X' || g FROM generate_series(1, 20) g;
        INSERT INTO policycenter.producer_codes (id, organization_id, code) VALUES (90021, 9004, 'X21');
        INSERT INTO policycenter.groups (id, organization_id, name, security_zone_id) SELECT z, 9001, 'g' || z, z FROM generate_series(9001, 9004) z;
        INSERT INTO policycenter.users (id, organization_id, name, is_external)
          SELECT u, 9001, 'u' || u, false FROM generate_series(20001, 20005) u;
        INSERT INTO policycenter.users (id, organization_id, name, is_external) VALUES (20006, 9004, 'external', true);
        INSERT INTO policycenter.group_members (group_id, user_id) SELECT z, z + 11000 FROM generate_series(9001, 9004) z;
        INSERT INTO policycenter.group_members (group_id, user_id) VALUES (9001, 20005), (9002, 20005);
      `);
      await tx.unsafe('SET LOCAL ROLE app_user');
      for (const user of [20001, 20002, 20003, 20004, 20005, 20006]) {
        await tx.unsafe('SELECT policycenter.set_session($1)', [user]);
        const [row] = await tx.unsafe(`
          SELECT coalesce(cardinality(policycenter.organization_ids_in_my_zones()), 0) AS orgs,
                 coalesce(cardinality(policycenter.producer_code_ids_by_zone_or_organization()), 0) AS codes,
                 policycenter.plan_marks() AS marks`);
        const marks = row!.marks as string[];
        seen[user] = { orgs: row!.orgs, codes: row!.codes, fewOrgs: marks.includes(FEW_ORGS), fewCodes: marks.some((m) => m.startsWith(FEW_CODES)) };
      }
    });
    expect(seen).toEqual({
      20001: { orgs: 2, codes: 10, fewOrgs: true, fewCodes: true },
      20002: { orgs: 2, codes: 11, fewOrgs: true, fewCodes: false },
      20003: { orgs: 11, codes: 0, fewOrgs: false, fewCodes: true },
      20004: { orgs: 10, codes: 0, fewOrgs: true, fewCodes: true },
      20005: { orgs: 4, codes: 21, fewOrgs: true, fewCodes: false },
      20006: { orgs: 0, codes: 6, fewOrgs: true, fewCodes: true },
    });
  });
});

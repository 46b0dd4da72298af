// Plan shape as app_user on 50,000 Collect! debtors routed to 1,000 operators and 100 nested
// teams over a 1,111-client tree: a locked-out operator's query must not scan the whole debtors
// table nor run a per-row SubPlan, so a regression in the generated policy shapes fails CI.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { everyMark, expectOnlyFewer, markedAndUnmarked, ownAndForged, explain, explainGeneric, initPlanCalls, planMarks, planShapeTests, planText } from '../support/plan.ts';

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
    -- op8 is not locked out: it also sees the open accounts. op9 (locked out) is in twelve leaf
    -- teams, t51..t62: with the teams above them 27 teams, 28 principals.
    UPDATE collect.operators SET locked_out = false WHERE id = 'op8';
    -- op10 has Security off: every debtor.
    UPDATE collect.operators SET security = false WHERE id = 'op10';
    INSERT INTO collect.team_members (team_id, member_id) SELECT 't' || g, 'op9' FROM generate_series(51, 62) g ON CONFLICT DO NOTHING;
    -- cl2 logs in for client 2 and the ten clients it owns: more clients than count as few.
    INSERT INTO collect.operators (id, name, security, client_id, kind) VALUES ('cl2', 'client 2''s login', true, 2, 'client');
    -- op11 is restricted to client 2's hierarchy (Apply to Client Accounts): clients 2 and 12..21.
    UPDATE collect.operators SET client_id = 2, apply_to_client_accounts = true WHERE id = 'op11';
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
    preparedSearch: ["SELECT * FROM collect.debtors WHERE client_id = $1", '500'],
    initPlans: {
      // The switchboard's every-row arms (security off, open accounts) are dropped for this
      // operator; the routing arms' hints compute no fact.
      what: 'the principal and client sets',
      functions: ['collect.debtor_client_ids_for_me', 'collect.my_principal_ids'],
    },
  });
});

describe('collect writes', () => {
  it("an UPDATE, a DELETE and an INSERT … RETURNING compute each fact as often as a read does, once more for an UPDATE's new row: their policies repeat the read's text, which PostgreSQL applies once", async () => {
    const calls = async (query: string) => initPlanCalls(await explain(db.current, 'collect', PERSONA, query, { verbose: true }));
    const read = await calls('SELECT * FROM collect.debtors WHERE id = 5');
    // One InitPlan for the four routing fields (operator, sales, clerk, access): they are one anyOf arm.
    expect(read['collect.my_principal_ids']).toBe(1);
    const twice = Object.fromEntries(Object.entries(read).map(([f, n]) => [f, 2 * n]));
    // The rows found (the read's USING and the update's, one text) and the new row (the update's
    // check and the read's, which PostgreSQL checks too when the UPDATE reads a column: one text again).
    expect(await calls("UPDATE collect.debtors SET phone = '555' WHERE id = 5 RETURNING id")).toEqual(twice);
    expect(await calls('DELETE FROM collect.debtors WHERE id = 5 RETURNING id')).toEqual(read);
    expect(await calls("INSERT INTO collect.debtors (id, client_id, operator_id) VALUES (99999, 5, 'op7') RETURNING id")).toEqual(read);
  });
});

// Planner hints (generator/emit/hints.ts): the locked-out operator's every-row arms (security off,
// open accounts) are dropped, and the routing arm (the four fields' anyOf) gets its array `@>` an
// empty array, true for every row but estimated as narrow, and an index condition of the same GIN
// index, so ORDER BY id LIMIT 50 reads their rows by that index instead of walking the primary key
// (and a prepared keyset page's generic plan does not AND it with a bitmap of the key). An operator who sees the open accounts keeps that arm, and the walk with it.
describe("collect dropped arms and the text arms' hints", () => {
  const [LOCKED_OUT, OPEN, MANY_TEAMS, SECURITY_OFF] = [PERSONA, 'op8', 'op9', 'op10'];
  const FIRST_PAGE = 'SELECT id FROM collect.debtors ORDER BY id LIMIT 50';

  it("the locked-out operator's first page reads their principals' rows by the routing fields' GIN index, the principals computed once; an operator who sees the open accounts keeps the key walk", async () => {
    expect(await db.current.as('collect', LOCKED_OUT, planMarks)).toEqual(
      expect.arrayContaining(['rg_plan_collect_few_my_principal_ids', 'rg_plan_collect_not_i_see_open_accounts', 'rg_plan_collect_not_i_bypass_security']),
    );
    const plan = await explain(db.current, 'collect', LOCKED_OUT, FIRST_PAGE);
    expect(plan, plan).not.toMatch(/Index (Only )?Scan using debtors_pkey/);
    expect(plan, plan).toMatch(/Bitmap Index Scan on debtors_operator_id_sales_id_clerk_id_access_id_any_idx/);
    expect(plan, plan).toMatch(/Index Cond: \(\(ARRAY\[operator_id, sales_id, clerk_id, access_id\] && (?:\$\d+|\(InitPlan \d+\)\.col1)\) AND \(ARRAY\[operator_id, sales_id, clerk_id, access_id\] @> /);
    expect(initPlanCalls(await explain(db.current, 'collect', LOCKED_OUT, FIRST_PAGE, { verbose: true }))['collect.my_principal_ids']).toBe(1);
    // 28 principals are still few (the model's `planHint: { few: 32 }`).
    const many = await db.current.as('collect', MANY_TEAMS, async (tx) => [await planMarks(tx), Number((await tx.unsafe('SELECT cardinality(collect.my_principal_ids()) AS n'))[0]!.n)] as const);
    expect(many[1]).toBe(28);
    expect(many[0]).toContain('rg_plan_collect_few_my_principal_ids');
    const manyPlan = await explain(db.current, 'collect', MANY_TEAMS, FIRST_PAGE);
    expect(manyPlan, manyPlan).not.toMatch(/Index (Only )?Scan using debtors_pkey/);
    const open = await db.current.as('collect', OPEN, planMarks);
    expect(open).toContain('rg_plan_collect_few_my_principal_ids');
    expect(open).not.toContain('rg_plan_collect_not_i_see_open_accounts');
    // Without the open-accounts arm's mark the principals' ranges stay out too: its 0.5% holds the walk.
    const walk = await explain(db.current, 'collect', OPEN, FIRST_PAGE);
    expect(walk, walk).toMatch(/Index Scan using debtors_pkey/);
    expect(walk, walk).not.toMatch(/access_id\] @> /);
  });

  it("the locked-out operator's prepared keyset page: its generic plan takes the routing index's bitmap for the few rows it is, and reads no bitmap of the key", async () => {
    // Overlap with a set the planner cannot see is estimated at 1% of the table. At 10^6 debtors
    // that made the generic plan AND the routing bitmap with a bitmap of `id > $1` (a third of the
    // key, by the default estimate): 24 ms instead of 1. The hint's containment is an index
    // condition of the same scan, so the bitmap is estimated at 1% of 0.5%.
    const plan = await explainGeneric(db.current, 'collect', LOCKED_OUT, 'SELECT id FROM collect.debtors WHERE id > $1 ORDER BY id LIMIT 50', ['100']);
    const routing = /Bitmap Index Scan on debtors_operator_id_sales_id_clerk_id_access_id_any_idx +\(cost=[\d.]+\.\.[\d.]+ rows=(\d+) /.exec(plan);
    expect(routing, plan).not.toBeNull();
    expect(Number(routing![1]), plan).toBeLessThanOrEqual(DEBTORS / 1000);
    expect(plan, plan).not.toMatch(/BitmapAnd|Bitmap Index Scan on debtors_pkey/);
  });

  it("the routing arm's hint, its array `@>` an empty array, holds for every row, NULL routing fields included", async () => {
    const [row] = await db.current.admin.unsafe(
      `SELECT count(*) FILTER (WHERE (ARRAY[operator_id, sales_id, clerk_id, access_id]::text[] @> (SELECT '{}'::text[])) IS NOT TRUE) AS failing,
              count(*) FILTER (WHERE clerk_id IS NULL) AS null_clerks FROM collect.debtors`,
    );
    expect(Number(row!.null_clerks)).toBeGreaterThan(0);
    expect(Number(row!.failing)).toBe(0);
  });

  // Reads, an UPDATE in place, one that routes rows to another operator (WITH CHECK), a DELETE and
  // an INSERT routed to op7.
  const STATEMENTS = [
    FIRST_PAGE,
    'SELECT id FROM collect.debtors',
    'SELECT d.id FROM collect.debtors d JOIN collect.clients c ON c.id = d.client_id WHERE c.id < 300',
    'UPDATE collect.debtors SET owing = owing WHERE id % 7 = 0 RETURNING id',
    "UPDATE collect.debtors SET operator_id = 'op9', clerk_id = NULL, access_id = NULL WHERE id % 13 = 0 RETURNING id",
    'DELETE FROM collect.debtors WHERE id % 11 = 0 RETURNING id',
    "INSERT INTO collect.debtors (id, file_number, client_id, name, operator_id) VALUES (900001, 'F00900001', 1, 'new', 'op7') RETURNING id",
  ];

  it("Security off is the fact alone, which the planner takes for half the table: the operator's count and first page are planned like the owner's, with no range on the key", async () => {
    expect(await db.current.as('collect', SECURITY_OFF, planMarks)).toContain('rg_plan_collect_is_i_bypass_security');
    for (const query of [FIRST_PAGE, 'SELECT count(*) FROM collect.debtors']) {
      const plan = await explain(db.current, 'collect', SECURITY_OFF, query);
      expect(plan, plan).not.toMatch(/\bid >= /);
      expect(plan, plan).not.toContain('BitmapOr');
    }
    // The open-accounts arm is ANDed with conditions on the row: it keeps its range, true mark or not.
    expect(await db.current.as('collect', OPEN, planMarks)).not.toContain('rg_plan_collect_is_i_see_open_accounts');
  });

  it('a forged true mark changes no row: operators without Security off who add it read and write exactly what they may', async () => {
    for (const user of [LOCKED_OUT, OPEN]) {
      const [own, forged] = await db.current.as('collect', user, (tx) => ownAndForged(tx, STATEMENTS, ['rg_plan_collect_is_i_bypass_security']));
      expect(forged, user).toEqual(own);
    }
  });

  it('rows are the same with the marks set_session sets as with none, for reads and writes', async () => {
    for (const user of [LOCKED_OUT, OPEN, MANY_TEAMS, SECURITY_OFF]) {
      const [marked, unmarked] = await markedAndUnmarked(db.current, 'collect', user, STATEMENTS);
      expect((marked[1] as number[]).length, user).toBeGreaterThan(0);
      expect(unmarked, user).toEqual(marked);
    }
  });

  it('a forged mark only hides rows: an operator, locked out or not, with every mark forged, reads and writes a subset', async () => {
    for (const user of [OPEN, LOCKED_OUT]) {
      const [own, forged] = await db.current.as('collect', user, async (tx) => ownAndForged(tx, STATEMENTS, await everyMark(tx, 'collect')));
      expect((forged[1] as number[]).length, user).toBeLessThan((own[1] as number[]).length);
      expectOnlyFewer(own, forged, STATEMENTS, FIRST_PAGE);
    }
  });
});

// The facts are PARALLEL RESTRICTED, not unsafe (generator/emit/functions.ts): a secured statement
// may run in parallel workers like the owner's, the facts computed once in the leader and handed
// to the workers. A fact run in a worker would find no identity (the signature names the leader's
// process) and the worker's share of the rows would be lost.
describe('collect in parallel workers', () => {
  const COUNT = 'SELECT count(*) AS n FROM collect.debtors';
  const PARALLEL = [
    'SET LOCAL max_parallel_workers_per_gather = 2',
    'SET LOCAL parallel_setup_cost = 0',
    'SET LOCAL parallel_tuple_cost = 0',
    'SET LOCAL min_parallel_table_scan_size = 0',
    'SET LOCAL min_parallel_index_scan_size = 0',
  ].join('; ');

  it('a count that parallel workers share counts what one process counts, for a locked-out operator and one who sees the open accounts', async () => {
    for (const user of [PERSONA, 'op8']) {
      const { serial, parallel, plan } = await db.current.as('collect', user, async (tx) => {
        const count = async () => Number((await tx.unsafe(COUNT))[0]!.n);
        await tx.unsafe('SET LOCAL max_parallel_workers_per_gather = 0');
        const serial = await count();
        await tx.unsafe(PARALLEL);
        // The locked-out operator's few rows are read by an index on one process: scans that
        // workers share are made the only choice, so the test is of what they count.
        await tx.unsafe('SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off');
        // Workers are launched when the server has some free; ask again if it had none.
        let plan = '';
        for (let i = 0; i < 5 && !/Workers Launched: [1-9]/.test(plan); i++) plan = await planText(tx, `(ANALYZE, COSTS OFF, TIMING OFF) ${COUNT}`);
        return { serial, parallel: await count(), plan };
      });
      expect(plan, plan).toMatch(/Workers Launched: [1-9]/);
      // The facts are InitPlans of the leader, above the Gather.
      expect(plan.indexOf('InitPlan'), plan).toBeLessThan(plan.indexOf('Gather'));
      expect(serial, user).toBeGreaterThan(0);
      expect(parallel, user).toBe(serial);
    }
  });
});

// Stand-ins (hints.ts, StandIn): a client login sees no open accounts and has Security on, but its
// eleven clients are not few, so the open-accounts and Security-off arms are not dropped; NULL
// ranges on the key stand in for them (the open accounts' with its no-clerk, no-access conditions,
// which keep the estimate), and neither fact is computed. Its principals are NULL (it is no
// account-restricted operator), so its routing arm stands in as a NULL range on the key too,
// and the principals are not computed either.
describe('collect stand-ins', () => {
  const CLIENT_LOGIN = 'cl2';
  const STATEMENTS = [
    'SELECT count(*)::int AS n FROM collect.debtors',
    'SELECT id FROM collect.debtors ORDER BY id LIMIT 50',
    "SELECT id FROM collect.debtors WHERE name LIKE '%7%'",
    "UPDATE collect.debtors SET name = name WHERE id % 7 = 0 RETURNING id",
  ];

  it("the client login's plan computes neither Security off, open accounts nor principals, and keeps the open accounts' conditions beside a NULL range", async () => {
    const marks = await db.current.as('collect', CLIENT_LOGIN, planMarks);
    expect(marks).toEqual(expect.arrayContaining(['rg_plan_collect_not_i_bypass_security', 'rg_plan_collect_not_i_see_open_accounts']));
    expect(marks).not.toContain('rg_plan_collect_few_debtor_client_ids_for_me');
    const plan = await explain(db.current, 'collect', CLIENT_LOGIN, 'SELECT count(*) FROM collect.debtors', { verbose: true });
    expect(plan, plan).not.toContain('i_bypass_security');
    expect(plan, plan).not.toContain('i_see_open_accounts');
    expect(plan, plan).not.toContain('my_principal_ids');
    // The three stand-ins (Security off, open accounts, principals): NULL ranges on the key, which
    // compute nothing and build no row's array.
    expect(plan, plan).not.toContain('NULL::text[]');
    expect(plan.match(/Output: NULL::bigint/g), plan).toHaveLength(3);
    expect(plan, plan).toContain('debtors.clerk_id IS NULL');
    // Every arm is index conditions alone, so the bitmap's rows are not checked against the whole
    // policy again: that check searched the client set for every row (with 10^5 clients, 11,110
    // ids for each of 11,110 rows). A test of the NULL beside the principals' stand-in (migration
    // 0149) kept it, until 0163.
    expect(plan, plan).toContain('Bitmap Heap Scan on collect.debtors');
    expect(plan, plan).not.toMatch(/^\s*Filter:/m);
  });

  it('rows are the same for the client login with the stand-ins as with no marks, for reads and writes', async () => {
    const [marked, unmarked] = await markedAndUnmarked(db.current, 'collect', CLIENT_LOGIN, STATEMENTS);
    expect((marked[1] as number[]).length).toBeGreaterThan(0);
    expect(unmarked).toEqual(marked);
  });

  // The clients' writes: the client-hierarchy arm (client_account_ids_for_me, NULL unless Apply to
  // Client Accounts restricts the operator to its Client #: op11) is dropped in WITH CHECK and in
  // the USING of UPDATE and DELETE by the mark the clients' read already has set_session compute.
  const CLIENT_WRITES = [
    // No RETURNING: the new client enters the hierarchy's closure only after the statement.
    "INSERT INTO collect.clients (id, owned_by, name) VALUES (5001, 2, 'new client')",
    'UPDATE collect.clients SET name = name WHERE id < 40 RETURNING id',
    // Out of client 2's hierarchy: refused by the check for op11.
    'UPDATE collect.clients SET owned_by = 3 WHERE id = 12 RETURNING id',
    'DELETE FROM collect.clients WHERE id = 5001 RETURNING id',
  ];

  it("writes to clients compute the client hierarchy only for an operator it restricts, and each user writes exactly what it does without the marks", async () => {
    const RESTRICTED = 'op11';
    const outcomes: Record<string, (number[] | string)[]> = {};
    for (const user of [RESTRICTED, CLIENT_LOGIN, 'op7', 'op10']) {
      const [marked, unmarked] = await markedAndUnmarked(db.current, 'collect', user, CLIENT_WRITES);
      expect(unmarked, user).toEqual(marked);
      outcomes[user] = marked;
      for (const write of CLIENT_WRITES) {
        const plan = await explain(db.current, 'collect', user, write, { verbose: true });
        expect(plan.includes('client_account_ids_for_me'), `${user}: ${plan}`).toBe(user === RESTRICTED);
      }
    }
    expect(outcomes[RESTRICTED]).toEqual([[], [2, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], 'refused 42501', [5001]]);
    // Security off, no Client #: every client, anywhere. Security on without one: no client's writes.
    expect(outcomes.op10).toEqual([[], Array.from({ length: 39 }, (_, i) => i + 1), [12], [5001]]);
    expect(outcomes.op7).toEqual(['refused 42501', [], [], []]);
  });
});

// Plan shape as app_user on a generated office tree with 50,000 contacts: a selective persona's
// query must not scan the whole contacts table nor run a per-row SubPlan, so a regression in the
// generated policy shapes fails CI. (Speed itself belongs in benchmarks, not here.)
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { asOwner, ids, rolledBack, statementOutcomes, useTestDatabase, type Tx } from '../support/db.ts';
import { dropMarks, everyMark, expectOnlyFewer, markedAndUnmarked, ownAndForged, expectPolicyCoveredByBitmap, expectSelectivePlan, explain, planMarks, planShapeTests, planText, searchPath, visibleRows } from '../support/plan.ts';

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
    preparedSearch: ["SELECT * FROM smartoffice.contacts WHERE name = $1", 'contact 50'],
    initPlans: {
      // The enterprise and open-office arms are dropped for this agent (planner hints): their
      // facts are NULL unless a guard holds, and it does not.
      what: 'identity and visible sets',
      functions: [
        'smartoffice.contacts_shared_with_me',
        'smartoffice.my_office_assignee_keys',
        'smartoffice.my_office_id',
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
    // Without its marks (a login that never calls set_session) every arm is planned, rule 2's
    // assigned contacts too, which the marks drop for this user (migration 0164).
    const unmarked = await explain(db.current, 'smartoffice', 11, 'SELECT count(*) FROM smartoffice.contacts', { unmarked: true });
    expectPolicyCoveredByBitmap(unmarked, 'contacts');
    // Rule 4's shared contacts, `id = any(<fact>)`, and rule 2's assigned ones through the partial
    // GIN index of the contacts' assignee keys.
    expect(unmarked.match(/Bitmap Index Scan on contacts_id_arm_\w+_idx/g), unmarked).toHaveLength(1);
    expect(unmarked.match(/Bitmap Index Scan on contacts_assignee_keys_any_\w+_idx/g), unmarked).toHaveLength(1);
  });
});

// Planner hints (generator/emit/hints.ts): set_session tells the planner which facts are small for
// the acting user, so one statement gets the plan that suits its user; a hint never decides a row.
describe('smartoffice planner hints', () => {
  const FIRST_PAGE = 'SELECT id FROM smartoffice.contacts ORDER BY id LIMIT 50';
  const CLASSES = ['enterprise_office_ids', 'my_office_assignee_keys', 'private_owner_ids_visible_to_me', 'users_i_administer'].map((f) => `rg_plan_smartoffice_few_${f}`);
  const PK_WALK = /Index (Only )?Scan using contacts_pkey/;
  // The "few" marks alone: the guards' not-true marks (tested below) are left out.
  const fewOnly = (path: string) => path.split(', ').filter((s) => !s.startsWith('rg_plan_smartoffice_not_')).join(', ');

  it('set_session appends the marks of the facts small for this user after the app\'s own search_path, replaces them when called again, and they end with the transaction', async () => {
    await db.current.as('smartoffice', null, async (tx) => {
      await tx.unsafe('SET LOCAL search_path = "$user", public, smartoffice');
      await tx.unsafe('SELECT smartoffice.set_session(503)');
      expect(fewOnly(await searchPath(tx))).toBe(['"$user", public, smartoffice', ...CLASSES].join(', '));
      // The enterprise user sees 111 offices: that fact is not small for them.
      await tx.unsafe('SELECT smartoffice.set_session(11)');
      expect(fewOnly(await searchPath(tx))).toBe(['"$user", public, smartoffice', ...CLASSES.slice(1)].join(', '));
      await tx.unsafe('SELECT smartoffice.set_session(503)');
      expect(fewOnly(await searchPath(tx))).toBe(['"$user", public, smartoffice', ...CLASSES].join(', '));
    });
    await db.current.as('smartoffice', null, async (tx) => expect(await searchPath(tx)).not.toContain('rg_plan_'));
  });

  it('set_session rebuilds the search_path whatever it held: marks first, quoted, in capitals or after a form feed, a quoted name with a comma, no other entry, or a backslash-sensitive string setting', async () => {
    // A fresh connection, so PL/pgSQL compiles set_session under standard_conforming_strings = off.
    const conn = postgres(db.current.url, { max: 1, onnotice: () => {} });
    try {
      await conn.unsafe('SET standard_conforming_strings = off');
      await conn.begin(async (tx) => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        const after = async (path: string, user: number) => {
          await tx.unsafe(`SET LOCAL search_path = ${path}`);
          await tx.unsafe('SELECT smartoffice.set_session($1)', [user]);
          return fewOnly(await searchPath(tx));
        };
        expect(await after(`${CLASSES[2]}, "$user", public`, 11)).toBe(['"$user", public', ...CLASSES.slice(1)].join(', '));
        // Quoted, as a path copied into a session-level SET may hold it.
        expect(await after(`"$user", "${CLASSES[0]}", public`, 11)).toBe(['"$user", public', ...CLASSES.slice(1)].join(', '));
        // In capitals (PostgreSQL folds a bare name to lower case), or after a form feed (white
        // space to PostgreSQL): a mark all the same, and replaced.
        expect(await after(`"$user", public, ${CLASSES[0]!.toUpperCase()}`, 11)).toBe(['"$user", public', ...CLASSES.slice(1)].join(', '));
        await tx.unsafe(`SELECT set_config('search_path', E'"$user", public,\\f${CLASSES[0]}', true)`);
        await tx.unsafe('SELECT smartoffice.set_session(11)');
        expect(fewOnly(await searchPath(tx))).toBe(['"$user", public', ...CLASSES.slice(1)].join(', '));
        // A quoted name with a comma in it is one name, kept whole (split at the comma, it made the
        // path invalid and every set_session failed).
        expect(await after(`"a,${CLASSES[0]}", public`, 11)).toBe([`"a,${CLASSES[0]}", public`, ...CLASSES.slice(1)].join(', '));
        // White space is ASCII white space, as to PostgreSQL: a bare name with an ideographic space
        // in it is one name, kept whole.
        await tx.unsafe(`SELECT set_config('search_path', '"$user", public, foo' || chr(12288) || 'bar, ${CLASSES[0]}', true)`);
        await tx.unsafe('SELECT smartoffice.set_session(11)');
        expect(fewOnly(await searchPath(tx))).toBe(['"$user", public, foo\u3000bar', ...CLASSES.slice(1)].join(', '));
        // PostgreSQL shows an empty search_path as "" (one empty name), which is kept as it is.
        expect(await after("''", PERSONA)).toBe(['""', ...CLASSES].join(', '));
        await tx.unsafe('SELECT smartoffice.set_session(11)');
        expect(fewOnly(await searchPath(tx))).toBe(['""', ...CLASSES.slice(1)].join(', '));
      });
    } finally {
      await conn.end();
    }
  });

  it('the marks say exactly which facts have at most 10 elements (100 for the assignee keys), around the boundary too (counted no further than 11)', async () => {
    await rolledBack(db.current.admin, async (tx) => {
      // Enterprise view over the root (1,000 offices), office 12 (itself and 10 children: 11) and a
      // leaf (1); admins of an office of 10 users and of one given an 11th.
      await tx.unsafe('UPDATE smartoffice.users SET enterprise_view = true WHERE id IN (1, 111, 4991)');
      await tx.unsafe('UPDATE smartoffice.users SET is_admin = true WHERE id IN (502, 112)');
      await tx.unsafe("INSERT INTO smartoffice.users (id, office_id, name) VALUES (10001, 51, 'an eleventh user')");
      await tx.unsafe('SET LOCAL ROLE app_user');
      const facts = ['enterprise_office_ids', 'my_office_assignee_keys', 'private_owner_ids_visible_to_me', 'users_i_administer'];
      const seen = new Set<number>();
      for (const user of [1, 11, 111, 4991, 502, 112, PERSONA]) {
        await tx.unsafe('SELECT smartoffice.set_session($1)', [user]);
        const [row] = await tx.unsafe(
          `SELECT smartoffice.plan_marks() AS marks, ARRAY[${facts.map((f) => `coalesce(cardinality(smartoffice.${f}()), 0)`).join(', ')}] AS sizes`,
        );
        // my_office_assignee_keys is few up to 100 keys (its planHint), the others up to 10.
        const expected = facts.filter((f, i) => (row!.sizes as number[])[i]! <= (f === 'my_office_assignee_keys' ? 100 : 10)).map((f) => `rg_plan_smartoffice_few_${f}`);
        expect((row!.marks as string[]).filter((m) => m.includes('_few_')), `user ${user}, sizes ${row!.sizes}`).toEqual(expected);
        (row!.sizes as number[]).forEach((n) => seen.add(n));
      }
      expect([10, 11, 1000].filter((n) => seen.has(n))).toEqual([10, 11, 1000]);
    });
  });

  it('the selective agent\'s first page reads its few rows and sorts them; the enterprise user\'s walks the primary key as before', async () => {
    const agent = await explain(db.current, 'smartoffice', PERSONA, FIRST_PAGE);
    expect(agent, agent).not.toMatch(PK_WALK);
    expectSelectivePlan(agent, 'contacts');
    // Without its marks the agent's statement gets the plan every user got before the hints.
    const unmarked = await explain(db.current, 'smartoffice', PERSONA, FIRST_PAGE, { unmarked: true });
    expect(unmarked, unmarked).toMatch(PK_WALK);
    const enterprise = await explain(db.current, 'smartoffice', 11, FIRST_PAGE);
    expect(enterprise, enterprise).toMatch(PK_WALK);
  });

  it('a hint never changes a row: with every mark forced on or off, every persona reads, updates and deletes exactly what it does with its own', async () => {
    const queries = [
      FIRST_PAGE,
      'SELECT id FROM smartoffice.contacts WHERE id > 20000 ORDER BY id LIMIT 50',
      'SELECT id FROM smartoffice.contacts',
      'SELECT id FROM smartoffice.contacts WHERE office_id = 51',
      // UPDATE and DELETE that read columns apply the read policy too, hints included (rolled back with the transaction).
      'UPDATE smartoffice.contacts SET name = name WHERE office_id IN (2, 51) RETURNING id',
      // Unassigned contacts (every tenth), which nothing references.
      'DELETE FROM smartoffice.contacts WHERE id % 10 = 0 AND office_id IN (2, 51) RETURNING id',
    ];
    let written = 0;
    for (const user of [PERSONA, 11, 12, 1]) {
      const read = (forced?: readonly string[]) =>
        db.current.as('smartoffice', user, async (tx) => {
          if (forced) await tx.unsafe(`SET LOCAL search_path = ${['"$user"', 'public', ...forced].join(', ')}`);
          return Promise.all(queries.map((q) => ids(tx, q)));
        });
      const own = await read();
      expect(own[2]!.length, `user ${user}`).toBeGreaterThan(0);
      written += own[4]!.length + own[5]!.length;
      expect(await read(CLASSES), `user ${user}, every fact marked small`).toEqual(own);
      expect(await read([]), `user ${user}, none marked`).toEqual(own);
    }
    expect(written).toBeGreaterThan(0);
  });

  // Guarded arms: enterprise_office_ids is when(i_have_enterprise_view, …), my_open_office_id
  // when(<my office's security is off>, …) and my_office_assignee_keys
  // when(office_security_limits_me, …), NULL unless the guard holds; so are the arms that read
  // them, and set_session marks such a guard not true. Reads and writes that touch the arms.
  const GUARDED = [
    FIRST_PAGE,
    'SELECT id FROM smartoffice.contacts',
    'SELECT id FROM smartoffice.contacts WHERE office_id IN (2, 12, 51)',
    'UPDATE smartoffice.contacts SET name = name WHERE office_id IN (2, 51) RETURNING id',
    'DELETE FROM smartoffice.contacts WHERE id % 10 = 0 AND office_id IN (2, 51) RETURNING id',
    // WITH CHECK drops the guarded arms too: inserts into another office and one's own, and a
    // move to another office (all undone after the last).
    "INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (990001, 2, 'guarded') RETURNING id",
    "INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (990002, 51, 'guarded') RETURNING id",
    'UPDATE smartoffice.contacts SET office_id = 2 WHERE office_id = 51 AND is_private = false RETURNING id',
    // Office 12 is below office 2: the enterprise user's check admits the move.
    'UPDATE smartoffice.contacts SET office_id = 12 WHERE office_id = 2 AND is_private = false AND id < 2000 RETURNING id',
  ];
  const LIMITED = 'rg_plan_smartoffice_not_office_security_limits_me';
  /** The statements' outcomes in the caller's transaction without the marks (put back after). */
  const unmarked = async (tx: Tx, statements: readonly string[] = GUARDED) => {
    const path = await searchPath(tx);
    await dropMarks(tx);
    const found = await statementOutcomes(tx, statements);
    await tx.unsafe(`SELECT set_config('search_path', $1, true)`, [path]);
    return found;
  };

  it("the agent's enterprise and open-office arms are dropped while their guards are not true, and the assigned contacts' arm for the enterprise user and an open office's, with the same rows as without the marks", async () => {
    const agent = await db.current.as('smartoffice', PERSONA, planMarks);
    expect(agent).toEqual(expect.arrayContaining(['rg_plan_smartoffice_not_i_have_enterprise_view', 'rg_plan_smartoffice_not_my_open_office_id_when']));
    expect(agent).not.toContain(LIMITED);
    expect(await db.current.as('smartoffice', 11, planMarks)).not.toContain('rg_plan_smartoffice_not_i_have_enterprise_view');
    const plan = await explain(db.current, 'smartoffice', PERSONA, FIRST_PAGE, { verbose: true });
    expect(plan, plan).not.toMatch(/enterprise_office_ids|my_open_office_id/);
    // The writes' outcomes turn on those arms: the agent may insert into its own office only, the
    // enterprise user into an office below theirs through the arm the agent's marks drop.
    const writes = (user: number) => db.current.as('smartoffice', user, async (tx) => (await statementOutcomes(tx, GUARDED)).slice(-4));
    const [agentWrites, enterpriseWrites] = [await writes(PERSONA), await writes(11)];
    expect(agentWrites).toEqual(['refused 42501', [990002], 'refused 42501', []]);
    expect(enterpriseWrites.slice(0, 3)).toEqual([[990001], 'refused 42501', []]);
    expect((enterpriseWrites[3] as number[]).length).toBeGreaterThan(0);
    // And every user reads and writes with its marks exactly what it does without them.
    for (const user of [PERSONA, 11, 12, 1]) {
      const [marked, unmarkedOutcomes] = await markedAndUnmarked(db.current, 'smartoffice', user, GUARDED);
      expect(unmarkedOutcomes, `user ${user}`).toEqual(marked);
    }
    // Neither fact is computed by the agent's writes: not in USING, not in WITH CHECK.
    for (const write of GUARDED.slice(-4)) {
      const written = await explain(db.current, 'smartoffice', PERSONA, write, { verbose: true });
      expect(written, written).not.toMatch(/enterprise_office_ids|my_open_office_id/);
      expect(await explain(db.current, 'smartoffice', PERSONA, write, { verbose: true, unmarked: true })).toMatch(/enterprise_office_ids/);
    }
    // Rule 2's assigned contacts are the one set office security needs: NULL for the enterprise
    // user, whose rule 3 covers their office, and its arm dropped, so it is not even computed.
    const [marks, assigned] = await db.current.as('smartoffice', 11, async (tx) => [
      await planMarks(tx),
      (await tx.unsafe('SELECT smartoffice.my_office_assignee_keys() AS a'))[0]!.a,
    ]);
    const count = await explain(db.current, 'smartoffice', 11, 'SELECT count(*) FROM smartoffice.contacts', { verbose: true });
    expect(marks).toContain(LIMITED);
    expect(assigned).toBeNull();
    expect(count, count).not.toMatch(/my_office_assignee_keys|assignee_keys/);
    expect(count, count).toMatch(/enterprise_office_ids/);
    await rolledBack(db.current.admin, async (tx) => {
      // Office 51 (the agent's) with its security off: the open-office arm holds for its users.
      await tx.unsafe('UPDATE smartoffice.offices SET office_security = false WHERE id = 51');
      await tx.unsafe('SET LOCAL ROLE app_user');
      for (const user of [PERSONA, 11, 12, 1]) {
        await tx.unsafe('SELECT smartoffice.set_session($1)', [user]);
        const marks = await planMarks(tx);
        expect(marks.includes('rg_plan_smartoffice_not_my_open_office_id_when'), `user ${user}`).toBe(user !== PERSONA);
        // The open office's user and the enterprise user need no assigned contacts of their office.
        expect(marks.includes(LIMITED), `user ${user}`).toBe(user === PERSONA || user === 11);
        const own = await statementOutcomes(tx, GUARDED);
        expect(own[1]!.length, `user ${user}`).toBeGreaterThan(0);
        expect(await unmarked(tx), `user ${user}`).toEqual(own);
      }
      // The open office's contacts are the agent's now: far more than its own few.
      await tx.unsafe('SELECT smartoffice.set_session($1)', [PERSONA]);
      expect(((await statementOutcomes(tx, GUARDED))[1] as number[]).length).toBeGreaterThan(40);
    });
  });

  it('losing enterprise view takes effect at the next statement: the write retires the mark that dropped the assigned contacts\' arm', async () => {
    // User 12 (office 2) has contacts assigned to them; with enterprise view, rule 3 covers those.
    const OFFICE_2 = 'SELECT id FROM smartoffice.contacts WHERE office_id = 2 ORDER BY id';
    await rolledBack(db.current.admin, async (tx) => {
      const as = async () => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx.unsafe('SELECT smartoffice.set_session(12)');
      };
      const owner = (sql: string) => asOwner(tx, () => tx.unsafe(sql));
      await as();
      expect(await planMarks(tx)).not.toContain(LIMITED);
      const limited = await ids(tx, OFFICE_2);
      // The office's public contacts assigned to user 12, read as the owner from the assignments.
      const assigned = (await asOwner(tx, () =>
        tx.unsafe('SELECT a.contact_id FROM smartoffice.contact_assignments a JOIN smartoffice.contacts c ON c.id = a.contact_id WHERE a.user_id = 12 AND c.office_id = 2 AND c.is_private = false'),
      )).map((r) => r.contact_id);
      expect(assigned.length).toBeGreaterThan(0);
      expect(limited).toEqual(expect.arrayContaining(assigned.map(Number)));
      await owner('UPDATE smartoffice.users SET enterprise_view = true WHERE id = 12');
      await as();
      expect(await planMarks(tx)).toContain(LIMITED);
      const everything = await ids(tx, OFFICE_2);
      expect(everything.length).toBeGreaterThan(limited.length);
      await owner('UPDATE smartoffice.users SET enterprise_view = false WHERE id = 12');
      // The trigger on users took this transaction's marks out of its search_path.
      expect(await planMarks(tx)).not.toContain(LIMITED);
      expect(await ids(tx, OFFICE_2)).toEqual(limited);
      await as();
      expect(await ids(tx, OFFICE_2)).toEqual(limited);
    });
  });

  it('a forged guard mark only hides rows: the enterprise user, with every mark forged, reads and writes a subset', async () => {
    const [own, forged] = await db.current.as('smartoffice', 11, async (tx) => ownAndForged(tx, GUARDED, await everyMark(tx, 'smartoffice')));
    expect((forged[1] as number[]).length).toBeLessThan((own[1] as number[]).length);
    expectOnlyFewer(own, forged, GUARDED, FIRST_PAGE);
  });

  it("an office administrator's writes (proxies, offices, users) are the same with the marks as without; a user who administers nothing computes no office it administers", async () => {
    const ADMIN_WRITES = [
      'INSERT INTO smartoffice.proxies (agent_id, proxy_id) VALUES (13, 14) RETURNING agent_id AS id',
      'DELETE FROM smartoffice.proxies WHERE agent_id = 13 RETURNING agent_id AS id',
      'UPDATE smartoffice.offices SET name = name WHERE id IN (2, 3) RETURNING id',
      'UPDATE smartoffice.users SET name = name WHERE id BETWEEN 10 AND 30 RETURNING id',
      "INSERT INTO smartoffice.users (id, office_id, name) VALUES (20001, 2, 'new user') RETURNING id",
    ];
    const outcomes: Record<number, (number[] | string)[]> = {};
    await rolledBack(db.current.admin, async (tx) => {
      // User 12 administers office 2 (users 11..20); user 13 does not.
      await tx.unsafe('UPDATE smartoffice.users SET is_admin = true WHERE id = 12');
      await tx.unsafe('SET LOCAL ROLE app_user');
      for (const user of [12, 13]) {
        await tx.unsafe('SELECT smartoffice.set_session($1)', [user]);
        expect((await planMarks(tx)).includes('rg_plan_smartoffice_not_i_am_admin'), `user ${user}`).toBe(user === 13);
        // Before the writes: a write to users or offices retires the marks until set_session runs again.
        const plan = await planText(tx, `(VERBOSE) ${ADMIN_WRITES[2]!}`);
        expect(plan.includes('office_i_administer'), plan).toBe(user === 12);
        outcomes[user] = await statementOutcomes(tx, ADMIN_WRITES);
        expect(await unmarked(tx, ADMIN_WRITES), `user ${user}`).toEqual(outcomes[user]);
      }
    });
    expect(outcomes[12]).toEqual([[13], [13], [2], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20], [20001]]);
    expect(outcomes[13]).toEqual(['refused 42501', [], [], [], 'refused 42501']);
  });

  it('a relation of a marker\'s name earlier in the search_path hides the mark: the agent gets the unmarked plan and the same rows', async () => {
    const [plan, rows] = await db.current.as('smartoffice', PERSONA, async (tx) => {
      // The temporary schema comes first in the path for relations.
      for (const mark of await planMarks(tx)) await tx.unsafe(`CREATE TEMPORARY VIEW "${mark}" AS SELECT`);
      return [await planText(tx, FIRST_PAGE), await ids(tx, FIRST_PAGE)] as const;
    });
    expect(plan, plan).toMatch(PK_WALK);
    expect(rows).toEqual(await db.current.as('smartoffice', PERSONA, (tx) => ids(tx, FIRST_PAGE)));
  });

  it('every role may use the mark schemas and create nothing in them; their marker views grant nothing', async () => {
    const marks = await db.current.as('smartoffice', PERSONA, (tx) => everyMark(tx, 'smartoffice'));
    expect(marks.length).toBeGreaterThan(0);
    for (const mark of marks) {
      const grants = await db.current.admin`
        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege
        FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = ${mark} AND a.grantee <> n.nspowner ORDER BY 1, 2`;
      expect(grants.map((g) => `${g.grantee} ${g.privilege}`), mark).toEqual(['PUBLIC USAGE']);
      const [view] = await db.current.admin`
        SELECT c.relkind::text AS kind, c.relnatts AS columns, c.relacl::text AS acl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ${mark} AND c.relname = ${mark}`;
      expect(view, mark).toEqual({ kind: 'v', columns: 0, acl: null });
      expect((await db.current.admin`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${mark}`)[0]!.n).toBe(1);
    }
  });

  it('a prepared statement is planned again for each mark set, even when its plan is generic', async () => {
    const conn = postgres(db.current.url, { max: 1, onnotice: () => {} });
    try {
      await conn.unsafe('SET ROLE app_user');
      await conn.unsafe('SET plan_cache_mode = force_generic_plan');
      await conn.unsafe(`PREPARE first_page AS ${FIRST_PAGE}`);
      for (const [user, pkWalk] of [[PERSONA, false], [11, true], [PERSONA, false]] as const) {
        const [plan, rows] = await conn.begin(async (tx) => {
          await tx.unsafe('SELECT smartoffice.set_session($1)', [user]);
          return [await planText(tx, 'EXECUTE first_page'), (await tx.unsafe('EXECUTE first_page')).map((r) => Number(r.id))] as const;
        });
        if (pkWalk) expect(plan, `user ${user}`).toMatch(PK_WALK);
        else expect(plan, `user ${user}`).not.toMatch(PK_WALK);
        expect(rows).toEqual(await db.current.as('smartoffice', user, (tx) => ids(tx, FIRST_PAGE)));
      }
    } finally {
      await conn.end();
    }
  });
});

// Plan shape as app_user on 50,000 SuperOffice contacts of 10,000 companies, owned by 5,000 users
// in 1,000 groups: a user whose role reads only their own groups' rows must reach contacts through
// the owner and group indexes, never by scanning the whole table nor by a per-row SubPlan, so a
// regression in the generated rights-matrix shapes fails CI.
import { describe, expect, it } from 'vitest';
import { planHints } from '../../generator/emit/hints.ts';
import { useTestDatabase } from '../support/db.ts';
import { models } from '../support/models.ts';
import { everyMark, expectOnlyFewer, guardMarks, expectPolicyCoveredByBitmap, markedAndUnmarked, ownAndForged, explain, planMarks, planShapeTests, WIDENING_ARM } from '../support/plan.ts';

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
    -- Role 1001 reads, changes and deletes only its own rows; user 4 has it.
    INSERT INTO superoffice.roles (id, name) VALUES (1001, 'own rows only');
    INSERT INTO superoffice.role_rights (role_id, object_type, scope, rights)
      SELECT 1001, o, s, CASE WHEN s = 'own' THEN 'delete' ELSE 'none' END
      FROM unnest(ARRAY['company', 'contact', 'project', 'sale']) o, unnest(ARRAY['own', 'primary_group', 'secondary_group', 'others']) s;
    UPDATE superoffice.users SET role_id = 1001 WHERE id = 4;
    -- User 5001 (User level 4) has three secondary groups: more than the one that counts as few.
    INSERT INTO superoffice.users (id, name, role_id, primary_group_id, kind) VALUES (5001, 'three groups', 5, 1, 'internal');
    INSERT INTO superoffice.user_secondary_groups (user_id, group_id) VALUES (5001, 10), (5001, 20), (5001, 30);
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
    preparedSearch: ["SELECT * FROM superoffice.contacts WHERE company_id = $1", '4242'],
    initPlans: {
      // The system users' arm is dropped for this user (planner hints). Each scope arm's value
      // reads the scopes and the identity or a group: one definer call for both (combined.ts).
      what: 'the identity, the groups and the scopes the role reads',
      functions: [
        'superoffice.rg_once(contact_scopes_with_read, current_user_id)',
        'superoffice.rg_once(contact_scopes_with_read, my_primary_group_id)',
        'superoffice.rg_once(contact_scopes_with_read, my_secondary_group_ids)',
      ],
    },
  });
  it('the rights tests run once per statement, not in the filter of every row', async () => {
    const plan = await explain(db.current, 'superoffice', PERSONA, 'SELECT * FROM superoffice.contacts ORDER BY id LIMIT 50');
    const perRow = plan.split('\n').filter((line) => /^\s*(Filter|Recheck Cond|Index Cond):/.test(line) && line.includes('CASE'));
    expect(perRow).toEqual([]);
  });
});

// Guarded arms (generator/emit/hints.ts): an arm compared with `CASE WHEN '<scope>' = any(<scopes>)
// THEN … END` is false or NULL for a role without the scope, and set_session marks that scope
// missing, so the planner drops the arm. No row changes; a forged mark only hides rows.
describe('superoffice dropped guarded arms', () => {
  const [OWN_ONLY, PRIMARY_ONLY, READS_ALL, SYSTEM] = [4, 2, 3, 500];
  const FIRST_PAGE = 'SELECT id FROM superoffice.contacts ORDER BY id LIMIT 50';
  // Long names are cut to 63 bytes with a hash: ask the generator for them.
  const { folds } = planHints(models.find((m) => m.schema === 'superoffice')!);
  const scopeMark = (scope: string) => folds.find((f) => f.name === `contact_scopes_with_read_has_${scope}`)!.notSchema;

  it('set_session marks the scopes a role lacks; the own-only user\'s first page then reads their rows by owner, not the key', async () => {
    const own = await db.current.as('superoffice', OWN_ONLY, planMarks);
    expect(own).toEqual(expect.arrayContaining(['primary_group', 'secondary_group', 'others'].map(scopeMark)));
    expect(own).not.toContain(scopeMark('own'));
    const all = await db.current.as('superoffice', READS_ALL, planMarks);
    // No scope is missing; "others" (every contact the other scopes do not match) is there, so
    // its arm is read as the scope test alone, and counted like most of the table; and so is
    // every scope, whose arm then admits each row before the others are tested.
    const { trues } = planHints(models.find((m) => m.schema === 'superoffice')!);
    const isMark = (name: string) => trues.find((f) => f.name === name)!.isSchema;
    const others = isMark('contact_scopes_with_read_has_others');
    const everyScope = isMark('contact_scopes_with_read_has_own_primary_group_secondary_group_others');
    expect(all.filter((m) => m.includes('contact_scopes_with_read')).sort()).toEqual([everyScope, others].sort());
    const count = await explain(db.current, 'superoffice', READS_ALL, 'SELECT count(*) FROM superoffice.contacts');
    expect(count, count).not.toContain('BitmapOr');
    expect(count, count).not.toMatch(/\bid >= /);
    const plan = await explain(db.current, 'superoffice', OWN_ONLY, FIRST_PAGE);
    expect(plan, plan).not.toMatch(/Index (Only )?Scan using contacts_pkey/);
    expect(plan, plan).toContain('contacts_owner_id_idx');
    const unmarked = await explain(db.current, 'superoffice', OWN_ONLY, FIRST_PAGE, { verbose: true, unmarked: true });
    // Without the marks every arm stays, and the key walk with it.
    expect(unmarked, unmarked).toContain('superoffice.my_primary_group_id()');
    expect(unmarked, unmarked).toMatch(/Index Scan using contacts_pkey/);
  });

  it('set_session removes a mark of 63 bytes written longer, which PostgreSQL cuts to the mark', async () => {
    const { folds, trues, facts } = planHints(models.find((m) => m.schema === 'superoffice')!);
    const mark = [...folds.map((f) => f.notSchema), ...trues.map((f) => f.isSchema), ...facts.map((f) => f.fewSchema)].find((n) => Buffer.byteLength(n) === 63)!;
    expect(mark).toBeDefined();
    await db.current.as('superoffice', OWN_ONLY, async (tx) => {
      // set_config, not SET: SQL's own lexer would cut the name before the setting sees it.
      await tx.unsafe(`SELECT set_config('search_path', '"$user", public, ${mark}zzz', true)`);
      expect(String((await tx.unsafe('SELECT current_schemas(false)::text AS s'))[0]!.s)).toContain(mark);
      await tx.unsafe('SELECT superoffice.set_session($1)', [OWN_ONLY]);
      expect(String((await tx.unsafe("SELECT current_setting('search_path') AS p"))[0]!.p)).not.toContain(`${mark}zzz`);
    });
  });

  // Reads, an UPDATE in place, one that hands rows to another owner (WITH CHECK), a DELETE and an
  // INSERT of a contact owned by user 4 (WITH CHECK).
  const STATEMENTS = [
    FIRST_PAGE,
    'SELECT id FROM superoffice.contacts',
    'SELECT c.id FROM superoffice.contacts c JOIN superoffice.companies k ON k.id = c.company_id WHERE k.id < 2000',
    'UPDATE superoffice.contacts SET name = name WHERE id % 7 = 0 RETURNING id',
    'UPDATE superoffice.contacts SET owner_id = 4, group_id = 1 WHERE id % 13 = 0 RETURNING id',
    'DELETE FROM superoffice.contacts WHERE id % 11 = 0 RETURNING id',
    "INSERT INTO superoffice.contacts (id, company_id, name, owner_id, group_id) VALUES (900001, 1, 'new', 4, 1) RETURNING id",
  ];

  it('rows are the same with the marks set_session sets as with none, for reads and writes, for roles with and without each scope', async () => {
    const written = new Set<number>();
    for (const user of [OWN_ONLY, PRIMARY_ONLY, 1, READS_ALL, SYSTEM]) {
      const [own, unmarked] = await markedAndUnmarked(db.current, 'superoffice', user, STATEMENTS);
      own.slice(3).forEach((o, i) => typeof o !== 'string' && o.length > 0 && written.add(i));
      expect(unmarked, `user ${user}`).toEqual(own);
    }
    expect([...written].sort()).toEqual([0, 1, 2, 3]);
  });

  it("set_session's guard marks are what the facts themselves say, for the system user (whom the role's rights do not govern) and for roles with and without rights", async () => {
    // plan_marks reads the 16 scope lists with one scan of role_rights (fuseArrayReads), and not
    // at all for a user whose kind the matrix does not apply to.
    const model = models.find((m) => m.schema === 'superoffice')!;
    for (const user of [OWN_ONLY, PRIMARY_ONLY, READS_ALL, SYSTEM]) {
      const { set, byFacts } = await db.current.as('superoffice', user, (tx) => guardMarks(tx, model));
      expect(byFacts.length, `user ${user}`).toBeGreaterThan(0);
      expect(set, `user ${user}`).toEqual(byFacts);
    }
  });

  it('the system user is marked i_am_system true, and a forged true mark changes no row for users who are not', async () => {
    const { trues } = planHints(models.find((m) => m.schema === 'superoffice')!);
    const isMarks = trues.map((t) => t.isSchema);
    expect(isMarks).toEqual(expect.arrayContaining(['rg_plan_superoffice_is_i_am_system', 'rg_plan_superoffice_is_i_am_staff']));
    expect(await db.current.as('superoffice', SYSTEM, planMarks)).toContain('rg_plan_superoffice_is_i_am_system');
    for (const user of [OWN_ONLY, PRIMARY_ONLY, READS_ALL]) {
      const [own, forged] = await db.current.as('superoffice', user, (tx) => ownAndForged(tx, STATEMENTS, isMarks));
      expect(forged, `user ${user}`).toEqual(own);
    }
  });

  it('a forged mark only hides rows: a role that reads everything, with every scope marked missing, reads and writes a subset', async () => {
    const marks = await db.current.as('superoffice', READS_ALL, (tx) => everyMark(tx, 'superoffice'));
    // Its own true marks taken out: with them the guards they name would decide again.
    const trueMarks = marks.filter((m) => m.startsWith('rg_plan_superoffice_is_'));
    const missing = marks.filter((m) => !trueMarks.includes(m));
    const [own, forged] = await db.current.as('superoffice', READS_ALL, (tx) => ownAndForged(tx, STATEMENTS, missing, trueMarks));
    expect((forged[1] as number[]).length).toBeLessThan((own[1] as number[]).length);
    expectOnlyFewer(own, forged, STATEMENTS, FIRST_PAGE);
    // Every mark at once, the true ones too: where a true mark keeps an arm, its guard decides
    // (this role reads every scope, so the every-scope arm still admits every row).
    const [again, all] = await db.current.as('superoffice', READS_ALL, (tx) => ownAndForged(tx, STATEMENTS, marks));
    expectOnlyFewer(again, all, STATEMENTS, FIRST_PAGE);
  });
});

// Companies are a lookup (PolicySpec.lookup): a user with more secondary groups than the one that
// counts as few gets `OR id >= (SELECT NULL)` on companies, NULL for every row, which the planner
// counts as a third of them, so a join from contacts keeps the contacts' estimate (see
// policycenter.test.ts for the estimate; bench/HISTORY.md, "Fourteenth round", for the plans).
describe('superoffice companies as a lookup', () => {
  const [THREE_GROUPS, FEW_GROUPS] = [5001, 'rg_plan_superoffice_few_my_secondary_group_ids'];
  const COMPANIES = 'SELECT id FROM superoffice.companies ORDER BY id LIMIT 50';
  const STATEMENTS = [
    COMPANIES,
    'SELECT id FROM superoffice.companies',
    'SELECT c.id FROM superoffice.contacts c JOIN superoffice.companies k ON k.id = c.company_id',
  ];

  it('the widening arm is there for a user of many secondary groups, not for one of few', async () => {
    expect(await db.current.as('superoffice', THREE_GROUPS, planMarks)).not.toContain(FEW_GROUPS);
    const many = await explain(db.current, 'superoffice', THREE_GROUPS, 'SELECT count(*) FROM superoffice.companies');
    expect(many, many).toMatch(WIDENING_ARM);
    expect(await db.current.as('superoffice', PERSONA, planMarks)).toContain(FEW_GROUPS);
    const few = await explain(db.current, 'superoffice', PERSONA, 'SELECT count(*) FROM superoffice.companies');
    expect(few, few).not.toMatch(WIDENING_ARM);
  });

  it('the widening arm changes no row: with the few mark forged, the user of many groups reads exactly the same', async () => {
    const [own, forged] = await db.current.as('superoffice', THREE_GROUPS, (tx) => ownAndForged(tx, STATEMENTS, [FEW_GROUPS]));
    expect((own[1] as number[]).length).toBeGreaterThan(0);
    expect(forged).toEqual(own);
  });
});

// Stand-ins (hints.ts, StandIn): a level-4 user of more secondary groups than the one that counts
// as few lacks the "others" scope, but its sets are not few, so the "others" arm is not dropped:
// it keeps its range's estimate as a range on the key that is NULL for every row, without the
// conditions beside it that read facts (not mine, not my groups'). The contacts' policy is then
// exactly the OR of index conditions: a bitmap scan checks no Filter per row, and the facts of
// those conditions are not computed.
describe('superoffice stand-ins', () => {
  const THREE_GROUPS = 5001;
  const STATEMENTS = [
    'SELECT count(*)::int AS n FROM superoffice.contacts',
    'SELECT id FROM superoffice.contacts ORDER BY id LIMIT 50',
    "SELECT id FROM superoffice.contacts WHERE name LIKE '%7%'",
    'UPDATE superoffice.contacts SET name = name WHERE id % 7 = 0 RETURNING id',
  ];

  it('a level-4 user of many groups: the count rechecks no policy on the rows its bitmap finds, and the "others" conditions\' facts are not computed', async () => {
    const plan = await explain(db.current, 'superoffice', THREE_GROUPS, 'SELECT count(*) FROM superoffice.contacts', { verbose: true });
    expectPolicyCoveredByBitmap(plan, 'contacts');
    expect(plan, plan).not.toContain('IS DISTINCT FROM');
    expect(plan, plan).toContain('Output: NULL::bigint');
    // The every-scope arm (a shortcut the scope arms imply) is dropped outright, with no stand-in
    // of its own: the estimate stays the scope arms' (an ILIKE search of the local user went from a
    // bitmap to a walk of the key, 22 -> 202 ms, while it stood in). Two stand-ins: "others" and
    // the system users' arm.
    expect(plan, plan).not.toContain('<@');
    expect(plan.match(/Output: NULL::bigint/g), plan).toHaveLength(2);
  });

  it('rows are the same for that user with the stand-in as with no marks, for reads and writes', async () => {
    const [own, unmarked] = await markedAndUnmarked(db.current, 'superoffice', THREE_GROUPS, STATEMENTS);
    expect((own[1] as number[]).length).toBeGreaterThan(0);
    expect(unmarked).toEqual(own);
  });
});

// anyOf(…).in(set): several routing columns tested against one set in one arm, printed as
// `ARRAY[cols] && set` over a GIN index the generator creates. Compared with the same rule written
// as `or` of `.in` arms: the same rows for every user (NULL columns, an empty set, a NULL set and
// a set holding NULL included), for reads and writes, with the set computed once and the index read.
// The columns are bigint, whose `in` arms get a min/max range as their planner hint: the anyOf
// arm's hint must hold where a column is NULL (its array `@>` an empty array, not a range on a
// column), or a user with few principals would lose the rows routed to them through another column.
import { describe, expect, it } from 'vitest';
import { anyOf, arrayOf, defineModel, or, t, when, type RowOf } from '../../generator/dsl/index.ts';
import { installModel, useTestDatabase } from '../support/db.ts';
import { planMarks, planText } from '../support/plan.ts';

const model = (combined: boolean) => ({
  ...defineModel(combined ? 'rg_anyof' : 'rg_orin', (m) => {
    const users = m.table('users', { id: t.bigint().primaryKey(), restricted: t.boolean() });
    const grants = m.table('grants', { id: t.bigint().primaryKey(), user_id: t.bigint().notNull().references(users), principal: t.bigint() });
    const cases = m.table('cases', { id: t.bigint().primaryKey(), owner: t.bigint(), reviewer: t.bigint(), watcher: t.bigint() });
    m.identity(users);
    const restricted = m.fact('i_am_restricted', m.me.isNotNull().and(arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me).and(u.restricted.isTrue()), select: u.id }))).isNotNull()), { type: 'boolean' });
    // NULL unless restricted (a NULL set), and it may hold NULL (a grant with no principal).
    const mine = m.fact('my_principals', when(restricted, arrayOf(m.from(grants, (g) => ({ where: g.user_id.eq(m.me), select: g.principal })))));
    const routedToMe = (c: RowOf<typeof cases>) =>
      combined ? anyOf(c.owner, c.reviewer, c.watcher).in(mine) : or(c.owner.in(mine), c.reviewer.in(mine), c.watcher.in(mine));
    m.policy(cases, 'cases_select', { for: 'select', using: routedToMe });
    m.policy(cases, 'cases_update', { for: 'update', using: routedToMe, check: routedToMe });
    m.policy(users, 'users_read', { for: 'select', using: () => m.me.isNotNull() });
    m.policy(grants, 'grants_read', { for: 'select', using: () => m.me.isNotNull() });
  }),
  file: 'test/db/any-of.test.ts',
});

const SCHEMAS = ['rg_anyof', 'rg_orin'] as const;
// Users: 1 has principals 1 and 2; 2 has none (an empty set); 3 is not restricted (a NULL set);
// 4 has 3 and a NULL principal; 5 has 9, which no case names. All sets are few (planner hints on).
const USERS = [1, 2, 3, 4, 5];

const db = useTestDatabase(async (admin) => {
  for (const combined of [true, false]) await installModel(admin, model(combined));
  for (const schema of SCHEMAS) {
    await admin.unsafe(`
      INSERT INTO ${schema}.users VALUES (1, true), (2, true), (3, false), (4, true), (5, true);
      INSERT INTO ${schema}.grants VALUES (1, 1, 1), (2, 1, 2), (3, 4, 3), (4, 4, NULL), (5, 5, 9);
      -- Every combination of 1, 2, 3 and NULL over the three columns, and filler no one is routed.
      INSERT INTO ${schema}.cases (id, owner, reviewer, watcher)
        SELECT row_number() OVER (), o, r, w
        FROM unnest(ARRAY[1, 2, 3, NULL]) o, unnest(ARRAY[1, 2, 3, NULL]) r, unnest(ARRAY[1, 2, 3, NULL]) w;
      INSERT INTO ${schema}.cases (id, owner, reviewer, watcher) SELECT 1000 + g, 100 + g, NULL, 30000 + g FROM generate_series(1, 20000) g;
      `);
    // As autovacuum would: VACUUM records the GIN index's entry counts, which its cost estimate reads.
    await admin.unsafe(`VACUUM ANALYZE ${schema}.cases`);
  }
});

const ids = (rows: readonly Record<string, unknown>[]) => rows.map((r) => Number(r.id)).sort((a, b) => a - b);

describe('anyOf(…).in(set)', () => {
  it('admits exactly the rows `or` of `.in` arms admits, for every user, NULL columns and sets included', async () => {
    expect(await db.current.as('rg_anyof', 1, planMarks)).toContain('rg_plan_rg_anyof_few_my_principals');
    for (const user of USERS) {
      const [combined, apart] = await Promise.all(SCHEMAS.map((s) => db.current.as(s, user, async (tx) => ids(await tx.unsafe(`SELECT id FROM ${s}.cases`)))));
      expect(combined, `user ${user}`).toEqual(apart);
    }
    // The expected counts: 1 sees the 56 of 64 combinations naming 1 or 2, 4 the 37 naming 3 (its NULL principal matches nothing).
    const count = (user: number) => db.current.as('rg_anyof', user, async (tx) => Number((await tx.unsafe('SELECT count(*) AS n FROM rg_anyof.cases'))[0]!.n));
    expect(await Promise.all(USERS.map(count))).toEqual([64 - 8, 0, 0, 64 - 27, 0]);
  });

  it('checks writes the same way: an update may route a row only to a principal of mine', async () => {
    const outcome = async (schema: string, user: number, to: number | null) =>
      db.current.as(schema, user, async (tx) => {
        try {
          return ids(await tx.unsafe(`UPDATE ${schema}.cases SET owner = $1 WHERE id <= 64 RETURNING id`, [to] as never[]));
        } catch (error) {
          return (error as { code?: string }).code;
        }
      });
    for (const [user, to] of [[1, 2], [1, 3], [4, 3], [4, 1], [2, 1], [1, null]] as const) {
      const [combined, apart] = await Promise.all(SCHEMAS.map((s) => outcome(s, user, to)));
      expect(combined, `user ${user} → ${to}`).toEqual(apart);
    }
  });

  it('computes the set once and reads the GIN index, where the `or` computes it per column', async () => {
    const plan = (schema: string) => db.current.as(schema, 1, (tx) => planText(tx, `(VERBOSE) SELECT count(*) FROM ${schema}.cases`));
    const combined = await plan('rg_anyof');
    expect(combined, combined).toMatch(/Bitmap Index Scan on cases_owner_reviewer_watcher_any_idx/);
    expect(combined.match(/my_principals\(\)/g), combined).toHaveLength(1);
    const apart = await plan('rg_orin');
    expect(apart.match(/my_principals\(\)/g), apart).toHaveLength(3);
  });
});

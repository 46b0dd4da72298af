// A write's clause that repeats the read's (generator/emit/hints.ts, twinRead), with a sub-query
// the DSL builds anew for each policy: printed as the read's text, PostgreSQL applies it once to
// the rows an UPDATE finds. The model is compiled by the real emitters into this test's database.
import { describe, expect, it } from 'vitest';
import { and, defineModel, exists, scalarOf, t, type RowOf } from '../../generator/dsl/index.ts';
import { installModel, useTestDatabase } from '../support/db.ts';
import { planText } from '../support/plan.ts';

const model = (twin: boolean) => ({
  ...defineModel(twin ? 'rg_twin' : 'rg_apart', (m) => {
    const users = m.table('users', { id: t.bigint().primaryKey(), team: t.text().notNull() });
    const notes = m.table('notes', { id: t.bigint().primaryKey(), author_id: t.bigint().notNull().references(users), body: t.text() });
    m.identity(users);
    /** Notes by someone of my team: a sub-query on users, built anew at every call. */
    const byMyTeam = (n: RowOf<typeof notes>) =>
      exists(m.from(users, (u) => ({ where: and(u.id.eq(n.author_id), u.team.eq(scalarOf(m.from(users, (me) => ({ where: me.id.eq(m.me), select: me.team }))))) })));
    m.policy(notes, 'notes_select', { for: 'select', using: byMyTeam });
    // The same rows, said another way for the control: no twin, so both clauses run.
    m.policy(notes, 'notes_update', { for: 'update', using: twin ? byMyTeam : (n) => and(byMyTeam(n), n.id.isNotNull()) });
    m.policy(users, 'users_read', { for: 'select', using: () => m.me.isNotNull() });
  }),
  file: 'test/db/twin-writes.test.ts',
});

const db = useTestDatabase(async (admin) => {
  for (const twin of [true, false]) {
    await installModel(admin, model(twin));
    const schema = twin ? 'rg_twin' : 'rg_apart';
    await admin.unsafe(`
      INSERT INTO ${schema}.users VALUES (1, 'a'), (2, 'a'), (3, 'b');
      INSERT INTO ${schema}.notes VALUES (10, 1, 'x'), (11, 2, 'y'), (12, 3, 'z');`);
  }
});

/** The sub-plans the UPDATE's scan filters its rows with, and the rows it changes. */
async function update(schema: string): Promise<{ subPlans: number; ids: number[] }> {
  return db.current.as(schema, 1, async (tx) => {
    const query = `UPDATE ${schema}.notes SET body = 'edited' WHERE id >= 10 RETURNING id`;
    const plan = await planText(tx, `(VERBOSE) ${query}`);
    const filter = /Filter: ([^\n]*)/.exec(plan)?.[1] ?? '';
    const ids = (await tx.unsafe(query)).map((r) => Number(r.id)).sort((a, b) => a - b);
    return { subPlans: new Set(filter.match(/SubPlan \d+/g) ?? []).size, ids };
  });
}

describe('a write that repeats the read', () => {
  it('with a sub-query built anew, is applied once to the rows it finds; said otherwise, both run; the same rows change', async () => {
    const twin = await update('rg_twin');
    const apart = await update('rg_apart');
    expect(twin).toEqual({ subPlans: 1, ids: [10, 11] });
    expect(apart).toEqual({ subPlans: 2, ids: [10, 11] });
  });
});

// Facts about the acting user's own row read it once, into a record (generator/emit/expr.ts,
// identityRowLookup). Where the body reads the record anyway, a lookup by the identity key that
// also tests the row, and an EXISTS of it, read the record too. Each must say what its sub-select
// says, for a row that passes, one that fails, and one that is gone (deleted while its user's
// transaction is open): a test or a value that holds for a row of NULLs, such as `IS DISTINCT FROM
// true`, must not make a missing row count.
import { describe, expect, it } from 'vitest';
import { and, coalesce, defineModel, exists, lit, scalarOf, t, when } from '../../generator/dsl/index.ts';
import { asOwner, installModel, useTestDatabase } from '../support/db.ts';

const SCHEMA = 'rg_identity_row';
const model = {
  ...defineModel(SCHEMA, (m) => {
    const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint(), is_away: t.boolean() });
    const notes = m.table('notes', { id: t.bigint().primaryKey(), team_id: t.bigint() });
    m.identity(users);
    const present = () => exists(m.from(users, (u) => ({ where: and(u.id.eq(m.me), u.is_away.isDistinctFrom(true)) })));
    const known = () => exists(m.from(users, (u) => ({ where: u.id.eq(m.me) })));
    const presentTeam = () => scalarOf(m.from(users, (u) => ({ where: and(u.id.eq(m.me), u.is_away.isDistinctFrom(true)), select: coalesce(u.team_id, lit(0)) })));
    const team = () => scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id })));
    // Alone: the sub-selects stay.
    const here = m.fact('i_am_here', present());
    const myPresentTeam = m.fact('my_present_team', presentTeam());
    // Beside a plain lookup of the row (its team): every lookup reads the record.
    const hereTeam = m.fact('team_if_here', when(present(), team()));
    const knownTeam = m.fact('team_if_known', when(known(), coalesce(team(), lit(-1))));
    const presentOrTeam = m.fact('present_team_or_team', coalesce(presentTeam(), team()));
    const hereOrTeam = m.fact('here_or_team', coalesce(when(present(), lit(-2)), team()));
    // A plain lookup whose value holds for a row of NULLs.
    const notAway = m.fact('i_am_not_away', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_away.isDistinctFrom(true) }))), { type: 'boolean' });
    m.policy(notes, 'notes_read', {
      for: 'select',
      using: (n) => and(here, notAway, n.team_id.eq(myPresentTeam), n.team_id.eq(hereTeam), n.team_id.eq(knownTeam), n.team_id.eq(presentOrTeam), n.team_id.eq(hereOrTeam)),
    });
  }),
  file: 'test/db/identity-row.test.ts',
};

const db = useTestDatabase(async (admin) => {
  await installModel(admin, model);
  await admin.unsafe(`INSERT INTO ${SCHEMA}.users (id, team_id, is_away) VALUES (1, 7, false), (2, NULL, NULL), (3, 7, true)`);
});

const FACTS = ['i_am_here', 'my_present_team', 'team_if_here', 'team_if_known', 'present_team_or_team', 'here_or_team', 'i_am_not_away'];
const byFacts = `SELECT ${FACTS.map((f) => `${SCHEMA}.${f}()${f.startsWith('i_') ? '' : '::int'} AS ${f}`).join(', ')}`;
const u = `${SCHEMA}.users`;
const byQuery = `SELECT
    EXISTS (SELECT 1 FROM ${u} WHERE id = $1 AND is_away IS DISTINCT FROM true) AS i_am_here,
    (SELECT coalesce(team_id, 0) FROM ${u} WHERE id = $1 AND is_away IS DISTINCT FROM true)::int AS my_present_team,
    (CASE WHEN EXISTS (SELECT 1 FROM ${u} WHERE id = $1 AND is_away IS DISTINCT FROM true) THEN (SELECT team_id FROM ${u} WHERE id = $1) END)::int AS team_if_here,
    (CASE WHEN EXISTS (SELECT 1 FROM ${u} WHERE id = $1) THEN coalesce((SELECT team_id FROM ${u} WHERE id = $1), -1) END)::int AS team_if_known,
    coalesce((SELECT coalesce(team_id, 0) FROM ${u} WHERE id = $1 AND is_away IS DISTINCT FROM true), (SELECT team_id FROM ${u} WHERE id = $1))::int AS present_team_or_team,
    coalesce(CASE WHEN EXISTS (SELECT 1 FROM ${u} WHERE id = $1 AND is_away IS DISTINCT FROM true) THEN -2 END, (SELECT team_id FROM ${u} WHERE id = $1))::int AS here_or_team,
    (SELECT is_away IS DISTINCT FROM true FROM ${u} WHERE id = $1) AS i_am_not_away`;

describe("facts that test the acting user's own row", () => {
  it('read the record where the body reads it anyway, and keep their sub-selects alone', async () => {
    const bodies = new Map((await db.current.admin.unsafe(`SELECT proname, prosrc FROM pg_proc WHERE pronamespace = '${SCHEMA}'::regnamespace`)).map((b) => [b.proname as string, b.prosrc as string]));
    const subSelect = new RegExp(`FROM "${SCHEMA}"\\."users" AS "q`);
    for (const alone of ['i_am_here', 'my_present_team']) {
      expect(bodies.get(alone), alone).toMatch(subSelect);
      expect(bodies.get(alone), alone).not.toContain('me_row');
    }
    for (const together of ['team_if_here', 'team_if_known', 'present_team_or_team', 'here_or_team', 'i_am_not_away']) {
      expect(bodies.get(together), together).toContain('INTO rg_fact.me_row');
      expect(bodies.get(together), together).not.toMatch(subSelect);
    }
  });

  for (const [user, what] of [
    [1, 'a present user with a team'],
    [2, 'a user with NULL flags and no team'],
    [3, 'an away user'],
  ] as const) {
    it(`say what their sub-selects say: ${what}, and once the row is deleted`, async () => {
      await db.current.as(SCHEMA, user, async (tx) => {
        const present = await tx.unsafe(byFacts);
        expect(present).toEqual(await asOwner(tx, () => tx.unsafe(byQuery, [user])));
        await asOwner(tx, () => tx.unsafe(`DELETE FROM ${SCHEMA}.users WHERE id = $1`, [user]));
        const gone = await tx.unsafe(byFacts);
        expect(gone).toEqual([{ i_am_here: false, my_present_team: null, team_if_here: null, team_if_known: null, present_team_or_team: null, here_or_team: null, i_am_not_away: null }]);
        expect(gone).toEqual(await asOwner(tx, () => tx.unsafe(byQuery, [user])));
        expect(gone).not.toEqual(present);
      });
    });
  }

  it('the three users take the facts through different values', async () => {
    const values = await Promise.all([1, 2, 3].map((user) => db.current.as(SCHEMA, user, (tx) => tx.unsafe(byFacts))));
    expect(values).toEqual([
      [{ i_am_here: true, my_present_team: 7, team_if_here: 7, team_if_known: 7, present_team_or_team: 7, here_or_team: -2, i_am_not_away: true }],
      [{ i_am_here: true, my_present_team: 0, team_if_here: null, team_if_known: -1, present_team_or_team: 0, here_or_team: -2, i_am_not_away: true }],
      [{ i_am_here: false, my_present_team: null, team_if_here: null, team_if_known: 7, present_team_or_team: 7, here_or_team: 7, i_am_not_away: false }],
    ]);
  });
});

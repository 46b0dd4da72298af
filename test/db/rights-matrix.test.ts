// rightsMatrix (generator/dsl/rights.ts) against its meaning, computed here row by row: a row has
// every scope whose rule matches it, the otherwise scope when it matches none, and the role's
// highest right over the row's scopes decides. Every combination of rights over the four scopes,
// users with and without a team (NULL), sets with a NULL element, rows with NULL scope columns;
// reads and updates; with set_session's planner marks and without them. A role with a right in
// every scope takes the every-row arm, which must admit exactly what the scope arms would, and
// spares the statement the other arms' facts.
import { describe, expect, it } from 'vitest';
import { arrayOf, defineModel, rightsMatrix, scalarOf, t } from '../../generator/dsl/index.ts';
import { ids, installModel, useTestDatabase } from '../support/db.ts';
import { dropMarks, guardMarks, planText } from '../support/plan.ts';

const S = 'rg_rights';
const SCOPES = ['own', 'team', 'teams', 'others'] as const;
type Scope = (typeof SCOPES)[number];

const model = {
  ...defineModel(S, (m) => {
    const users = m.table('users', { id: t.bigint().primaryKey(), role_id: t.bigint().notNull(), team_id: t.bigint() });
    const memberships = m.table('memberships', { id: t.bigint().primaryKey(), user_id: t.bigint().notNull().references(users), team_id: t.bigint() });
    const rights = m.table(
      'rights',
      { role_id: t.bigint().notNull(), object: t.text().notNull(), scope: t.text().notNull(), level: t.text().notNull() },
      { primaryKey: ['role_id', 'object', 'scope'] },
    );
    const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint(), team_id: t.bigint() });
    m.identity(users);
    const mine = (column: 'role_id' | 'team_id') => scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u[column] })));
    const matrix = rightsMatrix(m, {
      rights: { table: rights, role: 'role_id', object: 'object', scope: 'scope', level: 'level' },
      levels: ['none', 'read', 'write'],
      needs: { select: 'read', insert: 'write', update: 'write', delete: 'write' },
      role: m.fact('my_role', mine('role_id')),
      applies: m.me.isNotNull(),
      scopes: [
        { name: 'own', column: 'owner_id', is: m.me },
        { name: 'team', column: 'team_id', is: m.fact('my_team', mine('team_id')) },
        { name: 'teams', column: 'team_id', in: m.fact('my_teams', arrayOf(m.from(memberships, (g) => ({ where: g.user_id.eq(m.me), select: g.team_id })))) },
      ],
      otherwise: 'others',
    });
    m.policy(deals, 'deals_select', { for: 'select', using: matrix.allows(deals, 'deal', 'select') });
    m.policy(deals, 'deals_update', { for: 'update', using: matrix.allows(deals, 'deal', 'update'), check: matrix.allows(deals, 'deal', 'update') });
  }),
  file: 'test/db/rights-matrix.test.ts',
};

// Role r (0..80) grants scope i the level (r / 3^i) % 3: every combination of none, read, write.
const LEVELS = ['none', 'read', 'write'] as const;
const ROLES = Array.from({ length: 81 }, (_, r) => r);
const levelOf = (role: number, scope: Scope) => Math.floor(role / 3 ** SCOPES.indexOf(scope)) % 3;
// Three users per role: a team and another team as a membership; no team and no memberships; a
// team and memberships of another team and of NULL (a set holding NULL).
const SHAPES = [
  { team: 1, teams: [2] },
  { team: null, teams: [] },
  { team: 1, teams: [2, null] },
] as const;
const USERS = ROLES.flatMap((role) => SHAPES.map((shape, i) => ({ id: 100 + role * 3 + i, role, ...shape })));
type User = (typeof USERS)[number];
// Deals: owned by some users, by nobody (NULL) or by a stranger, in teams 1, 2, 3 or none.
const OWNERS = [null, 9, 100, 101, 102, 159, 160, 161, 340, 341, 342];
const TEAMS = [null, 1, 2, 3];
const DEALS = OWNERS.flatMap((owner, o) => TEAMS.map((team, k) => ({ id: 1 + o * TEAMS.length + k, owner, team })));

function scopesOf(deal: (typeof DEALS)[number], user: User): Scope[] {
  const scopes: Scope[] = [];
  if (deal.owner !== null && deal.owner === user.id) scopes.push('own');
  if (deal.team !== null && deal.team === user.team) scopes.push('team');
  if (deal.team !== null && (user.teams as readonly (number | null)[]).includes(deal.team)) scopes.push('teams');
  return scopes.length > 0 ? scopes : ['others'];
}
const allowed = (user: User, needs: number) => DEALS.filter((d) => scopesOf(d, user).some((s) => levelOf(user.role, s) >= needs)).map((d) => d.id);

const db = useTestDatabase(async (admin) => {
  await installModel(admin, model);
  const values = (rows: readonly (readonly unknown[])[]) => rows.map((r) => `(${r.map((v) => (v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : v)).join(', ')})`).join(', ');
  await admin.unsafe(`
    INSERT INTO ${S}.rights VALUES ${values(ROLES.flatMap((r) => SCOPES.map((s) => [r, 'deal', s, LEVELS[levelOf(r, s)]!])))};
    INSERT INTO ${S}.users VALUES ${values(USERS.map((u) => [u.id, u.role, u.team]))}, (9, 0, NULL);
    INSERT INTO ${S}.memberships VALUES ${values(USERS.flatMap((u) => u.teams.map((team, i) => [u.id * 10 + i, u.id, team])))};
    INSERT INTO ${S}.deals VALUES ${values(DEALS.map((d) => [d.id, d.owner, d.team]))};
    ANALYZE;
  `);
});


describe('rightsMatrix', () => {
  it('reads exactly the rows whose scopes grant read, for every combination of rights, NULLs included', async () => {
    for (const user of USERS) {
      const expected = allowed(user, 1);
      const marked = await db.current.as(S, user.id, (tx) => ids(tx, `SELECT id FROM ${S}.deals`));
      const plain = await db.current.as(S, user.id, async (tx) => (await dropMarks(tx), ids(tx, `SELECT id FROM ${S}.deals`)));
      expect(marked, `user ${user.id} (role ${user.role})`).toEqual(expected);
      expect(plain, `user ${user.id} (role ${user.role}), no planner marks`).toEqual(expected);
    }
    // The NULL rows are there to be seen: a role with write in every scope sees every deal.
    expect(await db.current.as(S, USERS.find((u) => u.role === 80)!.id, (tx) => ids(tx, `SELECT id FROM ${S}.deals`))).toHaveLength(DEALS.length);
    // No identity: nothing, whatever the roles grant.
    expect(await db.current.as(S, null, (tx) => ids(tx, `SELECT id FROM ${S}.deals`))).toEqual([]);
  });

  it('updates exactly the rows whose scopes grant write, with and without the planner marks', async () => {
    const update = `UPDATE ${S}.deals SET owner_id = owner_id RETURNING id`;
    for (const user of USERS) {
      const marked = await db.current.as(S, user.id, (tx) => ids(tx, update));
      const plain = await db.current.as(S, user.id, async (tx) => (await dropMarks(tx), ids(tx, update)));
      expect(marked, `user ${user.id} (role ${user.role})`).toEqual(allowed(user, 2));
      expect(plain, `user ${user.id} (role ${user.role}), no planner marks`).toEqual(allowed(user, 2));
    }
  });

  it("set_session's marks say of each guard what the facts themselves say, for every combination of rights", async () => {
    // plan_marks reads both scope lists with one scan of the rights (fuseArrayReads); the facts'
    // own functions read one list each. The marks must not depend on which did the reading.
    const body = (await db.current.admin`SELECT pg_get_functiondef(${`${S}.plan_marks()`}::regprocedure) AS def`)[0]!.def as string;
    expect(body).toContain(`FROM "${S}"."rights" AS rg_src WHERE`);
    for (const user of USERS) {
      const { set, byFacts } = await db.current.as(S, user.id, (tx) => guardMarks(tx, model));
      expect(byFacts.length, `user ${user.id}`).toBeGreaterThan(0);
      expect(set, `user ${user.id} (role ${user.role})`).toEqual(byFacts);
    }
  });

  it('a role with read in every scope admits the row at the first arm: the other arms\' facts are never computed', async () => {
    const everyScope = USERS.find((u) => u.role === 40 && u.team === null)!; // read in all four scopes
    const plan = await db.current.as(S, everyScope.id, async (tx) => {
      await dropMarks(tx); // every arm in the plan, the scope arms' InitPlans too
      return planText(tx, `(ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id FROM ${S}.deals WHERE id = 5`);
    });
    const initPlans = plan.split(/\n(?=\s*InitPlan)/).slice(1);
    const ran = initPlans.filter((p) => !p.includes('never executed'));
    expect(ran.length, plan).toBe(1);
    expect(ran[0], plan).toContain(`'{own,team,teams,others}'::text[] <@ ${S}.deal_scopes_with_read()`);
    expect(initPlans.length, plan).toBeGreaterThan(3);
  });
});

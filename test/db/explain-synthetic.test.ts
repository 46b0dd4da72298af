// Explain against policy shapes the SmartOffice model does not use: RESTRICTIVE policies, FOR ALL
// policies (whose USING doubles as WITH CHECK), and an UPDATE whose USING admits the row while its
// WITH CHECK refuses it (PostgreSQL raises 42501 instead of skipping the row). The model is
// compiled by the real emitters and installed into this test's database.
import { describe, expect, it } from 'vitest';
import { and, defineModel, scalarOf, t } from '../../generator/dsl/index.ts';
import { explainRow } from '../../generator/explain/explain.ts';
import { formatExplanation } from '../../generator/explain/format.ts';
import { EXPLAIN_COMMANDS } from '../../generator/explain/plan.ts';
import { collectReport, type TreeNode } from '../../generator/report/collect.ts';
import { checkAgreement } from '../support/agreement.ts';
import { installModel, useTestDatabase } from '../support/db.ts';

const model = {
  ...defineModel('rg_synthetic', (m) => {
    const users = m.table('users', { id: t.bigint().primaryKey(), team: t.text().notNull(), name: t.text() });
    const docs = m.table('docs', {
      id: t.bigint().primaryKey(),
      team: t.text().notNull(),
      owner_id: t.bigint().notNull().references(users),
      archived: t.boolean().default(false),
      secret: t.boolean().default(false),
    });
    const groupMembers = m.table('group_members', { member_id: t.text().notNull(), group_id: t.text().notNull() }, { primaryKey: ['member_id', 'group_id'] });
    m.hierarchy('group_tree', { table: groupMembers, child: 'member_id', parent: 'group_id' });
    m.identity(users);
    const myTeam = m.fact('my_team', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team }))), { description: "The acting user's team." });
    m.policy(docs, 'docs_team_reads', { for: 'select', description: 'My team reads its documents.', using: (d) => d.team.eq(myTeam) });
    m.policy(docs, 'docs_owner', { for: 'all', description: 'Owners do anything with their own documents.', using: (d) => d.owner_id.eq(m.me) });
    m.policy(docs, 'docs_not_archived', { for: 'select', restrictive: true, description: 'Archived documents are hidden.', using: (d) => d.archived.isNotTrue() });
    m.policy(docs, 'docs_team_edits', {
      for: 'update',
      description: 'My team edits its documents, but a secret document may only be left by its owner.',
      using: (d) => d.team.eq(myTeam),
      check: (d) => and(d.team.eq(myTeam), d.secret.isNotTrue()),
    });
    m.policy(docs, 'docs_team_deletes', { for: 'delete', using: (d) => d.team.eq(myTeam) });
    m.policy(docs, 'docs_delete_own_only', { for: 'delete', restrictive: true, description: 'Only owners delete.', using: (d) => d.owner_id.eq(m.me) });
    m.policy(users, 'users_read', { for: 'select', using: () => m.me.isNotNull() });
  }),
  file: 'test/db/explain-synthetic.test.ts',
};

const db = useTestDatabase(async (admin) => {
  await installModel(admin, model);
  await admin.unsafe(`
    INSERT INTO rg_synthetic.users VALUES (1, 'a', 'Ana'), (2, 'a', 'Ben'), (3, 'b', 'Cy');
    INSERT INTO rg_synthetic.docs (id, team, owner_id, archived, secret) VALUES
      (10, 'a', 1, false, false), (11, 'a', 2, false, true), (12, 'b', 1, false, false),
      (13, 'a', 1, true, false), (14, 'b', 3, false, false), (15, 'a', 3, true, true),
      (9007199254740993, 'a', 2, false, false);
    -- u1 is in g2 and g3, both in g1 (a DAG); c1 and c2 contain each other (a cycle).
    INSERT INTO rg_synthetic.group_members VALUES ('g2', 'g1'), ('g3', 'g1'), ('u1', 'g2'), ('u1', 'g3'), ('c1', 'c2'), ('c2', 'c1');`);
});
const explain = (user: number, id: number | string, command: 'select' | 'update' | 'delete') =>
  explainRow(db.current.admin, [model], { schema: 'rg_synthetic', table: 'docs', user: String(user), id: String(id), command });

describe('explain: restrictive and FOR ALL policies, failing WITH CHECK', () => {
  it('a bigint id beyond JavaScript numbers is evaluated and shown exactly', async () => {
    const x = await explain(1, '9007199254740993', 'select');
    expect(x.allowed).toBe(true);
    expect(x.row).toMatchObject({ id: '9007199254740993', owner_id: 2 });
  });

  for (const command of EXPLAIN_COMMANDS) {
    it(`${command.toUpperCase()}: agrees with PostgreSQL for every user × row`, async () => {
      const run = await checkAgreement(db.current, [model], model, [1, 2, 3], command, () => 100);
      expect(run.disagreements).toEqual([]);
      if (command === 'update') expect(run.outcomes.refused).toBeGreaterThan(0);
    });
  }

  it('an owner still cannot see an archived document: the restrictive policy refuses it', async () => {
    const x = await explain(1, 13, 'select');
    expect(x.allowed).toBe(false);
    expect(x.stages[0]!.grantedBy).toEqual(['docs_owner', 'docs_team_reads']);
    expect(x.stages[0]!.refusedBy).toEqual(['docs_not_archived']);
    expect(x.summary).toBe('DENIED: user 1 (Ana) may not SELECT rg_synthetic.docs row id = 13: the restrictive policy docs_not_archived refuses it.');
    expect(formatExplanation(x)).toContain('✗ policy docs_not_archived (restrictive, FOR SELECT) refuses — Archived documents are hidden.');
  });

  it('a FOR ALL policy grants reads of an own document in another team', async () => {
    const x = await explain(1, 12, 'select');
    expect(x.allowed).toBe(true);
    expect(x.stages[0]!.grantedBy).toEqual(['docs_owner']);
  });

  it('USING admits the secret document but WITH CHECK refuses the new row: PostgreSQL raises 42501', async () => {
    const x = await explain(1, 11, 'update');
    expect(x.allowed).toBe(false);
    expect(x.stages.map((s) => [s.clause, s.admitted])).toEqual([
      ['using', true],
      ['using', true],
      ['check', false],
    ]);
    const text = formatExplanation(x);
    expect(text).toContain('UPDATE WITH CHECK: refused');
    expect(text).toContain('✗ secret is not true (false or NULL)   (false)');
  });

  it('a table with row-level security off: every row is reachable, and explain says why', async () => {
    await db.current.admin.unsafe('ALTER TABLE rg_synthetic.docs DISABLE ROW LEVEL SECURITY');
    try {
      const x = await explain(3, 13, 'select');
      expect(x.rowSecurityEnabled).toBe(false);
      expect(x.visibleToUser).toBe(true);
      expect(x.allowed).toBe(true);
      expect(x.summary).toBe('ALLOWED: user 3 (Cy) may SELECT rg_synthetic.docs row id = 13: row-level security is not enabled on the table.');
      expect(formatExplanation(x)).toContain('Row-level security is not enabled on rg_synthetic.docs');
    } finally {
      await db.current.admin.unsafe('ALTER TABLE rg_synthetic.docs ENABLE ROW LEVEL SECURITY');
    }
  });

  it('a restrictive DELETE policy: a team member may not delete a document someone else owns', async () => {
    const x = await explain(2, 10, 'delete');
    expect(x.allowed).toBe(false);
    expect(x.stages[1]!.grantedBy).toEqual(['docs_team_deletes']);
    expect(x.stages[1]!.refusedBy).toEqual(['docs_delete_own_only']);
  });
});

describe('report: an edge-table hierarchy', () => {
  const outline = (n: TreeNode): string => `${n.id}[${n.below}]${n.children.length > 0 ? `(${n.children.map(outline).join(', ')})` : ''}`;
  it('draws a node with two parents under each, counts distinct nodes below, lists a cycle', async () => {
    const data = await collectReport(db.current.admin, [model], []);
    const tree = data.models[0]!.hierarchies[0]!;
    expect(tree.roots.map(outline)).toEqual(['g1[3](g2[1](u1[0]), g3[1](u1[0]))']);
    expect(tree.onCycles).toEqual(['c1', 'c2']);
    expect(tree.nodeCount).toBe(6);
    // No sample: the first users stand in for personas, counted as app_user.
    expect(data.models[0]!.personas.map((p) => [p.id, p.visible.docs])).toEqual([
      ['1', 4], // team a: 10, 11 and the big id; own 12 in team b; archived 13 hidden
      ['2', 3],
      ['3', 2],
    ]);
    // group_members has no policy, hence no grant to app_user: no count, not an error.
    expect(data.models[0]!.personas[0]!.visible.group_members).toBeNull();
  });
});

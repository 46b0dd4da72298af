// Hierarchy walkers that a policy calls directly run with the caller's rights, so app_user must be
// able to call them; then they take any node, and must answer nothing without an identity. A
// model built in memory covers the case SmartOffice does not have (its walker is only used inside
// a fact, so app_user may not call it at all: see fail-closed.test.ts).
import { describe, expect, it } from 'vitest';
import { defineModel, scalarOf, t } from '../../generator/dsl/index.ts';
import { compileModel } from '../../generator/emit/index.ts';
import { renderScript } from '../../generator/migrations/render.ts';
import { validateModel } from '../../generator/validate/index.ts';
import { sqlState, useTestDatabase } from '../support/db.ts';

const model = defineModel('rg_orgs', (m) => {
  const orgs = m.table('orgs', { id: t.bigint().primaryKey(), parent_id: t.bigint().references('orgs'), name: t.text() });
  const members = m.table('members', { id: t.bigint().primaryKey(), org_id: t.bigint().notNull().references(orgs) });
  const docs = m.table('docs', { id: t.bigint().primaryKey(), org_id: t.bigint().notNull().references(orgs) });
  m.identity(members, { argument: 'member_id' });
  const tree = m.hierarchy('org_tree', { table: orgs, child: 'id', parent: 'parent_id' });
  const myOrg = m.fact('my_org', scalarOf(m.from(members, (x) => ({ where: x.id.eq(m.me), select: x.org_id }))));
  // Directly in policies: once with a per-statement argument, once with the row's own column.
  m.policy(orgs, 'orgs_select', { for: 'select', using: (o) => o.id.in(tree.descendantsOf(myOrg, { includeSelf: true })) });
  m.policy(docs, 'docs_select', { for: 'select', using: (d) => myOrg.in(tree.ancestorsOf(d.org_id, { includeSelf: true })) });
  m.policy(members, 'members_select', { for: 'select', using: (x) => x.id.eq(m.me) });
});

const validated = validateModel({ ...model, file: 'test/adversarial/walkers.test.ts' });
const sql = validated.result ? renderScript({ title: 'rg_orgs' }, compileModel(validated.result)) : '';

const db = useTestDatabase(async (admin) => {
  await admin.unsafe(sql);
  await admin.unsafe(`
    INSERT INTO rg_orgs.orgs VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 2, 'a1'), (4, 1, 'b');
    INSERT INTO rg_orgs.members VALUES (20, 2), (40, 4);
    INSERT INTO rg_orgs.docs VALUES (100, 1), (200, 2), (300, 3), (400, 4);`);
});

describe('walkers called by policies', () => {
  it('the model is valid', () => {
    expect(validated.problems).toEqual([]);
  });

  it('are granted to app_user and refuse to answer without an identity', async () => {
    expect(sql).toContain('GRANT EXECUTE ON FUNCTION "rg_orgs"."org_tree_descendants"(bigint, boolean) TO "app_user", "reporting_user";');
    expect(sql).toContain('IF $1 IS NULL OR "rg_orgs"."current_user_id"() IS NULL THEN');
    const n = await db.current.as('rg_orgs', null, async (tx) => (await tx`SELECT cardinality(rg_orgs.org_tree_descendants(1, true)) AS n, cardinality(rg_orgs.org_tree_ancestors(3, true)) AS m`)[0]);
    expect({ ...n }).toEqual({ n: 0, m: 0 });
  });

  it('drive the policies for an identified user', async () => {
    const seen = (id: number, table: string) => db.current.as('rg_orgs', id, async (tx) => (await tx.unsafe(`SELECT id FROM rg_orgs.${table} ORDER BY id`)).map((r) => Number(r.id)));
    expect(await seen(20, 'orgs')).toEqual([2, 3]);
    expect(await seen(20, 'docs')).toEqual([200, 300]);
    expect(await seen(40, 'orgs')).toEqual([4]);
    expect(await seen(40, 'docs')).toEqual([400]);
  });

  it('a walker used only by facts is not callable by app_user', async () => {
    expect(await sqlState(db.current.as('smartoffice', null, (tx) => tx`SELECT smartoffice.office_tree_descendants(1, true)`))).toBe('42501');
  });
});

// Exact SQL of seed rows, membership functions and the rights-matrix expansion.
import { describe, expect, it } from 'vitest';
import { arrayOf, defineModel, t } from '../../generator/dsl/index.ts';
import { compileModel } from '../../generator/emit/index.ts';
import { validateModel } from '../../generator/validate/index.ts';
import { ownOrOthersMatrix } from '../support/rights.ts';

function compile(build: Parameters<typeof defineModel>[1]) {
  const { result, problems } = validateModel({ ...defineModel('crm', build), file: 'policies/crm.ts' });
  return { problems, statements: result ? new Map(compileModel(result).flatMap((s) => s.statements).map((s) => [s.id, s])) : new Map() };
}

const base = (m: Parameters<Parameters<typeof defineModel>[1]>[0]) => {
  const roles = m.table('roles', { id: t.bigint().primaryKey(), name: t.text() });
  const rights = m.table('rights', { role_id: t.bigint().notNull(), object: t.text().notNull(), scope: t.text().notNull(), level: t.text().notNull() }, { primaryKey: ['role_id', 'object', 'scope'] });
  const users = m.table('users', { id: t.bigint().primaryKey(), role_id: t.bigint() });
  const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint() });
  m.identity(users);
  return { roles, rights, users, deals };
};

describe('seed rows', () => {
  it('insert with ON CONFLICT DO NOTHING and delete exactly those keys on down', () => {
    const { statements } = compile((m) => m.seed(base(m).roles, [{ id: 1, name: "O'Neil" }, { id: 2, name: 'Admin' }]));
    expect(statements.get('seed crm.roles')).toMatchObject({
      up: `INSERT INTO "crm"."roles" ("id", "name") VALUES\n  (1, 'O''Neil'),\n  (2, 'Admin')\nON CONFLICT DO NOTHING;`,
      down: `DELETE FROM "crm"."roles" WHERE ("id") IN ((1), (2));`,
    });
  });
  it('refuses seed rows without their primary key', () => {
    const { problems } = compile((m) => m.seed(base(m).roles, [{ name: 'x' }]));
    expect(problems.map((p) => p.code)).toEqual(['seed-without-key']);
  });
});

describe('membership functions', () => {
  it('answer false without an identity and test the value against the set fact', () => {
    const { statements } = compile((m) => {
      const { users } = base(m);
      const mine = m.fact('my_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.id }))));
      m.membershipFunction('is_mine', { argument: 'value', type: 'bigint', set: mine });
    });
    expect(statements.get('function crm.is_mine')!.up).toContain(
      ['BEGIN', '  IF "crm"."current_user_id"() IS NULL THEN', '    RETURN false;', '  END IF;', '  RETURN coalesce($1 = any(("crm"."my_ids"())::bigint[]), false);', 'END'].join('\n'),
    );
  });
});

describe('rightsMatrix', () => {
  it('expands into one scopes fact per object and level, and index-drivable arms', () => {
    const { statements, problems } = compile((m) => {
      const { rights, users, deals } = base(m);
      const matrix = ownOrOthersMatrix(m, { rights, users });
      m.policy(deals, 'deals_select', { for: 'select', using: matrix.allows(deals, 'deal', 'select') });
    });
    expect(problems).toEqual([]);
    expect(statements.get('function crm.deal_scopes_with_read')!.up).toContain(
      `RETURN CASE WHEN rg_fact.me IS NOT NULL THEN ARRAY(SELECT "q2"."scope" FROM "crm"."rights" AS "q2" WHERE ("q2"."role_id" = ((rg_fact.me_row."role_id"))::bigint)\nAND ("q2"."object" = 'deal')\nAND (array_position(ARRAY['none', 'read', 'write']::text[], "q2"."level") >= 2)) ELSE NULL END;`,
    );
    const policy = statements.get('policy crm.deals.deals_select')!.up;
    // The scope test is a sub-select (an InitPlan, computed once), not a CASE run for every row,
    // and one definer call for its two facts (combined.ts); the planner drops the arm for a role
    // without the scope (planner hints).
    expect(policy).toMatch(
      /\(NOT "crm"\."plan_fold_deal_scopes_with_read_has_own"\(\) AND "deals"\."owner_id" = \(SELECT "crm"\."rg_once_[0-9a-f]{12}"\(\) \/\* CASE WHEN 'own' = any\("crm"\."deal_scopes_with_read"\(\)::text\[\]\) THEN "crm"\."current_user_id"\(\) ELSE NULL END \*\/\)\)/,
    );
    // "others" is every row no scope's rule matches: NULL counts as no match.
    expect(policy).toContain(`AND (("deals"."owner_id" = (select "crm"."current_user_id"())) IS DISTINCT FROM true)`);
    expect(policy).not.toContain('"crm"."rights"');
    // A role with read in every scope reads every row: that arm comes first, the scopes read once.
    expect(policy).toMatch(
      /USING \(\n {4}\(\(NOT "crm"\."plan_when_[0-9a-f]{12}"\(\) AND "deals"\."id" >= \(SELECT CASE WHEN ARRAY\['own', 'others'\]::text\[\] <@ "crm"\."deal_scopes_with_read"\(\)::text\[\] THEN/,
    );
  });
});

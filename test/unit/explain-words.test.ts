// Conditions in words, and the OR-arm / AND-condition cut explain and the report share.
import { describe, expect, it } from 'vitest';
import { loadModels } from '../../generator/load.ts';
import { describeExpr } from '../../generator/explain/words.ts';
import { planCommand } from '../../generator/explain/plan.ts';

const { models } = await loadModels(process.cwd(), 'policies');
const so = models.find((m) => m.schema === 'smartoffice')!;
const fact = (name: string) => describeExpr(so.facts.find((f) => f.name === name)!.expr);

describe('describeExpr', () => {
  it('reads facts as sentences', () => {
    expect(fact('my_office_id')).toBe('the users.office_id of the users row where users.id is me (the acting user)');
    expect(fact('i_am_admin')).toBe('whether users.is_admin is true, for the users row where users.id is me (the acting user)');
    expect(fact('enterprise_office_ids')).toBe('if i_have_enterprise_view: my_office_id and every node below my_office_id in office_tree; otherwise NULL');
    expect(fact('my_open_office_id')).toBe(
      'if there is an offices row where (offices.id is my_office_id) and (offices.office_security is false): my_office_id; otherwise NULL',
    );
    expect(fact('acting_for_ids')).toBe('[me (the acting user)] together with every proxies.agent_id of proxies rows where proxies.proxy_id is me (the acting user)');
  });
  it('says that a policy\'s sub-queries see only the rows the caller may see (a fact, as its definer, sees every row)', () => {
    const shares = so.policies.find((p) => p.name === 'contact_assignments_select')!.using!;
    expect(describeExpr(shares, { asCaller: true })).toBe('there is a contacts row I can see where contacts.id is contact_id');
    expect(describeExpr(so.facts.find((f) => f.name === 'acting_for_ids')!.expr, { asCaller: true })).toContain('of proxies rows I can see where');
  });
  it('edge cases of the logic', () => {
    expect(describeExpr({ kind: 'and', items: [] })).toBe('always');
    expect(describeExpr({ kind: 'or', items: [] })).toBe('never');
    expect(describeExpr({ kind: 'is-null', negated: false, expr: { kind: 'fact', name: 'f' } })).toBe('f is NULL');
    expect(describeExpr({ kind: 'compare', op: '>=', left: { kind: 'fact', name: 'a' }, right: { kind: 'literal', value: 3 } })).toBe('a is at least 3');
  });
  it("reads Collect!'s routing arm (anyOf) as one condition over its four fields", () => {
    const collect = models.find((m) => m.schema === 'collect')!;
    const [select] = planCommand(collect, 'debtors', 'select');
    const words = select!.policies[0]!.arms.flatMap((a) => a.conditions.map((c) => c.words));
    expect(words).toContain('one of operator_id, sales_id, clerk_id, access_id is one of my_principal_ids');
  });
  it("reads SuperOffice's every-scope arm (allOf) as one condition over the scopes", () => {
    const superoffice = models.find((m) => m.schema === 'superoffice')!;
    const [select] = planCommand(superoffice, 'contacts', 'select');
    const words = select!.policies[0]!.arms[0]!.conditions.map((c) => c.words).join(' ');
    expect(words).toContain("each of 'own', 'primary_group', 'secondary_group', 'others' is one of contact_scopes_with_read");
  });
});

describe('planCommand', () => {
  it('cuts each policy into OR arms of AND conditions, printed as the policy prints them', () => {
    const [select] = planCommand(so, 'contacts', 'select');
    const arms = select!.policies[0]!.arms;
    expect(arms.map((a) => a.conditions.length)).toEqual([2, 2, 2, 3, 2, 2]);
    expect(arms[2]!.conditions.map((c) => c.sql)).toEqual([
      '"contacts"."is_private" = false',
      '"contacts"."assignee_keys" && (select "smartoffice"."my_office_assignee_keys"())::text[]',
    ]);
    expect(arms[2]!.conditions.map((c) => c.facts)).toEqual([[], ['my_office_assignee_keys']]);
    // "Assigned to nobody" reads the trigger-maintained counter of the row itself.
    expect(arms[3]!.conditions.map((c) => [c.sql, c.words, c.facts])).toEqual([
      ['"contacts"."is_private" = false', 'is_private is false', []],
      ['"contacts"."office_id" = (select "smartoffice"."my_office_id"())', 'office_id is my_office_id', ['my_office_id']],
      ['"contacts"."assignment_count" = 0', 'assignment_count is 0', []],
    ]);
  });
  it('UPDATE checks SELECT and UPDATE USING on the row and UPDATE WITH CHECK on the new row', () => {
    expect(planCommand(so, 'contacts', 'update').map((s) => [s.command, s.clause, s.policies.map((p) => p.policy.name)])).toEqual([
      ['select', 'using', ['contacts_select']],
      ['update', 'using', ['contacts_update']],
      ['update', 'check', ['contacts_update']],
    ]);
    expect(planCommand(so, 'users', 'delete').map((s) => s.policies.length)).toEqual([1, 0]);
  });
});

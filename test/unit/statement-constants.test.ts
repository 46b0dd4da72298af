// How values that are the same for every row of a statement are printed, so PostgreSQL computes
// them once and keeps its index plans: a flag OR'd into a fact's query becomes a key range, and a
// CASE over facts compared with a column becomes a sub-select (an InitPlan).
import { describe, expect, it } from 'vitest';
import { arrayOf, coalesce, defineModel, exists, lit, or, scalarOf, t, when } from '../../generator/dsl/index.ts';
import { compileModel } from '../../generator/emit/index.ts';
import { validateModel } from '../../generator/validate/index.ts';

function compile(build: Parameters<typeof defineModel>[1]) {
  const { result, problems } = validateModel({ ...defineModel('crm', build), file: 'policies/crm.ts' });
  expect(problems).toEqual([]);
  return new Map(compileModel(result!).flatMap((s) => s.statements).map((s) => [s.id, s.up]));
}

const base = (m: Parameters<Parameters<typeof defineModel>[1]>[0]) => {
  const users = m.table('users', { id: t.bigint().primaryKey(), admin: t.boolean(), region: t.bigint() });
  const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint(), region: t.bigint() });
  m.identity(users);
  const iAmAdmin = m.fact('i_am_admin', when(scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.admin }))), true, false), { type: 'boolean' });
  const myRegion = m.fact('my_region', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.region }))));
  return { users, deals, iAmAdmin, myRegion };
};

describe('statement constants', () => {
  it("a flag OR'd into a fact's query is a range on the queried table's key; the per-row arms stay as they are", () => {
    const sql = compile((m) => {
      const { deals, iAmAdmin, myRegion } = base(m);
      m.fact('deal_ids', arrayOf(m.from(deals, (d) => ({ where: or(iAmAdmin, d.region.eq(myRegion)), select: d.id }))));
    }).get('function crm.deal_ids')!;
    expect(sql).toMatch(/WHERE \("q\d+"\."id" >= \(SELECT CASE WHEN .* THEN '-9223372036854775808'::bigint END\) AND "q\d+"\."id" <= '9223372036854775807'::bigint\)/s);
    // The flag is computed once: it appears in the lower bound only (read from the user's row, fetched once).
    expect(sql.match(/me_row\."admin"/g)?.length).toBe(1);
    expect(sql).toContain('SELECT u."admin", u."region" INTO rg_fact.me_row FROM "crm"."users" AS u WHERE u."id" = rg_fact.me;');
    expect(sql).toMatch(/\nOR \("q\d+"\."region" = /);
  });

  it('a CASE over facts compared with a column is a sub-select; one that reads the row, or only literals, stays inline', () => {
    const sql = compile((m) => {
      const { deals, iAmAdmin, myRegion } = base(m);
      m.policy(deals, 'deals_select', {
        for: 'select',
        using: (d) =>
          or(d.region.eq(when(iAmAdmin, myRegion, null)), d.owner_id.eq(when(d.region.isNull(), 1, 2)), d.id.eq(coalesce(lit(null, 'bigint'), lit(7, 'bigint')))),
      });
    }).get('policy crm.deals.deals_select')!;
    // Guarded by a fact: the planner drops it for a user whose fact is not true (planner hints).
    // Of two facts: one call that computes both, with what it computes beside it (next test).
    expect(sql).toMatch(
      /\(NOT "crm"\."plan_fold_i_am_admin"\(\) AND "deals"\."region" = \(SELECT "crm"\."rg_once_[0-9a-f]{12}"\(\) \/\* CASE WHEN "crm"\."i_am_admin"\(\) THEN "crm"\."my_region"\(\) ELSE NULL END \*\/\)\)/,
    );
    expect(sql).toContain(`("deals"."owner_id" = CASE WHEN "deals"."region" IS NULL THEN`);
    expect(sql).toContain(`("deals"."id" = coalesce(`);
  });

  it('a statement value of two facts or more is one definer call that reads the identity once; one fact, or one that reads a table, stays as it is', () => {
    const sql = compile((m) => {
      const { users, deals, iAmAdmin, myRegion } = base(m);
      const adminRegion = when(iAmAdmin, myRegion, null);
      m.policy(deals, 'deals_select', { for: 'select', using: (d) => or(d.region.eq(adminRegion), d.owner_id.eq(when(iAmAdmin, m.me, null)), d.id.eq(coalesce(myRegion, lit(7, 'bigint')))) });
      m.policy(deals, 'deals_update', { for: 'update', using: (d) => d.region.eq(adminRegion), check: (d) => d.region.eq(adminRegion) });
      // Its EXISTS reads users as the caller, under their row-level security: it stays in the policy.
      const regionHasAdmin = exists(m.from(users, (u) => ({ where: u.region.eq(myRegion) })));
      m.policy(deals, 'deals_delete', { for: 'delete', using: (d) => d.region.eq(when(regionHasAdmin, myRegion, null)) });
    });
    const select = sql.get('policy crm.deals.deals_select')!;
    const calls = [...select.matchAll(/\(SELECT "crm"\."(rg_once_[0-9a-f]{12})"\(\) \/\* (.*?) \*\/\)/g)].map(([, name, text]) => ({ name: name!, text }));
    expect(calls.map((c) => c.text)).toEqual([
      'CASE WHEN "crm"."i_am_admin"() THEN "crm"."my_region"() ELSE NULL END',
      'CASE WHEN "crm"."i_am_admin"() THEN "crm"."current_user_id"() ELSE NULL END',
    ]);
    // One fact is one call already: it stays a sub-select of its own.
    expect(select).toContain('("deals"."id" = (SELECT coalesce("crm"."my_region"(), 7::bigint)))');
    // The function has a fact's body: facts inlined, the identity and the user's row read once.
    const fn = sql.get(`function crm.${calls[0]!.name}`)!;
    expect(fn).toContain('SECURITY DEFINER');
    expect(fn).toContain('  me bigint := "crm"."current_user_id"();');
    expect(fn).toContain('  IF rg_fact.me IS NULL THEN\n    RETURN NULL;\n  END IF;');
    expect(fn).toContain('SELECT u."admin", u."region" INTO rg_fact.me_row FROM "crm"."users" AS u WHERE u."id" = rg_fact.me;');
    expect(fn).toContain('RETURN CASE WHEN (CASE WHEN (rg_fact.me_row."admin") THEN true ELSE false END)::boolean THEN ((rg_fact.me_row."region"))::bigint ELSE NULL END;');
    expect(fn).toContain('GRANT EXECUTE ON FUNCTION "crm".');
    // The same value in another policy, and in both of an update's clauses, is the same function.
    expect(sql.get('policy crm.deals.deals_update')!.match(new RegExp(calls[0]!.name, 'g'))).toHaveLength(2);
    expect([...sql.keys()].filter((id) => id.startsWith('function crm.rg_once_'))).toHaveLength(2);
    expect(sql.get('policy crm.deals.deals_delete')).toContain('(SELECT CASE WHEN EXISTS (SELECT 1 FROM "crm"."users"');
  });

  it('facts are plain calls where the expression is evaluated once, and sub-selects inside queries, which run per row', () => {
    const sql = compile((m) => {
      const { users, deals, iAmAdmin, myRegion } = base(m);
      // Inside the hoisted CASE the fact is evaluated once; inside its EXISTS it would run per row scanned.
      const regionHasAdmin = exists(m.from(users, (u) => ({ where: u.region.eq(myRegion).and(u.admin.eq(true)) })));
      m.policy(deals, 'deals_select', { for: 'select', using: (d) => d.region.eq(when(regionHasAdmin.or(iAmAdmin), myRegion, null)) });
      m.guardColumns(deals, 'deals_region_fixed', { columns: ['region'], when: () => iAmAdmin.not(), message: 'only admins move deals' });
    });
    const policy = sql.get('policy crm.deals.deals_select')!;
    expect(policy).toMatch(/\(SELECT CASE WHEN EXISTS \(SELECT 1 FROM "crm"\."users" AS "q\d+" WHERE \("q\d+"\."region" = \(select "crm"\."my_region"\(\)\)\)/);
    expect(policy).toContain('OR "crm"."i_am_admin"() THEN "crm"."my_region"() ELSE NULL END)');
    // A PL/pgSQL IF with no sub-select is evaluated without running a query.
    expect(sql.get('function crm.deals_region_fixed')).toContain('AND coalesce(NOT "crm"."i_am_admin"(), false) THEN');
  });
});

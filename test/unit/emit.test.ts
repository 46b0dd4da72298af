// The exact SQL of small cases, stated inline next to the DSL that produces it.
import { describe, expect, it } from 'vitest';
import { and, arrayOf, defineModel, exists, not, or, raw, scalarOf, t, when } from '../../generator/dsl/index.ts';
import { compileModel } from '../../generator/emit/index.ts';
import { renderMigration, renderScript } from '../../generator/migrations/render.ts';
import { dollarQuote, ident, literal } from '../../generator/sql/print.ts';
import { validateModel } from '../../generator/validate/index.ts';

function compile(build: Parameters<typeof defineModel>[1]) {
  const { result, problems } = validateModel({ ...defineModel('crm', build), file: 'policies/crm.ts' });
  expect(problems).toEqual([]);
  const sections = compileModel(result!);
  const byId = new Map(sections.flatMap((s) => s.statements).map((s) => [s.id, s]));
  return { sections, up: (id: string) => byId.get(id)?.up, down: (id: string) => byId.get(id)?.down };
}

const crm = (extra: (m: Parameters<Parameters<typeof defineModel>[1]>[0], tables: ReturnType<typeof baseTables>) => void) => (m: Parameters<Parameters<typeof defineModel>[1]>[0]) => {
  const tables = baseTables(m);
  m.identity(tables.users);
  extra(m, tables);
};

function baseTables(m: Parameters<Parameters<typeof defineModel>[1]>[0]) {
  const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint(), is_manager: t.boolean().default(false) });
  const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint().notNull().references('users'), team_id: t.bigint(), name: t.text() });
  return { users, deals };
}

describe('printing', () => {
  it('quotes identifiers and literals', () => {
    expect(ident('a"b')).toBe('"a""b"');
    expect(literal("O'Brien")).toBe("'O''Brien'");
    expect(literal(null)).toBe('NULL');
    expect(literal(true)).toBe('true');
  });
  it('dollar-quotes with a tag absent from the body', () => {
    expect(dollarQuote('select 1')).toBe('$rg$\nselect 1\n$rg$');
    expect(dollarQuote('select $rg$x$rg$')).toBe('$rg1$\nselect $rg$x$rg$\n$rg1$');
  });
});

describe('policies', () => {
  it('a policy on the acting user prints an InitPlan, not a per-row call', () => {
    const { up } = compile(crm((m, { deals }) => m.policy(deals, 'deals_select', { for: 'select', using: (d) => d.owner_id.eq(m.me) })));
    expect(up('policy crm.deals.deals_select')).toBe(
      [
        '-- deals.select[0] "deals_select"',
        'CREATE POLICY "deals_select" ON "crm"."deals"',
        '  AS PERMISSIVE',
        '  FOR SELECT',
        '  TO "app_user", "reporting_user"',
        '  USING (',
        '    "deals"."owner_id" = (select "crm"."current_user_id"())',
        '  );',
      ].join('\n'),
    );
  });

  it('set membership in a fact is `= any((select f())::T[])` and the fact is a definer function', () => {
    const { up } = compile(
      crm((m, { users, deals }) => {
        const teammates = m.fact('teammate_ids', arrayOf(m.from(users, (u) => ({ where: u.team_id.eq(scalarOf(m.from(users, (me) => ({ where: me.id.eq(m.me), select: me.team_id })))), select: u.id }))));
        m.policy(deals, 'deals_team', { for: 'select', using: (d) => d.owner_id.in(teammates), restrictive: true, description: 'Deals of my team.' });
      }),
    );
    expect(up('policy crm.deals.deals_team')).toBe(
      [
        '-- deals.select[0] "deals_team": Deals of my team.',
        'CREATE POLICY "deals_team" ON "crm"."deals"',
        '  AS RESTRICTIVE',
        '  FOR SELECT',
        '  TO "app_user", "reporting_user"',
        '  USING (',
        '    "deals"."owner_id" = any((select "crm"."teammate_ids"())::bigint[])',
        // The planner hint (see test/unit/plan-hints.test.ts): no row changes, only estimates.
        `    AND (NOT "crm"."plan_hint_teammate_ids"() OR ("deals"."owner_id" >= (SELECT '-9223372036854775808'::bigint) AND "deals"."owner_id" <= (SELECT '9223372036854775807'::bigint)))`,
        '  );',
        `COMMENT ON POLICY "deals_team" ON "crm"."deals" IS 'Deals of my team.';`,
      ].join('\n'),
    );
    expect(up('function crm.teammate_ids')).toBe(
      [
        'CREATE FUNCTION "crm"."teammate_ids"() RETURNS bigint[]',
        // Restricted, not unsafe: a statement calling it may still run in parallel workers; the fact
        // runs in the leader, whose process id the identity's signature names.
        '  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED',
        '  SET search_path = pg_catalog, pg_temp',
        '  SET plan_cache_mode = force_generic_plan',
        'AS $rg$',
        // The identity is verified once per call, into a block-qualified variable no column can shadow.
        '<<rg_fact>>',
        'DECLARE',
        '  me bigint := "crm"."current_user_id"();',
        // Columns of the acting user's own row are read once, into a record, not one sub-select each.
        '  me_row record;',
        'BEGIN',
        '  IF rg_fact.me IS NULL THEN',
        '    RETURN NULL;',
        '  END IF;',
        '  SELECT u."team_id" INTO rg_fact.me_row FROM "crm"."users" AS u WHERE u."id" = rg_fact.me;',
        '  RETURN ARRAY(SELECT "q1"."id" FROM "crm"."users" AS "q1" WHERE "q1"."team_id" = (rg_fact.me_row."team_id"));',
        'END',
        '$rg$;',
        'ALTER FUNCTION "crm"."teammate_ids"() OWNER TO "rowguard_definer";',
        'REVOKE ALL ON FUNCTION "crm"."teammate_ids"() FROM PUBLIC;',
        'GRANT EXECUTE ON FUNCTION "crm"."teammate_ids"() TO "app_user", "reporting_user";',
      ].join('\n'),
    );
  });

  it('a distinct fact inlined into another fact through `= any` drops its DISTINCT there (ANY ignores duplicates); its own function, sets written in place and bounded counts keep it', () => {
    const { up } = compile(
      crm((m, { users, deals }) => {
        const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id, distinct: true }))));
        const managed = m.fact('managed_team_ids', when(scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_manager }))), arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id, distinct: true })))));
        const teamDeals = m.fact('team_deal_ids', arrayOf(m.from(deals, (d) => ({ where: or(d.team_id.in(teams), d.team_id.in(managed), d.team_id.in(arrayOf(m.from(users, (u) => ({ where: u.is_manager.eq(true), select: u.team_id, distinct: true }))))), select: d.id }))));
        m.policy(deals, 'deals_team', { for: 'select', using: (d) => or(d.id.in(teamDeals), d.team_id.in(teams)) });
      }),
    );
    expect(up('function crm.my_team_ids')).toContain('RETURN ARRAY(SELECT DISTINCT "q1"."team_id" FROM "crm"."users" AS "q1"');
    expect(up('function crm.managed_team_ids')).toContain('THEN ARRAY(SELECT DISTINCT "q3"."team_id"');
    const body = up('function crm.team_deal_ids') ?? '';
    // The inlined fact and the inlined CASE of a conditional fact: no aggregate.
    expect(body).toContain('"q4"."team_id" = any((ARRAY(SELECT "q1"."team_id" FROM "crm"."users" AS "q1" WHERE "q1"."id" = rg_fact.me))::bigint[]::bigint[])');
    expect(body).toContain('THEN ARRAY(SELECT "q3"."team_id" FROM "crm"."users" AS "q3" WHERE "q3"."id" = rg_fact.me) ELSE NULL END');
    // Written in place with distinct: true, it stays as asked.
    expect(body).toContain('"q4"."team_id" = any(ARRAY(SELECT DISTINCT "q5"."team_id" FROM "crm"."users" AS "q5" WHERE "q5"."is_manager" = true)::bigint[])');
    // The count set_session makes of the set (plan_marks) is cut at a number of rows: DISTINCT stays there.
    expect(up('function crm.plan_marks')).toContain('SELECT DISTINCT "q1"."team_id"');
  });

  it('update policies carry USING and WITH CHECK; boolean logic is flattened and parenthesised', () => {
    const { up } = compile(
      crm((m, { deals }) =>
        m.policy(deals, 'deals_update', {
          for: 'update',
          using: (d) => or(d.owner_id.eq(m.me), or(d.team_id.isNull(), not(d.name.eq('locked')))),
          check: (d) => and(d.owner_id.eq(m.me), d.name.isNotNull()),
        }),
      ),
    );
    expect(up('policy crm.deals.deals_update')).toBe(
      [
        '-- deals.update[0] "deals_update"',
        'CREATE POLICY "deals_update" ON "crm"."deals"',
        '  AS PERMISSIVE',
        '  FOR UPDATE',
        '  TO "app_user"',
        '  USING (',
        // Over 100 characters: one operand a line.
        '    ("deals"."owner_id" = (select "crm"."current_user_id"()))',
        '    OR ("deals"."team_id" IS NULL)',
        `    OR (NOT ("deals"."name" = 'locked'))`,
        '  )',
        '  WITH CHECK (',
        '    ("deals"."owner_id" = (select "crm"."current_user_id"())) AND ("deals"."name" IS NOT NULL)',
        '  );',
      ].join('\n'),
    );
  });

  it('exists over another table aliases the inner table so the policy row stays reachable', () => {
    const { up } = compile(crm((m, { users, deals }) => m.policy(deals, 'deals_manager', { for: 'delete', using: (d) => exists(m.from(users, (u) => ({ where: and(u.id.eq(d.owner_id), u.is_manager.isTrue()) }))) })));
    expect(up('policy crm.deals.deals_manager')).toContain(
      'EXISTS (SELECT 1 FROM "crm"."users" AS "q1" WHERE ("q1"."id" = "deals"."owner_id") AND ("q1"."is_manager" = true))',
    );
  });

  it('raw SQL is pasted in parentheses and flagged with its reason', () => {
    const { up } = compile(crm((m, { deals }) => m.policy(deals, 'deals_weekday', { for: 'select', using: (d) => and(d.owner_id.eq(m.me), raw('extract(dow from now()) < 6', { type: 'boolean', reason: 'office hours only' })) })));
    expect(up('policy crm.deals.deals_weekday')).toContain('-- raw SQL (escape hatch): office hours only');
    expect(up('policy crm.deals.deals_weekday')).toContain('AND (extract(dow from now()) < 6)');
  });

  it('a fact holding raw SQL, its own or one it reads, keeps no PARALLEL label (UNSAFE): raw SQL may do what a parallel plan forbids', () => {
    const { up } = compile(
      crm((m, { users, deals }) => {
        const quota = m.fact('my_quota', raw("nextval('crm.quota_seq')", { type: 'bigint', reason: 'a sequence, for the test' }));
        const teammates = m.fact('teammate_ids', arrayOf(m.from(users, (u) => ({ where: u.team_id.eq(quota), select: u.id }))));
        const mine = m.fact('my_id', m.me);
        m.policy(deals, 'deals_team', { for: 'select', using: (d) => or(d.owner_id.in(teammates), d.owner_id.eq(mine)) });
        m.membershipFunction('is_teammate', { argument: 'user_id', type: 'bigint', set: teammates });
        m.membershipFunction('is_me', { argument: 'user_id', type: 'bigint', set: arrayOf(m.from(users, (u) => ({ where: u.id.eq(mine), select: u.id }))) });
      }),
    );
    // A question calls the fact rather than inlining it: the raw SQL inside still counts.
    expect(up('function crm.is_teammate')).toContain('  LANGUAGE plpgsql STABLE SECURITY DEFINER\n');
    expect(up('function crm.is_me')).toContain('  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED\n');
    expect(up('function crm.my_quota')).toContain('  LANGUAGE plpgsql STABLE SECURITY DEFINER\n');
    // Inlined into teammate_ids, the raw SQL makes it unlabelled too; a fact without any is restricted.
    expect(up('function crm.teammate_ids')).toContain('  LANGUAGE plpgsql STABLE SECURITY DEFINER\n');
    expect(up('function crm.my_id')).toContain('  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED\n');
  });

  it('a conditional fact is NULL when its condition fails, so `= (select f())` matches nothing', () => {
    const { up } = compile(
      crm((m, { users, deals }) => {
        const managedTeam = m.fact('managed_team_id', when(exists(m.from(users, (u) => ({ where: and(u.id.eq(m.me), u.is_manager.isTrue()) }))), scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id })))));
        m.policy(deals, 'deals_managed', { for: 'select', using: (d) => d.team_id.eq(managedTeam) });
      }),
    );
    expect(up('function crm.managed_team_id')).toContain(
      '  RETURN CASE WHEN (rg_fact.me_row."id" IS NOT NULL AND (rg_fact.me_row."is_manager" = true) IS TRUE) THEN (rg_fact.me_row."team_id") ELSE NULL END;',
    );
    // Both lookups of the user's own row read one record, the key among its fields: the EXISTS is
    // "found, and the test holds", never NULL.
    expect(up('function crm.managed_team_id')).toContain('  SELECT u."id", u."is_manager", u."team_id" INTO rg_fact.me_row FROM "crm"."users" AS u WHERE u."id" = rg_fact.me;');
  });
});

describe('descriptions and reasons in SQL comments', () => {
  it('a description or raw reason with line breaks stays a comment on every line', () => {
    const { up } = compile(
      crm((m, { deals }) => {
        m.policy(deals, 'deals_mine', { for: 'select', using: (d) => d.owner_id.eq(m.me), description: 'Mine.\nDROP TABLE crm.deals; --' });
        m.policy(deals, 'deals_raw', { for: 'select', using: () => raw('true', { type: 'boolean', reason: 'a reason\rover lines' }) });
      }),
    );
    expect(up('policy crm.deals.deals_mine')).toContain('-- deals.select[0] "deals_mine": Mine.\n-- DROP TABLE crm.deals; --\nCREATE POLICY');
    expect(up('policy crm.deals.deals_raw')).toContain('-- raw SQL (escape hatch): a reason\n-- over lines\nCREATE POLICY');
  });
});

describe('hierarchy walks in facts', () => {
  it('a fact reads the closure table in place of the walker call; a node that is not a plain reference is computed once', () => {
    const { up } = compile(
      crm((m, { users, deals }) => {
        const teams = m.table('teams', { id: t.bigint().primaryKey(), parent_id: t.bigint() });
        const tree = m.hierarchy('team_tree', { table: teams, child: 'id', parent: 'parent_id' });
        const myTeam = scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id })));
        const dealTeam = scalarOf(m.from(deals, (d) => ({ where: d.owner_id.eq(m.me), select: d.team_id })));
        const below = m.fact('teams_below_mine', tree.descendantsOf(myTeam, { includeSelf: true }));
        const belowDeal = m.fact('teams_below_my_deal', tree.descendantsOf(dealTeam, { includeSelf: true }));
        const above = m.fact('teams_above_me', tree.ancestorsOf(m.me));
        const aboveDeal = m.fact('teams_above_my_deal', tree.ancestorsOf(dealTeam));
        m.policy(deals, 'deals_teams', { for: 'select', using: (d) => or(d.team_id.in(below), d.team_id.in(belowDeal), d.team_id.in(above), d.team_id.in(aboveDeal)) });
      }),
    );
    // A field of the identity's row: read where it is needed.
    expect(up('function crm.teams_below_mine')).toContain(
      '  RETURN ARRAY(SELECT rg_closure."descendant" FROM "crm"."team_tree_closure" AS rg_closure WHERE rg_closure."ancestor" = (rg_fact.me_row."team_id") UNION ALL SELECT (rg_fact.me_row."team_id") WHERE (rg_fact.me_row."team_id") IS NOT NULL);',
    );
    // A query: run once, in a sub-select PostgreSQL does not pull up, with or without the node itself.
    expect(up('function crm.teams_below_my_deal')).toContain(
      '  RETURN (SELECT ARRAY(SELECT rg_closure."descendant" FROM "crm"."team_tree_closure" AS rg_closure WHERE rg_closure."ancestor" = rg_walk.node UNION ALL SELECT rg_walk.node WHERE rg_walk.node IS NOT NULL) FROM (SELECT ((SELECT "q2"."team_id" FROM "crm"."deals" AS "q2" WHERE "q2"."owner_id" = rg_fact.me LIMIT 1))::bigint OFFSET 0) AS rg_walk(node));',
    );
    expect(up('function crm.teams_above_my_deal')).toContain(
      '  RETURN (SELECT ARRAY(SELECT rg_closure."ancestor" FROM "crm"."team_tree_closure" AS rg_closure WHERE rg_closure."descendant" = rg_walk.node) FROM (SELECT ((SELECT "q2"."team_id" FROM "crm"."deals" AS "q2" WHERE "q2"."owner_id" = rg_fact.me LIMIT 1))::bigint OFFSET 0) AS rg_walk(node));',
    );
    expect(up('function crm.teams_above_me')).toContain(
      '  RETURN ARRAY(SELECT rg_closure."ancestor" FROM "crm"."team_tree_closure" AS rg_closure WHERE rg_closure."descendant" = rg_fact.me);',
    );
    for (const fact of ['teams_below_mine', 'teams_below_my_deal', 'teams_above_me', 'teams_above_my_deal']) expect(up(`function crm.${fact}`)).not.toMatch(/team_tree_(descendants|ancestors)/);
    // The walkers stay, for policies, masked views and hand-written SQL.
    expect(up('function crm.team_tree_descendants')).toContain('SELECT c."descendant" FROM "crm"."team_tree_closure" AS c WHERE c."ancestor" = $1');
  });
});

describe('tables, grants and indexes', () => {
  it('creates tables with foreign keys added afterwards, forced RLS, grants per command and indexes for policy columns', () => {
    const { up, down } = compile(crm((m, { deals }) => m.policy(deals, 'deals_select', { for: 'select', using: (d) => d.team_id.eq(m.me) })));
    expect(up('table crm.deals')).toBe(
      ['CREATE TABLE "crm"."deals" (', '  "id" bigint,', '  "owner_id" bigint NOT NULL,', '  "team_id" bigint,', '  "name" text,', '  PRIMARY KEY ("id")', ');'].join('\n'),
    );
    expect(up('foreign key crm.deals.owner_id')).toBe(
      'ALTER TABLE "crm"."deals"\n  ADD CONSTRAINT "deals_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "crm"."users" ("id");',
    );
    expect(up('rls crm.deals')).toBe('ALTER TABLE "crm"."deals" ENABLE ROW LEVEL SECURITY;\nALTER TABLE "crm"."deals" FORCE ROW LEVEL SECURITY;');
    expect(up('grants crm.deals')).toBe(
      'GRANT SELECT ON "crm"."deals" TO "rowguard_definer";\nGRANT SELECT ON "crm"."deals" TO "app_user";\nGRANT SELECT ON "crm"."deals" TO "reporting_user";',
    );
    expect(up('grants crm.users')).toBe('GRANT SELECT ON "crm"."users" TO "rowguard_definer";');
    expect(up('index crm.deals_team_id_idx')).toBe('CREATE INDEX "deals_team_id_idx" ON "crm"."deals" ("team_id");');
    expect(up('index crm.deals_owner_id_idx')).toBe('CREATE INDEX "deals_owner_id_idx" ON "crm"."deals" ("owner_id");');
    expect(down('index crm.deals_team_id_idx')).toBe('DROP INDEX "crm"."deals_team_id_idx";');
  });

  it('renders a migration whose down reverses every up in reverse order, with no timestamps', () => {
    const { sections } = compile(crm((m, { deals }) => m.policy(deals, 'deals_select', { for: 'select', using: (d) => d.owner_id.eq(m.me) })));
    const text = renderMigration({ title: 'crm', source: 'policies/crm.ts' }, sections);
    const up = text.slice(text.indexOf('-- Up Migration'), text.indexOf('-- Down Migration'));
    const down = text.slice(text.indexOf('-- Down Migration'));
    expect(up.indexOf('CREATE SCHEMA "crm"')).toBeLessThan(up.indexOf('CREATE POLICY'));
    expect(down.indexOf('DROP POLICY "deals_select"')).toBeLessThan(down.indexOf('DROP TABLE "crm"."deals"'));
    expect(down.indexOf('DROP TABLE "crm"."deals"')).toBeLessThan(down.indexOf('DROP SCHEMA "crm"'));
    expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}/);
    expect(renderScript({ title: 'crm' }, sections)).toBe(renderScript({ title: 'crm' }, compile(crm((m, { deals }) => m.policy(deals, 'deals_select', { for: 'select', using: (d) => d.owner_id.eq(m.me) }))).sections));
  });
});

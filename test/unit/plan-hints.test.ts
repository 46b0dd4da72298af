// Planner hints (generator/emit/hints.ts): which arms get one, and the SQL that marks a fact as
// small for the acting user. What they do to plans, and that they never change a row, is tested
// against PostgreSQL in test/plan/smartoffice.test.ts.
import { describe, expect, it } from 'vitest';
import { and, anyOf, array, arrayOf, defineModel, exists, lit, not, or, scalarOf, t, when, type RowOf } from '../../generator/dsl/index.ts';
import { compileModel } from '../../generator/emit/index.ts';
import { marksHeldIn, planHints, sameShape } from '../../generator/emit/hints.ts';
import type { Expr } from '../../generator/model/nodes.ts';
import { validateModel } from '../../generator/validate/index.ts';
import { ownOrOthersMatrix } from '../support/rights.ts';

type Builder = Parameters<Parameters<typeof defineModel>[1]>[0];

function compile(build: (m: Builder) => void) {
  const { result, problems } = validateModel({ ...defineModel('crm', build), file: 'policies/crm.ts' });
  expect(problems).toEqual([]);
  const statements = compileModel(result!).flatMap((s) => s.statements);
  const find = (id: string) => statements.find((s) => s.id === id);
  return { ids: statements.map((s) => s.id), up: (id: string) => find(id)?.up ?? '', down: (id: string) => find(id)?.down ?? '' };
}

/** A policy's USING or WITH CHECK as printed, without the parentheses around it. */
function clauseOf(c: ReturnType<typeof compile>, id: string, word: 'USING' | 'WITH CHECK'): string {
  const found = new RegExp(`\\n {2}${word} \\(\\n([\\s\\S]*?)\\n {2}\\)`).exec(c.up(id));
  expect(found, `${id} ${word}`).not.toBeNull();
  return found![1]!;
}

/**
 * `NOT <plan_when_ function>()`: the test of several marks (given by their one-mark functions,
 * AND of groups, each an OR), found by what its body checks, in any order.
 */
function marksTest(c: ReturnType<typeof compile>, groups: string[][]): string {
  const key = (gs: string[][]) => gs.map((g) => [...g].sort().join(' OR ')).sort().join(' AND ');
  const schema = (h: string) => h.replace(/^plan_fold_/, 'rg_plan_crm_not_').replace(/^plan_hint_/, 'rg_plan_crm_few_').replace(/^plan_true_/, 'rg_plan_crm_is_');
  // With a not-true mark among them the test is the IF that returns false when it fails (the
  // counter is read after it: see the unit test of the marks' functions); without, the RETURN.
  const checks = (id: string) =>
    (/IF NOT \(([\s\S]*?)\) THEN\n {4}RETURN false;/.exec(c.up(id)) ?? /RETURN ([\s\S]*?);\nEND/.exec(c.up(id)))![1]!
      .split(/\n\s+AND /)
      .map((g) => [...g.matchAll(/\(pg_catalog\.pg_table_is_visible\('"([^"]+)"\."\1"'::pg_catalog\.regclass\) IS TRUE\)/g)].map((m) => m[1]!));
  const found = c.ids.filter((id) => id.startsWith('function crm.plan_when_') && key(checks(id)) === key(groups.map((g) => g.map(schema))));
  expect(found, key(groups)).toHaveLength(1);
  return `NOT "crm"."${found[0]!.slice('function crm.'.length)}"()`;
}

const HINT = `(NOT "crm"."plan_hint_team_user_ids"() OR ("deals"."owner_id" >= (SELECT '-9223372036854775808'::bigint) AND "deals"."owner_id" <= (SELECT '9223372036854775807'::bigint)))`;

const crm = compile((m) => {
  const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint(), blocked_id: t.bigint() });
  const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint().notNull().references('users'), label: t.text() });
  m.identity(users);
  const team = m.fact('team_user_ids', arrayOf(m.from(users, (u) => ({ where: u.team_id.isNotNull(), select: u.id }))));
  const blocked = m.fact('blocked_user_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.blocked_id }))));
  const labels = m.fact('my_labels', arrayOf(m.from(deals, (d) => ({ where: d.owner_id.eq(m.me), select: d.label }))));
  m.policy(deals, 'deals_select', { for: 'select', using: (d) => or(d.owner_id.in(team), d.id.in(team), d.label.in(labels)) });
  m.policy(deals, 'deals_not_blocked', { for: 'select', using: (d) => not(d.owner_id.in(blocked)), restrictive: true });
  m.policy(deals, 'deals_update', { for: 'update', using: (d) => d.owner_id.in(team), check: (d) => d.owner_id.in(team) });
});

const notes = compile((m) => {
  const users = m.table('users', { id: t.bigint().primaryKey(), is_admin: t.boolean(), team_id: t.bigint() });
  const notes = m.table('notes', { id: t.bigint().primaryKey(), team_id: t.bigint() });
  const tasks = m.table('tasks', { id: t.bigint().primaryKey(), team_id: t.bigint() });
  m.identity(users);
  const admin = m.fact('i_am_admin', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin }))));
  const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))));
  const quiet = m.fact('quiet_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))), { planHint: false });
  m.policy(notes, 'notes_select', { for: 'select', using: (n) => or(m.everyRowWhen(notes, admin), n.team_id.in(teams)) });
  // Not the read's USING (which a check would repeat as printed: see the twin test below).
  m.policy(notes, 'notes_insert', { for: 'insert', check: (n) => or(m.everyRowWhen(notes, admin), n.team_id.in(teams), n.team_id.isNull()) });
  // The read's USING again (an equal value); its check is not.
  m.policy(notes, 'notes_update', { for: 'update', using: (n) => or(m.everyRowWhen(notes, admin), n.team_id.in(teams)), check: (n) => n.team_id.in(teams) });
  m.policy(notes, 'notes_not_frozen', { for: 'select', using: () => not(m.everyRowWhen(notes, admin)), restrictive: true });
  // One DSL value used twice: where it is reached through AND and OR, and under NOT.
  const drafts = m.table('drafts', { id: t.bigint().primaryKey(), team_id: t.bigint() });
  const everyDraft = m.everyRowWhen(drafts, admin);
  m.policy(drafts, 'drafts_select', { for: 'select', using: (d) => or(everyDraft, and(d.team_id.isNull(), not(everyDraft))) });
  const memos = m.table('memos', { id: t.bigint().primaryKey(), team_id: t.bigint() });
  m.policy(memos, 'memos_select', { for: 'select', using: (k) => or(m.everyRowWhen(memos, admin), k.team_id.in(teams), k.team_id.in(quiet)) });
  m.policy(tasks, 'tasks_select', { for: 'select', using: (k) => or(k.team_id.in(teams), k.team_id.in(quiet)) });
  m.policy(users, 'users_select', { for: 'select', using: () => m.everyRowWhen(users, m.me.isNotNull()) });
});

describe('planner hints', () => {
  it('an arm `column = any(<fact>)` in the USING of a read gets the hint conjunct (a text column, which has no greatest value, `>= ALL` of an empty array); key columns, NOT, WITH CHECK and the USING of UPDATE do not', () => {
    expect(crm.up('policy crm.deals.deals_select')).toContain(
      [
        '    ("deals"."owner_id" = any((select "crm"."team_user_ids"())::bigint[])',
        `      AND ${HINT})`,
        '    OR ("deals"."id" = any((select "crm"."team_user_ids"())::bigint[]))',
        '    OR ("deals"."label" = any((select "crm"."my_labels"())::text[])',
        `      AND (NOT "crm"."plan_hint_my_labels"() OR "deals"."label" >= ALL((SELECT '{}'::text[])::text[])))`,
      ].join('\n'),
    );
    expect(crm.up('policy crm.deals.deals_not_blocked')).not.toContain('plan_hint');
    // An UPDATE or DELETE takes no LIMIT: the rows it finds do not depend on the estimate.
    expect(crm.up('policy crm.deals.deals_update')).not.toContain('plan_hint');
  });

  it('each hinted fact has a schema every role may use, holding one marker view, and an IMMUTABLE hint that looks for it in the search_path, pinning none', () => {
    expect(crm.ids.filter((id) => id.includes('plan'))).toEqual([
      'function crm.plan_marks',
      'hint-schema rg_plan_crm_few_my_labels',
      'function crm.plan_hint_my_labels',
      'hint-schema rg_plan_crm_few_team_user_ids',
      'function crm.plan_hint_team_user_ids',
    ]);
    const schema = crm.up('hint-schema rg_plan_crm_few_team_user_ids');
    // Every role: PostgreSQL leaves a schema the role may not use out of the path it compares to re-plan.
    expect(schema).toContain('GRANT USAGE ON SCHEMA "rg_plan_crm_few_team_user_ids" TO PUBLIC;');
    expect(schema).toContain('CREATE VIEW "rg_plan_crm_few_team_user_ids"."rg_plan_crm_few_team_user_ids" AS SELECT;');
    expect(schema).not.toMatch(/GRANT (?!USAGE ON SCHEMA)/);
    expect(crm.down('hint-schema rg_plan_crm_few_team_user_ids')).toBe('DROP VIEW "rg_plan_crm_few_team_user_ids"."rg_plan_crm_few_team_user_ids";\nDROP SCHEMA "rg_plan_crm_few_team_user_ids";');
    const hint = crm.up('function crm.plan_hint_team_user_ids');
    // PARALLEL SAFE: it reads the search_path, which parallel workers share.
    expect(hint).toContain('LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE\nAS $rg$');
    expect(hint).not.toContain('SET search_path');
    // What lint reads back from a mark function's body (hint-marker-broken).
    expect(marksHeldIn(hint)).toEqual(['rg_plan_crm_few_team_user_ids']);
    expect(hint).toContain(`RETURN (pg_catalog.pg_table_is_visible('"rg_plan_crm_few_team_user_ids"."rg_plan_crm_few_team_user_ids"'::pg_catalog.regclass) IS TRUE);`);
  });

  it('set_session marks the small facts in a transaction-local search_path, replacing its own earlier marks, and pins no search_path itself', () => {
    const session = crm.up('function crm.set_session');
    expect(session).not.toContain('SET search_path');
    // The path's entries but ours in any spelling (quoted, or bare and folded to lower case), read
    // with one pattern that names no mark (the same for every model, compiled once per connection).
    expect(session).toContain(`regexp_matches(pg_catalog.current_setting('search_path') COLLATE pg_catalog."C", E'"(?:[^"]|"")*"|[^,\\\\s]+', 'g')`);
    expect(session).toContain(`ELSE pg_catalog.lower(rg_entry[1] COLLATE pg_catalog."C") END)::pg_catalog.name::pg_catalog.text) OPERATOR(pg_catalog.<>) ALL (ARRAY['rg_plan_crm_few_my_labels', 'rg_plan_crm_few_team_user_ids']::pg_catalog.text[]) ORDER BY rg_n), ', ')`);
    expect(session).toContain(`pg_catalog.strpos(pg_catalog.lower(pg_catalog.current_setting('search_path') COLLATE pg_catalog."C"), 'rg_plan_')`);
    expect(session).toContain(`OPERATOR(pg_catalog.||) "crm"."plan_marks"()), ', '), true);`);
  });

  it('the marks are computed by one definer function that counts each fact no further than 11', () => {
    const marks = crm.up('function crm.plan_marks');
    expect(marks).toContain('LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED\n  SET search_path = pg_catalog, pg_temp');
    expect(marks).toContain(
      `CASE WHEN (SELECT count(*) FROM (WITH rg_rows AS MATERIALIZED (SELECT "q1"."id" FROM "crm"."users" AS "q1" WHERE "q1"."team_id" IS NOT NULL) SELECT 1 FROM rg_rows LIMIT 11) AS rg_bound) <= 10 THEN 'rg_plan_crm_few_team_user_ids' END`,
    );
    expect(marks).toContain('GRANT EXECUTE ON FUNCTION "crm"."plan_marks"() TO "app_user";');
  });

  it('a set that two counts read is built once, cut as they cut it, into a variable both read: its own count is its length; a set only one count reads is not', () => {
    const c = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint(), region_id: t.bigint() });
      const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint().notNull().references('users'), team_id: t.bigint(), region_id: t.bigint() });
      m.identity(users);
      const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))));
      const teammates = m.fact('teammate_ids', arrayOf(m.from(users, (u) => ({ where: u.team_id.in(teams), select: u.id }))));
      const regions = m.fact('my_region_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.region_id }))));
      m.policy(deals, 'deals_select', { for: 'select', using: (d) => or(d.team_id.in(teams), d.owner_id.in(teammates), d.region_id.in(regions)) });
    });
    const marks = c.up('function crm.plan_marks');
    const teamsQuery = 'SELECT "q1"."team_id" FROM "crm"."users" AS "q1" WHERE "q1"."id" = rg_fact.me';
    expect(marks.split(teamsQuery)).toHaveLength(2);
    expect(marks).toContain('  rg_set_1 bigint[];\n');
    expect(marks).toContain(`  -- crm.my_team_ids() as its marks' counts read it (every set cut at 101 elements), built once for all of them.\n  rg_fact.rg_set_1 := (ARRAY(WITH rg_rows AS MATERIALIZED (${teamsQuery}) SELECT * FROM rg_rows LIMIT 101))::bigint[];\n  RETURN`);
    expect(marks).toContain(`CASE WHEN LEAST(11, COALESCE(pg_catalog.cardinality(rg_fact.rg_set_1), 0)) <= 10 THEN 'rg_plan_crm_few_my_team_ids' END`);
    expect(marks).toMatch(/"q2"\."team_id" = any\(\(?rg_fact\.rg_set_1[):]/);
    // The regions, counted alone, are counted as before: no variable, no array built.
    expect(marks).not.toContain('rg_set_2');
    expect(marks).toContain(`CASE WHEN (SELECT count(*) FROM (WITH rg_rows AS MATERIALIZED (SELECT "q3"."region_id" FROM "crm"."users" AS "q3" WHERE "q3"."id" = rg_fact.me) SELECT 1 FROM rg_rows LIMIT 11) AS rg_bound) <= 10 THEN 'rg_plan_crm_few_my_region_ids' END`);
  });

  it('a shared set inside another is built first, and the outer one reads its variable', () => {
    const c = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint().notNull().references('users'), team_id: t.bigint(), buyer_id: t.bigint() });
      m.identity(users);
      const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))));
      const teammates = m.fact('teammate_ids', arrayOf(m.from(users, (u) => ({ where: u.team_id.in(teams), select: u.id }))));
      const buyers = m.fact('buyer_ids', arrayOf(m.from(deals, (d) => ({ where: d.owner_id.in(teammates), select: d.buyer_id }))));
      const teamBuyers = m.fact('team_buyer_ids', arrayOf(m.from(deals, (d) => ({ where: d.team_id.in(teams), select: d.buyer_id }))));
      m.policy(deals, 'deals_select', { for: 'select', using: (d) => or(d.team_id.in(teams), d.owner_id.in(teammates), d.buyer_id.in(buyers), d.buyer_id.in(teamBuyers)) });
    });
    const marks = c.up('function crm.plan_marks');
    // The teammates (read by the buyers' count) first chosen, the teams (read by the team buyers'
    // count and counted) next; assigned the other way round.
    const teams = marks.indexOf('  rg_fact.rg_set_2 := (ARRAY(WITH rg_rows AS MATERIALIZED (SELECT "q1"."team_id"');
    const teammates = marks.indexOf('  rg_fact.rg_set_1 := (ARRAY(WITH rg_rows AS MATERIALIZED (SELECT "q2"."id" FROM "crm"."users" AS "q2" WHERE "q2"."team_id" = any(rg_fact.rg_set_2::bigint[])) SELECT * FROM rg_rows LIMIT 101))::bigint[];');
    expect(teams, marks).toBeGreaterThan(0);
    expect(teammates, marks).toBeGreaterThan(teams);
    expect(marks.split('SELECT "q1"."team_id"')).toHaveLength(2);
    expect(marks).toContain(`CASE WHEN LEAST(11, COALESCE(pg_catalog.cardinality(rg_fact.rg_set_2), 0)) <= 10 THEN 'rg_plan_crm_few_my_team_ids' END`);
    expect(marks).toContain(`CASE WHEN LEAST(11, COALESCE(pg_catalog.cardinality(rg_fact.rg_set_1), 0)) <= 10 THEN 'rg_plan_crm_few_teammate_ids' END`);
    expect(marks).toContain(`"q3"."owner_id" = any(rg_fact.rg_set_1::bigint[])`);
    expect(marks).toMatch(/"q4"\."team_id" = any\(\(?rg_fact\.rg_set_2[):]/);
  });

  it('a shared set whose own `few` is above 100 is counted from its rows, as far as the few: its variable holds only 101', () => {
    const c = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), region_id: t.bigint() });
      const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint().notNull().references('users'), region_id: t.bigint(), buyer_id: t.bigint() });
      m.identity(users);
      const regions = m.fact('my_region_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.region_id }))), { planHint: { few: 200 } });
      const neighbours = m.fact('neighbour_ids', arrayOf(m.from(users, (u) => ({ where: u.region_id.in(regions), select: u.id }))));
      const regionBuyers = m.fact('region_buyer_ids', arrayOf(m.from(deals, (d) => ({ where: d.region_id.in(regions), select: d.buyer_id }))));
      m.policy(deals, 'deals_select', { for: 'select', using: (d) => or(d.region_id.in(regions), d.owner_id.in(neighbours), d.buyer_id.in(regionBuyers)) });
    });
    const marks = c.up('function crm.plan_marks');
    expect(marks).toContain('  rg_fact.rg_set_1 := (ARRAY(WITH rg_rows AS MATERIALIZED (SELECT "q1"."region_id"');
    expect(marks).toContain(`CASE WHEN (SELECT count(*) FROM (WITH rg_rows AS MATERIALIZED (SELECT "q1"."region_id" FROM "crm"."users" AS "q1" WHERE "q1"."id" = rg_fact.me) SELECT 1 FROM rg_rows LIMIT 201) AS rg_bound) <= 200 THEN 'rg_plan_crm_few_my_region_ids' END`);
    expect(marks).not.toContain('cardinality(rg_fact.rg_set_1)');
  });

  it('an every-row arm on a boolean fact is dropped in USING when the fact is not true and the clause\'s sets are small, and then its sets are narrowed too; while the fact is true it is the fact alone', () => {
    // One function tests both marks for the range (the same marks, met in another order); the
    // arm's own test adds its true mark to each group: its range goes when the fact is true too,
    // and then the second part, the fact alone, holds every row.
    const test = marksTest(notes, [['plan_fold_i_am_admin'], ['plan_hint_my_team_ids']]);
    const armTest = marksTest(notes, [['plan_fold_i_am_admin', 'plan_true_i_am_admin'], ['plan_hint_my_team_ids', 'plan_true_i_am_admin']]);
    const arm = `${armTest} AND "notes"."id" >= (SELECT CASE WHEN "crm"."i_am_admin"() THEN '-9223372036854775808'::bigint END) AND "notes"."id" <= '9223372036854775807'::bigint`;
    // While the fact is not true but the sets are many, a NULL range stands in for the arm.
    expect(notes.up('policy crm.notes.notes_select')).toContain(
      [
        `    ((NOT "crm"."plan_fold_i_am_admin"() AND ((${arm})`,
        '        OR ("crm"."plan_true_i_am_admin"() AND (SELECT "crm"."i_am_admin"()))))',
        `      OR ("crm"."plan_fold_i_am_admin"() AND ${armTest} AND "notes"."id" >= (SELECT NULL::bigint) AND "notes"."id" <= '9223372036854775807'::bigint))`,
        '    OR ("notes"."team_id" = any((select "crm"."my_team_ids"())::bigint[])',
        `      AND (${test} OR ("notes"."team_id" >= `,
      ].join('\n'),
    );
    expect(notes.up('function crm.plan_true_i_am_admin')).toContain(`RETURN (pg_catalog.pg_table_is_visible('"rg_plan_crm_is_i_am_admin"."rg_plan_crm_is_i_am_admin"'::pg_catalog.regclass) IS TRUE);`);
    const when = notes.up(`function ${test.slice(4, -2).replaceAll('"', '')}`);
    expect(when).toContain('LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE\nAS $rg$\nBEGIN\n');
    expect(when).not.toContain('current_schemas');
    expect(when).toContain('TO "app_user", "reporting_user";');
    // The facts guards read are computed once, as columns of a row the marks read.
    const marks = notes.up('function crm.plan_marks');
    expect(marks).toContain(`CASE WHEN (rg_guard_facts."i_am_admin") IS NOT TRUE THEN 'rg_plan_crm_not_i_am_admin' END`);
    expect(marks).toContain(`CASE WHEN (rg_guard_facts."i_am_admin") IS TRUE THEN 'rg_plan_crm_is_i_am_admin' END`);
    expect(marks).toContain(`FROM (SELECT\n    ((rg_fact.me_row."is_admin"))::boolean AS "i_am_admin") AS rg_guard_facts);`);
    // A not-true mark counts only while no table a guard reads has been written since set_session.
    const unchanged = `(COALESCE(pg_catalog.current_setting('rowguard.crm_guards_seen', true), '') OPERATOR(pg_catalog.=) COALESCE(pg_catalog.pg_sequence_last_value('"crm"."rg_guards_changed"'::pg_catalog.regclass), 0)::pg_catalog.text)`;
    expect(notes.up('function crm.plan_fold_i_am_admin')).toContain(
      [
        `  IF NOT (pg_catalog.pg_table_is_visible('"rg_plan_crm_not_i_am_admin"."rg_plan_crm_not_i_am_admin"'::pg_catalog.regclass) IS TRUE) THEN`,
        '    RETURN false;',
        '  END IF;',
        `  RETURN ${unchanged};`,
      ].join('\n'),
    );
    // A test of several marks reads the counter once, only when its marks are there; if it has
    // moved, the test is made again without the not-true marks: here a group of them alone, so
    // the test is then false and its value is whether the counter is unchanged.
    const severalMarks = notes.ids.find((id) => id.startsWith('function crm.plan_when_') && notes.up(id).includes('rg_plan_crm_not_i_am_admin') && notes.up(id).includes('rg_plan_crm_few_my_team_ids')) ?? '';
    expect(notes.up(severalMarks)).toContain(['  END IF;', `  RETURN ${unchanged};`, 'END'].join('\n'));
    expect(notes.up(severalMarks)).toMatch(/IF NOT \([\s\S]*\) THEN\n {4}RETURN false;\n {2}END IF;\n {2}RETURN \(COALESCE\(pg_catalog\.current_setting\('rowguard\.crm_guards_seen', true\), ''\)[^\n]*;\nEND/);
    // A true mark decides no row, and reads nothing more.
    expect(notes.up('function crm.plan_true_i_am_admin')).toContain(`RETURN (pg_catalog.pg_table_is_visible('"rg_plan_crm_is_i_am_admin"."rg_plan_crm_is_i_am_admin"'::pg_catalog.regclass) IS TRUE);`);
    const session = notes.up('function crm.set_session');
    expect(session).toContain("ALL (ARRAY['rg_plan_crm_few_my_team_ids', 'rg_plan_crm_not_i_am_admin', 'rg_plan_crm_is_i_am_admin']::pg_catalog.text[])");
    // The sequence's value is recorded before plan_marks reads the guards.
    expect(session.indexOf("set_config('rowguard.crm_guards_seen'")).toBeLessThan(session.indexOf('"crm"."plan_marks"()'));
    // i_am_admin reads users: a write there bumps the sequence.
    expect(notes.up('trigger crm.users.rg_guards_changed')).toContain('AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "crm"."users"\n  FOR EACH STATEMENT');
    expect(notes.ids).not.toContain('trigger crm.deals.rg_guards_changed');
    // And again at the writer's commit (deferred), by definer functions: app_user may read the
    // sequence, not bump it. The one that strips marks keeps the writer's search_path (a SET would
    // undo the strip on return), so every name in it is qualified.
    expect(notes.up('trigger crm.users.rg_guards_committed')).toContain('DEFERRABLE INITIALLY DEFERRED FOR EACH ROW');
    expect(notes.up('sequence crm.rg_guards_changed')).toContain('GRANT SELECT ON SEQUENCE "crm"."rg_guards_changed" TO "app_user";');
    expect(notes.up('function crm.rg_guards_changed')).toContain('SECURITY DEFINER\n  SET search_path = pg_catalog, pg_temp');
    const unmark = notes.up('function crm.rg_guards_unmark');
    expect(unmark).toContain('LANGUAGE plpgsql VOLATILE\nAS');
    expect(unmark).not.toMatch(/::(text|regclass)\b|[^)] = /);
  });

  it('where an every-row arm is dropped only with its sets few, a NULL range on the key stands in for its disjunct while its guard is not true: with the conditions beside it that read the row alone, without those that read facts', () => {
    const model = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), is_admin: t.boolean(), team_id: t.bigint() });
      const posts = m.table('posts', { id: t.bigint().primaryKey(), team_id: t.bigint(), owner_id: t.bigint(), closed: t.boolean() });
      m.identity(users);
      const admin = m.fact('i_am_admin', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin }))));
      const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))));
      m.policy(posts, 'posts_select', {
        for: 'select',
        using: (p) => or(p.team_id.in(teams), and(p.closed.isNull(), m.everyRowWhen(posts, admin), p.owner_id.isDistinctFrom(m.me))),
      });
      m.policy(posts, 'posts_update', { for: 'update', using: (p) => or(p.team_id.in(teams), and(p.closed.isNull(), m.everyRowWhen(posts, admin))) });
    });
    const drop = marksTest(model, [['plan_fold_i_am_admin'], ['plan_hint_my_team_ids']]);
    const select = model.up('policy crm.posts.posts_select');
    expect(select).toContain(
      [
        `    OR ((NOT "crm"."plan_fold_i_am_admin"() AND (("posts"."closed" IS NULL)`,
        `        AND (${drop} AND "posts"."id" >= (SELECT CASE WHEN "crm"."i_am_admin"() THEN '-9223372036854775808'::bigint END) AND "posts"."id" <= '9223372036854775807'::bigint)`,
        `        AND ("posts"."owner_id" IS DISTINCT FROM (select "crm"."current_user_id"()))))`,
        `      OR ("crm"."plan_fold_i_am_admin"() AND ${drop} AND ("posts"."closed" IS NULL) AND "posts"."id" >= (SELECT NULL::bigint) AND "posts"."id" <= '9223372036854775807'::bigint))`,
      ].join('\n'),
    );
    // Only reads' USING: elsewhere the arm is dropped by its not-true mark alone.
    expect(model.up('policy crm.posts.posts_update')).not.toContain('NULL::bigint');
    // An arm dropped by its not-true mark alone (no set beside it) needs no stand-in, nor does one
    // also under NOT (one DSL value in both places).
    const drafts = notes.up('policy crm.drafts.drafts_select');
    expect(drafts).toContain('(NOT "crm"."plan_when_');
    expect(drafts).not.toContain('NULL::bigint');
  });

  it('a set arm whose set is NULL unless a guard holds, dropped only with the other sets few, stands in for itself with a NULL set (cast, or ANY would read a sub-query)', () => {
    const model = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), is_admin: t.boolean(), team_id: t.bigint(), region_id: t.bigint() });
      const posts = m.table('posts', { id: t.bigint().primaryKey(), team_id: t.bigint(), region_id: t.bigint() });
      m.identity(users);
      const admin = m.fact('i_am_admin', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin }))));
      const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))));
      const regions = m.fact('my_region_ids', when(admin, arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.region_id })))));
      // The same comparison (its guarded CASE on the left, `<`) in the OR and, in a restrictive policy, under NOT.
      let below: ReturnType<typeof when> | undefined;
      m.policy(posts, 'posts_select', { for: 'select', using: (p) => or(p.team_id.in(teams), p.region_id.in(regions), (below = when(admin, m.me).lt(p.team_id))) });
      m.policy(posts, 'posts_not_below', { for: 'select', restrictive: true, using: (p) => or(p.team_id.in(teams), not(below!)) });
    });
    const select = model.up('policy crm.posts.posts_select');
    expect(select).toContain('(NOT "crm"."plan_fold_i_am_admin"() AND (');
    expect(select).toMatch(/OR \("crm"\."plan_fold_i_am_admin"\(\) AND NOT "crm"\."plan_when_[0-9a-f]+"\(\) AND "posts"\."region_id" = any\(\(SELECT NULL::bigint\[\]\)::bigint\[\]\)\)/);
    expect(select).toMatch(/OR \("crm"\."plan_fold_i_am_admin"\(\) AND NOT "crm"\."plan_when_[0-9a-f]+"\(\) AND \(SELECT NULL::bigint\) < "posts"\."team_id"\)/);
    expect(model.up('policy crm.posts.posts_not_below')).not.toContain('NULL::bigint');
  });

  it('an every-row arm gets the true mark only where the clause ORs it (not ANDed with a condition on the row, nor when one DSL value stands in both places), or where it is declared `mostRows`', () => {
    const shared = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), is_admin: t.boolean(), team_id: t.bigint() });
      const docs = m.table('docs', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      const pads = m.table('pads', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      m.identity(users);
      const admin = m.fact('i_am_admin', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin }))));
      const everyDoc = m.everyRowWhen(docs, admin);
      m.policy(docs, 'docs_select', { for: 'select', using: (d) => or(everyDoc, and(d.team_id.isNull(), everyDoc)) });
      m.policy(pads, 'pads_select', { for: 'select', using: (d) => or(d.team_id.isNull(), and(d.id.isNotNull(), m.everyRowWhen(pads, admin))) });
    });
    expect(shared.up('policy crm.docs.docs_select')).not.toContain('plan_true_');
    expect(shared.up('policy crm.pads.pads_select')).not.toContain('plan_true_');
    expect(shared.ids).not.toContain('function crm.plan_true_i_am_admin');
    // Declared to admit most rows when its condition holds, an ANDed arm gets it too.
    const most = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), is_admin: t.boolean() });
      const pads = m.table('pads', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      m.identity(users);
      const admin = m.fact('i_am_admin', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin }))));
      m.policy(pads, 'pads_select', { for: 'select', using: (d) => or(d.team_id.isNull(), and(d.id.isNotNull(), m.everyRowWhen(pads, admin, { mostRows: true }))) });
      // One such value in two places gets one hint, its true mark tested once.
      const notes = m.table('notes', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      const everyNote = m.everyRowWhen(notes, admin, { mostRows: true });
      m.policy(notes, 'notes_select', { for: 'select', using: (d) => or(and(d.team_id.isNull(), everyNote), and(d.id.isNotNull(), everyNote)) });
    });
    expect(most.up('policy crm.pads.pads_select')).toContain('OR ("crm"."plan_true_i_am_admin"() AND (SELECT "crm"."i_am_admin"())))');
    expect(most.up('policy crm.pads.pads_select')).toContain('AND ((NOT "crm"."plan_when_');
    const once = marksTest(most, [['plan_fold_i_am_admin', 'plan_true_i_am_admin']]);
    expect(most.up('policy crm.notes.notes_select').split(once)).toHaveLength(3);
  });

  it('a guard\'s not-true and true marks share its name, also when another guard took that name first', () => {
    const { result } = validateModel({
      ...defineModel('crm', (m) => {
        const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint(), is_admin: t.boolean() });
        const docs = m.table('docs', { id: t.bigint().primaryKey(), owner_id: t.bigint() });
        m.identity(users);
        const scopes = m.fact('my_scopes', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))), { type: 'text[]' });
        // Named like the guard `'own' = any(my_scopes)`, which takes the plain name first.
        const clash = m.fact('my_scopes_has_own', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin }))));
        m.policy(docs, 'docs_select', { for: 'select', using: (d) => or(d.owner_id.eq(when(lit('own').in(scopes), m.me)), m.everyRowWhen(docs, clash)) });
      }),
      file: 'policies/crm.ts',
    });
    const { folds, trues } = planHints(result!.model);
    const fold = folds.find((f) => f.when.kind === 'fact')!;
    const truth = trues.find((f) => f.when.kind === 'fact')!;
    expect(fold.name).not.toBe('my_scopes_has_own');
    expect(truth.name).toBe(fold.name);
    expect(truth.hint).toBe(`plan_true_${fold.name}`);
  });

  it('a range waits for its table\'s every-row arms to be dropped: their guards not true, and every set of their clause few', () => {
    const ranged = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), is_admin: t.boolean(), team_id: t.bigint(), region_id: t.bigint() });
      const notes = m.table('notes', { id: t.bigint().primaryKey(), team_id: t.bigint(), region_id: t.bigint() });
      m.identity(users);
      const admin = m.fact('i_am_admin', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin }))));
      const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))));
      const regions = m.fact('my_region_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.region_id }))));
      m.policy(notes, 'notes_select', { for: 'select', using: (n) => or(m.everyRowWhen(notes, admin), n.team_id.in(teams), n.region_id.in(regions)) });
      // An every-row arm inside AND, on a condition no mark names: it stays for everyone, so its
      // table gets no ranges.
      const drafts = m.table('drafts', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      m.policy(drafts, 'drafts_select', { for: 'select', using: (d) => or(and(d.team_id.isNull(), m.everyRowWhen(drafts, not(admin))), d.team_id.in(teams)) });
    });
    expect(ranged.up('policy crm.drafts.drafts_select')).not.toContain('plan_');
    // A user with many regions keeps the admin arm (and its walk), so the few teams get no range either.
    const test = marksTest(ranged, [['plan_hint_my_team_ids'], ['plan_fold_i_am_admin'], ['plan_hint_my_region_ids']]);
    expect(ranged.up('policy crm.notes.notes_select')).toContain(`AND (${test} OR ("notes"."team_id" >= `);
  });

  it("a write's clause that repeats a read's USING is printed as the read's, hints and all, so PostgreSQL applies it once; one that does not keeps its own", () => {
    const read = clauseOf(notes, 'policy crm.notes.notes_select', 'USING');
    expect(read).toContain('plan_true_i_am_admin');
    expect(clauseOf(notes, 'policy crm.notes.notes_update', 'USING')).toBe(read);
    // Its check is another condition, printed as a check: no range hint on the team set.
    expect(clauseOf(notes, 'policy crm.notes.notes_update', 'WITH CHECK')).toBe('    "notes"."team_id" = any((select "crm"."my_team_ids"())::bigint[])');
    expect(clauseOf(notes, 'policy crm.notes.notes_insert', 'WITH CHECK')).not.toBe(read);
  });

  it("a write's clause is printed as the read's only where PostgreSQL would merge the two: one permissive policy for each command; a restrictive policy's USING, never its check", () => {
    const twins = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), is_admin: t.boolean(), team_id: t.bigint() });
      m.identity(users);
      const admin = m.fact('i_am_admin', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin }))));
      const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))));
      // Two permissive reads: PostgreSQL compares their OR with the update's clause, which differs.
      const notes = m.table('notes', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      m.policy(notes, 'notes_select', { for: 'select', using: (n) => or(m.everyRowWhen(notes, admin), n.team_id.in(teams)) });
      m.policy(notes, 'notes_select_open', { for: 'select', using: (n) => n.team_id.isNull() });
      m.policy(notes, 'notes_update', { for: 'update', using: (n) => or(m.everyRowWhen(notes, admin), n.team_id.in(teams)) });
      // A restrictive read repeated by a restrictive write: USING merged, the check not.
      const tasks = m.table('tasks', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      m.policy(tasks, 'tasks_select', { for: 'select', using: (k) => or(m.everyRowWhen(tasks, admin), k.team_id.in(teams)) });
      m.policy(tasks, 'tasks_update', { for: 'update', using: () => m.me.isNotNull(), check: () => m.me.isNotNull() });
      m.policy(tasks, 'tasks_team', { for: 'select', using: (k) => or(m.everyRowWhen(tasks, admin), k.team_id.in(teams)), restrictive: true });
      m.policy(tasks, 'tasks_team_write', { for: 'update', using: (k) => or(m.everyRowWhen(tasks, admin), k.team_id.in(teams)), check: (k) => or(m.everyRowWhen(tasks, admin), k.team_id.in(teams)), restrictive: true });
    });
    const using = (id: string) => clauseOf(twins, id, 'USING');
    expect(using('policy crm.notes.notes_select')).toContain('plan_true_i_am_admin');
    expect(using('policy crm.notes.notes_update')).not.toContain('plan_true_i_am_admin');
    expect(using('policy crm.tasks.tasks_team')).toContain('plan_true_i_am_admin');
    expect(using('policy crm.tasks.tasks_team_write')).toBe(using('policy crm.tasks.tasks_team'));
    expect(clauseOf(twins, 'policy crm.tasks.tasks_team_write', 'WITH CHECK')).not.toContain('plan_true_');
  });

  it("a clause with a sub-query built again by the same function is the read's twin: its scopes are new, its shape the same; another sub-query is not", () => {
    const built = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      m.identity(users);
      const notes = m.table('notes', { id: t.bigint().primaryKey(), author_id: t.bigint() });
      const byMyTeam = (n: RowOf<typeof notes>) => exists(m.from(users, (u) => ({ where: and(u.id.eq(n.author_id), u.team_id.eq(scalarOf(m.from(users, (me) => ({ where: me.id.eq(m.me), select: me.team_id }))))) })));
      const mine = (n: RowOf<typeof notes>) => exists(m.from(users, (u) => ({ where: and(u.id.eq(n.author_id), u.id.eq(m.me)) })));
      m.policy(notes, 'notes_select', { for: 'select', using: byMyTeam });
      m.policy(notes, 'notes_update', { for: 'update', using: byMyTeam, check: mine });
    });
    const read = clauseOf(built, 'policy crm.notes.notes_select', 'USING');
    expect(clauseOf(built, 'policy crm.notes.notes_update', 'USING')).toBe(read);
    expect(clauseOf(built, 'policy crm.notes.notes_update', 'WITH CHECK')).not.toBe(read);
  });

  it('clauses have the same shape only up to the names of their own sub-queries: literals keep their type, and raw SQL keeps every name', () => {
    const literal = (value: unknown): Expr => ({ kind: 'compare', op: '=', left: { kind: 'column', scope: 'row', table: 'notes', column: 'id' }, right: { kind: 'literal', value } as Expr });
    expect(sameShape(literal(Number.NaN))).not.toBe(sameShape(literal(null)));
    expect(sameShape(literal(Number.POSITIVE_INFINITY))).not.toBe(sameShape(literal(null)));
    expect(sameShape(literal(1))).not.toBe(sameShape(literal('1')));
    const sub = (scope: string, extra?: Expr): Expr => ({
      kind: 'exists',
      query: { kind: 'query', scope, table: 'users', where: extra ?? { kind: 'compare', op: '=', left: { kind: 'column', scope, table: 'users', column: 'id' }, right: { kind: 'column', scope: 'row', table: 'notes', column: 'author_id' } } },
    });
    expect(sameShape(sub('q1'))).toBe(sameShape(sub('q2')));
    // A free scope is compared as written, even one spelled like a renamed one.
    expect(sameShape(sub('q1'))).not.toBe(sameShape(sub('q1', { kind: 'compare', op: '=', left: { kind: 'column', scope: '@0', table: 'users', column: 'id' }, right: { kind: 'column', scope: 'row', table: 'notes', column: 'author_id' } })));
    // Raw SQL naming the first one's alias: in the second it names nothing the clause declares.
    const raw = (scope: string): Expr => sub(scope, { kind: 'raw', sql: '"q1".id = 1', type: 'boolean', reason: 'test' } as Expr);
    expect(sameShape(raw('q1'))).not.toBe(sameShape(raw('q2')));
  });

  it('in WITH CHECK an every-row arm is dropped whenever its fact is not true; under NOT, beside a set no hint may count, or on a condition that is no fact, never', () => {
    const insert = notes.up('policy crm.notes.notes_insert');
    expect(insert.slice(insert.indexOf('WITH CHECK'))).toContain(`(NOT "crm"."plan_fold_i_am_admin"() AND "notes"."id" >= (SELECT CASE WHEN "crm"."i_am_admin"()`);
    expect(notes.up('policy crm.notes.notes_not_frozen')).not.toContain('plan_');
    // Dropped where it stands in the OR; under NOT a dropped arm would admit more, so there it stays.
    const drafts = notes.up('policy crm.drafts.drafts_select');
    const draftTest = marksTest(notes, [['plan_fold_i_am_admin', 'plan_true_i_am_admin']]);
    expect(drafts).toContain(`((${draftTest} AND "drafts"."id" >= (SELECT CASE WHEN "crm"."i_am_admin"()`);
    expect(drafts).toContain(`NOT ("drafts"."id" >= (SELECT CASE WHEN "crm"."i_am_admin"()`);
    // Both marks' tests are the first arm's: under NOT the arm read as the fact alone would admit
    // more (NOT false where the range is NULL), so there it is neither dropped nor replaced.
    expect(drafts.match(/plan_/g)).toHaveLength(2);
    expect(drafts.indexOf('plan_true_i_am_admin')).toBeLessThan(drafts.indexOf('NOT ("drafts"'));
    expect(notes.up('policy crm.users.users_select')).not.toContain('plan_');
    // quiet_team_ids is planHint: false, so nobody knows it is small: the arm stays, and so does
    // its 0.5% floor, which no range on the sets could lower.
    expect(notes.up('policy crm.memos.memos_select')).not.toMatch(/plan_(hint|fold|when)_/);
    // It is still read as the fact alone while the fact is true.
    expect(notes.up('policy crm.memos.memos_select')).toContain('(NOT "crm"."plan_true_i_am_admin"() AND "memos"."id" >= ');
    expect(notes.up('policy crm.tasks.tasks_select')).toContain('plan_hint_my_team_ids');
    expect(notes.up('policy crm.tasks.tasks_select')).not.toContain('plan_hint_quiet_team_ids');
    expect(notes.ids.filter((id) => id.includes('plan')).map((id) => id.replace(/plan_when_[0-9a-f]{12}$/, 'plan_when_<hash>'))).toEqual([
      'function crm.plan_marks',
      // The notes range's test, the notes arm's (with the true mark), the drafts arm's.
      'function crm.plan_when_<hash>',
      'function crm.plan_when_<hash>',
      'function crm.plan_when_<hash>',
      'hint-schema rg_plan_crm_few_my_team_ids',
      'function crm.plan_hint_my_team_ids',
      'hint-schema rg_plan_crm_not_i_am_admin',
      'function crm.plan_fold_i_am_admin',
      'hint-schema rg_plan_crm_is_i_am_admin',
      'function crm.plan_true_i_am_admin',
    ]);
  });

  it('an arm compared with `CASE WHEN <guard> THEN v END` is dropped like an every-row arm; a guard on the row, or a CASE with an ELSE, is not; `planHint: { few }` sets "small"', () => {
    const guarded = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint(), team_id: t.bigint(), region: t.text() });
      m.identity(users);
      const scopes = m.fact('my_scopes', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))), { type: 'text[]' });
      const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))), { planHint: { few: 2 } });
      m.policy(deals, 'deals_select', {
        for: 'select',
        using: (d) =>
          or(
            d.owner_id.eq(when(lit('own').in(scopes), m.me)),
            d.team_id.in(when(lit('team').in(scopes), teams)),
            d.owner_id.eq(when(d.region.isNull(), m.me)),
            d.owner_id.eq(when(lit('any').in(scopes), m.me, 0)),
          ),
      });
      // Under NOT, or beside IS DISTINCT FROM (true against NULL), a guarded comparison stays whole.
      m.policy(deals, 'deals_not_mine', {
        for: 'select',
        restrictive: true,
        using: (d) => and(not(d.owner_id.eq(when(lit('own').in(scopes), m.me))), d.owner_id.isDistinctFrom(when(lit('own').in(scopes), m.me))),
      });
      // A fact named like another guard's mark: the two marks stay apart.
      const clash = m.fact('my_scopes_has_own', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id.isNotNull() }))));
      m.policy(users, 'users_select', { for: 'select', using: (u) => or(u.id.eq(when(clash, m.me)), u.id.eq(when(lit('own').in(scopes), m.me))) });
    });
    const policy = guarded.up('policy crm.deals.deals_select');
    const own = marksTest(guarded, [['plan_fold_my_scopes_has_own'], ['plan_fold_my_scopes_has_team', 'plan_hint_my_team_ids']]);
    expect(policy).toContain(`(${own} AND "deals"."owner_id" = (SELECT "crm"."rg_once_`);
    // Its own set's group is implied by its guard's mark, and left out.
    expect(policy).toContain(`(NOT "crm"."plan_fold_my_scopes_has_team"() AND "deals"."team_id" = any(`);
    // The guarded set that stays is narrowed when its fact is small.
    expect(policy).toContain('AND (NOT "crm"."plan_hint_my_team_ids"() OR ("deals"."team_id" >= (SELECT');
    // Two arms are dropped (own, team); the guard on the row and the CASE with an ELSE are not.
    // The own arm, dropped only with the team set few as well, gets a stand-in besides: itself
    // with a NULL value while its guard is not true (the team arm is dropped by its guard alone).
    expect(policy.match(/\(NOT "crm"\."plan_(fold|when)_[a-z0-9_]+"\(\) AND /g)).toHaveLength(3);
    expect(policy).toContain(`OR ("crm"."plan_fold_my_scopes_has_own"() AND ${own} AND "deals"."owner_id" = (SELECT NULL::bigint))`);
    // And one range, on the team set's own mark: three tests in all, and the stand-in's two.
    expect(policy.match(/NOT "crm"\."plan_/g)).toHaveLength(5);
    expect(guarded.up('policy crm.deals.deals_not_mine')).not.toContain('plan_');
    const users = guarded.up('policy crm.users.users_select');
    const folds = [...users.matchAll(/NOT "crm"\."(plan_fold_[a-z0-9_]+)"\(\)/g)].map((x) => x[1]);
    expect(folds).toHaveLength(2);
    expect(new Set(folds).size).toBe(2);
    const marks = guarded.up('function crm.plan_marks');
    expect(marks).toContain(`CASE WHEN ('own' = any(rg_guard_facts."my_scopes"::text[])) IS NOT TRUE THEN 'rg_plan_crm_not_my_scopes_has_own' END`);
    expect(marks).toContain('LIMIT 3) AS rg_bound) <= 2 THEN \'rg_plan_crm_few_my_team_ids\' END');
    const { problems } = validateModel({
      ...defineModel('crm', (m) => {
        const users = m.table('users', { id: t.bigint().primaryKey() });
        m.identity(users);
        m.fact('a', arrayOf(m.from(users, (u) => ({ select: u.id }))), { planHint: { few: 1.5 } });
      }),
      file: 'policies/crm.ts',
    });
    expect(problems.map((p) => [p.code, p.path])).toEqual([['bad-option', 'facts.a']]);
  });

  it("in WITH CHECK and the USING of UPDATE and DELETE a guarded comparison or set arm is dropped by the not-true mark set_session computes anyway (for a read's arm or an every-row arm, declared before or after), never under NOT, and gets no mark of the writes' own", () => {
    const c = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint(), admin: t.boolean(), writer: t.boolean(), auditor: t.boolean(), open: t.boolean() });
      const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint(), team_id: t.bigint() });
      m.identity(users);
      const flag = (name: string, column: 'admin' | 'writer' | 'auditor') => m.fact(name, exists(m.from(users, (u) => ({ where: and(u.id.eq(m.me), u[column].isTrue()) }))));
      const admin = flag('i_am_admin', 'admin');
      const writer = flag('i_write', 'writer');
      const auditor = flag('i_audit', 'auditor');
      const teams = m.fact('my_team_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id }))), { planHint: { few: 2 } });
      const adminTeams = m.fact('admin_team_ids', when(admin, teams));
      const writerTeams = m.fact('writer_team_ids', when(writer, teams));
      const auditTeams = m.fact('audit_team_ids', when(auditor, teams));
      // A guard with no name of its own: its mark is named after the fact (open_team_ids_when).
      const openTeams = m.fact('open_team_ids', when(exists(m.from(users, (u) => ({ where: and(u.id.eq(m.me), u.open.isTrue()) }))), teams));
      m.policy(deals, 'deals_select', { for: 'select', using: (d) => or(d.owner_id.eq(m.me), d.team_id.in(adminTeams), d.team_id.in(openTeams)) });
      const write = (d: RowOf<typeof deals>) =>
        or(d.owner_id.eq(m.me), d.team_id.in(adminTeams), d.team_id.in(writerTeams), d.owner_id.eq(when(admin, m.me)), d.team_id.in(openTeams), d.team_id.in(auditTeams));
      m.policy(deals, 'deals_update', { for: 'update', using: write, check: write });
      m.policy(deals, 'deals_delete', { for: 'delete', using: write });
      m.policy(deals, 'deals_insert', { for: 'insert', check: write });
      // Under NOT a dropped arm would admit more: it stays.
      m.policy(deals, 'deals_not_admin_teams', { for: 'update', restrictive: true, using: (d) => not(d.team_id.in(adminTeams)) });
      // i_audit is no read's guard, but an every-row arm of a write declared after the others has it marked.
      m.policy(deals, 'deals_audit', { for: 'delete', using: () => m.everyRowWhen(deals, auditor) });
    });
    const droppedBy = (mark: string, arm: string) => `(NOT "crm"."${mark}"() AND "deals"."${arm}`;
    for (const [id, clause] of [['policy crm.deals.deals_update', 'USING'], ['policy crm.deals.deals_update', 'WITH CHECK'], ['policy crm.deals.deals_delete', 'USING'], ['policy crm.deals.deals_insert', 'WITH CHECK']] as const) {
      const text = clauseOf(c, id, clause);
      expect(text).toContain(droppedBy('plan_fold_i_am_admin', 'team_id" = any((select "crm"."admin_team_ids"())::bigint[]))'));
      expect(text).toContain(droppedBy('plan_fold_i_am_admin', 'owner_id" = (SELECT'));
      expect(text).toContain(droppedBy('plan_fold_open_team_ids_when', 'team_id" = any((select "crm"."open_team_ids"())::bigint[]))'));
      expect(text).toContain(droppedBy('plan_fold_i_audit', 'team_id" = any((select "crm"."audit_team_ids"())::bigint[]))'));
      // i_write guards no read and no every-row arm: its arm stays, computed for everyone.
      expect(text).toContain('("deals"."team_id" = any((select "crm"."writer_team_ids"())::bigint[]))');
    }
    expect(clauseOf(c, 'policy crm.deals.deals_not_admin_teams', 'USING')).not.toContain('plan_');
    expect(c.ids).toEqual(expect.arrayContaining(['hint-schema rg_plan_crm_not_i_am_admin', 'hint-schema rg_plan_crm_not_open_team_ids_when', 'hint-schema rg_plan_crm_not_i_audit']));
    expect(c.ids.filter((id) => id.includes('i_write') && id.includes('plan'))).toEqual([]);
    expect(c.up('function crm.plan_marks')).not.toContain('i_write');
  });

  it('a guarded anyOf arm stands in as a NULL range on the key where the key has a least and a greatest value (an index condition, no row array built), and as its containment of NULL where it has not', () => {
    const c = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), org_id: t.bigint(), restricted: t.boolean() });
      const deals = m.table('deals', { id: t.bigint().primaryKey(), org_id: t.bigint(), a_id: t.bigint(), b_id: t.bigint() });
      const notes = m.table('notes', { id: t.text().primaryKey(), org_id: t.bigint(), a_id: t.bigint(), b_id: t.bigint() });
      m.identity(users);
      const orgs = m.fact('my_org_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.org_id }))));
      const restricted = m.fact('i_am_restricted', exists(m.from(users, (u) => ({ where: and(u.id.eq(m.me), u.restricted.isTrue()) }))));
      const mine = m.fact('my_principals', when(restricted, array([m.me])));
      m.policy(deals, 'deals_select', { for: 'select', using: (d) => or(d.org_id.in(orgs), anyOf(d.a_id, d.b_id).in(mine)) });
      m.policy(notes, 'notes_select', { for: 'select', using: (n) => or(n.org_id.in(orgs), anyOf(n.a_id, n.b_id).in(mine)) });
    });
    const deals = clauseOf(c, 'policy crm.deals.deals_select', 'USING');
    expect(deals).toMatch(/"crm"\."plan_fold_i_am_restricted"\(\) AND .*"deals"\."id" >= \(SELECT NULL::bigint\) AND "deals"\."id" <= '9223372036854775807'::bigint\)/);
    expect(deals).not.toContain('@> (SELECT NULL');
    // text has no greatest value: a range open at one end would count as a third of the table.
    const notes = clauseOf(c, 'policy crm.notes.notes_select', 'USING');
    expect(notes).toContain('ARRAY["notes"."a_id", "notes"."b_id"]::bigint[] @> (SELECT NULL::bigint[])::bigint[]');
    expect(notes).not.toContain('(SELECT NULL::text)');
    expect(notes).not.toContain('IS NOT NULL');
  });

  it('a `lookup` read ORs `<key> >= (SELECT NULL)` to its USING, dropped while every set of the clause is few; with a set no mark counts, for everyone; a clause that is no OR is parenthesized; FOR ALL gets no WITH CHECK of its own; a lookup that is no permissive read with a using clause, or whose key type has no range, is refused', () => {
    const lookup = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), org_id: t.bigint() });
      const codes = m.table('codes', { id: t.bigint().primaryKey(), org_id: t.bigint(), team_id: t.bigint() });
      const zones = m.table('zones', { id: t.text().primaryKey(), org_id: t.bigint() });
      m.identity(users);
      const orgs = m.fact('my_org_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.org_id }))));
      const quiet = m.fact('quiet_org_ids', arrayOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.org_id }))), { planHint: false });
      m.policy(codes, 'codes_select', { for: 'select', using: (c) => c.org_id.in(orgs), lookup: true });
      m.policy(zones, 'zones_select', { for: 'select', using: (z) => or(z.org_id.in(orgs), z.org_id.in(quiet)), lookup: true });
      m.policy(users, 'users_select', { for: 'select', using: (u) => u.org_id.in(orgs) });
      // FOR ALL: its USING is also its WITH CHECK, printed once; an arm on the key is no set the marks count.
      const keyed = m.table('keyed', { id: t.bigint().primaryKey(), org_id: t.bigint() });
      m.policy(keyed, 'keyed_all', { for: 'all', using: (k) => and(k.id.in(orgs), k.org_id.isNotNull()), lookup: true });
    });
    const codes = lookup.up('policy crm.codes.codes_select');
    expect(codes).toContain(`\n    OR (NOT "crm"."plan_hint_my_org_ids"() AND "codes"."id" >= (SELECT NULL::bigint))\n  );`);
    // A set whose size no mark tells: the arm stays whoever acts (text keys too).
    expect(lookup.up('policy crm.zones.zones_select')).toContain(`\n    OR ("zones"."id" >= (SELECT NULL::text))\n  );`);
    expect(lookup.up('policy crm.users.users_select')).not.toContain('NULL::bigint');
    // A clause that is no OR is parenthesized before the arm is ORed to it; no WITH CHECK appears.
    const keyed = lookup.up('policy crm.keyed.keyed_all');
    expect(keyed).toContain(`  USING (\n    (("keyed"."id" = any((select "crm"."my_org_ids"())::bigint[])) AND ("keyed"."org_id" IS NOT NULL))\n    OR ("keyed"."id" >= (SELECT NULL::bigint))\n  );`);
    expect(keyed).not.toContain('WITH CHECK');

    const { problems } = validateModel({
      ...defineModel('crm', (m) => {
        const users = m.table('users', { id: t.bigint().primaryKey(), org_id: t.bigint() });
        const flags = m.table('flags', { id: t.boolean().primaryKey(), org_id: t.bigint() });
        m.identity(users);
        m.policy(users, 'users_insert', { for: 'insert', check: (u) => u.org_id.eq(1), lookup: true });
        m.policy(users, 'users_all', { for: 'all', check: (u) => u.org_id.eq(1), lookup: true });
        m.policy(users, 'users_narrow', { for: 'select', using: (u) => u.org_id.isNotNull(), restrictive: true, lookup: true });
        m.policy(flags, 'flags_select', { for: 'select', using: (f) => f.org_id.eq(1), lookup: true });
      }),
      file: 'policies/crm.ts',
    });
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['lookup-not-read', 'users.insert[0] "users_insert"'],
      ['lookup-not-read', 'users.all[0] "users_all"'],
      ['lookup-restrictive', 'users.select[0] "users_narrow"'],
      ['lookup-key-type', 'flags.select[0] "flags_select"'],
    ]);
  });

  it('a model without hinted arms keeps set_session with its pinned search_path', () => {
    const plain = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      m.identity(users);
      m.policy(users, 'users_me', { for: 'select', using: (u) => u.id.eq(m.me) });
    });
    expect(plain.up('function crm.set_session')).toContain('SET search_path = pg_catalog, pg_temp');
    expect(plain.ids.some((id) => id.includes('plan_hint'))).toBe(false);
  });

  it('a fact or a hierarchy may not take the hint functions\' prefixes, nor a fact the name of plan_marks', () => {
    const { problems } = validateModel({
      ...defineModel('crm', (m) => {
        const users = m.table('users', { id: t.bigint().primaryKey(), parent_id: t.bigint() });
        m.identity(users);
        m.hierarchy('plan_true_tree', { table: users, child: 'id', parent: 'parent_id' });
        m.fact('plan_hint_x', m.me);
        m.fact('plan_fold_y', m.me);
        m.fact('plan_when_z', m.me);
        m.fact('plan_true_w', m.me);
        m.fact('plan_marks', m.me);
      }),
      file: 'policies/crm.ts',
    });
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['reserved-name', 'hierarchies.plan_true_tree'],
      ['reserved-name', 'facts.plan_hint_x'],
      ['reserved-name', 'facts.plan_fold_y'],
      ['reserved-name', 'facts.plan_when_z'],
      ['reserved-name', 'facts.plan_true_w'],
      ['reserved-name', 'facts.plan_marks'],
    ]);
  });

  it("a model's schema may not begin as the schemas rowguard creates for each model do (its identity record's, its marks')", () => {
    for (const schema of ['rg_record_crm', 'rg_plan_crm']) {
      const { problems } = validateModel({
        ...defineModel(schema, (m) => m.identity(m.table('users', { id: t.bigint().primaryKey() }))),
        file: 'policies/crm.ts',
      });
      expect(problems.map((p) => [p.code, p.path, p.fix])).toEqual([['reserved-name', 'model', 'choose a name with another beginning']]);
    }
  });
});

describe('plan_marks reads array facts of one table together', () => {
  // Two object types × two levels: four scope lists, each `ARRAY(SELECT scope FROM rights WHERE
  // role = my role AND object = … AND level ≥ …)` under the same condition (the matrix applies).
  const rights = (objects: readonly string[]) =>
    compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), role_id: t.bigint() });
      const rightsTable = m.table('rights', { role_id: t.bigint().notNull(), object: t.text().notNull(), scope: t.text().notNull(), level: t.text().notNull() }, { primaryKey: ['role_id', 'object', 'scope'] });
      m.identity(users);
      const matrix = ownOrOthersMatrix(m, { rights: rightsTable, users });
      for (const object of objects) {
        const table = m.table(`${object}s`, { id: t.bigint().primaryKey(), owner_id: t.bigint() });
        m.policy(table, `${object}s_select`, { for: 'select', using: matrix.allows(table, object, 'select') });
        m.policy(table, `${object}s_update`, { for: 'update', using: matrix.allows(table, object, 'update'), check: matrix.allows(table, object, 'update') });
      }
    }).up('function crm.plan_marks');

  it('one scan of the table, its shared conjuncts the WHERE, an array_agg with the rest as FILTER per fact', () => {
    const marks = rights(['deal', 'lead']);
    expect(marks.match(/FROM "crm"\."rights" AS rg_src WHERE/g)).toHaveLength(1);
    expect(marks).not.toContain('ARRAY(SELECT');
    for (const fact of ['deal_scopes_with_read', 'deal_scopes_with_write', 'lead_scopes_with_read', 'lead_scopes_with_write']) {
      // The fact's own column: from its CASE to its name, its object type in the FILTER.
      const column = marks.slice(0, marks.lastIndexOf(`AS "${fact}"`));
      const own = column.slice(column.lastIndexOf('(CASE WHEN'));
      expect(own).toContain('COALESCE(pg_catalog.array_agg(rg_src."scope") FILTER (WHERE (rg_src."object" = ');
      expect(own).toContain(`'${fact.slice(0, 4)}'`);
      expect(marks).toContain(`rg_fused_1."${fact}" AS "${fact}"`);
    }
    // The role is the shared condition: the index on the rights' key drives the one scan.
    expect(marks).toMatch(/AS rg_src WHERE \(rg_fact\.me IS NOT NULL\)\s+AND \(rg_src\."role_id" = /);
  });

  it('the conjuncts all the facts share are the WHERE; only what differs is a FILTER', () => {
    // Read and write of one object type share the role and the object type; only the level differs.
    const marks = rights(['deal']);
    // The facts' condition (the matrix applies) first: where it is not true, the rights are not read.
    expect(marks).toContain(`FROM "crm"."rights" AS rg_src WHERE (rg_fact.me IS NOT NULL)\n    AND (rg_src."role_id" = ((rg_fact.me_row."role_id"))::bigint)\n    AND (rg_src."object" = 'deal')) AS rg_fused_1`);
    for (const [fact, level] of [['deal_scopes_with_read', 2], ['deal_scopes_with_write', 3]] as const) {
      expect(marks).toContain(
        `(CASE WHEN rg_fact.me IS NOT NULL THEN COALESCE(pg_catalog.array_agg(rg_src."scope") FILTER (WHERE (array_position(ARRAY['none', 'read', 'write']::text[], rg_src."level") >= ${level})), '{}') ELSE NULL END)::text[] AS "${fact}"`,
      );
    }
  });

  // Guard facts: each list is read as `'own' = any(<list>)`, a guard of the arm it decides.
  const guarded = (facts: (m: Builder) => Record<string, ReturnType<typeof arrayOf>>) =>
    compile((m) => {
      const docs = m.table('docs', { id: t.bigint().primaryKey(), owner_id: t.bigint() });
      const lists = Object.values(facts(m));
      m.policy(docs, 'docs_select', { for: 'select', using: (d) => or(...lists.map((list) => d.owner_id.eq(when(lit('own').in(list), m.me)))) });
    }).up('function crm.plan_marks');

  it('a list inlined in the shared conjunct keeps its own scan and alias', () => {
    const marks = guarded((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      const members = m.table('members', { user_id: t.bigint().notNull(), team_id: t.text().notNull() }, { primaryKey: ['user_id', 'team_id'] });
      const rightsTable = m.table('rights', { team_id: t.text().notNull(), object: t.text().notNull(), scope: t.text().notNull(), user_id: t.bigint() }, { primaryKey: ['team_id', 'object', 'scope'] });
      m.identity(users);
      const teams = m.fact('my_teams', arrayOf(m.from(members, (r) => ({ where: r.user_id.eq(m.me), select: r.team_id }))));
      const scopes = (object: string) => m.fact(`${object}_scopes`, arrayOf(m.from(rightsTable, (r) => ({ where: and(r.team_id.in(teams), r.object.eq(object)), select: r.scope }))));
      return { deal: scopes('deal'), lead: scopes('lead'), teams };
    });
    const scan = marks.slice(marks.indexOf('FROM "crm"."rights" AS rg_src WHERE'));
    const where = scan.slice(0, scan.indexOf(') AS rg_fused_'));
    expect(where).toMatch(/rg_src\."team_id" = any\(\(?ARRAY\(SELECT "(q\d+)"\."team_id" FROM "crm"\."members" AS "\1" WHERE "\1"\."user_id" = rg_fact\.me\)/);
    expect(where).not.toContain('rg_src."user_id"');
  });

  it('lists keyed on different columns, or alone on their table, keep their sub-selects', () => {
    const keyedApart = guarded((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      const tasks = m.table('tasks', { id: t.bigint().primaryKey(), active: t.boolean().notNull(), owner_id: t.bigint(), assistant_id: t.bigint(), scope: t.text() });
      m.identity(users);
      // Shared: only `active`, no key; each list's own key is its index probe.
      const owned = m.fact('owned_scopes', arrayOf(m.from(tasks, (r) => ({ where: and(r.active.isTrue(), r.owner_id.eq(m.me)), select: r.scope }))));
      const assisted = m.fact('assisted_scopes', arrayOf(m.from(tasks, (r) => ({ where: and(r.active.isTrue(), r.assistant_id.eq(m.me)), select: r.scope }))));
      return { owned, assisted };
    });
    expect(keyedApart).not.toContain('rg_fused_');
    expect(keyedApart.match(/ARRAY\(SELECT [^\n]* FROM "crm"\."tasks"/g)).toHaveLength(2);
    // A select policy alone: the read list is the only one of its table.
    const alone = compile((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), role_id: t.bigint() });
      const rightsTable = m.table('rights', { role_id: t.bigint().notNull(), object: t.text().notNull(), scope: t.text().notNull(), level: t.text().notNull() }, { primaryKey: ['role_id', 'object', 'scope'] });
      const deals = m.table('deals', { id: t.bigint().primaryKey(), owner_id: t.bigint() });
      m.identity(users);
      m.policy(deals, 'deals_select', { for: 'select', using: ownOrOthersMatrix(m, { rights: rightsTable, users }).allows(deals, 'deal', 'select') });
    }).up('function crm.plan_marks');
    expect(alone).not.toContain('rg_fused_');
    expect(alone).toContain('ARRAY(SELECT "q');
  });
});


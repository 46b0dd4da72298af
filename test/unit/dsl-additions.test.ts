// DSL additions made for the Collect! model — everyRowWhen, the masked view, partial indexes:
// the exact SQL of small models, and the validation errors for misuse.
import { describe, expect, it } from 'vitest';
import { allOf, and, anyOf, array, defineModel, lit, or, scalarOf, t } from '../../generator/dsl/index.ts';
import { compileModel } from '../../generator/emit/index.ts';
import type { ModelNode } from '../../generator/model/nodes.ts';
import { validateModel } from '../../generator/validate/index.ts';

function compiled(model: ModelNode): Map<string, string> {
  const { result, problems } = validateModel(model);
  expect(problems).toEqual([]);
  return new Map(compileModel(result!).flatMap((s) => s.statements.map((st) => [st.id, st.up] as const)));
}

const docsModel = (keyType: 'bigint' | 'text' | 'boolean' = 'bigint') =>
  defineModel('docs', (m) => {
    const users = m.table('users', { id: t.bigint().primaryKey(), is_admin: t.boolean() });
    const docs = m.table('docs', { id: t[keyType]().primaryKey(), owner_id: t.bigint(), title: t.text(), body: t.text() });
    m.identity(users);
    const admin = m.fact('i_am_admin', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.is_admin.isTrue() }))));
    m.policy(docs, 'docs_select', { for: 'select', using: (d) => or(m.everyRowWhen(docs, admin), d.owner_id.eq(m.me)) });
    m.maskedView('doc_directory', { table: docs, keep: ['id'], masks: { title: 'hidden' }, showMaskedWhen: admin.not() });
  });

describe('everyRowWhen', () => {
  it('prints a range on the primary key that is NULL (no rows) unless the condition holds, dropped by the planner for a user without it and read as the condition alone for a user with it', () => {
    expect(compiled(docsModel()).get('policy docs.docs.docs_select')).toBe(
      [
        '-- docs.select[0] "docs_select"',
        'CREATE POLICY "docs_select" ON "docs"."docs"',
        '  AS PERMISSIVE',
        '  FOR SELECT',
        '  TO "app_user", "reporting_user"',
        '  USING (',
        // plan_when_c3ba489ab842() is plan_fold_i_am_admin() OR plan_true_i_am_admin(): the range
        // goes when the fact is not true (no rows) or true (the second part holds them all).
        `    ((NOT "docs"."plan_when_c3ba489ab842"() AND "docs"."id" >= (SELECT CASE WHEN "docs"."i_am_admin"() THEN '-9223372036854775808'::bigint END) AND "docs"."id" <= '9223372036854775807'::bigint)`,
        `      OR ("docs"."plan_true_i_am_admin"() AND (SELECT "docs"."i_am_admin"())))`,
        '    OR ("docs"."owner_id" = (select "docs"."current_user_id"()))',
        '  );',
      ].join('\n'),
    );
  });

  it('uses only the least value of a text key, which has no greatest one', () => {
    expect(compiled(docsModel('text')).get('policy docs.docs.docs_select')).toContain(`"docs"."id" >= (SELECT CASE WHEN "docs"."i_am_admin"() THEN ''::text END)`);
  });

  it('is refused on a key type without a least value, outside a row, and on another table', () => {
    const { problems } = validateModel(docsModel('boolean'));
    expect(problems.map((p) => [p.code, p.path])).toEqual([['no-key-minimum', 'docs.select[0] "docs_select"']]);
    expect(problems[0]!.message).toContain('"docs.id" is boolean');

    const misuse = defineModel('misuse', (m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      const docs = m.table('docs', { id: t.bigint().primaryKey() });
      m.identity(users);
      m.fact('everything', m.everyRowWhen(docs, m.me.isNotNull()), { type: 'boolean' });
      m.policy(users, 'users_select', { for: 'select', using: () => m.everyRowWhen(docs, m.me.isNotNull()) });
      m.policy(docs, 'docs_select', { for: 'select', using: () => m.everyRowWhen(docs, m.me) });
    });
    const found = validateModel(misuse).problems.map((p) => [p.code, p.path]);
    expect(found).toEqual([
      ['row-out-of-scope', 'facts.everything'],
      ['wrong-table', 'users.select[0] "users_select"'],
      ['type-mismatch', 'docs.select[0] "docs_select"'],
    ]);
  });
});

describe('maskedView', () => {
  it('prints kept columns as they are, masks and NULLs the rest, and never yields a NULL flag', () => {
    expect(compiled(docsModel()).get('view docs.doc_directory')).toBe(
      [
        '-- views.doc_directory',
        'CREATE VIEW "docs"."doc_directory" WITH (security_barrier = true) AS',
        'SELECT',
        '  d."id",',
        '  CASE WHEN d.rg_visible THEN d."owner_id" ELSE NULL::bigint END AS "owner_id",',
        `  CASE WHEN d.rg_visible THEN d."title" ELSE 'hidden'::text END AS "title",`,
        '  CASE WHEN d.rg_visible THEN d."body" ELSE NULL::text END AS "body",',
        '  NOT d.rg_visible AS "restricted"',
        'FROM (',
        '  SELECT d.*, coalesce((',
        `    (d."id" >= (SELECT CASE WHEN "docs"."i_am_admin"() THEN '-9223372036854775808'::bigint END) AND d."id" <= '9223372036854775807'::bigint)`,
        '    OR (d."owner_id" = (select "docs"."current_user_id"()))',
        '  ), false) AS rg_visible',
        '  FROM "docs"."docs" AS d',
        ') AS d',
        'WHERE (select "docs"."current_user_id"()) IS NOT NULL',
        `  AND (d.rg_visible OR coalesce(NOT (select "docs"."i_am_admin"()), false));`,
        'ALTER VIEW "docs"."doc_directory" OWNER TO "rowguard_definer";',
        'GRANT SELECT ON "docs"."doc_directory" TO "app_user", "reporting_user";',
      ].join('\n'),
    );
  });
});

describe('partial indexes', () => {
  const withIndex = (where: Parameters<typeof defineModel>[1]) => defineModel('docs', where);

  it('prints CREATE INDEX … WHERE over the row\'s own columns', () => {
    const model = withIndex((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      const docs = m.table(
        'docs',
        { id: t.bigint().primaryKey(), owner_id: t.bigint(), archived: t.boolean() },
        { indexes: [{ columns: ['id'], where: (d) => and(d.owner_id.isNull(), d.archived.isNotTrue()) }] },
      );
      m.identity(users);
      m.policy(docs, 'docs_select', { for: 'select', using: (d) => d.owner_id.eq(m.me) });
    });
    expect(compiled(model).get('index docs.docs_id_partial_idx')).toBe(
      'CREATE INDEX "docs_id_partial_idx" ON "docs"."docs" ("id")\n  WHERE ("owner_id" IS NULL) AND ("archived" IS DISTINCT FROM true);',
    );
  });

  it('refuses a predicate that depends on the session, and unknown columns', () => {
    const model = withIndex((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      m.table('docs', { id: t.bigint().primaryKey(), owner_id: t.bigint() }, { indexes: [{ columns: ['nope'], where: (d) => d.owner_id.eq(m.me) }] });
      m.identity(users);
    });
    expect(validateModel(model).problems.map((p) => [p.code, p.path])).toEqual([
      ['unknown-column', 'tables.docs.indexes[0]'],
      ['index-predicate-not-immutable', 'tables.docs.indexes[0]'],
    ]);
  });
});

describe('anyOf(…).in(set)', () => {
  const routed = (using: 'combined' | 'one column' | 'a fact' | 'mixed types' | 'key first' | 'booleans') =>
    defineModel('desk', (m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint() });
      const tickets = m.table('tickets', { id: t.bigint().primaryKey(), owner_id: t.bigint(), helper_id: t.bigint(), queue: t.text(), urgent: t.boolean(), escalated: t.boolean() });
      m.identity(users);
      const mine = m.fact('my_principals', array([m.me, scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id })))]));
      const flags = m.fact('my_flags', array([scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.team_id.isNull() })))]));
      m.policy(tickets, 'tickets_select', {
        for: 'select',
        using: (k) =>
          using === 'combined'
            ? anyOf(k.owner_id, k.helper_id).in(mine)
            : using === 'one column'
              ? anyOf(k.owner_id).in(mine)
              : using === 'a fact'
                ? anyOf(k.owner_id, mine).in(mine)
                : using === 'key first'
                  ? anyOf(k.id, k.owner_id).in(mine)
                  : using === 'booleans'
                    ? anyOf(k.urgent, k.escalated).in(flags)
                    : anyOf(k.owner_id, k.queue).in(mine),
      });
    });

  it('prints the columns as one array against the set, and one GIN index over that array instead of an index per column', () => {
    const sql = compiled(routed('combined'));
    // The arm's hint on the columns' array, `@>` an empty array, even for bigint (whose `in` arms
    // get a min/max range): true for every row, a NULL column included, and read by the same index.
    expect(sql.get('policy desk.tickets.tickets_select')).toContain(
      [
        `    ARRAY["tickets"."owner_id", "tickets"."helper_id"]::bigint[] && (select "desk"."my_principals"())::bigint[]`,
        `    AND (NOT "desk"."plan_hint_my_principals"() OR ARRAY["tickets"."owner_id", "tickets"."helper_id"]::bigint[] @> (SELECT '{}'::bigint[]))`,
      ].join('\n'),
    );
    expect(sql.get('index desk.tickets_owner_id_helper_id_any_idx')).toBe(
      `CREATE INDEX "tickets_owner_id_helper_id_any_idx" ON "desk"."tickets" USING gin ((ARRAY["owner_id", "helper_id"]::bigint[])) WITH (fastupdate = off);`,
    );
    expect([...sql.keys()].filter((id) => /index desk\.tickets_(owner|helper)_id_idx/.test(id))).toEqual([]);
  });

  it('gets its hint with the key among its columns, or with columns of a type that has no least value (boolean): the containment reads no single column', () => {
    expect(compiled(routed('key first')).get('policy desk.tickets.tickets_select')).toContain(
      `    AND (NOT "desk"."plan_hint_my_principals"() OR ARRAY["tickets"."id", "tickets"."owner_id"]::bigint[] @> (SELECT '{}'::bigint[]))`,
    );
    expect(compiled(routed('booleans')).get('policy desk.tickets.tickets_select')).toContain(
      `    AND (NOT "desk"."plan_hint_my_flags"() OR ARRAY["tickets"."urgent", "tickets"."escalated"]::boolean[] @> (SELECT '{}'::boolean[]))`,
    );
  });

  it('is refused with one column, with a value that is not a column of the row, and with a column of another type than the set', () => {
    const codes = (using: Parameters<typeof routed>[0]) => validateModel(routed(using)).problems.map((p) => [p.code, p.path]);
    expect(codes('one column')).toEqual([['any-of-columns', 'tickets.select[0] "tickets_select"']]);
    expect(codes('a fact')).toEqual([['any-of-columns', 'tickets.select[0] "tickets_select"']]);
    expect(codes('mixed types')).toEqual([['type-mismatch', 'tickets.select[0] "tickets_select"']]);
    expect(validateModel(routed('mixed types')).problems[0]!.message).toContain('text column, tested against a set of bigint[]');
  });
});

describe('allOf(…).in(set)', () => {
  const holding = (values: 'two texts' | 'none' | 'a number' | 'not a set') =>
    defineModel('desk', (m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), badge: t.text() });
      const tickets = m.table('tickets', { id: t.bigint().primaryKey() });
      m.identity(users);
      const badges = m.fact('my_badges', array([scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.badge })))]));
      const items = { 'two texts': [lit('read'), lit('write')], none: [], 'a number': [lit('read'), lit(7)], 'not a set': [lit('read')] }[values];
      m.policy(tickets, 'tickets_select', { for: 'select', using: () => allOf(...items).in(values === 'not a set' ? m.me : badges) });
    });

  it('prints the values as one array contained in the set, which is computed once', () => {
    expect(compiled(holding('two texts')).get('policy desk.tickets.tickets_select')).toContain(
      `ARRAY['read', 'write']::text[] <@ (select "desk"."my_badges"())::text[]`,
    );
  });

  it('is refused with no values, with a value of another type than the set, and against a value that is not a set', () => {
    const codes = (values: Parameters<typeof holding>[0]) => validateModel(holding(values)).problems.map((p) => p.code);
    expect(codes('none')).toEqual(['all-of-values']);
    expect(codes('a number')).toEqual(['type-mismatch']);
    expect(codes('not a set')).toEqual(['not-a-set']);
  });
});

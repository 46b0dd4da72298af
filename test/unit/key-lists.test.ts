// m.keyList: a text[] column of keys kept current by triggers, read by one `&&` arm through a GIN
// index. The SQL a small model gets, and the validation errors for misuse (test/db/key-list.test.ts
// runs SmartOffice's list against PostgreSQL).
import { describe, expect, it } from 'vitest';
import { and, array, defineModel, t } from '../../generator/dsl/index.ts';
import { compileModel } from '../../generator/emit/index.ts';
import type { ModelNode } from '../../generator/model/nodes.ts';
import { validateModel } from '../../generator/validate/index.ts';

function compiled(model: ModelNode): Map<string, string> {
  const { result, problems } = validateModel(model);
  expect(problems).toEqual([]);
  return new Map(compileModel(result!).flatMap((s) => s.statements.map((st) => [st.id, st.up] as const)));
}

const crm = defineModel('crm', (m) => {
  const teams = m.table('teams', { id: t.bigint().primaryKey() });
  const users = m.table('users', { id: t.bigint().primaryKey(), team_id: t.bigint().notNull().references(teams) });
  const deals = m.table('deals', { id: t.bigint().primaryKey(), team_id: t.bigint().notNull().references(teams), archived: t.boolean().notNull().default(false) });
  const owners = m.table('deal_owners', { deal_id: t.bigint().notNull().references(deals), user_id: t.bigint().notNull().references(users) }, { primaryKey: ['deal_id', 'user_id'] });
  m.identity(users);
  const owned = m.keyList(deals, 'owner_keys', { from: owners, key: 'deal_id', value: 'user_id', scope: 'team_id', description: 'Who owns the deal, in its team.' });
  const myTeam = m.fact('my_team_id', m.me);
  const myKeys = m.fact('my_owner_keys', owned.keysOf(myTeam, array([m.me])));
  m.policy(deals, 'deals_select', { for: 'select', using: (d) => and(d.archived.eq(false), owned.of(d).in(myKeys)) });
  m.policy(owners, 'deal_owners_select', { for: 'select', using: (o) => o.user_id.eq(m.me) });
});

describe('m.keyList', () => {
  const sql = compiled(crm);

  it("adds `text[] NOT NULL DEFAULT '{}'`, read as one overlap with the planner's containment hint", () => {
    expect(sql.get('table crm.deals')).toContain(`  "owner_keys" text[] NOT NULL DEFAULT '{}'::text[],\n`);
    const policy = sql.get('policy crm.deals.deals_select')!;
    expect(policy).toContain('"deals"."owner_keys" && (select "crm"."my_owner_keys"())::text[]');
    expect(policy).toContain('"deals"."owner_keys" @> (SELECT \'{}\'::text[])');
  });

  it('gets a GIN index whose WHERE is the arm\'s conditions on the row, and no plain one', () => {
    const gin = [...sql.entries()].filter(([id]) => id.startsWith('index crm.deals_owner_keys'));
    expect(gin).toHaveLength(1);
    expect(gin[0]![1]).toMatch(/^CREATE INDEX "deals_owner_keys_any_\w{6}_idx" ON "crm"\."deals" USING gin \(\("owner_keys"\)\) WITH \(fastupdate = off\)\n {2}WHERE "archived" = false;$/);
  });

  it('computes the keys of a scope and a set of values in the fact, as the triggers do', () => {
    const fact = sql.get('function crm.my_owner_keys')!;
    expect(fact).toContain("ARRAY(SELECT (pg_catalog.replace(pg_catalog.replace(k.rg_scope::text, '%', '%25'), ':', '%3A') || ':' || v.rg_value::text) FROM (SELECT");
    const maintain = sql.get('function crm.maintain_deals_owner_keys')!;
    expect(maintain).toContain(`UPDATE "crm"."deals" SET "owner_keys" = pg_catalog.array_append("owner_keys", (pg_catalog.replace(pg_catalog.replace("crm"."deals"."team_id"::text, '%', '%25'), ':', '%3A') || ':' || NEW."user_id"::text)) WHERE "id" = NEW."deal_id";`);
    expect(maintain).toContain('pg_catalog.array_remove("owner_keys"');
    expect(sql.get('trigger crm.deal_owners.maintain_deals_owner_keys')).toContain('AFTER INSERT OR DELETE OR UPDATE OF "deal_id", "user_id" ON "crm"."deal_owners"');
    const protect = sql.get('function crm.protect_deals_owner_keys')!;
    expect(protect).toContain('ELSIF NEW."team_id" IS DISTINCT FROM OLD."team_id" THEN');
    expect(sql.get('grants crm.deals')).toContain('GRANT UPDATE ("owner_keys") ON "crm"."deals" TO "rowguard_definer";');
  });
});

describe('a counter and a key list kept from the same rows', () => {
  const sql = compiled(
    defineModel('crm', (m) => {
      const teams = m.table('teams', { id: t.bigint().primaryKey() });
      const users = m.table('users', { id: t.bigint().primaryKey() });
      const deals = m.table('deals', { id: t.bigint().primaryKey(), team_id: t.bigint().notNull().references(teams) });
      const owners = m.table('deal_owners', { deal_id: t.bigint().notNull().references(deals), user_id: t.bigint().notNull().references(users) }, { primaryKey: ['deal_id', 'user_id'] });
      m.identity(users);
      m.counter(deals, 'owner_count', { from: owners, key: 'deal_id' });
      m.keyList(deals, 'owner_keys', { from: owners, key: 'deal_id', value: 'user_id', scope: 'team_id' });
      m.policy(deals, 'deals_select', { for: 'select', using: () => m.me.isNotNull() });
    }),
  );

  it('share one trigger, named after the first, which sets both columns in one UPDATE', () => {
    expect([...sql.keys()].filter((id) => id.includes('maintain_'))).toEqual([
      'function crm.maintain_deals_owner_count',
      'trigger crm.deal_owners.maintain_deals_owner_count',
      'trigger crm.deal_owners.maintain_deals_owner_count_on_truncate',
    ]);
    const maintain = sql.get('function crm.maintain_deals_owner_count')!;
    expect(maintain).toContain('UPDATE "crm"."deals" SET "owner_count" = "owner_count" + 1, "owner_keys" = pg_catalog.array_append(');
    expect(maintain).toContain(`UPDATE "crm"."deals" SET "owner_count" = 0, "owner_keys" = '{}' WHERE "owner_count" <> 0 OR "owner_keys" <> '{}';`);
    // Each column keeps its own protection, and the trigger fills both for the rows already there.
    expect([...sql.keys()].filter((id) => id.startsWith('function crm.protect_'))).toEqual(['function crm.protect_deals_owner_count', 'function crm.protect_deals_owner_keys']);
    expect(sql.get('trigger crm.deal_owners.maintain_deals_owner_count')!.match(/^DO \$rg\$/gm)).toHaveLength(2);
  });
});

describe('m.keyList validation', () => {
  const summary = (build: Parameters<typeof defineModel>[1]) => validateModel({ ...defineModel('crm', build), file: 'policies/crm.ts' }).problems.map((p) => [p.code, p.message, p.fix]);
  const tables = (m: Parameters<Parameters<typeof defineModel>[1]>[0], options: { nullableValue?: boolean; ownersKey?: string[]; scopeType?: 'timestamptz' } = {}) => {
    const teams = m.table('teams', { id: t.bigint().primaryKey() });
    const users = m.table('users', { id: t.bigint().primaryKey() });
    const deals = m.table('deals', { id: t.bigint().primaryKey(), team_id: t.bigint().references(teams), region: t.text().notNull(), closes: t.timestamptz().notNull() });
    const owners = m.table(
      'deal_owners',
      { deal_id: t.bigint().notNull().references(deals), user_id: options.nullableValue ? t.bigint().references(users) : t.bigint().notNull().references(users), id: t.bigint().notNull() },
      { primaryKey: options.ownersKey ?? ['deal_id', 'user_id'] },
    );
    m.identity(users);
    return { deals, owners };
  };

  it('refuses a scope or value that may be NULL, a listed table not keyed by (key, value), and types without one text per value', () => {
    expect(
      summary((m) => {
        const { deals, owners } = tables(m, { nullableValue: true, ownersKey: ['id'] });
        m.keyList(deals, 'owner_keys', { from: owners, key: 'deal_id', value: 'user_id', scope: 'team_id' });
        m.keyList(deals, 'closing_keys', { from: owners, key: 'deal_id', value: 'user_id', scope: 'closes' });
      }).map(([code, message]) => [code, message]),
    ).toEqual([
      ['key-list-nullable', 'key list deals.owner_keys: "deal_owners.user_id" may be NULL, which no key can hold'],
      ['key-list-nullable', 'key list deals.owner_keys: its scope "deals.team_id" may be NULL, which no key can hold'],
      ['key-list-not-unique', 'key list deals.owner_keys: "deal_owners" must be keyed by (deal_id, user_id), so each of its rows gives one key; its primary key is (id)'],
      ['key-list-nullable', 'key list deals.closing_keys: "deal_owners.user_id" may be NULL, which no key can hold'],
      ['key-list-type', 'key list deals.closing_keys: "deals.closes" is timestamptz, whose text form is not one fixed text per value'],
      ['key-list-not-unique', 'key list deals.closing_keys: "deal_owners" must be keyed by (deal_id, user_id), so each of its rows gives one key; its primary key is (id)'],
    ]);
  });

  it('refuses a scope that is the key, a counter or set by a write rule, a list of its own table, and a list in an INSERT check', () => {
    const found = summary((m) => {
      const { deals, owners } = tables(m);
      const count = m.counter(deals, 'owner_count', { from: owners, key: 'deal_id' });
      m.keyList(deals, 'by_id', { from: owners, key: 'deal_id', value: 'user_id', scope: 'id' });
      m.keyList(deals, 'by_count', { from: owners, key: 'deal_id', value: 'user_id', scope: count.column as 'id' });
      const byRegion = m.keyList(deals, 'by_region', { from: owners, key: 'deal_id', value: 'user_id', scope: 'region' });
      m.keyList(owners, 'own_keys', { from: owners, key: 'deal_id', value: 'user_id', scope: 'deal_id' });
      m.onWrite(deals, 'deals_region', { events: ['insert'], set: () => ({ region: 'north' }) });
      const mine = m.fact('my_region_keys', byRegion.keysOf('north', array([m.me])));
      m.policy(deals, 'deals_insert', { for: 'insert', check: (d) => byRegion.of(d).in(mine) });
    });
    expect(found.map(([code, message]) => [code, message])).toEqual([
      ['key-list-in-insert-check', 'the WITH CHECK of an INSERT policy reads a key list, which is always empty on a row being inserted'],
      ['key-list-scope', 'key list deals.by_id: its scope "id" is the primary key'],
      ['key-list-scope', 'key list deals.by_count: its scope "owner_count" is a counter or key list itself'],
      ['key-list-scope-written', 'write rule "deals_region" sets deals.region, the scope of key list deals.by_region, in a trigger that may run after the list\'s rewrite of its keys'],
      ['counter-on-itself', 'key list deal_owners.own_keys lists rows of its own table'],
    ]);
  });

  it('refuses keys of the wrong scope or value type, a set of other values, and a list read on another table', () => {
    const found = summary((m) => {
      const { deals, owners } = tables(m);
      const list = m.keyList(deals, 'owner_keys', { from: owners, key: 'deal_id', value: 'user_id', scope: 'region' });
      const wrongScope = m.fact('wrong_scope_keys', list.keysOf(m.me, array([m.me])));
      const wrongValues = m.fact('wrong_value_keys', list.keysOf('north', array(['a'])));
      const ids = m.fact('some_ids', array([m.me]));
      m.policy(deals, 'deals_select', { for: 'select', using: (d) => list.of(d).in(ids).or(list.of(d).in(wrongScope)).or(list.of(d).in(wrongValues)) });
      m.policy(owners, 'deal_owners_select', { for: 'select', using: (o) => list.of(o as never).in(wrongScope) });
    });
    expect(found.map(([code, message]) => [code, message])).toEqual([
      ['unknown-column', 'table "deal_owners" has no column "owner_keys"'],
      ['type-mismatch', 'keysOf() of key list deals.owner_keys gets a bigint scope; its scope column "deals.region" is text'],
      ['type-mismatch', 'keysOf() of key list deals.owner_keys gets a set of text[]; its values, "deal_owners.user_id", are bigint'],
      ['type-mismatch', 'a key list is tested against a set of bigint[]; its keys are text'],
      ['key-list-of-row', "a key list's .of(row) takes the row of a rule on the list's own table"],
    ]);
  });
});

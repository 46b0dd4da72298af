// PolicyCenter at 10^6 accounts (× scale): 100 security zones of ten organizations each, 10,000
// producer codes (ten per organization; the last organization has one), 10^4 users in their
// organization's first group, 10% of them external, one in 1,000 with View All Users.
import { policyFacts, type Persona, type Query, type Scenario } from '../harness.ts';
import { sample, standardReads, write } from '../reads.ts';

const ORGANIZATIONS = 1_000;
const ZONES = 100;
const USERS = 10_000;
/** Organizations 1..999 hold ten codes each, organization 1,000 one: codes 1..9,991. */
const CODES = (ORGANIZATIONS - 1) * 10 + 1;
const S = 'policycenter';

/** The producer codes user `u` may find and view (the contract's rule, by hand): internal users by their groups' zones, external users their own organization's. */
const visibleCodes = (u: string) => `ARRAY(
    SELECT p.id FROM ${S}.producer_codes p JOIN ${S}.organizations o ON o.id = p.organization_id
    WHERE o.security_zone_id IN (SELECT g.security_zone_id FROM ${S}.group_members gm JOIN ${S}.groups g ON g.id = gm.group_id
                                 JOIN ${S}.users me ON me.id = gm.user_id WHERE gm.user_id = ${u} AND me.is_external IS NOT TRUE)
    UNION ALL
    SELECT p.id FROM ${S}.producer_codes p JOIN ${S}.users me ON me.organization_id = p.organization_id WHERE me.id = ${u} AND me.is_external IS TRUE)`;
/** View All Users, for internal users only. */
const viewAll = (u: string) => `(SELECT me.view_all_users IS TRUE AND me.is_external IS NOT TRUE FROM ${S}.users me WHERE me.id = ${u})`;

/** Every row of `alias` when the flag holds: a primary-key range that is empty otherwise, so the other arm keeps its index. */
const everyRowWhen = (alias: string, flag: string) =>
  `${alias}.id BETWEEN (SELECT CASE WHEN ${flag} THEN -9223372036854775808 END) AND (SELECT CASE WHEN ${flag} THEN 9223372036854775807 END)`;

/** The expert's condition on accounts: on a producer code the user can see. */
function expertWhere(u: string, a = 'a'): string {
  const me = `${u}::bigint`;
  return `(${everyRowWhen(a, viewAll(me))} OR ${a}.producer_code_id = ANY (${visibleCodes(me)}))`;
}
/** The same rule on producer codes themselves (the other side of the join). */
function expertCodes(u: string, p = 'p'): string {
  const me = `${u}::bigint`;
  return `(${everyRowWhen(p, viewAll(me))} OR ${p}.id = ANY (${visibleCodes(me)}))`;
}

export function policycenter(): Scenario {
  return {
    model: 'policycenter',
    schema: S,
    table: 'accounts',
    hierarchyNodes: () => ZONES,
    describe: (scale) =>
      `${(1e6 * scale).toLocaleString('en')} accounts over ${CODES.toLocaleString('en')} producer codes of ${ORGANIZATIONS.toLocaleString('en')} organizations in ${ZONES} security zones; ${USERS.toLocaleString('en')} users (10% external, 0.1% View All Users, a third with producer code security)`,
    async load(sql, scale, log) {
      const D = 1_000_000 * scale;
      const h = (g: string, salt: number) => `((${g}::bigint * ${2654435761 + salt * 2}) % 1000003)`;
      log('zones, organizations, groups, users and producer codes');
      await sql.unsafe(`
        INSERT INTO ${S}.security_zones (id, name) SELECT g, 'zone ' || g FROM generate_series(1, ${ZONES}) g;
        INSERT INTO ${S}.organizations (id, name, security_zone_id, is_external)
          SELECT g, 'organization ' || g, 1 + (g - 1) % ${ZONES}, g % 10 = 0 FROM generate_series(1, ${ORGANIZATIONS}) g;
        -- Two groups per organization, in its zone.
        INSERT INTO ${S}.groups (id, organization_id, name, security_zone_id)
          SELECT g, 1 + (g - 1) / 2, 'group ' || g, 1 + ((g - 1) / 2) % ${ZONES} FROM generate_series(1, ${2 * ORGANIZATIONS}) g;
        -- Ten users per organization; the users of every tenth organization are external.
        INSERT INTO ${S}.users (id, organization_id, name, is_external, view_all_users, producer_code_security)
          SELECT g, 1 + (g - 1) / 10, 'user ' || g, ((g - 1) / 10 + 1) % 10 = 0, g % 1000 = 1, g % 3 = 0 FROM generate_series(1, ${USERS}) g;
        INSERT INTO ${S}.group_members (group_id, user_id) SELECT 2 * ((g - 1) / 10) + 1, g FROM generate_series(1, ${USERS}) g;
        INSERT INTO ${S}.producer_codes (id, organization_id, code) SELECT g, 1 + (g - 1) / 10, 'PC' || lpad(g::text, 5, '0') FROM generate_series(1, ${CODES}) g;
        -- Each code linked to its organization's first user and second group (select for action).
        INSERT INTO ${S}.producer_code_members (producer_code_id, user_id, group_id)
          SELECT g, 10 * ((g - 1) / 10) + 1, NULL FROM generate_series(1, ${CODES}) g
          UNION ALL SELECT g, NULL, 2 * (1 + (g - 1) / 10) FROM generate_series(1, ${CODES}) g;`);
      log(`${D.toLocaleString('en')} accounts`);
      await sql.unsafe(`
        INSERT INTO ${S}.accounts (id, name, producer_code_id, created_by)
          SELECT g, 'account ' || g, 1 + ${h('g', 0)} % ${CODES}, 1 + ${h('g', 1)} % ${USERS} FROM generate_series(1, ${D}) g;
        -- What an application would add for its own searches.
        CREATE INDEX accounts_name_idx ON ${S}.accounts (name);`);
      log('VACUUM ANALYZE');
      await sql.unsafe('VACUUM ANALYZE');
    },
    async personas(sql) {
      // Bench personas are users of their own, so their settings change nobody else's view.
      const add = async (id: number, values: { organization: number; external?: boolean; viewAll?: boolean; groups?: readonly number[] }) => {
        await sql.unsafe(
          `INSERT INTO ${S}.users (id, organization_id, name, is_external, view_all_users) VALUES ($1::bigint, $2, 'bench ' || $1::bigint, $3, $4)
           ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id, is_external = excluded.is_external, view_all_users = excluded.view_all_users`,
          [id, values.organization, values.external ?? false, values.viewAll ?? false] as never[],
        );
        await sql.unsafe(`DELETE FROM ${S}.group_members WHERE user_id = $1`, [id] as never[]);
        for (const g of values.groups ?? []) await sql.unsafe(`INSERT INTO ${S}.group_members (group_id, user_id) VALUES ($1, $2)`, [g, id] as never[]);
      };
      // The first group of organizations 1..10: zones 1..10.
      const firstGroups = Array.from({ length: 10 }, (_, i) => 2 * i + 1);
      await add(1_000_001, { organization: ORGANIZATIONS, external: true });
      await add(1_000_002, { organization: 10, external: true });
      await add(1_000_003, { organization: 1, groups: firstGroups.slice(0, 1) });
      await add(1_000_004, { organization: 1, groups: firstGroups });
      await add(1_000_005, { organization: 1, viewAll: true, groups: firstGroups.slice(0, 1) });
      const personas: Persona[] = [
        { name: 'external, one code', target: '0.01%', userId: '1000001', values: {} },
        { name: 'external', target: '0.1%', userId: '1000002', values: {} },
        { name: 'one zone', target: '1%', userId: '1000003', values: {} },
        { name: 'ten zones', target: '10%', userId: '1000004', values: {} },
        { name: 'view all users', target: 'nearly all', userId: '1000005', values: {} },
      ];
      await sql.unsafe(`ANALYZE ${S}.users, ${S}.group_members`);
      return personas;
    },
    visibleSet: (p) => ({ text: `SELECT id FROM ${S}.accounts a WHERE ${expertWhere('$1')}`, params: [p.userId] }),
    async queries(p, { visible, owner }) {
      const u = p.userId;
      const reads = standardReads(
        {
          table: `${S}.accounts`,
          alias: 'a',
          columns: 'id, name, producer_code_id',
          expert: expertWhere('$1'),
          equality: { column: 'name', value: (id) => `account ${id}` },
          ilike: 'name',
        },
        u,
        { visible, owner },
      );
      const { middle, page1 } = sample(visible);
      // Personas have no producer code security: a code they see is one they may use.
      const [row] = await owner.unsafe(`SELECT producer_code_id::text AS code FROM ${S}.accounts WHERE id = $1`, [middle]);
      const code = row!.code as string;
      const insertSql = `INSERT INTO ${S}.accounts (id, name, producer_code_id, created_by) VALUES (2000000000, 'new account', $1, $2)`;
      const join = `SELECT a.id, a.name, p.code FROM ${S}.accounts a JOIN ${S}.producer_codes p ON p.id = a.producer_code_id`;
      const queries: Query[] = [
        ...reads,
        {
          kind: 'read',
          name: 'join producer codes',
          secured: { text: `${join} ORDER BY a.id LIMIT 50` },
          // A visible account's code is visible: the answer is the first page's accounts with their codes.
          b1: () => ({ text: `${join} WHERE a.id = ANY ($1::bigint[]) ORDER BY a.id`, params: [page1] }),
          b2: { text: `${join} WHERE ${expertWhere('$1')} AND ${expertCodes('$1')} ORDER BY a.id LIMIT 50`, params: [u] },
        },
        write('insert', { text: insertSql, params: [code, u] }, {
          text: `INSERT INTO ${S}.accounts (id, name, producer_code_id, created_by) SELECT 2000000000, 'new account', $1::bigint, $2::bigint
                 WHERE $1::bigint = ANY (${visibleCodes('$2::bigint')}) OR ${viewAll('$2::bigint')}`,
          params: [code, u],
        }),
        write(
          'update',
          { text: `UPDATE ${S}.accounts SET name = 'renamed' WHERE id = $1`, params: [middle] },
          { text: `UPDATE ${S}.accounts a SET name = 'renamed' WHERE a.id = $2 AND ${expertWhere('$1')}`, params: [u, middle] },
        ),
        {
          kind: 'facts',
          name: 'visible set alone',
          secured: await policyFacts(owner, S, 'accounts'),
          b2: { text: `SELECT ${viewAll('$1::bigint')} AS view_all, ${visibleCodes('$1::bigint')} AS codes`, params: [u] },
        },
      ];
      return queries;
    },
  };
}

// PolicyCenter at 10^6 accounts (× scale): 100 security zones (ten small ones of two
// organizations, ninety of ~21), 2,000 organizations (a third external agencies, one in 47 in no
// zone), 1,000 internal groups in the zones and one agency group per external organization,
// 10^4 users (a quarter external; ten with View All Users; a third with producer code security),
// ~10^4 producer codes (1 to 9 per organization), each linked to a group of its zone and the agency's
// group, and accounts spread over the codes.
import { policyFacts, type Persona, type Query, type Scenario, type Sql } from '../harness.ts';
import { bulkInsert, everyRowWhen, sample, standardReads, write } from '../reads.ts';

const ZONES = 100;
const SMALL_ZONES = 10;
const ORGS = 2_000;
const GROUPS = 1_000;
const USERS = 10_000;
const S = 'policycenter';
/** The 10% persona: a bench-only internal user whose groups cover enough zones. */
const BENCH_USER = 1_000_001;

const me = (u: string) => `${u}::bigint`;
/** View All Users counts for internal users only. */
const viewAll = (u: string) => `(SELECT x.view_all_users AND x.is_external IS NOT TRUE FROM ${S}.users x WHERE x.id = ${me(u)})`;
/** The organizations whose producer codes the user finds: those in an internal user's zones, or an external user's own. */
const codeOrgs = (u: string) => `ARRAY(
      SELECT o.id FROM ${S}.organizations o WHERE o.security_zone_id IN (
        SELECT g.security_zone_id FROM ${S}.group_members gm JOIN ${S}.groups g ON g.id = gm.group_id
        WHERE gm.user_id = ${me(u)} AND (SELECT x.is_external IS NOT TRUE FROM ${S}.users x WHERE x.id = ${me(u)}))
      UNION ALL
      SELECT x.organization_id FROM ${S}.users x WHERE x.id = ${me(u)} AND x.is_external)`;

/** The expert's "find and view" of a producer code. */
function codeVisible(u: string, p = 'p'): string {
  return `(${everyRowWhen(`${p}.id`, viewAll(u))} OR ${p}.organization_id = ANY (${codeOrgs(u)}))`;
}

/** The expert's WHERE for accounts: the account's producer code is one the user finds. */
function expertWhere(u: string, a = 'a'): string {
  return `(${everyRowWhen(`${a}.id`, viewAll(u))}
    OR ${a}.producer_code_id = ANY (ARRAY(SELECT p.id FROM ${S}.producer_codes p WHERE p.organization_id = ANY (${codeOrgs(u)}))))`;
}

/** "Select for action": visible, and with producer code security on, linked to the user or one of their groups. */
function codeUsable(u: string, p = 'p'): string {
  return `(${codeVisible(u, p)} AND (
      (SELECT x.producer_code_security IS NOT TRUE FROM ${S}.users x WHERE x.id = ${me(u)})
      OR EXISTS (SELECT 1 FROM ${S}.producer_code_members pm WHERE pm.producer_code_id = ${p}.id
                 AND (pm.user_id = ${me(u)} OR pm.group_id IN (SELECT gm.group_id FROM ${S}.group_members gm WHERE gm.user_id = ${me(u)})))))`;
}

export function policycenter(): Scenario {
  return {
    model: 'policycenter',
    schema: S,
    table: 'accounts',
    // No hierarchy: zones are flat, so the visible-set target (≤ 1 ms) applies.
    hierarchyNodes: () => 0,
    describe: (scale) =>
      `${(1e6 * scale).toLocaleString('en')} accounts over ~10,000 producer codes (1 to 9 each) of ${ORGS.toLocaleString('en')} organizations (a third external) in ${ZONES} security zones (${SMALL_ZONES} of two organizations), ${GROUPS.toLocaleString('en')} internal groups, ${USERS.toLocaleString('en')} users (a quarter external, ten with View All Users, a third with producer code security)`,
    async load(sql, scale, log) {
      const D = 1_000_000 * scale;
      // A deterministic hash that mixes well at every scale (a multiplicative one clumps when g ≪ its modulus).
      const h = (g: string, salt: number) => `(hashint8((${g})::bigint * 16 + ${salt}) & 2147483647)`;
      log('zones, organizations, groups and users');
      await sql.unsafe(`
        INSERT INTO ${S}.security_zones (id, name) SELECT g, 'zone ' || g FROM generate_series(1, ${ZONES}) g;
        -- Every third organization is an agency (external); organizations 1..20 make the ten small zones.
        INSERT INTO ${S}.organizations (id, name, security_zone_id, is_external)
          SELECT o, 'organization ' || o,
                 CASE WHEN o % 47 = 0 THEN NULL WHEN o <= 2 * ${SMALL_ZONES} THEN 1 + (o - 1) / 2 ELSE ${SMALL_ZONES + 1} + (o - ${2 * SMALL_ZONES + 1}) % ${ZONES - SMALL_ZONES} END,
                 o % 3 = 0
          FROM generate_series(1, ${ORGS}) o;
        -- Internal groups: ten per zone (one in 23 in none), in internal organizations; one group per agency, no zone.
        INSERT INTO ${S}.groups (id, organization_id, name, security_zone_id)
          SELECT g, 3 * ((g - 1) % ${Math.floor(ORGS / 3)}) + 1, 'group ' || g, CASE WHEN g % 23 = 0 THEN NULL ELSE 1 + (g - 1) % ${ZONES} END
          FROM generate_series(1, ${GROUPS}) g
          UNION ALL
          SELECT ${GROUPS} + o / 3, o, 'agency group ' || o, NULL FROM generate_series(3, ${ORGS}, 3) o;
        -- Every fourth user is external (an agency's); the others belong to internal organizations.
        INSERT INTO ${S}.users (id, organization_id, name, is_external, view_all_users, producer_code_security)
          SELECT u, CASE WHEN u % 4 = 0 THEN 3 * (1 + (u / 4 - 1) % ${Math.floor(ORGS / 3)}) ELSE 3 * (${h('u', 0)} % ${Math.floor(ORGS / 3)}) + 1 END,
                 'user ' || u, u % 4 = 0, u % 1000 = 1, u % 3 = 1
          FROM generate_series(1, ${USERS}) u;
        -- Internal users in one group (every fifth in two); external users in their agency's group.
        INSERT INTO ${S}.group_members (group_id, user_id)
          SELECT 1 + ${h('u', 1)} % ${GROUPS}, u FROM generate_series(1, ${USERS}) u WHERE u % 4 <> 0
          UNION
          SELECT 1 + ${h('u', 2)} % ${GROUPS}, u FROM generate_series(1, ${USERS}) u WHERE u % 4 <> 0 AND u % 5 = 0
          UNION
          SELECT ${GROUPS} + x.organization_id / 3, x.id FROM ${S}.users x WHERE x.is_external;`);
      log('producer codes and their members');
      await sql.unsafe(`
        -- Organization o has 1 + (7o mod 9) codes (1 to 9, ~10^4 in all), numbered in hash order.
        INSERT INTO ${S}.producer_codes (id, organization_id, code)
          SELECT row_number() OVER (ORDER BY ${h('(10 * o + i)', 3)}, o, i), o, 'PC' || o || '-' || i
          FROM generate_series(1, ${ORGS}) o CROSS JOIN LATERAL generate_series(1, 1 + (7 * o) % 9) i;
        -- Each code is linked to one of the ten groups of its organization's zone, an agency's code
        -- also to the agency's group and every other one to the agency's first user.
        INSERT INTO ${S}.producer_code_members (producer_code_id, user_id, group_id)
          SELECT p.id, NULL::bigint, o.security_zone_id + ${ZONES} * (${h('p.id', 4)} % 10)
          FROM ${S}.producer_codes p JOIN ${S}.organizations o ON o.id = p.organization_id WHERE o.security_zone_id IS NOT NULL
          UNION ALL
          SELECT p.id, NULL, ${GROUPS} + p.organization_id / 3 FROM ${S}.producer_codes p WHERE p.organization_id % 3 = 0
          UNION ALL
          SELECT p.id, 4 * (p.organization_id / 3), NULL FROM ${S}.producer_codes p WHERE p.organization_id % 3 = 0 AND p.id % 2 = 0;`);
      log(`${D.toLocaleString('en')} accounts`);
      await sql.unsafe(`
        INSERT INTO ${S}.accounts (id, name, producer_code_id, created_by)
          SELECT g, 'account ' || g, 1 + ${h('g', 5)} % (SELECT count(*) FROM ${S}.producer_codes), 1 + ${h('g', 6)} % ${USERS} FROM generate_series(1, ${D}) g;
        -- What an application would add for its own searches.
        CREATE INDEX accounts_name_idx ON ${S}.accounts (name);`);
      log('VACUUM ANALYZE');
      await sql.unsafe('VACUUM ANALYZE');
    },
    async personas(sql, scale) {
      const D = 1_000_000 * scale;
      // Accounts per zone and per organization, to pick users by the share they see.
      const [{ zones }] = (await sql.unsafe(`
        WITH code_n AS (SELECT producer_code_id AS id, count(*) AS n FROM ${S}.accounts GROUP BY 1)
        SELECT json_object_agg(z, n) AS zones FROM (
          SELECT o.security_zone_id AS z, sum(c.n) AS n FROM ${S}.producer_codes p JOIN code_n c ON c.id = p.id
          JOIN ${S}.organizations o ON o.id = p.organization_id WHERE o.security_zone_id IS NOT NULL GROUP BY 1) s`)) as unknown as [{ zones: Record<string, string> }];
      // The bench user: internal, in the first group of each regular zone until ~10% of accounts.
      let covered = 0;
      const chosen: number[] = [];
      for (let z = SMALL_ZONES + 1; z <= ZONES; z++) {
        const n = Number(zones[String(z)] ?? 0);
        if (Math.abs(covered + n - 0.1 * D) >= Math.abs(covered - 0.1 * D)) break;
        covered += n;
        chosen.push(z);
      }
      await sql.unsafe(
        `INSERT INTO ${S}.users (id, organization_id, name) VALUES ($1, 1, 'bench user (10%)')
           ON CONFLICT (id) DO UPDATE SET organization_id = 1, is_external = false, view_all_users = false, producer_code_security = false`,
        [BENCH_USER] as never[],
      );
      await sql.unsafe(`DELETE FROM ${S}.group_members WHERE user_id = $1`, [BENCH_USER] as never[]);
      await sql.unsafe(
        `INSERT INTO ${S}.group_members (group_id, user_id) SELECT (SELECT min(g.id) FROM ${S}.groups g WHERE g.security_zone_id = z), $1 FROM unnest($2::bigint[]) z`,
        [BENCH_USER, chosen] as never[],
      );
      await sql.unsafe(`ANALYZE ${S}.users, ${S}.group_members`);
      // Everyone else is a real user: the candidates' visible accounts, computed from the zone and organization sums.
      const candidates = (await sql.unsafe(`
        WITH code_n AS (SELECT producer_code_id AS id, count(*) AS n FROM ${S}.accounts GROUP BY 1),
        org_n AS (SELECT p.organization_id AS id, sum(c.n) AS n FROM ${S}.producer_codes p JOIN code_n c ON c.id = p.id GROUP BY 1),
        zone_n AS (SELECT o.security_zone_id AS id, sum(org_n.n) AS n FROM ${S}.organizations o JOIN org_n ON org_n.id = o.id GROUP BY 1)
        SELECT x.id::text AS id, x.is_external AS external, x.view_all_users AND NOT x.is_external AS all, x.producer_code_security AS pcs,
               CASE WHEN x.view_all_users AND NOT x.is_external THEN (SELECT sum(n) FROM code_n)
                    WHEN x.is_external THEN coalesce((SELECT n FROM org_n WHERE org_n.id = x.organization_id), 0)
                    ELSE coalesce((SELECT sum(z.n) FROM zone_n z WHERE z.id IN (
                      SELECT g.security_zone_id FROM ${S}.group_members gm JOIN ${S}.groups g ON g.id = gm.group_id WHERE gm.user_id = x.id)), 0) END::bigint AS n
        FROM ${S}.users x WHERE x.id <= ${USERS}`)) as unknown as { id: string; external: boolean; all: boolean; pcs: boolean; n: string }[];
      /** The candidate closest to the share (those with producer code security first within 20%), who may also insert. */
      const pick = async (share: number, kind: (c: (typeof candidates)[number]) => boolean): Promise<string> => {
        const t = share * D;
        const off = (c: (typeof candidates)[number]) => Math.abs(Number(c.n) - t) / t;
        const key = (c: (typeof candidates)[number]) => (off(c) <= 0.2 ? (c.pcs ? 0 : 1) : 2);
        const ranked = candidates.filter(kind).sort((a, b) => key(a) - key(b) || off(a) - off(b));
        for (const c of ranked) if (await usableCode(sql, c.id)) return c.id;
        throw new Error(`no ${S} user near ${100 * share}% with a usable producer code`);
      };
      const personas: Persona[] = [
        { name: 'agency user', target: '0.01%', userId: await pick(0.0001, (c) => c.external), values: {} },
        { name: 'small zone', target: '0.1%', userId: await pick(0.001, (c) => !c.external && !c.all), values: {} },
        { name: 'one zone', target: '1%', userId: await pick(0.01, (c) => !c.external && !c.all), values: {} },
        { name: 'many zones', target: '10%', userId: String(BENCH_USER), values: {} },
        { name: 'view all', target: 'nearly all', userId: await pick(1, (c) => c.all), values: {} },
      ];
      return personas;
    },
    visibleSet: (p) => ({ text: `SELECT id FROM ${S}.accounts a WHERE ${expertWhere('$1')}`, params: [p.userId] }),
    async queries(p, { visible, owner }) {
      const u = p.userId;
      const reads = standardReads(
        {
          table: `${S}.accounts`,
          alias: 'a',
          columns: 'id, name, producer_code_id, created_by',
          expert: expertWhere('$1'),
          equality: { column: 'name', value: (id) => `account ${id}` },
          ilike: 'name',
        },
        u,
        { visible, owner },
      );
      const { middle, page1 } = sample(visible);
      // A new account on a code the persona may select for action (not merely see).
      const code = (await usableCode(owner, u))!;
      const insertSql = `INSERT INTO ${S}.accounts (id, name, producer_code_id, created_by) VALUES (2000000000, 'new account', $1, $2)`;
      // The expert's insert: the new account's values ($1 the code, $2 the user), checked once.
      const newAccount = `'new account', $1::bigint, $2::bigint`;
      const mayUse = `EXISTS (SELECT 1 FROM ${S}.producer_codes p WHERE p.id = $1::bigint AND ${codeUsable('$2')})`;
      const joinSql = `SELECT a.id, a.name, p.code FROM ${S}.accounts a JOIN ${S}.producer_codes p ON p.id = a.producer_code_id`;
      // The lookup table's own first page: what its widened estimate (lookup: true) costs a user
      // whose sets are not few. B1 reads the first 50 codes the expert's condition admits.
      const codesSql = `SELECT p.id, p.code FROM ${S}.producer_codes p`;
      const firstCodes = (await owner.unsafe(`${codesSql} WHERE ${codeVisible('$1')} ORDER BY p.id LIMIT 50`, [u])).map((r) => String(r.id));
      const queries: Query[] = [
        ...reads,
        {
          kind: 'read',
          name: 'join producer codes',
          secured: { text: `${joinSql} ORDER BY a.id LIMIT 50` },
          b1: () => ({ text: `${joinSql} WHERE a.id = ANY ($1::bigint[]) ORDER BY a.id`, params: [page1] }),
          b2: { text: `${joinSql} WHERE ${expertWhere('$1')} AND ${codeVisible('$1')} ORDER BY a.id LIMIT 50`, params: [u] },
        },
        {
          kind: 'read',
          name: 'first page of producer codes',
          secured: { text: `${codesSql} ORDER BY p.id LIMIT 50` },
          b1: () => ({ text: `${codesSql} WHERE p.id = ANY ($1::bigint[]) ORDER BY p.id`, params: [firstCodes] }),
          b2: { text: `${codesSql} WHERE ${codeVisible('$1')} ORDER BY p.id LIMIT 50`, params: [u] },
        },
        write('insert', { text: insertSql, params: [code, u] }, {
          text: `INSERT INTO ${S}.accounts (id, name, producer_code_id, created_by) SELECT 2000000000, ${newAccount}
                 WHERE ${mayUse}`,
          params: [code, u],
        }),
        bulkInsert({ table: `${S}.accounts`, columns: 'name, producer_code_id, created_by', values: newAccount, params: [code, u] }, { where: mayUse, params: [code, u] }),
        write(
          'update',
          { text: `UPDATE ${S}.accounts SET name = 'renamed account' WHERE id = $1`, params: [middle] },
          { text: `UPDATE ${S}.accounts a SET name = 'renamed account' WHERE a.id = $2 AND ${expertWhere('$1')}`, params: [u, middle] },
        ),
        {
          kind: 'facts',
          name: 'visible set alone',
          secured: await policyFacts(owner, S, 'accounts', u),
          // The same sets as the policy's facts: the View All flag and the codes seen through zones or organization.
          b2: { text: `SELECT ${viewAll('$1')} AS view_all, ARRAY(SELECT p.id FROM ${S}.producer_codes p WHERE p.organization_id = ANY (${codeOrgs('$1')})) AS codes`, params: [u] },
        },
      ];
      return queries;
    },
  };
}

/** The first producer code the user may select for action (hand-written rule, as the owner), if any. */
async function usableCode(sql: Sql, userId: string): Promise<string | undefined> {
  const [row] = await sql.unsafe(`SELECT p.id::text AS id FROM ${S}.producer_codes p WHERE ${codeUsable('$1')} ORDER BY p.id LIMIT 1`, [userId]);
  return row?.id as string | undefined;
}

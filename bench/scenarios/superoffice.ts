// SuperOffice at 10^6 contacts (× scale): 1,000 user groups, 10^4 users (ten per primary group,
// 0–3 secondary groups each, the seeded roles; ~1% external, a few anonymous and system users),
// 10^5 companies (× scale, at least one per group) and contacts whose owner, group and company
// follow a deterministic hash: 80% in the owner's primary group, their company in the same group.
import { policyFacts, type Persona, type Query, type Scenario } from '../harness.ts';
import { bulkInsert, everyRowWhen, sample, standardReads, write } from '../reads.ts';

export interface SuperOfficeOptions {
  /** Number of user groups (default 1,000). */
  readonly groups: number;
}

const USERS = 10_000;
const S = 'superoffice';

type Level = 'read' | 'create' | 'update';
type ObjectType = 'contact' | 'company';
/** Rights that include the level (each level includes the ones before it). */
const atLeast: Record<Level, string> = { read: `('read', 'create', 'update', 'delete')`, create: `('create', 'update', 'delete')`, update: `('update', 'delete')` };

/** Whether my role, as an internal user, grants at least `level` on `object` rows in `scope`. */
const grants = (me: string, object: ObjectType, scope: string, level: Level) =>
  `EXISTS (SELECT 1 FROM ${S}.users u JOIN ${S}.role_rights r ON r.role_id = u.role_id
           WHERE u.id = ${me} AND u.kind = 'internal' AND r.object_type = '${object}' AND r.scope = '${scope}' AND r.rights IN ${atLeast[level]})`;

/**
 * The expert's WHERE clause over the contract's tables: the highest right over the row's scopes
 * is at least `level` when one of its scopes grants it, so each scope is an arm driven by an index
 * (owner_id, group_id) from an uncorrelated value that is NULL or empty unless the role grants it;
 * 'others' and kind 'system' (and 'external' on published companies) are primary-key ranges that
 * are empty unless the flag holds. Anonymous users match no arm; external users no contact arm.
 */
function expertWhere(u: string, object: ObjectType, level: Level, c = 'c'): string {
  const me = `${u}::bigint`;
  const range = (flag: string) => everyRowWhen(`${c}.id`, flag);
  const primary = `(SELECT u.primary_group_id FROM ${S}.users u WHERE u.id = ${me})`;
  const secondary = `ARRAY(SELECT g.group_id FROM ${S}.user_secondary_groups g WHERE g.user_id = ${me})`;
  const kind = (k: string) => `(SELECT u.kind = '${k}' FROM ${S}.users u WHERE u.id = ${me})`;
  return `(
    ${c}.owner_id = (SELECT ${me} WHERE ${grants(me, object, 'own', level)})
    OR ${c}.group_id = (SELECT ${primary} WHERE ${grants(me, object, 'primary_group', level)})
    OR ${c}.group_id = ANY (ARRAY(SELECT g.group_id FROM ${S}.user_secondary_groups g WHERE g.user_id = ${me} AND ${grants(me, object, 'secondary_group', level)}))
    OR (${range(grants(me, object, 'others', level))}
        AND ${c}.owner_id <> ${me} AND ${c}.group_id <> ${primary} AND ${c}.group_id <> ALL (${secondary}))
    OR ${range(kind('system'))}${object === 'company' && level === 'read' ? `\n    OR (${c}.published AND ${range(kind('external'))})` : ''}
  )`;
}

/** The same per-statement values as the policy's facts, computed by hand (B2 of "visible set alone"). */
function expertSets(u: string): string {
  const me = `${u}::bigint`;
  return `SELECT
    ARRAY(SELECT r.scope FROM ${S}.users u JOIN ${S}.role_rights r ON r.role_id = u.role_id
          WHERE u.id = ${me} AND u.kind = 'internal' AND r.object_type = 'contact' AND r.rights IN ${atLeast.read}) AS scopes_with_read,
    (SELECT u.primary_group_id FROM ${S}.users u WHERE u.id = ${me}) AS primary_group,
    ARRAY(SELECT g.group_id FROM ${S}.user_secondary_groups g WHERE g.user_id = ${me}) AS secondary_groups,
    (SELECT u.kind = 'system' FROM ${S}.users u WHERE u.id = ${me}) AS system`;
}

/** A bench-only role (rights are data): reads and writes its own contacts only; companies of its primary group too. */
const OWN_ONLY_ROLE = { id: 1001, name: 'Bench: own contacts only' };

export function superoffice(options: SuperOfficeOptions): Scenario {
  const G = options.groups;
  const companies = (scale: number) => Math.max(G, Math.round(100_000 * scale));
  return {
    model: 'superoffice',
    schema: S,
    table: 'contacts',
    // No hierarchy: the facts are lookups of one user, their role's rights and secondary groups.
    hierarchyNodes: () => 0,
    describe: (scale) =>
      `${(1e6 * scale).toLocaleString('en')} contacts over ${companies(scale).toLocaleString('en')} companies, ${G.toLocaleString('en')} user groups, ${USERS.toLocaleString('en')} users (ten per primary group, 0–3 secondary groups, seeded roles; ~1% external); 80% of contacts in their owner's primary group, 95% with a company of their group, 10% published`,
    async load(sql, scale, log) {
      const C = 1_000_000 * scale;
      const K = companies(scale);
      const h = (g: string, salt: number) => `((${g}::bigint * ${2654435761 + salt * 2}) % 1000003)`;
      // Users of group p are p, p + G, p + 2G, …; companies of group p are p, p + G, …
      const perGroup = Math.floor(USERS / G);
      log('groups and users');
      await sql.unsafe(`
        INSERT INTO ${S}.user_groups (id, name) SELECT g, 'group ' || g FROM generate_series(1, ${G}) g;
        INSERT INTO ${S}.users (id, name, role_id, primary_group_id, kind)
          SELECT g, 'user ' || g,
                 CASE WHEN g % 100 = 99 THEN (SELECT id FROM ${S}.roles WHERE name = 'External user')
                      WHEN g % 1000 = 500 THEN (SELECT id FROM ${S}.roles WHERE name = 'Anonymous user')
                      WHEN g % 5000 = 4000 THEN (SELECT id FROM ${S}.roles WHERE name = 'System user')
                      ELSE (ARRAY(SELECT id FROM ${S}.roles WHERE name LIKE 'User level %' OR name IN ('Local user', 'List administrator', 'User administrator') ORDER BY id))[1 + ${h('g', 7)} % 9] END,
                 1 + (g - 1) % ${G},
                 CASE WHEN g % 100 = 99 THEN 'external' WHEN g % 1000 = 500 THEN 'anonymous' WHEN g % 5000 = 4000 THEN 'system' ELSE 'internal' END
          FROM generate_series(1, ${USERS}) g;
        -- User g has g % 4 secondary groups, 37, 74 and 111 groups after its primary one.
        INSERT INTO ${S}.user_secondary_groups (user_id, group_id)
          SELECT g, 1 + (g - 1 + 37 * k) % ${G} FROM generate_series(1, ${USERS}) g, generate_series(1, 3) k WHERE k <= g % 4;`);
      log(`${K.toLocaleString('en')} companies`);
      await sql.unsafe(`
        INSERT INTO ${S}.companies (id, name, owner_id, group_id, published)
          SELECT k, 'company ' || k, 1 + (k - 1) % ${G} + ${G} * (${h('k', 1)} % ${perGroup}), 1 + (k - 1) % ${G}, k % 5 = 0
          FROM generate_series(1, ${K}) k;`);
      log(`${C.toLocaleString('en')} contacts`);
      await sql.unsafe(`
        INSERT INTO ${S}.contacts (id, company_id, name, owner_id, group_id, published)
          SELECT g, CASE WHEN g % 20 = 7 THEN NULL ELSE grp + ${G} * (${h('g', 3)} % ${Math.floor(K / G)}) END,
                 'contact ' || g, o, grp, g % 10 = 0
          FROM (SELECT g, o, CASE WHEN ${h('g', 2)} % 5 = 0 THEN 1 + ${h('g', 4)} % ${G} ELSE 1 + (o - 1) % ${G} END AS grp
                FROM (SELECT g, 1 + ${h('g', 0)} % ${USERS} AS o FROM generate_series(1, ${C}) g) x) y;
        -- What an application would add for its own searches.
        CREATE INDEX contacts_name_idx ON ${S}.contacts (name);`);
      log('VACUUM ANALYZE');
      await sql.unsafe('VACUUM ANALYZE');
    },
    async personas(sql) {
      const role = async (name: string) => String((await sql.unsafe(`SELECT id FROM ${S}.roles WHERE name = $1`, [name]))[0]!.id);
      await sql.unsafe(`INSERT INTO ${S}.roles (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [OWN_ONLY_ROLE.id, OWN_ONLY_ROLE.name]);
      await sql.unsafe(
        `INSERT INTO ${S}.role_rights (role_id, object_type, scope, rights)
           SELECT $1, o, s, CASE WHEN s = 'own' THEN 'delete' WHEN o = 'company' AND s = 'primary_group' THEN 'read' ELSE 'none' END
           FROM unnest(ARRAY['company', 'contact', 'project', 'sale']) o, unnest(ARRAY['own', 'primary_group', 'secondary_group', 'others']) s
         ON CONFLICT (role_id, object_type, scope) DO UPDATE SET rights = excluded.rights`,
        [OWN_ONLY_ROLE.id],
      );
      // Persona users are generated internal users (they own ~100 contacts each); they get their
      // role and secondary groups here. In this model a user's role and groups change only their own view.
      const persona = async (name: string, target: Persona['target'], userId: number, roleId: string, secondary: number): Promise<Persona> => {
        const primary = 1 + ((userId - 1) % G);
        await sql.unsafe(`UPDATE ${S}.users SET role_id = $2, kind = 'internal' WHERE id = $1`, [userId, roleId]);
        await sql.unsafe(`DELETE FROM ${S}.user_secondary_groups WHERE user_id = $1`, [userId]);
        // Secondary groups 7, 14, … groups after the primary one (distinct for up to 142 groups).
        await sql.unsafe(
          `INSERT INTO ${S}.user_secondary_groups (user_id, group_id) SELECT $1, 1 + ($2 - 1 + 7 * k) % ${G} FROM generate_series(1, $3::int) k`,
          [userId, primary, secondary],
        );
        return { name, target, userId: String(userId), values: { primaryGroup: String(primary) } };
      };
      const personas: Persona[] = [
        await persona('own only', '0.01%', 1234, String(OWN_ONLY_ROLE.id), 0),
        // User level 4 reads own, primary and secondary groups, not others: with no secondary group, own + primary.
        await persona('primary group', '0.1%', 2345, await role('User level 4'), 0),
        await persona('local user, 9 groups', '1%', 3456, await role('Local user'), 9),
        await persona('level 4, 99 groups', '10%', 4567, await role('User level 4'), 99),
        // User level 2 reads 'others' too: every contact, through all four scope arms.
        await persona('level 2 (others)', 'nearly all', 5678, await role('User level 2'), 2),
      ];
      await sql.unsafe(`ANALYZE ${S}.users, ${S}.user_secondary_groups, ${S}.roles, ${S}.role_rights`);
      return personas;
    },
    visibleSet: (p) => ({ text: `SELECT id FROM ${S}.contacts c WHERE ${expertWhere('$1', 'contact', 'read')}`, params: [p.userId] }),
    async queries(p, { visible, owner }) {
      const u = p.userId;
      const reads = standardReads(
        {
          table: `${S}.contacts`,
          alias: 'c',
          columns: 'id, name, company_id, owner_id',
          expert: expertWhere('$1', 'contact', 'read'),
          equality: { column: 'name', value: (id) => `contact ${id}` },
          ilike: 'name',
        },
        u,
        { visible, owner },
      );
      const { middle } = sample(visible);
      // The join keeps a visible contact when its company is visible too (RLS on both).
      const joined = (
        await owner.unsafe(
          `SELECT c.id FROM ${S}.contacts c JOIN ${S}.companies co ON co.id = c.company_id
           WHERE c.id = ANY ($1::bigint[]) AND ${expertWhere('$2', 'company', 'read', 'co')} ORDER BY c.id LIMIT 50`,
          [visible, u] as never[],
        )
      ).map((r) => String(r.id));
      const join = `SELECT c.id, c.name, co.name AS company FROM ${S}.contacts c JOIN ${S}.companies co ON co.id = c.company_id`;
      // The lookup table's own first page: what its widened estimate (lookup: true) costs a user
      // whose sets are not few. B1 reads the first 50 companies the expert's condition admits.
      const companiesSql = `SELECT co.id, co.name FROM ${S}.companies co`;
      const companiesWhere = expertWhere('$1', 'company', 'read', 'co');
      const firstCompanies = (await owner.unsafe(`${companiesSql} WHERE ${companiesWhere} ORDER BY co.id LIMIT 50`, [u])).map((r) => String(r.id));
      // Every persona's role has create and update on its own contacts: a new contact it owns, in
      // its primary group and with the company of a visible contact; an update of one it owns.
      const [row] = await owner.unsafe(`SELECT company_id::text AS company FROM ${S}.contacts WHERE id = $1`, [middle]);
      const [mine] = await owner.unsafe(`SELECT id::text AS id FROM ${S}.contacts WHERE owner_id = $1 ORDER BY id LIMIT 1`, [u]);
      if (!mine) throw new Error(`persona "${p.name}" (user ${u}) owns no contact to update at this scale; use --scale 0.05 or more`);
      const insertValues = [u, p.values.primaryGroup!, (row?.company as string | null) ?? null];
      const insertSql = `INSERT INTO ${S}.contacts (id, company_id, name, owner_id, group_id) VALUES (2000000000, $3, 'new contact', $1, $2)`;
      // The expert's insert: the new contact's values ($1 owner, $2 group, $3 company), checked
      // once as a row by the expert's create condition for user $4 (the key does not enter it).
      const newContact = `$3::bigint, 'new contact', $1::bigint, $2::bigint`;
      const mayCreate = `EXISTS (SELECT 1 FROM (SELECT 2000000000::bigint AS id, $1::bigint AS owner_id, $2::bigint AS group_id) c
                               WHERE ${expertWhere('$4', 'contact', 'create')})`;
      const updateSql = `UPDATE ${S}.contacts SET published = NOT published WHERE id = $1`;
      const queries: Query[] = [
        ...reads,
        {
          kind: 'read',
          name: 'join companies',
          secured: { text: `${join} ORDER BY c.id LIMIT 50` },
          b1: () => ({ text: `${join} WHERE c.id = ANY ($1::bigint[]) ORDER BY c.id`, params: [joined] }),
          b2: {
            text: `${join} WHERE ${expertWhere('$1', 'contact', 'read', 'c')} AND ${expertWhere('$1', 'company', 'read', 'co')} ORDER BY c.id LIMIT 50`,
            params: [u],
          },
        },
        {
          kind: 'read',
          name: 'first page of companies',
          secured: { text: `${companiesSql} ORDER BY co.id LIMIT 50` },
          b1: () => ({ text: `${companiesSql} WHERE co.id = ANY ($1::bigint[]) ORDER BY co.id`, params: [firstCompanies] }),
          b2: { text: `${companiesSql} WHERE ${companiesWhere} ORDER BY co.id LIMIT 50`, params: [u] },
        },
        write('insert', { text: insertSql, params: insertValues }, {
          text: `INSERT INTO ${S}.contacts (id, company_id, name, owner_id, group_id) SELECT 2000000000, ${newContact}
                 WHERE ${mayCreate}`,
          params: [...insertValues, u],
        }),
        bulkInsert(
          { table: `${S}.contacts`, columns: 'company_id, name, owner_id, group_id', values: newContact, params: insertValues },
          { where: mayCreate, params: [...insertValues, u] },
        ),
        write(
          'update',
          { text: updateSql, params: [mine!.id] },
          { text: `UPDATE ${S}.contacts c SET published = NOT published WHERE id = $2 AND ${expertWhere('$1', 'contact', 'update')}`, params: [u, mine!.id] },
        ),
        { kind: 'facts', name: 'visible set alone', secured: await policyFacts(owner, S, 'contacts', u), b2: { text: expertSets('$1'), params: [u] } },
      ];
      return queries;
    },
  };
}

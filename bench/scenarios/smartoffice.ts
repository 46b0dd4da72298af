// SmartOffice at 10^6 contacts (× scale): an office tree (balanced 10-ary or deep chains), 10^4
// users, ~2% private contacts, ~10% unassigned, proxies, private proxies and active record shares.
import { policyFacts, type Persona, type Query, type Scenario, type Sql } from '../harness.ts';
import { bulkInsert, standardReads, write } from '../reads.ts';

export interface SmartOfficeOptions {
  /** Number of offices (default 1,111: a balanced 10-ary tree of depth 3). */
  readonly offices: number;
  /** balanced: 10-ary tree; deep: ten chains under the root (depth ≈ offices / 10). */
  readonly shape: 'balanced' | 'deep';
}

const USERS = 10_000;
const S = 'smartoffice';

/**
 * The expert's hand-written visibility condition over the contract's tables only (no rowguard
 * functions or helper columns), written the way someone who knows PostgreSQL would: every arm an
 * uncorrelated set the planner can drive an index from. `$u` is the acting user's parameter.
 */
function expertWhere(u: string, c = 'c'): string {
  const me = `${u}::bigint`;
  const myOffice = `(SELECT office_id FROM ${S}.users WHERE id = ${me})`;
  return `(
    (${c}.is_private AND ${c}.private_owner_id = ANY (ARRAY(
        SELECT ${me} UNION ALL
        SELECT p.agent_id FROM ${S}.proxies p JOIN ${S}.private_proxies pp ON pp.owner_id = p.agent_id AND pp.proxy_id = p.proxy_id
        WHERE p.proxy_id = ${me})))
    OR (${c}.is_private IS NOT TRUE AND (
      ${c}.office_id = (SELECT u.office_id FROM ${S}.users u JOIN ${S}.offices o ON o.id = u.office_id WHERE u.id = ${me} AND NOT o.office_security)
      OR ${c}.id = ANY (ARRAY(
          SELECT a.contact_id FROM ${S}.contact_assignments a JOIN ${S}.contacts c2 ON c2.id = a.contact_id
          WHERE a.user_id IN (SELECT ${me} UNION ALL SELECT agent_id FROM ${S}.proxies WHERE proxy_id = ${me})
            AND c2.office_id = ${myOffice}))
      OR ${c}.id = ANY (ARRAY(
          SELECT c3.id FROM ${S}.contacts c3 WHERE c3.office_id = ${myOffice}
            AND NOT EXISTS (SELECT 1 FROM ${S}.contact_assignments a WHERE a.contact_id = c3.id)))
      OR ${c}.office_id = ANY (ARRAY(
          WITH RECURSIVE below(id) AS (
            SELECT u.office_id FROM ${S}.users u WHERE u.id = ${me} AND u.enterprise_view
            UNION SELECT o.id FROM ${S}.offices o JOIN below b ON o.parent_id = b.id)
          SELECT id FROM below))
      OR ${c}.id = ANY (ARRAY(
          SELECT s.contact_id FROM ${S}.shared_contacts s JOIN ${S}.user_links l ON l.id = s.link_id
          WHERE l.receiver_id = ${me} AND l.status = 'active'))
    ))
  )`;
}

/** The same per-statement sets, computed by hand (the B2 of "visible set alone"). */
function expertSets(u: string): string {
  const me = `${u}::bigint`;
  return `SELECT
    ARRAY(SELECT ${me} UNION ALL SELECT p.agent_id FROM ${S}.proxies p JOIN ${S}.private_proxies pp ON pp.owner_id = p.agent_id AND pp.proxy_id = p.proxy_id WHERE p.proxy_id = ${me}) AS private_owners,
    (SELECT u.office_id FROM ${S}.users u JOIN ${S}.offices o ON o.id = u.office_id WHERE u.id = ${me} AND NOT o.office_security) AS open_office,
    ARRAY(SELECT a.contact_id FROM ${S}.contact_assignments a WHERE a.user_id IN (SELECT ${me} UNION ALL SELECT agent_id FROM ${S}.proxies WHERE proxy_id = ${me})) AS assigned,
    ARRAY(SELECT c3.id FROM ${S}.contacts c3 WHERE c3.office_id = (SELECT office_id FROM ${S}.users WHERE id = ${me}) AND c3.is_private IS NOT TRUE
          AND NOT EXISTS (SELECT 1 FROM ${S}.contact_assignments a WHERE a.contact_id = c3.id)) AS unassigned,
    ARRAY(WITH RECURSIVE below(id) AS (SELECT u.office_id FROM ${S}.users u WHERE u.id = ${me} AND u.enterprise_view
          UNION SELECT o.id FROM ${S}.offices o JOIN below b ON o.parent_id = b.id) SELECT id FROM below) AS enterprise_offices,
    ARRAY(SELECT s.contact_id FROM ${S}.shared_contacts s JOIN ${S}.user_links l ON l.id = s.link_id WHERE l.receiver_id = ${me} AND l.status = 'active') AS shared`;
}

/** Parent of each office: ids grow away from the root in both shapes. */
function parentSql(shape: SmartOfficeOptions['shape']): string {
  return shape === 'balanced'
    ? `CASE WHEN g = 1 THEN NULL ELSE (g - 2) / 10 + 1 END`
    : // ten chains: office 2..11 hang under the root, then each office g > 11 under g - 10.
      `CASE WHEN g = 1 THEN NULL WHEN g <= 11 THEN 1 ELSE g - 10 END`;
}

export function smartoffice(options: SmartOfficeOptions): Scenario {
  const N = options.offices;
  let subtreeCache: Map<number, number> | null = null;
  return {
    model: 'smartoffice',
    schema: S,
    table: 'contacts',
    hierarchyNodes: () => N,
    describe: (scale) =>
      `${(1e6 * scale).toLocaleString('en')} contacts over ${N.toLocaleString('en')} offices (${options.shape}), ${USERS.toLocaleString('en')} users; ~2% private, ~10% unassigned, ~6% with two assignees; proxies in every office with two users, private proxies in a third of them; 500 active record-sharing links with 5 shared contacts each`,
    async load(sql, scale, log) {
      const C = 1_000_000 * scale;
      // Users of office o are o, o + N, o + 2N, … below USERS; k(o) is how many.
      const k = (o: string) => `(CASE WHEN ${o} <= ${USERS} THEN (${USERS} - ${o}) / ${N} + 1 ELSE 0 END)`;
      const officeOf = (g: string) => `(1 + (${g}::bigint * 2654435761) % ${N})`;
      log(`offices and users`);
      await sql.unsafe(`
        INSERT INTO ${S}.offices (id, parent_id, name, office_security)
          SELECT g, ${parentSql(options.shape)}, 'office ' || g, true FROM generate_series(1, ${N}) g;
        INSERT INTO ${S}.users (id, office_id, name, record_sharing)
          SELECT g, 1 + (g - 1) % ${N}, 'user ' || g, g % 100 = 5 FROM generate_series(1, ${USERS}) g;
        INSERT INTO ${S}.proxies (proxy_id, agent_id) SELECT g + ${N}, g FROM generate_series(1, ${USERS} - ${N}) g;
        INSERT INTO ${S}.private_proxies (owner_id, proxy_id) SELECT g, g + ${N} FROM generate_series(1, ${USERS} - ${N}) g WHERE g % 3 = 0;`);
      log(`${C.toLocaleString('en')} contacts`);
      await sql.unsafe(`
        INSERT INTO ${S}.contacts (id, office_id, name, phone, is_private, private_owner_id)
          SELECT g, o, 'contact ' || g, '555-' || lpad(((g::bigint * 7919) % 10000)::text, 4, '0'), g % 50 = 0,
                 CASE WHEN g % 50 = 0 AND ${k('o')} > 0 THEN o + ${N} * ((g / 50) % ${k('o')}) END
          FROM (SELECT g, ${officeOf('g')} AS o FROM generate_series(1, ${C}) g) x`);
      log(`assignments`);
      await sql.unsafe(`
        INSERT INTO ${S}.contact_assignments (contact_id, user_id)
          SELECT g, o + ${N} * ((g / 7) % ${k('o')}) FROM (SELECT g, ${officeOf('g')} AS o FROM generate_series(1, ${C}) g) x
          WHERE g % 10 <> 3 AND ${k('o')} > 0
          UNION ALL
          SELECT g, o + ${N} * ((g / 7 + 1) % ${k('o')}) FROM (SELECT g, ${officeOf('g')} AS o FROM generate_series(1, ${C}) g) x
          WHERE g % 10 <> 3 AND g % 17 = 0 AND ${k('o')} > 1`);
      log(`record sharing`);
      await sql.unsafe(`
        INSERT INTO ${S}.user_links (id, sharer_id, receiver_id, status)
          SELECT g, 5 + 100 * (g % 100), 5 + 100 * ((g + 1 + g / 100) % 100), CASE WHEN g % 2 = 0 THEN 'active' ELSE 'waiting' END
          FROM generate_series(1, 1000) g
          WHERE 1 + (5 + 100 * (g % 100) - 1) % ${N} <> 1 + (5 + 100 * ((g + 1 + g / 100) % 100) - 1) % ${N}
          ON CONFLICT DO NOTHING;
        INSERT INTO ${S}.shared_contacts (link_id, contact_id)
          SELECT l.id, a.contact_id FROM ${S}.user_links l
          CROSS JOIN LATERAL (SELECT contact_id FROM ${S}.contact_assignments WHERE user_id = l.sharer_id ORDER BY contact_id OFFSET (l.id % 50) LIMIT 5) a
          WHERE l.status = 'active';
        -- What an application would add for its own searches.
        CREATE INDEX contacts_name_idx ON ${S}.contacts (name);`);
      log('VACUUM ANALYZE');
      await sql.unsafe(`VACUUM ANALYZE`);
      subtreeCache = null;
    },
    async personas(sql) {
      // Subtree sizes by office (ids grow away from the root), to pick enterprise users by share.
      if (!subtreeCache) {
        const rows = await sql.unsafe(`SELECT id::int AS id, parent_id::int AS parent FROM ${S}.offices ORDER BY id DESC`);
        const size = new Map<number, number>();
        for (const r of rows) {
          const s = (size.get(r.id as number) ?? 0) + 1;
          size.set(r.id as number, s);
          if (r.parent !== null) size.set(r.parent as number, (size.get(r.parent as number) ?? 0) + s);
        }
        subtreeCache = size;
      }
      const closest = (share: number) => {
        let best = 1;
        for (const [id, s] of subtreeCache!) if (Math.abs(s / N - share) < Math.abs(subtreeCache!.get(best)! / N - share)) best = id;
        return best;
      };
      // Bench personas get their own user rows (ids above the generated users) so their flags
      // do not change anybody else's visibility.
      const enterprise = async (name: string, target: Persona['target'], office: number, id: number): Promise<Persona> => {
        await sql.unsafe(
          `INSERT INTO ${S}.users (id, office_id, name, enterprise_view) VALUES ($1, $2, $3, true) ON CONFLICT (id) DO UPDATE SET office_id = excluded.office_id, enterprise_view = true`,
          [id, office, name],
        );
        return { name, target, userId: String(id), values: { office: String(office) } };
      };
      // The agent: a user of a secured office, neither proxy nor enterprise (office 500's third user).
      const agentOffice = Math.min(500, N);
      const agent = agentOffice + 2 * N <= USERS ? agentOffice + 2 * N : agentOffice;
      // The open office: office security off, so each of its users sees all its contacts.
      const openOffice = Math.min(700, N - 1);
      await sql.unsafe(`UPDATE ${S}.offices SET office_security = false WHERE id = $1`, [openOffice]);
      const openUser = openOffice + 2 * N <= USERS ? openOffice + 2 * N : openOffice;
      const personas: Persona[] = [
        { name: 'agent', target: '0.01%', userId: String(agent), values: { office: String(agentOffice) } },
        { name: 'open office', target: '0.1%', userId: String(openUser), values: { office: String(openOffice) } },
        await enterprise('enterprise (1%)', '1%', closest(0.01), 1_000_001),
        await enterprise('enterprise (10%)', '10%', closest(0.1), 1_000_002),
        await enterprise('enterprise (root)', 'nearly all', 1, 1_000_003),
      ];
      await sql.unsafe(`ANALYZE ${S}.users, ${S}.offices`);
      return personas;
    },
    visibleSet: (p) => ({ text: `SELECT id FROM ${S}.contacts c WHERE ${expertWhere('$1')}`, params: [p.userId] }),
    async queries(p, { visible, owner }) {
      const u = p.userId;
      const reads = standardReads(
        {
          table: `${S}.contacts`,
          alias: 'c',
          columns: 'id, name, phone',
          expert: expertWhere('$1'),
          equality: { column: 'name', value: (id) => `contact ${id}` },
          ilike: 'name',
        },
        u,
        { visible, owner },
      );
      const [updatable] = await owner.unsafe(
        `SELECT c.id FROM ${S}.contacts c WHERE c.office_id = $1 AND c.is_private IS NOT TRUE
           AND (NOT EXISTS (SELECT 1 FROM ${S}.contact_assignments a WHERE a.contact_id = c.id)
                OR EXISTS (SELECT 1 FROM ${S}.contact_assignments a WHERE a.contact_id = c.id AND a.user_id = $2)
                OR EXISTS (SELECT 1 FROM ${S}.users x WHERE x.id = $2 AND x.enterprise_view)
                OR EXISTS (SELECT 1 FROM ${S}.offices o WHERE o.id = c.office_id AND NOT o.office_security))
         ORDER BY c.id LIMIT 1`,
        [p.values.office!, u],
      );
      if (!updatable) {
        throw new Error(`${p.name}: office ${p.values.office} has no contact this persona may update (${N.toLocaleString('en')} offices for ${visible.length} visible contacts); run with a larger --scale or fewer --offices`);
      }
      const pairs = await owner.unsafe(
        `SELECT contact_id::text AS c, user_id::text AS u FROM ${S}.contact_assignments WHERE contact_id = ANY ($1::bigint[]) ORDER BY contact_id, user_id LIMIT 50`,
        [visible] as never[],
      );
      // The expert's insert check: office $1 is the user's ($2) own, or below it with enterprise view.
      const mayInsertInto = `$1::bigint = (SELECT office_id FROM ${S}.users WHERE id = $2::bigint)
                    OR $1::bigint IN (WITH RECURSIVE below(id) AS (SELECT u.office_id FROM ${S}.users u WHERE u.id = $2::bigint AND u.enterprise_view
                                       UNION SELECT o.id FROM ${S}.offices o JOIN below b ON o.parent_id = b.id) SELECT id FROM below)`;
      const queries: Query[] = [
        ...reads,
        {
          kind: 'read',
          name: 'join assignments',
          secured: {
            text: `SELECT c.id, c.name, a.user_id FROM ${S}.contacts c JOIN ${S}.contact_assignments a ON a.contact_id = c.id ORDER BY c.id, a.user_id LIMIT 50`,
          },
          b1: () => ({
            text: `SELECT c.id, c.name, a.user_id FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY v(cid, uid, n)
                   JOIN ${S}.contacts c ON c.id = v.cid JOIN ${S}.contact_assignments a ON a.contact_id = v.cid AND a.user_id = v.uid ORDER BY v.n`,
            params: [pairs.map((r) => r.c as string), pairs.map((r) => r.u as string)],
          }),
          b2: {
            text: `SELECT c.id, c.name, a.user_id FROM ${S}.contacts c JOIN ${S}.contact_assignments a ON a.contact_id = c.id WHERE ${expertWhere('$1')} ORDER BY c.id, a.user_id LIMIT 50`,
            params: [u],
          },
        },
        write('insert', { text: `INSERT INTO ${S}.contacts (id, office_id, name) VALUES (2000000000, $1, 'new contact')`, params: [p.values.office!] }, {
          text: `INSERT INTO ${S}.contacts (id, office_id, name) SELECT 2000000000, $1, 'new contact'
                 WHERE ${mayInsertInto}`,
          params: [p.values.office!, u],
        }),
        bulkInsert(
          { table: `${S}.contacts`, columns: 'office_id, name', values: `$1::bigint, 'new contact'`, params: [p.values.office!] },
          { where: mayInsertInto, params: [p.values.office!, u] },
        ),
        write(
          'update',
          { text: `UPDATE ${S}.contacts SET phone = '555-0000' WHERE id = $1`, params: [updatable.id] },
          { text: `UPDATE ${S}.contacts c SET phone = '555-0000' WHERE id = $2 AND ${expertWhere('$1')}`, params: [u, updatable.id] },
        ),
        { kind: 'facts', name: 'visible set alone', secured: await policyFacts(owner, S, 'contacts', u), b2: { text: expertSets('$1'), params: [u] } },
      ];
      return queries;
    },
  };
}

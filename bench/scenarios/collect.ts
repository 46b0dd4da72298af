// Collect! at 10^6 debtors (× scale): a client tree (balanced 10-ary), 10^4 operators, 1,000
// teams nested in a binary tree (depth 10) with second parents for every seventh team, ~10% open
// accounts (clerk and access empty), operator/sales/clerk/access routing, 2% routed to teams.
import { policyFacts, type Persona, type Query, type Scenario } from '../harness.ts';
import { bulkInsert, everyRowWhen, sample, standardReads, write } from '../reads.ts';

export interface CollectOptions {
  /** Number of clients (default 1,111: a balanced 10-ary tree of depth 3). */
  readonly clients: number;
}

const OPERATORS = 10_000;
const TEAMS = 1_000;
const S = 'collect';

/** The operator's principals: the operator and every team containing them, directly or nested (cycle-safe). */
const principals = (me: string) => `ARRAY(
    WITH RECURSIVE up(id) AS (SELECT ${me} UNION SELECT tm.team_id FROM ${S}.team_members tm JOIN up ON tm.member_id = up.id)
    SELECT id FROM up)`;
/** Account-restricted: security on, no client, an operator (not a client login). */
const restricted = (me: string) => `(SELECT o.security AND o.client_id IS NULL AND o.kind = 'operator' FROM ${S}.operators o WHERE o.id = ${me})`;

/**
 * The expert's WHERE clause over the contract's tables: Collect!'s rules in order, each arm an
 * index condition (flags become primary-key ranges that are empty unless the flag holds, as an
 * expert who knows that a bypass flag OR'd into a predicate forces a sequential scan would write;
 * the four routing fields as one array, which the schema's GIN index answers).
 */
function expertWhere(u: string, d = 'd'): string {
  const me = `${u}::text`;
  const range = (flag: string) => everyRowWhen(`${d}.id`, flag);
  return `(
    ${range(`(SELECT o.security IS NOT TRUE FROM ${S}.operators o WHERE o.id = ${me})`)}
    OR ${d}.client_id = ANY (ARRAY(
        WITH RECURSIVE sub(id) AS (SELECT o.client_id FROM ${S}.operators o WHERE o.id = ${me} AND o.security AND o.client_id IS NOT NULL
                                   UNION SELECT c.id FROM ${S}.clients c JOIN sub ON c.owned_by = sub.id)
        SELECT id FROM sub))
    OR (${d}.clerk_id IS NULL AND ${d}.access_id IS NULL
        AND ${range(`(SELECT o.security AND o.client_id IS NULL AND o.kind = 'operator' AND o.locked_out IS NOT TRUE FROM ${S}.operators o WHERE o.id = ${me})`)})
    OR (${restricted(me)} AND ARRAY[${d}.operator_id, ${d}.sales_id, ${d}.clerk_id, ${d}.access_id] && ${principals(me)})
  )`;
}

export function collect(options: CollectOptions): Scenario {
  const K = options.clients;
  return {
    model: 'collect',
    schema: S,
    table: 'debtors',
    hierarchyNodes: () => K,
    describe: (scale) =>
      `${(1e6 * scale).toLocaleString('en')} debtors over ${K.toLocaleString('en')} clients (balanced), ${OPERATORS.toLocaleString('en')} operators, ${TEAMS.toLocaleString('en')} teams nested to depth 10 (every seventh with a second parent); ~10% open accounts, 2% routed to teams`,
    async load(sql, scale, log) {
      const D = 1_000_000 * scale;
      const h = (g: string, salt: number) => `((${g}::bigint * ${2654435761 + salt * 2}) % 1000003)`;
      log('clients, teams and operators');
      await sql.unsafe(`
        INSERT INTO ${S}.clients (id, owned_by, name) SELECT g, CASE WHEN g = 1 THEN NULL ELSE (g - 2) / 10 + 1 END, 'client ' || g FROM generate_series(1, ${K}) g;
        INSERT INTO ${S}.teams (id, name) SELECT 't' || g, 'team ' || g FROM generate_series(1, ${TEAMS}) g;
        INSERT INTO ${S}.team_members (team_id, member_id)
          SELECT 't' || (g / 2), 't' || g FROM generate_series(2, ${TEAMS}) g
          UNION ALL SELECT 't' || (g / 3), 't' || g FROM generate_series(7, ${TEAMS}, 7) g WHERE g / 3 <> g / 2;
        INSERT INTO ${S}.operators (id, name, security, strict, locked_out)
          SELECT 'op' || g, 'operator ' || g, true, g % 2 = 0, g % 4 = 0 FROM generate_series(1, ${OPERATORS}) g;
        -- Operators belong to the leaf teams (501..1000).
        INSERT INTO ${S}.team_members (team_id, member_id) SELECT 't' || (501 + g % 500), 'op' || g FROM generate_series(1, ${OPERATORS}) g;`);
      log(`${D.toLocaleString('en')} debtors`);
      await sql.unsafe(`
        INSERT INTO ${S}.debtors (id, file_number, client_id, name, address, phone, operator_id, sales_id, clerk_id, access_id, last_worked, owing, group_number)
          SELECT g, 'F' || lpad(g::text, 8, '0'), 1 + ${h('g', 0)} % ${K}, 'debtor ' || g, g || ' Main Street', '555-' || lpad((${h('g', 5)} % 10000)::text, 4, '0'),
                 'op' || (1 + ${h('g', 1)} % ${OPERATORS}),
                 CASE WHEN g % 10 = 1 THEN 'op' || (1 + ${h('g', 2)} % ${OPERATORS}) END,
                 CASE WHEN g % 10 = 3 THEN NULL ELSE 'op' || (1 + ${h('g', 3)} % 2000) END,
                 CASE WHEN g % 10 = 3 THEN NULL WHEN g % 50 = 7 THEN 't' || (501 + ${h('g', 4)} % 500) WHEN g % 10 = 5 THEN 'op' || (1 + ${h('g', 6)} % ${OPERATORS}) END,
                 date '2026-01-01' + (g % 300), (g % 100000) / 10.0, 'G' || (g % 1000)
          FROM generate_series(1, ${D}) g;
        -- What an application would add for its own searches.
        CREATE INDEX debtors_file_number_idx ON ${S}.debtors (file_number);`);
      log('VACUUM ANALYZE');
      await sql.unsafe('VACUUM ANALYZE');
    },
    async personas(sql) {
      // Bench personas get their own operator rows so their settings change nobody else's view.
      const add = async (id: string, values: { locked_out?: boolean; security?: boolean; client_id?: number | null; team?: string }) => {
        await sql.unsafe(
          `INSERT INTO ${S}.operators (id, name, security, locked_out, client_id) VALUES ($1, $1, $2, $3, $4)
           ON CONFLICT (id) DO UPDATE SET security = excluded.security, locked_out = excluded.locked_out, client_id = excluded.client_id`,
          [id, values.security ?? true, values.locked_out ?? false, values.client_id ?? null] as never[],
        );
        if (values.team) await sql.unsafe(`INSERT INTO ${S}.team_members (team_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [values.team, id]);
      };
      const leafClient = Math.min(K, 600);
      const midClient = Math.min(K, 12); // a level-2 client: itself and its ten children
      await add('bench_client_leaf', { client_id: leafClient });
      await add('bench_client_mid', { client_id: midClient });
      await add('bench_security_off', { security: false });
      const personas: Persona[] = [
        // A locked-out operator: only their own routed accounts (and their team's).
        { name: 'locked out', target: '0.01%', userId: 'op5000', values: { client: '' } },
        { name: 'leaf client', target: '0.1%', userId: 'bench_client_leaf', values: { client: String(leafClient) } },
        { name: 'client subtree', target: '1%', userId: 'bench_client_mid', values: { client: String(midClient) } },
        // An operator who is not locked out also sees every open account.
        { name: 'operator', target: '10%', userId: 'op5001', values: { client: '' } },
        { name: 'security off', target: 'nearly all', userId: 'bench_security_off', values: { client: '' } },
      ];
      await sql.unsafe(`ANALYZE ${S}.operators, ${S}.team_members`);
      return personas;
    },
    visibleSet: (p) => ({ text: `SELECT id FROM ${S}.debtors d WHERE ${expertWhere('$1')}`, params: [p.userId] }),
    async queries(p, { visible, owner }) {
      const u = p.userId;
      const reads = standardReads(
        {
          table: `${S}.debtors`,
          alias: 'd',
          columns: 'id, file_number, name, owing',
          expert: expertWhere('$1'),
          equality: { column: 'file_number', value: (id) => `F${id.padStart(8, '0')}` },
          ilike: 'name',
        },
        u,
        { visible, owner },
      );
      const { middle } = sample(visible);
      const joined = (await owner.unsafe(`SELECT id FROM ${S}.debtors WHERE id = ANY ($1::bigint[]) ORDER BY id LIMIT 50`, [visible] as never[])).map((r) => String(r.id));
      // A visible debtor the persona may also write, and a new debtor the insert policy admits.
      const [row] = await owner.unsafe(`SELECT client_id::text AS client, operator_id FROM ${S}.debtors WHERE id = $1`, [middle]);
      const insertCols = `(id, file_number, client_id, name, operator_id, clerk_id, access_id)`;
      const insertValues = [row!.client as string, p.values.client ? (row!.operator_id as string) : u];
      const insertSql = `INSERT INTO ${S}.debtors ${insertCols} VALUES (2000000000, 'NEW', $1, 'new debtor', $2, $2, NULL)`;
      // The expert's insert: the new debtor's values ($1 client, $2 operator), checked once as a
      // row by the expert's condition for user $3 (the key does not enter it).
      const newDebtor = `'NEW', $1::bigint, 'new debtor', $2::text, $2::text, NULL::text`;
      const mayWrite = `EXISTS (SELECT 1 FROM (SELECT 2000000000::bigint AS id, $1::bigint AS client_id, $2::text AS operator_id, NULL::text AS sales_id, $2::text AS clerk_id, NULL::text AS access_id) d
                               WHERE ${expertWhere('$3')})`;
      const queries: Query[] = [
        ...reads,
        {
          kind: 'read',
          name: 'join clients',
          secured: { text: `SELECT d.id, d.name, c.name AS client FROM ${S}.debtors d JOIN ${S}.clients c ON c.id = d.client_id ORDER BY d.id LIMIT 50` },
          b1: () => ({
            text: `SELECT d.id, d.name, c.name AS client FROM ${S}.debtors d JOIN ${S}.clients c ON c.id = d.client_id WHERE d.id = ANY ($1::bigint[]) ORDER BY d.id`,
            params: [joined],
          }),
          b2: {
            text: `SELECT d.id, d.name, c.name AS client FROM ${S}.debtors d JOIN ${S}.clients c ON c.id = d.client_id WHERE ${expertWhere('$1')} ORDER BY d.id LIMIT 50`,
            params: [u],
          },
        },
        write('insert', { text: insertSql, params: insertValues }, {
          text: `INSERT INTO ${S}.debtors ${insertCols} SELECT 2000000000, ${newDebtor}
                 WHERE ${mayWrite}`,
          params: [...insertValues, u],
        }),
        bulkInsert(
          { table: `${S}.debtors`, columns: 'file_number, client_id, name, operator_id, clerk_id, access_id', values: newDebtor, params: insertValues },
          { where: mayWrite, params: [...insertValues, u] },
        ),
        write(
          'update',
          { text: `UPDATE ${S}.debtors SET phone = '555-0000' WHERE id = $1`, params: [middle] },
          { text: `UPDATE ${S}.debtors d SET phone = '555-0000' WHERE id = $2 AND ${expertWhere('$1')}`, params: [u, middle] },
        ),
        { kind: 'facts', name: 'visible set alone', secured: await policyFacts(owner, S, 'debtors', u), b2: {
            text: `SELECT ${principals('$1::text')} AS principals, ARRAY(
                     WITH RECURSIVE sub(id) AS (SELECT o.client_id FROM ${S}.operators o WHERE o.id = $1::text AND o.security AND o.client_id IS NOT NULL
                                                UNION SELECT c.id FROM ${S}.clients c JOIN sub ON c.owned_by = sub.id)
                     SELECT id FROM sub) AS clients, ${restricted('$1::text')} AS restricted`,
            params: [u],
          },
        },
      ];
      return queries;
    },
  };
}

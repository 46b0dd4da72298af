// `rowguard lint`: inspects a live database for the ways row-level security silently fails to
// protect (or to perform), whoever created the objects. Read-only: catalog queries only.
import type { Sql } from 'postgres';
import { ACTING_SEQUENCE_NAMES, recordSchemaOf } from '../emit/functions.ts';
import { marksHeldIn } from '../emit/hints.ts';
import { APP_ROLE, DEFINER_ROLE, REPORTING_ROLE } from '../emit/roles.ts';
import { byCodePoint, ident, qualified } from '../sql/print.ts';
import { columnArrays, functionCalls, matchedColumns, overlappedColumnArrays } from './predicates.ts';

export type Severity = 'error' | 'warning';

export interface Finding {
  readonly code: string;
  readonly severity: Severity;
  /** The object, e.g. `table smartoffice.contacts` or `role alice`. */
  readonly object: string;
  readonly message: string;
  readonly fix: string;
}

export interface LintOptions {
  /** Only objects in these schemas (roles are still checked, their table ownership only there). */
  readonly schemas?: readonly string[];
  /** The application and reporting group roles; their members are checked too. */
  readonly roles?: readonly string[];
}

const SYSTEM_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'`;
/** Objects that belong to an extension are the extension's business. */
const NOT_EXTENSION = (classTable: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${classTable}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

/** Adds `name` to the names found for `key`. */
function namedBy(found: Map<string, Set<string>>, key: string, name: string): void {
  if (!found.has(key)) found.set(key, new Set());
  found.get(key)!.add(name);
}

/** The entries in key order (code points), so findings come out in the same order every run. */
function byKey<T>(found: Map<string, T>): [string, T][] {
  return [...found].sort(([a], [b]) => byCodePoint(a, b));
}

export async function lintDatabase(sql: Sql, options: LintOptions = {}): Promise<Finding[]> {
  const schemas = options.schemas && options.schemas.length > 0 ? [...options.schemas] : null;
  const inScope = (schema: string) => schemas === null || schemas.includes(schema);
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);

  const tables = await sql<{ schema: string; name: string; rls: boolean; forced: boolean; policies: number; owner: string }[]>`
    SELECT n.nspname AS schema, c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
           (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies, pg_get_userbyid(c.relowner) AS owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND ${sql.unsafe(SYSTEM_SCHEMAS)} AND ${sql.unsafe(NOT_EXTENSION('pg_class', 'c.oid'))}
    ORDER BY 1, 2`;
  const securedSchemas = new Set(tables.filter((t) => t.rls || t.policies > 0).map((t) => t.schema));

  // 1. Policies that are not enforced, and tables of a secured schema without RLS.
  for (const t of tables) {
    if (!inScope(t.schema)) continue;
    const name = qualified(t.schema, t.name);
    const object = `table ${t.schema}.${t.name}`;
    if (t.policies > 0 && !t.rls) {
      add({
        code: 'rls-disabled',
        severity: 'error',
        object,
        message: `has ${t.policies} polic${t.policies === 1 ? 'y' : 'ies'} but row-level security is not enabled, so none of them applies: every role with a grant sees every row`,
        fix: `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${name} FORCE ROW LEVEL SECURITY;`,
      });
    } else if (t.rls && !t.forced) {
      add({
        code: 'rls-not-forced',
        severity: 'warning',
        object,
        message: `row-level security is enabled but not forced: its owner (${t.owner}) skips every policy`,
        fix: `ALTER TABLE ${name} FORCE ROW LEVEL SECURITY;`,
      });
    } else if (!t.rls && securedSchemas.has(t.schema)) {
      add({
        code: 'table-without-rls',
        severity: 'error',
        object,
        message: `schema ${t.schema} protects its tables with row-level security, but this one has none: every role with a grant sees every row`,
        fix: `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${name} FORCE ROW LEVEL SECURITY; then add policies (with no policy, RLS denies every row)`,
      });
    }
  }

  // 2. Application and reporting roles (and every role that can act as one) must not skip RLS.
  const groups = [...(options.roles ?? [APP_ROLE, REPORTING_ROLE])];
  const roles = await sql<{ name: string; via: string; superuser: boolean; bypassrls: boolean }[]>`
    WITH RECURSIVE members(oid, via) AS (
      SELECT r.oid, r.rolname::text FROM pg_roles r WHERE r.rolname = ANY(${groups})
      UNION
      SELECT m.member, members.via FROM pg_auth_members m JOIN members ON m.roleid = members.oid
    )
    SELECT r.rolname AS name, min(members.via) AS via, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls
    FROM members JOIN pg_roles r ON r.oid = members.oid
    GROUP BY r.rolname, r.rolsuper, r.rolbypassrls ORDER BY 1`;
  for (const r of roles) {
    const as = r.name === r.via ? 'an application/reporting role' : `a member of ${r.via}`;
    if (r.superuser) {
      add({
        code: 'role-superuser',
        severity: 'error',
        object: `role ${r.name}`,
        message: `${as} is a superuser: superusers skip every row-level security policy`,
        fix: `ALTER ROLE ${ident(r.name)} NOSUPERUSER; (use a separate role to run migrations)`,
      });
    }
    if (r.bypassrls) {
      add({
        code: 'role-bypassrls',
        severity: 'error',
        object: `role ${r.name}`,
        message: `${as} has BYPASSRLS: it skips every row-level security policy`,
        fix: `ALTER ROLE ${ident(r.name)} NOBYPASSRLS;`,
      });
    }
    const owned = tables.filter((t) => t.owner === r.name && inScope(t.schema));
    if (owned.length > 0) {
      add({
        code: 'role-owns-tables',
        severity: 'error',
        object: `role ${r.name}`,
        message: `${as} owns ${owned.map((t) => `${t.schema}.${t.name}`).join(', ')}: an owner skips the policies of tables not FORCEd, and can disable or drop them`,
        fix: owned.map((t) => `ALTER TABLE ${qualified(t.schema, t.name)} OWNER TO <migration role>;`).join(' '),
      });
    }
  }

  // 3. Views over RLS tables that run with their owner's rights and do not filter by the caller.
  const views = await sql<{ schema: string; name: string; kind: string; owner: string; ownerBypasses: boolean; invoker: boolean; definition: string; tables: string[] }[]>`
    SELECT n.nspname AS schema, v.relname AS name, v.relkind::text AS kind, o.rolname AS owner,
           (o.rolsuper OR o.rolbypassrls) AS "ownerBypasses",
           EXISTS (SELECT 1 FROM unnest(v.reloptions) opt WHERE lower(opt) ~ '^security_invoker=(true|on|yes|1)$') AS invoker,
           pg_get_viewdef(v.oid) AS definition,
           array_agg(DISTINCT tn.nspname || '.' || t.relname ORDER BY tn.nspname || '.' || t.relname) AS tables
    FROM pg_class v
    JOIN pg_namespace n ON n.oid = v.relnamespace
    JOIN pg_roles o ON o.oid = v.relowner
    JOIN pg_rewrite rw ON rw.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
    JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid AND t.relrowsecurity
    JOIN pg_namespace tn ON tn.oid = t.relnamespace
    WHERE v.relkind IN ('v', 'm') AND ${sql.unsafe(SYSTEM_SCHEMAS)}
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2`;
  for (const v of views) {
    if (!inScope(v.schema) || v.invoker) continue;
    const object = `${v.kind === 'm' ? 'materialized view' : 'view'} ${v.schema}.${v.name}`;
    const name = qualified(v.schema, v.name);
    if (v.kind === 'm') {
      add({
        code: 'matview-over-rls',
        severity: 'error',
        object,
        message: `stores rows of ${v.tables.join(', ')} as its owner (${v.owner}) saw them at refresh time; readers get them without the tables' policies`,
        fix: `drop it, or revoke SELECT on it from application roles and expose it through a view that filters by the caller`,
      });
      continue;
    }
    // Masked views run as the definer on purpose and filter by the caller's identity themselves.
    if (/\bcurrent_user_id\(\)/.test(v.definition)) continue;
    add({
      code: 'view-owner-rights',
      severity: v.ownerBypasses ? 'error' : 'warning',
      object,
      message: `reads ${v.tables.join(', ')} with its owner's rights (${v.owner}${v.ownerBypasses ? ', which skips row-level security' : ''}), not the caller's, and does not filter by the caller's identity`,
      fix: `ALTER VIEW ${name} SET (security_invoker = true);`,
    });
  }

  // 4. SECURITY DEFINER functions must pin search_path, or a caller can redirect their names.
  const definers = await sql<{ schema: string; name: string; args: string }[]>`
    SELECT n.nspname AS schema, p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.prosecdef AND ${sql.unsafe(SYSTEM_SCHEMAS)} AND ${sql.unsafe(NOT_EXTENSION('pg_proc', 'p.oid'))}
      AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
    ORDER BY 1, 2, 3`;
  for (const f of definers) {
    if (!inScope(f.schema)) continue;
    add({
      code: 'definer-search-path',
      severity: 'error',
      object: `function ${f.schema}.${f.name}(${f.args})`,
      message: 'is SECURITY DEFINER without a fixed search_path: a caller can create objects that shadow the names it uses and run code with its owner\'s rights',
      fix: `ALTER FUNCTION ${qualified(f.schema, f.name)}(${f.args}) SET search_path = pg_catalog, pg_temp; (and schema-qualify the names in its body)`,
    });
  }

  // 5, 6 and 7. Policy predicates: per-row function calls, matched columns without an index, and
  // calls that rule out parallel workers.
  const policies = await sql<{ schema: string; table: string; name: string; cmd: string; qual: string | null; check: string | null }[]>`
    SELECT schemaname AS schema, tablename AS "table", policyname AS name, cmd, qual, with_check AS "check"
    FROM pg_policies ORDER BY 1, 2, 3`;
  const userFunctionRows = await sql<{ schema: string; name: string; folded: boolean; unsafe: boolean }[]>`
    SELECT DISTINCT n.nspname AS schema, p.proname AS name, (p.provolatile = 'i' AND p.pronargs = 0) AS folded, p.proparallel = 'u' AS unsafe
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE ${sql.unsafe(SYSTEM_SCHEMAS)}`;
  const userFunctions = new Set(userFunctionRows.map((r) => r.name));
  // IMMUTABLE without arguments (rowguard's planner hints): PostgreSQL folds the call into a
  // constant while planning, so no row ever calls it. Only when every function of that name is.
  /** Is every user function the call can name (by schema and name, or by name alone) so? Not when none is. */
  const everyNamed = ({ name, schema }: { name: string; schema: string | undefined }, so: (r: (typeof userFunctionRows)[number]) => boolean) => {
    const same = userFunctionRows.filter((r) => (schema === undefined ? r.name : `${r.schema}.${r.name}`) === name);
    return same.length > 0 && same.every(so);
  };
  const folded = (call: { name: string; schema: string | undefined }) => everyNamed(call, (r) => r.folded);
  const indexed = await sql<{ schema: string; table: string; column: string }[]>`
    SELECT n.nspname AS schema, c.relname AS "table", a.attname AS "column"
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]`;
  const leading = new Set(indexed.map((r) => `${r.schema}.${r.table}.${r.column}`));
  const columns = await sql<{ schema: string; table: string; column: string }[]>`
    SELECT n.nspname AS schema, c.relname AS "table", a.attname AS "column"
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ${sql.unsafe(SYSTEM_SCHEMAS)}`;
  const existing = new Set(columns.map((r) => `${r.schema}.${r.table}.${r.column}`));
  const unindexed = new Map<string, Set<string>>();
  // GIN indexes over an array of columns, as `schema.table.col,col`: what answers an anyOf arm.
  const ginArrays = await sql<{ schema: string; table: string; def: string }[]>`
    SELECT n.nspname AS schema, c.relname AS "table", pg_catalog.pg_get_indexdef(i.indexrelid) AS def
    FROM pg_index i
    JOIN pg_class ix ON ix.oid = i.indexrelid JOIN pg_am am ON am.oid = ix.relam
    JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE am.amname = 'gin' AND i.indpred IS NULL`;
  const ginCovered = new Set(ginArrays.flatMap((r) => columnArrays(r.def).map((cols) => `${r.schema}.${r.table}.${cols.join('\u0000')}`)));
  const unindexedArrays = new Map<string, Set<string>>();
  for (const p of policies) {
    if (!inScope(p.schema)) continue;
    const object = `policy ${p.name} on ${p.schema}.${p.table}`;
    const text = [p.qual, p.check].filter((x): x is string => x !== null).join(' AND ');
    const perRow = new Set<string>();
    for (const call of functionCalls(text)) {
      if (call.wrapped || folded(call)) continue;
      const isUser = call.schema ? call.schema !== 'pg_catalog' : userFunctions.has(call.name);
      if (isUser) perRow.add(call.name);
    }
    for (const fn of perRow) {
      add({
        code: 'policy-per-row-call',
        severity: 'warning',
        object,
        message: `calls ${fn}() for every row it checks; a value that does not depend on the row can be computed once per statement (a per-row call that is not PARALLEL SAFE also keeps the table's scan out of parallel workers)`,
        fix: `write (select ${fn}(…)) instead of ${fn}(…) in the predicate (PostgreSQL then runs it once, as an InitPlan)`,
      });
    }
    // 7. PostgreSQL decides whether a statement may use parallel workers before it folds or
    // wraps anything: one PARALLEL UNSAFE call (a function's default label) in a read policy,
    // however it is called, keeps every statement that reads the table on one process.
    if (p.qual !== null && (p.cmd === 'SELECT' || p.cmd === 'ALL')) {
      const unsafe = new Set(functionCalls(p.qual).filter((c) => (c.schema ?? '') !== 'pg_catalog' && everyNamed(c, (r) => r.unsafe)).map((c) => c.name));
      for (const fn of [...unsafe].sort()) {
        add({
          code: 'policy-parallel-unsafe',
          severity: 'warning',
          object,
          message: `calls ${fn}(), which is PARALLEL UNSAFE (the label of a function declared without one): no statement that reads ${p.schema}.${p.table} can use parallel workers, however many rows it reads`,
          fix: `ALTER FUNCTION ${fn}(…) PARALLEL RESTRICTED; (or PARALLEL SAFE if it writes nothing and reads nothing a parallel worker lacks: temporary tables, cursors, pg_backend_pid())`,
        });
      }
    }
    for (const column of matchedColumns(text)) {
      const key = `${p.schema}.${p.table}.${column}`;
      if (!existing.has(key) || leading.has(key)) continue;
      namedBy(unindexed, key, p.name);
    }
    for (const columns of overlappedColumnArrays(text)) {
      const key = `${p.schema}.${p.table}.${columns.join('\u0000')}`;
      if (!columns.every((c) => existing.has(`${p.schema}.${p.table}.${c}`)) || ginCovered.has(key)) continue;
      namedBy(unindexedArrays, key, p.name);
    }
  }
  for (const [key, names] of byKey(unindexedArrays)) {
    const [schema, table, list] = key.split('.') as [string, string, string];
    const columns = list.split('\u0000');
    add({
      code: 'policy-array-unindexed',
      severity: 'warning',
      object: `columns ${schema}.${table} (${columns.join(', ')})`,
      message: `polic${names.size === 1 ? 'y' : 'ies'} ${[...names].sort().join(', ')} match ARRAY[${columns.join(', ')}] with && against a per-statement set (an anyOf arm), but no GIN index covers that array: every query reads the whole table`,
      fix: `CREATE INDEX ON ${qualified(schema, table)} USING gin ((ARRAY[${columns.map(ident).join(', ')}])) WITH (fastupdate = off);`,
    });
  }
  for (const [key, names] of byKey(unindexed)) {
    const [schema, table, column] = key.split('.') as [string, string, string];
    add({
      code: 'policy-column-unindexed',
      severity: 'warning',
      object: `column ${key}`,
      message: `polic${names.size === 1 ? 'y' : 'ies'} ${[...names].sort().join(', ')} match ${column} against a per-statement value, but no index starts with it: every query reads the whole table`,
      fix: `CREATE INDEX ON ${qualified(schema, table)} (${ident(column)});`,
    });
  }

  // 8. rowguard's planner-hint marks: each mark function resolves its marker view's name
  // (generator/emit/hints.ts, markHeld) whoever plans a statement on the tables whose policies
  // call it, so a dropped view or schema, or a revoked USAGE, makes those statements fail to plan.
  const markFunctions = await sql<{ schema: string; name: string; body: string }[]>`
    SELECT n.nspname AS schema, p.proname AS name, p.prosrc AS body
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.proname ~ '^plan_(hint|fold|true|when)_' AND p.prosrc LIKE '%pg_table_is_visible(%' AND ${sql.unsafe(SYSTEM_SCHEMAS)}
    ORDER BY 1, 2`;
  const readers = new Map<string, string[]>();
  for (const f of markFunctions) {
    if (!inScope(f.schema)) continue;
    for (const mark of marksHeldIn(f.body)) readers.set(mark, [...(readers.get(mark) ?? []), `${f.schema}.${f.name}()`]);
  }
  const marks = [...readers.keys()].sort();
  const states = await sql<{ mark: string; schema: boolean; view: boolean; usage: boolean }[]>`
    SELECT m.mark,
           EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = m.mark) AS schema,
           EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = m.mark AND c.relname = m.mark) AS view,
           EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = m.mark AND a.grantee = 0 AND a.privilege_type = 'USAGE') AS usage
    FROM unnest(${marks}::text[]) AS m(mark) ORDER BY 1`;
  for (const m of states) {
    if (m.view && m.usage) continue;
    const fns = [...new Set(readers.get(m.mark))].sort();
    const what = !m.schema ? 'is missing' : !m.view ? 'has lost its marker view' : 'does not grant USAGE to PUBLIC';
    add({
      code: 'hint-marker-broken',
      severity: 'error',
      object: `schema ${m.mark}`,
      message: `${what}: ${fns.join(', ')} resolve${fns.length === 1 ? 's' : ''} the view ${m.mark}.${m.mark} while PostgreSQL plans, so every statement on a table whose policies call ${fns.length === 1 ? 'it' : 'them'} fails to plan`,
      fix: [
        ...(m.schema ? [] : [`CREATE SCHEMA ${ident(m.mark)};`]),
        ...(m.usage ? [] : [`GRANT USAGE ON SCHEMA ${ident(m.mark)} TO PUBLIC;`]),
        ...(m.view ? [] : [`CREATE VIEW ${qualified(m.mark, m.mark)} AS SELECT;`]),
      ].join(' '),
    });
  }

  // 9. The identity record's sequences (generator/emit/functions.ts, recordUnreachableSql): while
  // any role but their owner and rowguard_definer holds a privilege on one, set_session records
  // nothing, and every fact checks the identity's signature instead of reading the record back.
  // current_user_id does not check grants at every call, so a role that may write a sequence
  // (UPDATE: setval; USAGE: nextval) can write a record by hand and act as an id set_session
  // would refuse: an error. SELECT alone reads the record (and a text id's nonce): a warning.
  const acting = await sql<{ schema: string; name: string; grantees: string[]; writes: boolean }[]>`
    SELECT n.nspname AS schema, c.relname AS name,
           array_agg(DISTINCT g.name ORDER BY g.name) AS grantees,
           bool_or(a.privilege_type IN ('UPDATE', 'USAGE')) AS writes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(c.relacl) a
      CROSS JOIN LATERAL (SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS name) g
    WHERE c.relkind = 'S' AND c.relname = ANY (${Object.values(ACTING_SEQUENCE_NAMES)}::text[])
      AND a.grantee <> c.relowner AND a.grantee <> (SELECT oid FROM pg_roles WHERE rolname = ${DEFINER_ROLE})
    GROUP BY 1, 2 ORDER BY 1, 2`;
  // Each sequence's model: the schema whose record schema (recordSchemaOf) holds it, or, in a
  // database not yet migrated past 0149, the model schema itself (one with a current_user_id).
  const modelOf = new Map<string, string>();
  if (acting.length > 0) {
    const schemas = await sql<{ name: string; identity: boolean }[]>`
      SELECT n.nspname AS name, EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = n.oid AND p.proname = 'current_user_id') AS identity
      FROM pg_namespace n`;
    for (const { name, identity } of schemas) if (identity) modelOf.set(name, name);
    for (const { name } of schemas) modelOf.set(recordSchemaOf(name), name);
  }
  for (const q of acting) {
    const model = modelOf.get(q.schema);
    if (model === undefined || !inScope(model)) continue;
    const name = qualified(q.schema, q.name);
    add({
      code: 'identity-record-granted',
      severity: q.writes ? 'error' : 'warning',
      object: `sequence ${name}`,
      message: `${q.grantees.join(', ')} ${q.grantees.length === 1 ? 'holds a privilege' : 'hold privileges'} on it: ${model}.set_session records no identity (every fact checks the signature instead)${q.writes ? ', and a login with that privilege can write a record by hand and act as an id set_session would refuse' : ''}`,
      fix: `REVOKE ALL ON SEQUENCE ${name} FROM ${q.grantees.join(', ')};`,
    });
  }
  // The same for the predefined roles, which no ACL names: a login in app_user's group that is a
  // member of pg_write_all_data may write the record, of pg_read_all_data read it.
  const broad = await sql<{ login: string; role: string }[]>`
    SELECT m.rolname AS login, p.rolname AS role
    FROM pg_roles m CROSS JOIN pg_roles p
    WHERE p.rolname IN ('pg_write_all_data', 'pg_read_all_data') AND m.rolcanlogin AND NOT m.rolsuper
      AND pg_has_role(m.oid, ${APP_ROLE}, 'MEMBER') AND pg_has_role(m.oid, p.oid, 'MEMBER')
      AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relkind = 'S' AND c.relname = ${ACTING_SEQUENCE_NAMES.user})
    ORDER BY 1, 2`;
  for (const b of broad) {
    add({
      code: 'identity-record-granted',
      severity: b.role === 'pg_write_all_data' ? 'error' : 'warning',
      object: `role ${b.login}`,
      message: `is a member of ${APP_ROLE} and of ${b.role}: set_session records no identity for it${b.role === 'pg_write_all_data' ? ', and it can write a record by hand and act as an id set_session would refuse' : ''}`,
      fix: `REVOKE ${ident(b.role)} FROM ${ident(b.login)};`,
    });
  }

  // 10. Pattern operators marked LEAKPROOF. PostgreSQL ships none of them so: a LEAKPROOF
  // function may run before the policies, on rows they hide, and (LIKE, ILIKE, regular
  // expressions) its estimates read the columns' statistics, sampled from hidden rows too. A DBA
  // may mark one on purpose for that (README, "Text searches on a large table"); the audit should
  // show it either way.
  if (securedSchemas.size > 0) {
    const marked = await sql<{ fn: string; operators: string[] }[]>`
      SELECT p.oid::regprocedure::text AS fn, array_agg(DISTINCT o.oprname ORDER BY o.oprname) AS operators
      FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
      WHERE p.proleakproof AND o.oprkind = 'b' AND o.oprresult = 'bool'::regtype AND o.oprname = ANY (${PATTERN_OPERATORS})
      GROUP BY p.oid`;
    for (const m of marked.sort((a, b) => byCodePoint(a.fn, b.fn))) {
      add({
        code: 'pattern-operator-leakproof',
        severity: 'warning',
        object: `function ${m.fn}`,
        message: `the function of ${m.operators.join(', ')} is LEAKPROOF, for every table of the database: PostgreSQL may call it on rows the policies hide, before the policies, where an error it raises (for LIKE, a pattern from a hidden row that ends in the escape character) tells of them, and the planner may match a user's pattern against statistics sampled from hidden rows, which EXPLAIN shows. A DBA may mark it on purpose, for statistics and indexes in searches under RLS`,
        fix: `ALTER FUNCTION ${m.fn} NOT LEAKPROOF;`,
      });
    }
  }
  return findings;
}

/** LIKE, ILIKE, their negations, regular expressions and full-text search. */
const PATTERN_OPERATORS = ['~~', '~~*', '!~~', '!~~*', '~', '~*', '!~', '!~*', '@@', '@@@'];

export function hasErrors(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}

export function formatFindings(findings: readonly Finding[]): string {
  if (findings.length === 0) return 'rowguard lint: no findings.\n';
  const errors = findings.filter((f) => f.severity === 'error').length;
  const lines = findings.map((f) => `${f.severity.toUpperCase().padEnd(7)} ${f.object}: ${f.message} [${f.code}]\n        fix: ${f.fix}`);
  return `${lines.join('\n')}\n\nrowguard lint: ${errors} error(s), ${findings.length - errors} warning(s).\n`;
}

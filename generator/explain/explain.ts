// `rowguard explain`: may this user do this to this row, and why (not)?
//
// How it stays true to what PostgreSQL enforces:
// - The row is read by a role that skips row-level security (the connection's own role when it is a
//   superuser or BYPASSRLS, else rowguard_definer), because the row may be invisible to the user.
// - Everything else runs as app_user after <schema>.set_session(user), in one statement: each
//   condition of each policy arm, each fact the conditions use, and the policies as PostgreSQL has
//   them installed (pg_policies), all evaluated against that row. Facts are SECURITY DEFINER
//   functions reading the signed session identity, and sub-selects in conditions run under the
//   user's own policies, exactly as they do inside the real policy.
// - The verdict comes from the installed policies; the model's arms explain it. When the two
//   disagree (a database not migrated to the current policies/), explain says so.
// - For every command it also runs the real `SELECT … WHERE <key>` as the user, so "can see the
//   row" is PostgreSQL's own answer. Nothing is written; the transaction is rolled back.
import type { Sql, TransactionSql } from 'postgres';
import type { ModelNode, TableNode } from '../model/nodes.ts';
import { APP_ROLE } from '../emit/roles.ts';
import { actAsBypassRole, BypassUnavailable } from '../db/bypass.ts';
import { factCallSql, sessionUserSql } from '../emit/expr.ts';
import { ident, qualified } from '../sql/print.ts';
import { TypeResolver } from '../model/types.ts';
import { planCommand, type ExplainCommand, type StagePlan } from './plan.ts';

/** Three-valued: a condition that is NULL does not admit the row. */
export type Truth = boolean | null;

export interface ExplainRequest {
  readonly schema: string;
  readonly table: string;
  /** The identity value passed to set_session. */
  readonly user: string;
  /** `--id`: the key value, or for a composite key `a,b` in key order or `col=a,col2=b`; or the key by column. */
  readonly id: string | Readonly<Record<string, string>>;
  readonly command: ExplainCommand;
}

export interface ConditionResult {
  readonly sql: string;
  readonly words: string;
  readonly result: Truth;
  readonly facts: readonly string[];
  /** The row's values of the columns the condition reads. */
  readonly columns: readonly { readonly name: string; readonly value: unknown }[];
  readonly usesMe: boolean;
}

export interface ArmResult {
  readonly result: Truth;
  readonly conditions: readonly ConditionResult[];
}

export interface PolicyResult {
  readonly name: string;
  readonly mode: 'permissive' | 'restrictive';
  readonly policyCommand: string;
  readonly description?: string;
  /** Where it is declared: file and path in the model. */
  readonly origin: string;
  /** Admits the row (NULL counts as not). */
  readonly admits: boolean;
  readonly arms: readonly ArmResult[];
  /** What the policy as installed in the database says; absent when it is not installed. */
  readonly installed?: { readonly admits: boolean; readonly sql: string };
}

export interface StageResult {
  readonly command: string;
  readonly clause: 'using' | 'check';
  readonly why: string;
  /** As decided by the policies installed in the database. */
  readonly admitted: boolean;
  /** Permissive policies that admit the row. */
  readonly grantedBy: readonly string[];
  /** Restrictive policies that refuse it. */
  readonly refusedBy: readonly string[];
  readonly policies: readonly PolicyResult[];
  /** Installed policies the model does not know (their result counts in `admitted`). */
  readonly unknownInstalled: readonly { readonly name: string; readonly mode: 'permissive' | 'restrictive'; readonly admits: boolean; readonly sql: string }[];
}

export interface FactValue {
  readonly name: string;
  readonly description?: string;
  /** PostgreSQL's text form: `3`, `{3,5}`, `t`; null for NULL. */
  readonly value: string | null;
}

export interface Explanation {
  readonly schema: string;
  readonly table: string;
  readonly command: ExplainCommand;
  readonly user: { readonly id: string; readonly label?: string };
  readonly key: Readonly<Record<string, string>>;
  /** The row as stored (read bypassing row-level security); null when no row has that key. */
  readonly row: Readonly<Record<string, unknown>> | null;
  readonly allowed: boolean;
  /** One sentence: the verdict and its main reason. */
  readonly summary: string;
  readonly privileges: { readonly ok: boolean; readonly missing: readonly string[] };
  readonly rowSecurityEnabled: boolean;
  /** PostgreSQL's own answer to `SELECT … WHERE <key>` as the user. */
  readonly visibleToUser: boolean;
  readonly stages: readonly StageResult[];
  /** The acting user id (`me`) and every fact the conditions read. */
  readonly facts: readonly FactValue[];
  readonly warnings: readonly string[];
}

export class ExplainError extends Error {}

interface InstalledPolicy {
  readonly name: string;
  readonly permissive: boolean;
  readonly cmd: string;
  readonly qual: string | null;
  readonly withCheck: string | null;
}

type Tx = TransactionSql<Record<string, unknown>>;

class Rollback extends Error {
  constructor(readonly value: Explanation) {
    super('rollback');
  }
}

export async function explainRow(sql: Sql, models: readonly ModelNode[], request: ExplainRequest): Promise<Explanation> {
  const model = models.find((m) => m.schema === request.schema);
  if (!model) throw new ExplainError(`no model has schema "${request.schema}"; known: ${models.map((m) => m.schema).join(', ') || '(none)'}`);
  if (!model.identity) throw new ExplainError(`model "${model.schema}" (${model.file}) declares no identity (m.identity(...)), so no user can act in it`);
  const table = model.tables.find((t) => t.name === request.table);
  if (!table) throw new ExplainError(`model "${model.schema}" has no table "${request.table}"; tables: ${model.tables.map((t) => t.name).join(', ')}`);
  const key = parseKey(table, request.id);
  try {
    await sql.begin(async (tx) => {
      throw new Rollback(await explainInTransaction(tx as unknown as Tx, model, table, key, request));
    });
  } catch (error) {
    if (error instanceof Rollback) return error.value;
    throw error;
  }
  throw new Error('internal: explain transaction ended without a result');
}

async function explainInTransaction(tx: Tx, model: ModelNode, table: TableNode, key: Record<string, string>, request: ExplainRequest): Promise<Explanation> {
  const target = qualified(model.schema, table.name);
  const keyColumns = Object.keys(key);
  const keyWhere = keyColumns.map((c, i) => `${ident(c)} = $${i + 1}`).join(' AND ');
  const keyValues = keyColumns.map((c) => key[c]!);
  const identity = model.identity!;

  // 1. As a role that skips row-level security: the row, the user's label, the catalog facts.
  try {
    await actAsBypassRole(tx, 'explain reads the row whether or not the user can see it');
  } catch (error) {
    throw error instanceof BypassUnavailable ? new ExplainError(error.message) : error;
  }
  const rls = (await tx.unsafe(`SELECT c.relrowsecurity AS on FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)`, [target]))[0]?.on as boolean | undefined;
  if (rls === undefined) throw new ExplainError(`table ${model.schema}.${table.name} does not exist in this database; apply the migrations first`);
  // One round trip for the row, the acting user's row and app_user's table privileges.
  const n = keyValues.length;
  const needed = request.command === 'select' ? ['SELECT'] : ['SELECT', request.command.toUpperCase()];
  const [facts0] = await tx.unsafe(
    `SELECT (SELECT to_jsonb(t)::text FROM ${target} AS t WHERE ${keyWhere}) AS row,
            -- for display: numbers JavaScript cannot hold exactly (bigint ids) become strings
            (SELECT jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' AND length(e.value::text) > 15 THEN to_jsonb(e.value::text) ELSE e.value END)::text
               FROM ${target} AS t, jsonb_each(to_jsonb(t)) AS e WHERE ${keyColumns.map((c, i) => `t.${ident(c)} = $${i + 1}`).join(' AND ')}) AS shown,
            (SELECT to_jsonb(u) FROM ${qualified(model.schema, identity.table)} AS u WHERE ${ident(identity.column)} = $${n + 1}) AS "user",
            ARRAY[${needed.map((p) => `pg_catalog.${privilegeFunction(p)}($${n + 2}, $${n + 3}::regclass, '${p}')`).join(', ')}] AS privileges`,
    [...keyValues, request.user, APP_ROLE, target],
  );
  const rowText = (facts0!.row as string | null) ?? undefined;
  const userRow = (facts0!.user as Record<string, unknown> | null) ?? undefined;
  const missingPrivileges = needed.filter((_, i) => !(facts0!.privileges as boolean[])[i]);
  const installed = (
    await tx.unsafe(
      `SELECT policyname AS name, permissive = 'PERMISSIVE' AS permissive, cmd, qual, with_check AS "withCheck"
         FROM pg_catalog.pg_policies
        WHERE schemaname = $1 AND tablename = $2 AND (roles && ARRAY[$3, 'public']::name[])
        ORDER BY policyname`,
      [model.schema, table.name, APP_ROLE],
    )
  ).map((r) => r as unknown as InstalledPolicy);
  await tx.unsafe('RESET ROLE');

  const user = { id: request.user, ...(typeof userRow?.name === 'string' ? { label: userRow.name } : {}) };
  if (!userRow) throw new ExplainError(`no ${model.schema}.${identity.table} row has ${identity.column} = ${request.user}; set_session would refuse this user`);

  const stagePlans = planCommand(model, table.name, request.command);
  const warnings = installedDrift(stagePlans, installed, model, table.name);

  // 2. As the user.
  try {
    await tx.unsafe(`SET LOCAL ROLE ${ident(APP_ROLE)}`);
  } catch (error) {
    if ((error as { code?: string }).code !== '42501') throw error;
    throw new ExplainError(`explain acts as ${APP_ROLE}, but the role of DATABASE_URL may not SET ROLE ${APP_ROLE}: GRANT ${APP_ROLE} TO <your role>`);
  }
  await tx.unsafe(`SELECT ${qualified(model.schema, 'set_session')}($1)`, [request.user]);
  // Without the SELECT privilege the query itself fails (42501): nothing is visible.
  const visibleToUser = !missingPrivileges.includes('SELECT') && (await tx.unsafe(`SELECT count(*)::int AS n FROM ${target} WHERE ${keyWhere}`, keyValues))[0]!.n > 0;

  const base = { schema: model.schema, table: table.name, command: request.command, user, key, rowSecurityEnabled: rls, visibleToUser };
  const privileges = { ok: missingPrivileges.length === 0, missing: missingPrivileges };
  if (rowText === undefined) {
    return {
      ...base,
      row: null,
      allowed: false,
      summary: `DENIED: ${model.schema}.${table.name} has no row with ${describeKey(key)}.`,
      privileges,
      stages: [],
      facts: [],
      warnings,
    };
  }
  const stored = JSON.parse(facts0!.shown as string) as Record<string, unknown>;
  // jsonb orders keys by length; show them in the table's column order.
  const row = Object.fromEntries(table.columns.filter((c) => c.name in stored).map((c) => [c.name, stored[c.name]]));

  // One statement, so every condition and fact sees the same snapshot and the same identity.
  const columns: string[] = [];
  const add = (sqlText: string) => {
    columns.push(`(${sqlText}) AS ${ident(`e${columns.length}`)}`);
    return `e${columns.length - 1}`;
  };
  const conditionCols = stagePlans.map((s) => s.policies.map((p) => p.arms.map((a) => a.conditions.map((c) => add(c.sql)))));
  const stageInstalled = stagePlans.map((s) => installedFor(installed, s).map((p) => ({ policy: p, col: add(p.text) })));
  const factNames = [...new Set(stagePlans.flatMap((s) => s.policies.flatMap((p) => p.arms.flatMap((a) => a.conditions.flatMap((c) => c.facts)))))];
  const meCol = add(`${sessionUserSql(model.schema)}::text`);
  const types = new TypeResolver(model);
  const factCols = factNames.map((f) => add(factDisplaySql(model.schema, f, types.factType(f))));
  const values = (
    await tx.unsafe(`SELECT ${columns.join(',\n       ')}\n  FROM jsonb_populate_record(NULL::${target}, $1::text::jsonb) AS ${ident(table.name)}`, [rowText])
  )[0] as Record<string, unknown>;

  const stages = stagePlans.map((stage, si) => judgeStage(model, stage, conditionCols[si]!, stageInstalled[si]!, values, row, warnings));

  const facts: FactValue[] = [
    { name: 'me', description: `the acting user (${identity.table}.${identity.column} given to set_session)`, value: values[meCol] as string | null },
    ...factNames.map((name, i) => {
      const description = model.facts.find((f) => f.name === name)?.description;
      return { name, ...(description ? { description } : {}), value: values[factCols[i]!] as string | null };
    }),
  ];
  const policiesAdmit = !rls || stages.every((s) => s.admitted);
  const allowed = privileges.ok && policiesAdmit;
  if (request.command === 'select' && allowed !== visibleToUser) {
    warnings.push(`the conditions say the row is ${allowed ? '' : 'in'}visible but PostgreSQL ${visibleToUser ? 'shows' : 'hides'} it; please report this as a rowguard bug`);
  }
  return {
    ...base,
    row,
    allowed,
    summary: summarize(request.command, model.schema, table.name, key, user, allowed, privileges.missing, rls, stages),
    privileges,
    stages,
    facts,
    warnings,
  };
}

/** One stage's verdict from the installed policies, and the model's policies cut into arms to explain it. */
function judgeStage(
  model: ModelNode,
  stage: StagePlan,
  conditionCols: readonly (readonly (readonly string[])[])[],
  installedCols: readonly { policy: InstalledPolicy & { text: string }; col: string }[],
  values: Record<string, unknown>,
  row: Record<string, unknown>,
  warnings: string[],
): StageResult {
  const policies: PolicyResult[] = stage.policies.map((p, pi) => {
    const arms: ArmResult[] = p.arms.map((arm, ai) => {
      const conditions = arm.conditions.map((c, ci) => ({
        sql: c.sql,
        words: c.words,
        result: values[conditionCols[pi]![ai]![ci]!] as Truth,
        facts: c.facts,
        columns: c.columns.map((name) => ({ name, value: row[name] ?? null })),
        usesMe: c.usesMe,
      }));
      return { result: and3(conditions.map((c) => c.result)), conditions };
    });
    const inst = installedCols.find((x) => x.policy.name === p.policy.name);
    return {
      name: p.policy.name,
      mode: p.policy.mode,
      policyCommand: p.policy.command,
      ...(p.policy.description ? { description: p.policy.description } : {}),
      origin: `${model.file} ${p.policy.origin.path}`,
      admits: or3(arms.map((a) => a.result)) === true,
      arms,
      ...(inst ? { installed: { admits: values[inst.col] === true, sql: inst.policy.text } } : {}),
    };
  });
  const known = new Set(stage.policies.map((p) => p.policy.name));
  const unknownInstalled = installedCols.filter((x) => !known.has(x.policy.name)).map((x) => ({
    name: x.policy.name,
    mode: x.policy.permissive ? ('permissive' as const) : ('restrictive' as const),
    admits: values[x.col] === true,
    sql: x.policy.text,
  }));
  const enforced = installedCols.map((x) => ({ name: x.policy.name, permissive: x.policy.permissive, admits: values[x.col] === true }));
  const grantedBy = enforced.filter((x) => x.permissive && x.admits).map((x) => x.name);
  const refusedBy = enforced.filter((x) => !x.permissive && !x.admits).map((x) => x.name);
  const modelAdmitted = policies.some((p) => p.mode === 'permissive' && p.admits) && policies.every((p) => p.mode === 'permissive' || p.admits);
  const admitted = grantedBy.length > 0 && refusedBy.length === 0;
  if (modelAdmitted !== admitted) {
    warnings.push(
      `${stage.command.toUpperCase()} ${stage.clause.toUpperCase()}: the policies installed in the database ${admitted ? 'admit' : 'refuse'} the row but ${model.file} ${modelAdmitted ? 'admits' : 'refuses'} it; the database is not migrated to the current policies (run the migrations)`,
    );
  }
  for (const p of policies) {
    if (p.installed && p.installed.admits !== p.admits) {
      warnings.push(`policy ${p.name}: installed version ${p.installed.admits ? 'admits' : 'refuses'} the row, ${model.file} ${p.admits ? 'admits' : 'refuses'} it (run the migrations)`);
    }
  }
  return { command: stage.command, clause: stage.clause, why: stage.why, admitted, grantedBy, refusedBy, policies, unknownInstalled };
}

/** A fact's value as text; sets are shown sorted (their order means nothing and varies). */
function factDisplaySql(schema: string, name: string, type: string): string {
  const call = factCallSql(schema, name);
  if (!type.endsWith('[]')) return `${call}::text`;
  return `CASE WHEN ${call} IS NULL THEN NULL ELSE coalesce((SELECT array_agg(v ORDER BY v) FROM unnest(${call}) AS v), '{}')::text END`;
}

/** SELECT and UPDATE may be granted per column; DELETE only per table. */
function privilegeFunction(privilege: string): string {
  return privilege === 'DELETE' ? 'has_table_privilege' : 'has_any_column_privilege';
}

function installedFor(installed: readonly InstalledPolicy[], stage: StagePlan): (InstalledPolicy & { text: string })[] {
  return installed
    .filter((p) => p.cmd === 'ALL' || p.cmd.toLowerCase() === stage.command)
    .map((p) => ({ ...p, text: (stage.clause === 'using' ? p.qual : (p.withCheck ?? p.qual)) ?? '' }))
    .filter((p) => p.text !== '');
}

function installedDrift(stages: readonly StagePlan[], installed: readonly InstalledPolicy[], model: ModelNode, table: string): string[] {
  const warnings: string[] = [];
  const commands = new Set(stages.map((s) => s.command));
  const inModel = new Set(model.policies.filter((p) => p.table === table).map((p) => p.name));
  for (const p of model.policies) {
    if (p.table !== table || !(commands.has(p.command as never) || p.command === 'all')) continue;
    if (!installed.some((i) => i.name === p.name)) warnings.push(`policy ${p.name} is in ${model.file} but not installed in the database (run the migrations)`);
  }
  for (const i of installed) {
    if (!inModel.has(i.name) && (i.cmd === 'ALL' || commands.has(i.cmd.toLowerCase() as never))) {
      warnings.push(`policy ${i.name} is installed in the database but not in ${model.file}; it counts in the verdict but cannot be explained arm by arm`);
    }
  }
  return warnings;
}

export function parseKey(table: TableNode, id: string | Readonly<Record<string, string>>): Record<string, string> {
  const pk = table.primaryKey;
  if (pk.length === 0) throw new ExplainError(`table ${table.name} has no primary key, so --id cannot name a row`);
  // A single key's value is taken whole (it may contain commas), with or without its column name.
  if (typeof id === 'string' && pk.length === 1) return { [pk[0]!]: id.startsWith(`${pk[0]}=`) ? id.slice(pk[0]!.length + 1) : id };
  const parts = typeof id === 'string' ? id.split(',') : Object.entries(id).map(([c, v]) => `${c}=${v}`);
  if (typeof id !== 'string' || parts.every((p) => p.includes('='))) {
    const byName: Record<string, string> =
      typeof id === 'string' ? Object.fromEntries(parts.map((p) => [p.slice(0, p.indexOf('=')).trim(), p.slice(p.indexOf('=') + 1)])) : { ...id };
    const missing = pk.filter((c) => !(c in byName));
    const extra = Object.keys(byName).filter((c) => !pk.includes(c));
    if (missing.length > 0 || extra.length > 0) throw new ExplainError(`--id for ${table.name} needs exactly its key columns ${pk.join(', ')} (as ${pk.map((c) => `${c}=…`).join(',')})`);
    return Object.fromEntries(pk.map((c) => [c, byName[c]!]));
  }
  if (parts.length !== pk.length) throw new ExplainError(`--id for ${table.name} needs ${pk.length} value(s), one per key column ${pk.join(', ')} (e.g. --id ${pk.map((c) => `${c}=…`).join(',')})`);
  return Object.fromEntries(pk.map((c, i) => [c, parts[i]!]));
}

export function describeKey(key: Readonly<Record<string, string>>): string {
  return Object.entries(key)
    .map(([c, v]) => `${c} = ${v}`)
    .join(', ');
}

function summarize(
  command: ExplainCommand,
  schema: string,
  table: string,
  key: Readonly<Record<string, string>>,
  user: { id: string; label?: string },
  allowed: boolean,
  missing: readonly string[],
  rls: boolean,
  stages: readonly StageResult[],
): string {
  const who = `user ${user.id}${user.label ? ` (${user.label})` : ''}`;
  const what = `${command.toUpperCase()} ${schema}.${table} row ${describeKey(key)}`;
  if (allowed) {
    if (!rls) return `ALLOWED: ${who} may ${what}: row-level security is not enabled on the table.`;
    const grants = stages.map((s) => `${s.command.toUpperCase()}${s.clause === 'check' ? ' WITH CHECK' : ''} by ${s.grantedBy.join(', ')}`);
    return `ALLOWED: ${who} may ${what}; granted ${grants.join('; ')}.`;
  }
  if (missing.length > 0) return `DENIED: ${who} may not ${what}: app_user has no ${missing.join(' or ')} privilege on the table.`;
  const failed = stages.find((s) => !s.admitted)!;
  const reason =
    failed.refusedBy.length > 0
      ? `the restrictive polic${failed.refusedBy.length === 1 ? 'y' : 'ies'} ${failed.refusedBy.join(', ')} refuse${failed.refusedBy.length === 1 ? 's' : ''} it`
      : failed.policies.length + failed.unknownInstalled.length === 0
        ? `no ${failed.command.toUpperCase()} policy exists for the table, so no row qualifies`
        : `no ${failed.command.toUpperCase()} policy${failed.clause === 'check' ? ' WITH CHECK' : ''} admits it`;
  return `DENIED: ${who} may not ${what}: ${reason}.`;
}

function and3(values: readonly Truth[]): Truth {
  if (values.some((v) => v === false)) return false;
  return values.some((v) => v === null) ? null : true;
}

function or3(values: readonly Truth[]): Truth {
  if (values.some((v) => v === true)) return true;
  return values.some((v) => v === null) ? null : false;
}

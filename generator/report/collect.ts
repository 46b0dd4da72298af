// What the access picture shows, gathered from the policy models and one database:
// - each hierarchy as a tree, read from its generated closure view (depth-1 pairs are the edges,
//   the pair count per ancestor is "how many below"), by a role that skips row-level security;
// - each table's policies in words (OR arms of AND conditions, as explain cuts them) and in SQL;
// - per persona and table, how many rows the persona sees: counted as app_user after set_session,
//   like an application, so the numbers are PostgreSQL's own answer.
import type { Sql, TransactionSql } from 'postgres';
import type { Command, ModelNode, PolicyNode } from '../model/nodes.ts';
import type { Sample } from '../cli/samples/sample.ts';
import { actAsBypassRole } from '../db/bypass.ts';
import { APP_ROLE } from '../emit/roles.ts';
import { exprContext, printExpr } from '../emit/expr.ts';
import { byCodePoint, ident, qualified } from '../sql/print.ts';
import { armsOf } from '../explain/plan.ts';
import { describeExpr } from '../explain/words.ts';

export interface ReportOptions {
  /** Use the first N users of each model instead of the sample personas. */
  readonly users?: number;
  /** At most this many nodes per hierarchy are drawn. */
  readonly maxTreeNodes?: number;
}

export interface TreeNode {
  readonly id: string;
  readonly label?: string;
  /** Distinct nodes below at any depth (from the closure view). */
  readonly below: number;
  readonly children: readonly TreeNode[];
}

export interface HierarchyReport {
  readonly name: string;
  readonly table: string;
  readonly child: string;
  readonly parent: string;
  readonly nodeCount: number;
  readonly roots: readonly TreeNode[];
  /** Nodes not drawn because of the size limit. */
  readonly omitted: number;
  /** Nodes on a cycle (no root above them): listed, not drawn. */
  readonly onCycles: readonly string[];
}

export interface ClauseReport {
  /** OR arms, each a list of AND conditions in words. */
  readonly arms: readonly (readonly string[])[];
  readonly sql: string;
}

export interface PolicyReport {
  readonly name: string;
  readonly command: Command | 'all';
  readonly mode: 'permissive' | 'restrictive';
  readonly description?: string;
  readonly using?: ClauseReport;
  readonly check?: ClauseReport;
  /** WITH CHECK is the same predicate as USING. */
  readonly checkSameAsUsing?: boolean;
}

export interface TableReport {
  readonly name: string;
  readonly rows: number;
  readonly rowSecurity: boolean;
  readonly policies: readonly PolicyReport[];
  /** Triggers and views that also shape access to the table: column guards, write rules, masked views. */
  readonly alsoEnforced: readonly { readonly kind: 'column guard' | 'write rule' | 'masked view'; readonly name: string; readonly text: string }[];
}

export interface Persona {
  readonly id: string;
  readonly label: string;
  /** Visible rows per table, as the persona; null where app_user has no SELECT privilege. */
  readonly visible: Readonly<Record<string, number | null>>;
}

export interface ModelReport {
  readonly schema: string;
  readonly file: string;
  readonly description?: string;
  readonly identity?: string;
  readonly hierarchies: readonly HierarchyReport[];
  readonly tables: readonly TableReport[];
  readonly facts: readonly { readonly name: string; readonly description?: string; readonly words: string }[];
  readonly personaSource: string;
  readonly personas: readonly Persona[];
  /** The table the sample calls its main one, highlighted in the matrix. */
  readonly mainTable?: string;
}

export interface ReportData {
  readonly database: string;
  readonly models: readonly ModelReport[];
}

type Tx = TransactionSql<Record<string, unknown>>;

const DEFAULT_USERS = 20;
const DEFAULT_TREE_NODES = 150;

export async function collectReport(sql: Sql, models: readonly ModelNode[], samples: readonly Sample[], options: ReportOptions = {}): Promise<ReportData> {
  const database = ((await sql`SELECT current_database() AS db`)[0]!.db as string) ?? '';
  const reports: ModelReport[] = [];
  for (const model of models) reports.push(await collectModel(sql, model, samples.find((s) => s.schema === model.schema), options));
  return { database, models: reports };
}

async function collectModel(sql: Sql, model: ModelNode, sample: Sample | undefined, options: ReportOptions): Promise<ModelReport> {
  const installed = await readOnly(sql, async (tx) => {
    await actAsBypassRole(tx, 'the report reads every hierarchy and counts every table');
    const present = new Set(
      (await tx.unsafe(`SELECT c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, [model.schema])).map(
        (r) => r.name as string,
      ),
    );
    const tables: { name: string; rows: number; rowSecurity: boolean }[] = [];
    for (const t of model.tables) {
      if (!present.has(t.name)) continue;
      const [r] = await tx.unsafe(
        `SELECT (SELECT count(*)::int FROM ${qualified(model.schema, t.name)}) AS rows,
                (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)) AS rls`,
        [qualified(model.schema, t.name)],
      );
      tables.push({ name: t.name, rows: r!.rows as number, rowSecurity: r!.rls as boolean });
    }
    const hierarchies: HierarchyReport[] = [];
    for (const h of model.hierarchies) {
      if (present.has(h.name)) hierarchies.push(await collectHierarchy(tx, model, h, options.maxTreeNodes ?? DEFAULT_TREE_NODES));
    }
    return { tables, hierarchies };
  });
  if (installed.tables.length === 0) throw new Error(`schema ${model.schema} (${model.file}) is not in database; apply the migrations first`);

  const tables: TableReport[] = installed.tables.map((t) => ({
    ...t,
    policies: model.policies.filter((p) => p.table === t.name).map((p) => policyReport(model, p)),
    alsoEnforced: [
      ...model.guards
        .filter((g) => g.table === t.name)
        .map((g) => ({ kind: 'column guard' as const, name: g.name, text: `${g.columns.join(', ')} may ${g.when.kind === 'literal' && g.when.value === true ? 'never change' : `not change when ${describeExpr(g.when)}`}: "${g.message}"` })),
      ...model.writeRules
        .filter((r) => r.table === t.name)
        .map((r) => ({
          kind: 'write rule' as const,
          name: r.name,
          text: `${r.description ?? 'derives values of the written row'} (on ${r.events.join(' and ')}${r.when ? `, when ${describeExpr(r.when)}` : ''})`,
        })),
      ...model.maskedViews
        .filter((v) => v.table === t.name)
        .map((v) => ({ kind: 'masked view' as const, name: v.name, text: v.description ?? `every row, with the ones the caller may not see masked (flag column ${v.flagColumn})` })),
    ],
  }));
  const { personas, source } = await collectPersonas(sql, model, sample, options, tables.map((t) => t.name));
  return {
    schema: model.schema,
    file: model.file,
    ...(model.description ? { description: model.description } : {}),
    ...(model.identity ? { identity: `${model.identity.table}.${model.identity.column}` } : {}),
    hierarchies: installed.hierarchies,
    tables,
    facts: model.facts.map((f) => ({ name: f.name, ...(f.description ? { description: f.description } : {}), words: describeExpr(f.expr) })),
    personaSource: source,
    personas,
    ...(sample ? { mainTable: sample.table } : {}),
  };
}

function policyReport(model: ModelNode, p: PolicyNode): PolicyReport {
  const clause = (e: PolicyNode['using']): ClauseReport | undefined =>
    e && { arms: armsOf(model, p.table, e).map((a) => a.conditions.map((c) => c.words)), sql: printExpr(e, exprContext(model, ident(p.table))) };
  const using = clause(p.using);
  const same = p.using !== undefined && p.check !== undefined && JSON.stringify(p.using) === JSON.stringify(p.check);
  const check = same ? undefined : clause(p.check);
  return {
    name: p.name,
    command: p.command,
    mode: p.mode,
    ...(p.description ? { description: p.description } : {}),
    ...(using ? { using } : {}),
    ...(check ? { check } : {}),
    ...(same ? { checkSameAsUsing: true } : {}),
  };
}

async function collectHierarchy(tx: Tx, model: ModelNode, h: ModelNode['hierarchies'][number], maxNodes: number): Promise<HierarchyReport> {
  const pairs = await tx.unsafe(
    `SELECT ancestor_id::text AS ancestor, count(DISTINCT descendant_id)::int AS below,
            array_agg(descendant_id::text ORDER BY descendant_id) FILTER (WHERE depth = 1) AS children
       FROM ${qualified(model.schema, h.name)} GROUP BY ancestor_id`,
  );
  const below = new Map<string, number>();
  const children = new Map<string, string[]>();
  const nodes = new Set<string>();
  const hasParent = new Set<string>();
  for (const p of pairs) {
    const id = p.ancestor as string;
    nodes.add(id);
    below.set(id, p.below as number);
    const kids = (p.children as string[] | null) ?? [];
    children.set(id, kids);
    for (const k of kids) {
      nodes.add(k);
      hasParent.add(k);
    }
  }
  // A self-referencing table (offices.id → parent_id) names its nodes; leaves and lone nodes come from it too.
  const table = model.tables.find((t) => t.name === h.table);
  const selfReferencing = table?.primaryKey.length === 1 && table.primaryKey[0] === h.child;
  const labels = new Map<string, string>();
  if (table && selfReferencing) {
    const labelColumn = table.columns.find((c) => c.name === 'name') ? 'name' : undefined;
    const rows = await tx.unsafe(
      `SELECT ${ident(h.child)}::text AS id${labelColumn ? `, ${ident(labelColumn)}::text AS label` : ''} FROM ${qualified(model.schema, h.table)} ORDER BY ${ident(h.child)} LIMIT 10000`,
    );
    for (const r of rows) {
      nodes.add(r.id as string);
      if (r.label) labels.set(r.id as string, r.label as string);
    }
  }
  // A node with two parents (an edge table can make a DAG) is drawn under each; the path guard
  // stops a cycle that hangs below a root.
  let budget = maxNodes;
  const drawn = new Set<string>();
  const build = (id: string, path: ReadonlySet<string>): TreeNode => {
    drawn.add(id);
    budget--;
    const kids: TreeNode[] = [];
    for (const k of children.get(id) ?? []) {
      if (budget <= 0 || path.has(k)) continue;
      kids.push(build(k, new Set([...path, k])));
    }
    return { id, ...(labels.has(id) ? { label: labels.get(id)! } : {}), below: below.get(id) ?? 0, children: kids };
  };
  const rootIds = [...nodes].filter((n) => !hasParent.has(n)).sort(naturalOrder);
  const roots: TreeNode[] = [];
  for (const r of rootIds) if (budget > 0) roots.push(build(r, new Set([r])));
  // Reachable from a root but not drawn: cut by the limit. Unreachable: on (or hanging from) a cycle.
  const reachable = new Set<string>();
  const walk = (id: string) => {
    if (reachable.has(id)) return;
    reachable.add(id);
    for (const k of children.get(id) ?? []) walk(k);
  };
  rootIds.forEach(walk);
  const onCycles = [...nodes].filter((n) => !reachable.has(n)).sort(naturalOrder);
  return { name: h.name, table: h.table, child: h.child, parent: h.parent, nodeCount: nodes.size, roots, omitted: reachable.size - drawn.size, onCycles };
}

async function collectPersonas(
  sql: Sql,
  model: ModelNode,
  sample: Sample | undefined,
  options: ReportOptions,
  tables: readonly string[],
): Promise<{ personas: Persona[]; source: string }> {
  const identity = model.identity;
  if (!identity) return { personas: [], source: 'the model declares no identity, so no user can act in it' };
  const labelOf = await readOnly(sql, async (tx) => {
    await actAsBypassRole(tx, 'the report lists users');
    const idTable = model.tables.find((t) => t.name === identity.table);
    const label = idTable?.columns.some((c) => c.name === 'name') ? `${ident('name')}::text` : 'NULL';
    const limit = options.users ?? (sample ? 100000 : DEFAULT_USERS);
    const rows = await tx.unsafe(
      `SELECT ${ident(identity.column)}::text AS id, ${label} AS label FROM ${qualified(model.schema, identity.table)} ORDER BY ${ident(identity.column)} LIMIT ${Number(limit)}`,
    );
    return new Map(rows.map((r) => [r.id as string, (r.label as string | null) ?? `${identity.table} ${r.id as string}`]));
  });
  const useSample = sample && options.users === undefined && sample.personas.some((p) => labelOf.has(String(p.id)));
  const chosen = useSample
    ? sample.personas.filter((p) => labelOf.has(String(p.id))).map((p) => ({ id: String(p.id), label: p.name }))
    : [...labelOf].map(([id, label]) => ({ id, label }));
  const source = useSample
    ? `the personas of the ${model.schema} sample (generator/cli/samples)`
    : `the first ${chosen.length} ${identity.table} by ${identity.column}${options.users === undefined ? ` (at most ${DEFAULT_USERS}; --users N for more)` : ''}`;
  // PostgreSQL checks privileges on every table a statement names, so only readable tables are counted.
  const readable = new Set<string>();
  for (const t of tables) {
    const [r] = await sql.unsafe(`SELECT pg_catalog.has_table_privilege($1, $2::regclass, 'SELECT') AS ok`, [APP_ROLE, qualified(model.schema, t)]);
    if (r!.ok) readable.add(t);
  }
  const counts = ['1 AS "?"', ...tables.filter((t) => readable.has(t)).map((t) => `(SELECT count(*)::int FROM ${qualified(model.schema, t)}) AS ${ident(t)}`)].join(', ');
  const personas: Persona[] = [];
  for (const p of chosen) {
    const visible = await readOnly(sql, async (tx) => {
      await tx.unsafe(`SET LOCAL ROLE ${ident(APP_ROLE)}`);
      await tx.unsafe(`SELECT ${qualified(model.schema, 'set_session')}($1)`, [p.id]);
      return (await tx.unsafe(`SELECT ${counts}`))[0] as Record<string, number>;
    });
    personas.push({ ...p, visible: Object.fromEntries(tables.map((t) => [t, readable.has(t) ? visible[t]! : null])) });
  }
  return { personas, source };
}

class Rollback<T> extends Error {
  constructor(readonly value: T) {
    super('rollback');
  }
}

/** Runs `fn` in a transaction that is always rolled back: the report changes nothing. */
async function readOnly<T>(sql: Sql, fn: (tx: Tx) => Promise<T>): Promise<T> {
  try {
    await sql.begin(async (tx) => {
      throw new Rollback(await fn(tx as unknown as Tx));
    });
  } catch (error) {
    if (error instanceof Rollback) return error.value as T;
    throw error;
  }
  throw new Error('internal: transaction ended without a result');
}

function naturalOrder(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return byCodePoint(a, b);
}

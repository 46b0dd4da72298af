// The benchmark harness: runs each scenario's queries as `app_user` under the generated policies
// ("secured") and as the owner in three baselines, checks that every secured answer is exactly the
// rows an independent hand-written query says the persona may see, and reports medians, p95,
// buffers and ratios. Timing is wall time seen by the client for the one statement (planning
// included unless the statements are prepared, identity already set in the transaction), the cost
// an application pays per query.
import type postgres from 'postgres';
import { byCodePoint, literal } from '../generator/sql/print.ts';
import { setSession } from '../runtime/postgres.ts';
import { actAs } from './server.ts';

export type Sql = postgres.Sql;
export type ReservedSql = postgres.ReservedSql;

export interface Statement {
  readonly text: string;
  readonly params?: readonly unknown[];
}

export interface Persona {
  /** Short name shown in the table, e.g. "agent". */
  readonly name: string;
  /** The id passed to <schema>.set_session. */
  readonly userId: string;
  /** The intended visible share, e.g. "0.01%". */
  readonly target: '0.01%' | '0.1%' | '1%' | '10%' | 'nearly all';
  /** Free values the scenario's queries use (the persona's office, a visible name, …). */
  readonly values: Readonly<Record<string, string>>;
}

/**
 * Context a query gets to build its baselines: the persona, and the persona's visible ids as
 * computed by the hand-written (B2) visible-set query, sorted ascending as decimal strings.
 */
export interface QueryContext {
  readonly persona: Persona;
  readonly visible: readonly string[];
  /** Owner connection for untimed lookups while building B1 (e.g. which visible rows match a search). */
  readonly owner: Sql;
}

export interface ReadQuery {
  readonly kind: 'read';
  readonly name: string;
  /** Runs as app_user after set_session. */
  readonly secured: Statement;
  /** B0: the same query as a role that bypasses RLS. Defaults to `secured`. */
  readonly b0?: Statement;
  /** B1: the owner reading exactly the visible answer by primary key. */
  readonly b1: (ctx: QueryContext) => Promise<Statement> | Statement;
  /** B2: an expert's hand-written WHERE clause with the same meaning, as the owner. */
  readonly b2: Statement;
}

export interface WriteQuery {
  readonly kind: 'write';
  readonly name: string;
  /** Runs as app_user; must affect exactly `rows` rows (one by default). Rolled back after each run. */
  readonly secured: Statement;
  /** The rows each of its statements must affect: 1 unless said. */
  readonly rows?: number;
  /** B0: the same write without RLS (the physical limit of a write). */
  readonly b0: Statement;
  /** B2: the write guarded by a hand-written condition, as the owner. */
  readonly b2: Statement;
}

export interface FactsQuery {
  readonly kind: 'facts';
  readonly name: string;
  /** The policy's per-statement values alone, as app_user. */
  readonly secured: Statement;
  /** The same sets computed by hand-written SQL as the owner. */
  readonly b2: Statement;
}

export type Query = ReadQuery | WriteQuery | FactsQuery;

export interface Scenario {
  readonly model: string;
  readonly schema: string;
  /** The large secured table the personas' visible shares refer to. */
  readonly table: string;
  /** Number of hierarchy nodes in the generated data (the visible-set target is for ~10^3). */
  hierarchyNodes(scale: number): number;
  /** Human description of the generated data, for the report. */
  describe(scale: number): string;
  /** Loads the data (as the owner, into a freshly migrated database) and ANALYZEs. */
  load(sql: Sql, scale: number, log: (m: string) => void): Promise<void>;
  personas(sql: Sql, scale: number): Promise<readonly Persona[]>;
  /** The hand-written visible set of a persona: `SELECT id FROM … WHERE …` as the owner. */
  visibleSet(persona: Persona): Statement;
  queries(persona: Persona, ctx: { readonly visible: readonly string[]; readonly owner: Sql }): Promise<readonly Query[]>;
}

export interface Timing {
  readonly runs: number;
  readonly medianMs: number;
  readonly p95Ms: number;
  /** Shared buffers hit + read by one execution (EXPLAIN ANALYZE BUFFERS), planning included. */
  readonly buffers: number | null;
  readonly planningMs: number | null;
  readonly executionMs: number | null;
  /**
   * Prepared (`--prepare`): how many of the timed runs (untimed warm runs included) had a generic
   * plan and how many a custom one (pg_prepared_statements), and the kind explained for the
   * buffers and plan times: the kind most runs had.
   */
  readonly plans?: { readonly generic: number; readonly custom: number; readonly explained: 'generic' | 'custom' | null };
}

export interface QueryResult {
  readonly persona: string;
  readonly target: Persona['target'];
  readonly visibleRows: number;
  readonly visibleShare: number;
  readonly query: string;
  readonly kind: Query['kind'];
  readonly rows: number;
  readonly secured: Timing;
  readonly b0: Timing | null;
  readonly b1: Timing | null;
  readonly b2: Timing | null;
  /**
   * Not a target: B2's statement run where S runs, after the persona's set_session in the same
   * transaction (then as the owner again). S/B2s is what the policy costs beside the expert's
   * condition; B2s/B2 is what following set_session costs any statement (missing in results
   * written before the twenty-seventh round).
   */
  readonly b2AfterSession?: Timing | null;
  readonly ratios: { readonly toB0: number | null; readonly toB1: number | null; readonly toB2: number | null; readonly toB2AfterSession?: number | null };
  readonly targets: readonly { readonly name: string; readonly met: boolean }[];
  /** The secured plan's node types, for the analysis (e.g. "Bitmap Heap Scan", "Seq Scan"). */
  readonly securedPlan: string;
}

export interface RunOptions {
  readonly runs: number;
  readonly warmup: number;
  /** Stop sampling a query once this much per variant has passed (at least `minRuns` rounds). */
  readonly budgetMs: number;
  readonly minRuns: number;
  /** Runs each statement as a named prepared statement, so PostgreSQL may reuse its plan. */
  readonly prepare?: boolean;
  readonly log: (m: string) => void;
}

type Identity = { readonly schema: string; readonly userId: string };
/**
 * Who runs a variant: app_user acting as a persona (S), or the owner (B0, B1, B2). `after`: the
 * owner's statement follows, in its transaction, the persona's set_session as app_user (B2s).
 */
type As = ({ readonly role: 'app_user' } & Identity) | { readonly role: 'owner'; readonly after?: Identity };

/**
 * Begins a transaction on the reserved connection and acts as the given role. Returns the mark of
 * the persona's kind the runtime puts before its prepared statements ('' for the owner alone).
 */
async function begin(conn: ReservedSql, as: As): Promise<string> {
  await conn.unsafe('BEGIN');
  const identity = as.role === 'app_user' ? as : as.after;
  if (!identity) return '';
  await conn.unsafe('SET LOCAL ROLE app_user');
  // As the runtime sends it (one simple query), whether the statements are prepared or not.
  const mark = await setSession(conn, { schema: identity.schema, id: identity.userId }, undefined, {});
  if (as.role === 'owner') await conn.unsafe('RESET ROLE');
  return mark;
}

/** The mark of the persona's kind (see `begin`), from a transaction rolled back. */
async function kindMark(conn: ReservedSql, as: As): Promise<string> {
  try {
    return await begin(conn, as);
  } finally {
    await conn.unsafe('ROLLBACK');
  }
}

function preparedText(as: As, st: Statement, prepare: boolean): string {
  // B2s gets a text of its own too: it runs with set_session's planner marks in the search_path,
  // and one statement run with and without them would be planned again at each change.
  if (!prepare || as.role !== 'owner') return st.text;
  return `${st.text} /* as owner${as.after ? ' after set_session' : ''} */`;
}

/** postgres.js reads `simple` (not in its typings): false sends even a statement without parameters prepared. */
export const PREPARED = { prepare: true, simple: false } as postgres.UnsafeQueryOptions;

/**
 * One timed run. `perKind`: S's text begins with the mark of the persona's kind, as the runtime's
 * postgres.js adapter sends the statements it prepares (runtime/postgres.ts).
 */
async function runOnce(conn: ReservedSql, as: As, st: Statement, prepare: boolean, perKind = false): Promise<{ ms: number; rows: postgres.RowList<postgres.Row[]>; mark: string }> {
  // Prepared, the owner's statements get a text of their own. postgres.js names a prepared
  // statement by its text, and B0 has S's; one statement executed as the owner and then as
  // app_user is planned again at each change of role (its plan applies RLS for one and not the
  // other), so until the twentieth round S and B0 paid their planning on every run (~0.5 ms for
  // Collect!'s count) while B2 did not. And `unsafe` sends a statement without parameters as a
  // simple query, never prepared, unless told otherwise (a tagged template is prepared either
  // way): until the twenty-first round S's count, pages without a cursor, joins and visible set
  // were planned at every run while B2, whose user is `$1`, was prepared.
  const mark = await begin(conn, as);
  const text = (perKind && as.role === 'app_user' ? mark : '') + preparedText(as, st, prepare);
  try {
    const t0 = process.hrtime.bigint();
    const rows = await conn.unsafe(text, (st.params ?? []) as never[], prepare ? PREPARED : {});
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { ms, rows, mark };
  } finally {
    await conn.unsafe('ROLLBACK');
  }
}

interface ExplainNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Parent Relationship'?: string;
  'Subplan Name'?: string;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: ExplainNode[];
}

function planShape(node: ExplainNode, depth = 0): string {
  const label = `${'  '.repeat(depth)}${node['Subplan Name'] ? `${node['Subplan Name']}: ` : ''}${node['Node Type']}${node['Relation Name'] ? ` on ${node['Relation Name']}` : ''}`;
  return [label, ...(node.Plans ?? []).map((child) => planShape(child, depth + 1))].join('\n');
}

/** One EXPLAIN ANALYZE; `kind`: which plan a prepared statement's explained execution ran. */
type Explained = Pick<Timing, 'buffers' | 'planningMs' | 'executionMs'> & { readonly shape: string; readonly kind?: 'generic' | 'custom' | null };

/** A parameter as an SQL literal of unknown type, for EXECUTE's arguments (an array in its text form). */
function argument(value: unknown): string {
  if (value === null || value === undefined) return literal(null);
  const element = (e: unknown) => (e === null ? 'NULL' : `"${String(e).replace(/[\\"]/g, '\\$&')}"`);
  return literal(Array.isArray(value) ? `{${value.map(element).join(',')}}` : String(value));
}

let explainedStatements = 0;

/**
 * EXPLAIN ANALYZE of a prepared statement's plan of the kind (generic or custom) that most of its
 * timed runs had: the same text prepared in SQL and explained under that `plan_cache_mode`, so
 * the buffers and plan times describe the plan that was timed (without a kind, or where PREPARE
 * cannot type the statement's parameters, the statement is explained unprepared: kind null).
 */
async function explainPrepared(conn: ReservedSql, as: As, st: Statement, kind: 'generic' | 'custom' | null): Promise<Explained> {
  if (kind === null) return { ...(await explain(conn, as, st)), kind };
  const name = `rg_bench_explain_${++explainedStatements}`;
  const args = st.params?.length ? `(${st.params.map(argument).join(', ')})` : '';
  await begin(conn, as);
  try {
    await conn.unsafe(`PREPARE ${name} AS ${preparedText(as, st, true)}`);
  } catch {
    await conn.unsafe('ROLLBACK');
    return { ...(await explain(conn, as, st)), kind: null };
  }
  try {
    await conn.unsafe(`SET LOCAL plan_cache_mode = force_${kind}_plan`);
    const [row] = await conn.unsafe(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE ${name}${args}`);
    return { ...explainDocument(row!), kind };
  } finally {
    await conn.unsafe('ROLLBACK');
    await conn.unsafe(`DEALLOCATE ${name}`);
  }
}

/** How often the protocol-level prepared statements of these texts were planned generic and custom. */
async function planCounts(conn: ReservedSql, texts: readonly string[]): Promise<{ generic: number; custom: number }[]> {
  const rows = await conn.unsafe('SELECT statement, generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements WHERE NOT from_sql');
  const by = new Map(rows.map((r) => [r.statement as string, { generic: Number(r.generic), custom: Number(r.custom) }]));
  return texts.map((t) => by.get(t) ?? { generic: 0, custom: 0 });
}

async function explain(conn: ReservedSql, as: As, st: Statement): Promise<Explained> {
  await begin(conn, as);
  try {
    const [row] = await conn.unsafe(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${st.text}`, (st.params ?? []) as never[]);
    return explainDocument(row!);
  } finally {
    await conn.unsafe('ROLLBACK');
  }
}

function explainDocument(row: postgres.Row): Explained {
  const doc = (row['QUERY PLAN'] as unknown[])[0] as {
    Plan: ExplainNode;
    Planning?: { 'Shared Hit Blocks'?: number; 'Shared Read Blocks'?: number };
    'Planning Time': number;
    'Execution Time': number;
  };
  const planBuffers = (doc.Planning?.['Shared Hit Blocks'] ?? 0) + (doc.Planning?.['Shared Read Blocks'] ?? 0);
  const execBuffers = (doc.Plan['Shared Hit Blocks'] ?? 0) + (doc.Plan['Shared Read Blocks'] ?? 0);
  return { buffers: planBuffers + execBuffers, planningMs: doc['Planning Time'], executionMs: doc['Execution Time'], shape: planShape(doc.Plan) };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

type Stats = Pick<Timing, 'runs' | 'medianMs' | 'p95Ms'>;

/** A statement faster than this is run once untimed before each timed run (see sampleInTurn). */
const WARM_AGAIN_UNDER_MS = 50;

/** Runs, median and p95 of the samples (sorted in place), by the benchmark's one rule. */
export function stats(samples: number[]): Stats {
  const sorted = samples.sort((a, b) => a - b);
  return { runs: sorted.length, medianMs: percentile(sorted, 50), p95Ms: percentile(sorted, 95) };
}

/**
 * Warm-up runs of every variant, then timed runs taken in turn (a round times each variant once,
 * starting one further along each time), so a burst of load on a shared machine slows every
 * variant of a query alike instead of whichever happened to be sampled then. Each timed run
 * of a statement that took under WARM_AGAIN_UNDER_MS follows an untimed run of it, so it finds the
 * CPU's caches as a repeated query does, not as the previous variant's scan of a million rows
 * left them. Sampling stops at `runs` rounds, or once `minRuns` rounds are in and every variant
 * has had `budgetMs` of time (its untimed runs included).
 */
async function sampleInTurn(options: RunOptions, variants: readonly (() => Promise<number>)[]): Promise<Stats[]> {
  for (const once of variants) for (let i = 0; i < options.warmup; i++) await once();
  const samples = variants.map((): number[] => []);
  const started = Date.now();
  const budget = options.budgetMs * variants.length;
  for (let round = 0; round < options.runs && (round < options.minRuns || Date.now() - started < budget); round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (round + k) % variants.length;
      const last = samples[v]!.at(-1) ?? 0;
      if (last < WARM_AGAIN_UNDER_MS) await variants[v]!();
      samples[v]!.push(await variants[v]!());
    }
  }
  return samples.map(stats);
}

interface Variant {
  readonly as: As;
  readonly st: Statement;
}

interface Timed {
  readonly timing: Timing;
  readonly shape: string;
  readonly rows: postgres.RowList<postgres.Row[]>;
}

/** Times statements side by side (see sampleInTurn), then explains each once. */
async function timeTogether<const R extends readonly Variant[]>(conn: ReservedSql, runs: R, options: RunOptions): Promise<{ -readonly [K in keyof R]: Timed }> {
  const rows: postgres.RowList<postgres.Row[]>[] = [];
  // Prepared, S's text begins with the mark of the persona's kind, as the runtime sends it: each
  // kind has a statement of its own (personas of one kind share it, as users of one kind do in an
  // application), so PostgreSQL's choice between a generic and a custom plan, made from the
  // statement's earlier plans, is that kind's. Until the forty-second round S had one text for
  // every persona of a model, and a persona after the first inherited the earlier personas'
  // history (PostgreSQL keeps a statement's plan costs when it plans it again for another
  // search_path): 25 of the 32 keyset pages and ILIKE searches of the personas after a model's
  // first ran on custom plans, planned at every run.
  const marks: string[] = [];
  for (const { as } of runs) marks.push(options.prepare && as.role === 'app_user' ? await kindMark(conn, as) : '');
  const texts = runs.map(({ as, st }, i) => marks[i] + preparedText(as, st, true));
  const before = options.prepare ? await planCounts(conn, texts) : [];
  const sampled = await sampleInTurn(
    options,
    runs.map(({ as, st }, i) => async () => {
      const run = await runOnce(conn, as, st, options.prepare ?? false, marks[i] !== '');
      if (marks[i] !== '' && run.mark !== marks[i]) throw new Error(`--prepare: the persona's kind changed during the run (${marks[i]} → ${run.mark})`);
      rows[i] = run.rows;
      return run.ms;
    }),
  );
  const after = options.prepare ? await planCounts(conn, texts) : [];
  const out: Timed[] = [];
  for (const [i, { as, st }] of runs.entries()) {
    const counts = options.prepare && { generic: after[i]!.generic - before[i]!.generic, custom: after[i]!.custom - before[i]!.custom };
    const mostly = counts ? (counts.generic + counts.custom === 0 ? null : counts.generic > counts.custom ? 'generic' : 'custom') : null;
    const plan = counts ? await explainPrepared(conn, as, st, mostly) : await explain(conn, as, st);
    const plans = counts && { ...counts, explained: plan.kind ?? null };
    out.push({
      timing: { ...sampled[i]!, buffers: plan.buffers, planningMs: plan.planningMs, executionMs: plan.executionMs, ...(plans && { plans }) },
      shape: plan.shape,
      rows: rows[i]!,
    });
  }
  return out as { -readonly [K in keyof R]: Timed };
}

/** Rows as comparable text: every value stringified, rows in order. */
function canonical(rows: readonly postgres.Row[]): string {
  return JSON.stringify(rows.map((r) => Object.values(r).map((v) => (v === null ? null : v instanceof Date ? v.toISOString() : String(v)))));
}

export class ResultMismatch extends Error {}

function check(query: string, persona: string, what: string, expected: readonly postgres.Row[], actual: readonly postgres.Row[], against = "B1 (the persona's visible rows read by primary key)"): void {
  const a = canonical(expected);
  const b = canonical(actual);
  if (a !== b) {
    const label = against.split(' ')[0];
    throw new ResultMismatch(`${persona} / ${query}: ${what} differs from ${against}.\n  ${label}:  ${a.slice(0, 400)}\n  got: ${b.slice(0, 400)}`);
  }
}

const ratio = (a: Timing, b: Timing | null): number | null => (b && b.medianMs > 0 ? a.medianMs / b.medianMs : null);

/** The result row of set_session's own time per transaction (not a target, no baselines). */
export const SET_SESSION_QUERY = 'set_session (once per transaction)';

/** Secured within 1.2× the expert's hand-written statement (B2), on medians. */
export const b2Target = (toB2: number): { name: string; met: boolean } => ({ name: '≤1.2×B2', met: toB2 <= 1.2 });

/** Targets of the issue, evaluated on medians. */
function targetsFor(q: Query, persona: Persona, r: Omit<QueryResult, 'targets'>, scale: number, hierarchyNodes: number): { name: string; met: boolean }[] {
  const out: { name: string; met: boolean }[] = [];
  if (q.kind === 'read') {
    out.push(b2Target(r.ratios.toB2 ?? 0));
    const limit = persona.target === '10%' ? 1.5 : 2;
    out.push({ name: `≤${limit}×B1`, met: (r.ratios.toB1 ?? 0) <= limit });
    if (persona.target === '0.01%' && scale === 1 && (q.name === 'count' || q.name === 'first page')) {
      out.push({ name: '<1 ms', met: r.secured.medianMs < 1 });
    }
  } else if (q.kind === 'write') {
    out.push({ name: '≤1.1×B0', met: (r.ratios.toB0 ?? 0) <= 1.1 });
  } else if (hierarchyNodes <= 1_500) {
    out.push({ name: '≤1 ms', met: r.secured.medianMs <= 1 });
  }
  // The B2 target holds for every query the expert wrote too: writes and the visible set.
  if (q.kind !== 'read' && r.ratios.toB2 !== null) out.push(b2Target(r.ratios.toB2));
  return out;
}

/** The large table's row count, and the personas the filter keeps (at least one). */
async function chosenPersonas(owner: Sql, scenario: Scenario, scale: number, filter?: (p: Persona) => boolean): Promise<{ total: number; personas: readonly Persona[] }> {
  const [{ n: total }] = (await owner.unsafe(`SELECT count(*)::bigint AS n FROM ${scenario.schema}.${scenario.table}`)) as unknown as [{ n: string }];
  const all = await scenario.personas(owner, scale);
  const personas = all.filter(filter ?? (() => true));
  if (personas.length === 0) {
    throw new Error(`--persona names none of ${scenario.schema}'s personas; they are: ${all.map((p) => `"${p.name}"`).join(', ')}`);
  }
  return { total: Number(total), personas };
}

/** The persona's visible ids by the hand-written visible-set query, sorted as compareIds sorts. */
async function visibleIds(owner: Sql, scenario: Scenario, persona: Persona): Promise<string[]> {
  const vs = scenario.visibleSet(persona);
  return (await owner.unsafe(vs.text, (vs.params ?? []) as never[])).map((r) => String(r.id)).sort(compareIds);
}

export async function runScenario(
  owner: Sql,
  scenario: Scenario,
  scale: number,
  options: RunOptions & { readonly personaFilter?: (p: Persona) => boolean },
): Promise<QueryResult[]> {
  const conn = await owner.reserve();
  const results: QueryResult[] = [];
  try {
    const { total, personas } = await chosenPersonas(owner, scenario, scale, options.personaFilter);
    for (const persona of personas) {
      const visible = await visibleIds(owner, scenario, persona);
      const identity: Identity = { schema: scenario.schema, userId: persona.userId };
      const appUser: As = { role: 'app_user', ...identity };
      const ownerAs: As = { role: 'owner' };
      const ownerAfter: As = { role: 'owner', after: identity };
      // set_session (once per transaction), shown beside the round-trip floor of a bare SELECT 1.
      const [floor] = await timeTogether(conn, [{ as: ownerAs, st: { text: `SELECT 1` } }], options);
      const session = await timeSetSession(conn, scenario.schema, persona.userId, options);
      options.log(`  ${persona.name} (${persona.target}): ${visible.length} visible of ${total} (${share(visible.length, total)}); set_session ${session.medianMs.toFixed(3)} ms (SELECT 1: ${floor.timing.medianMs.toFixed(3)} ms)`);
      results.push({
        persona: persona.name,
        target: persona.target,
        visibleRows: visible.length,
        visibleShare: visible.length / total,
        query: SET_SESSION_QUERY,
        kind: 'facts',
        rows: 1,
        secured: session,
        b0: floor.timing,
        b1: null,
        b2: null,
        ratios: { toB0: null, toB1: null, toB2: null },
        targets: [],
        securedPlan: '',
      });
      for (const q of await scenario.queries(persona, { visible, owner })) {
        let secured: Timed;
        let b0: Timed | null = null;
        let b1: Timed | null = null;
        let b2: Timed | null = null;
        let b2s: Timed;
        if (q.kind === 'read') {
          const b1st = await q.b1({ persona, visible, owner });
          [secured, b1, b2, b0, b2s] = await timeTogether(
            conn,
            [
              { as: appUser, st: q.secured },
              { as: ownerAs, st: b1st },
              { as: ownerAs, st: q.b2 },
              { as: ownerAs, st: q.b0 ?? q.secured },
              { as: ownerAfter, st: q.b2 },
            ],
            options,
          );
          check(q.name, persona.name, 'the secured answer', b1.rows, secured.rows);
          check(q.name, persona.name, 'the hand-written (B2) answer', b1.rows, b2.rows);
          check(q.name, persona.name, 'the hand-written answer after set_session (B2s)', b1.rows, b2s.rows);
        } else if (q.kind === 'write') {
          [secured, b0, b2, b2s] = await timeTogether(
            conn,
            [{ as: appUser, st: q.secured }, { as: ownerAs, st: q.b0 }, { as: ownerAs, st: q.b2 }, { as: ownerAfter, st: q.b2 }],
            options,
          );
          const expected = q.rows ?? 1;
          for (const [what, run] of [['secured', secured], ['B0', b0], ['B2', b2], ['B2s', b2s]] as const) {
            if (run.rows.count !== expected) throw new ResultMismatch(`${persona.name} / ${q.name}: the ${what} write affected ${run.rows.count} rows, expected ${expected}`);
          }
          // Its runs, each rolled back, leave dead rows by the hundred thousand (a 1,000-row
          // insert runs some 200 times), which the reads of the next persona would visit: an
          // index-only count became a heap scan, and ILIKE pages changed plan. Cleaned now, untimed.
          if (expected > 1) await owner.unsafe(`VACUUM (INDEX_CLEANUP ON) ${scenario.schema}.${scenario.table}`);
        } else {
          [secured, b2, b2s] = await timeTogether(conn, [{ as: appUser, st: q.secured }, { as: ownerAs, st: q.b2 }, { as: ownerAfter, st: q.b2 }], options);
        }
        const partial = {
          persona: persona.name,
          target: persona.target,
          visibleRows: visible.length,
          visibleShare: visible.length / total,
          query: q.name,
          kind: q.kind,
          rows: q.kind === 'read' ? rowCount(secured.rows) : secured.rows.count,
          secured: secured.timing,
          b0: b0?.timing ?? null,
          b1: b1?.timing ?? null,
          b2: b2?.timing ?? null,
          b2AfterSession: b2s.timing,
          ratios: {
            toB0: ratio(secured.timing, b0?.timing ?? null),
            toB1: ratio(secured.timing, b1?.timing ?? null),
            toB2: ratio(secured.timing, b2?.timing ?? null),
            toB2AfterSession: ratio(secured.timing, b2s.timing),
          },
          securedPlan: secured.shape,
        };
        const result = { ...partial, targets: targetsFor(q, persona, partial, scale, scenario.hierarchyNodes(scale)) };
        results.push(result);
        options.log(`    ${formatRow(result)}`);
      }
    }
  } finally {
    conn.release();
  }
  return results;
}

/**
 * `--mixed`: one connection serving the personas in turn, as a pool serves its users, every
 * statement prepared. Each round runs every persona's statement once, S then B2, persona after
 * persona, so S always runs for another user than the time before (B2, the expert's, takes the
 * user as a parameter). S's text begins with the mark of the persona's kind, as the runtime sends
 * it, so each kind has a statement of its own and keeps its plan. `oneText` (`--one-text`) sends
 * one text for every kind instead: a persona whose planner marks differ from the last one's
 * changes the search_path, and PostgreSQL plans S's statement again. No warm-up run of the same
 * persona before a timed run (that would time a cached plan). Writes of many rows are left out
 * (their time is the rows').
 */
export async function runMixed(owner: Sql, scenario: Scenario, scale: number, options: RunOptions & { readonly personaFilter?: (p: Persona) => boolean; readonly oneText?: boolean }): Promise<QueryResult[]> {
  const conn = await owner.reserve();
  // Persona by persona, as the other runs list them (formatTable heads each persona's rows).
  const byPersona: QueryResult[][] = [];
  try {
    const { total, personas } = await chosenPersonas(owner, scenario, scale, options.personaFilter);
    if (personas.length < 2) throw new Error('--mixed needs at least two personas');
    const perKind = !options.oneText;
    const each: { persona: Persona; visible: number; queries: Map<string, Query>; mark: string }[] = [];
    for (const persona of personas) {
      const visible = await visibleIds(owner, scenario, persona);
      byPersona.push([]);
      const queries = (await scenario.queries(persona, { visible, owner })).filter((q) => !(q.kind === 'write' && (q.rows ?? 1) > 1));
      const mark = perKind ? await kindMark(conn, { role: 'app_user', schema: scenario.schema, userId: persona.userId }) : '';
      each.push({ persona, visible: visible.length, queries: new Map(queries.map((q) => [q.name, q])), mark });
    }
    for (const name of each[0]!.queries.keys()) {
      const runs = each.map(({ persona, queries, mark }) => {
        const q = queries.get(name);
        if (!q) throw new Error(`--mixed: ${scenario.schema}'s persona "${persona.name}" has no query "${name}"; every persona needs the same queries`);
        const identity: Identity = { schema: scenario.schema, userId: persona.userId };
        return { persona, q, mark, s: { as: { role: 'app_user', ...identity } as As, st: q.secured }, b2: { as: { role: 'owner' } as As, st: q.b2 } };
      });
      // The statements as PostgreSQL names them; personas of one kind share S's.
      const texts = runs.flatMap((r) => [r.mark + preparedText(r.s.as, r.s.st, true), preparedText(r.b2.as, r.b2.st, true)]);
      const samples = runs.map(() => ({ s: [] as number[], b2: [] as number[] }));
      const last: { s: postgres.RowList<postgres.Row[]>; b2: postgres.RowList<postgres.Row[]> }[] = [];
      const before = await planCounts(conn, texts);
      const started = Date.now();
      // One untimed round first: the statements get prepared, and the generic plans chosen.
      for (let round = -1; round < options.runs && (round < options.minRuns || Date.now() - started < options.budgetMs * 2 * runs.length); round++) {
        for (const [i, r] of runs.entries()) {
          const s = await runOnce(conn, r.s.as, r.s.st, true, perKind);
          // The plan counts read the statement named with the mark taken before the runs.
          if (perKind && s.mark !== r.mark) throw new Error(`--mixed: ${r.persona.name}'s kind changed during the run (${r.mark} → ${s.mark})`);
          const b2 = await runOnce(conn, r.b2.as, r.b2.st, true);
          if (round < 0) continue;
          samples[i]!.s.push(s.ms);
          samples[i]!.b2.push(b2.ms);
          last[i] = { s: s.rows, b2: b2.rows };
        }
      }
      const after = await planCounts(conn, texts);
      const plans = (k: number) => ({ generic: after[k]!.generic - before[k]!.generic, custom: after[k]!.custom - before[k]!.custom });
      for (const [i, r] of runs.entries()) {
        const { s, b2 } = last[i]!;
        if (r.q.kind === 'write') {
          if (s.count !== 1 || b2.count !== 1) throw new ResultMismatch(`${r.persona.name} / ${name}: a write affected ${s.count} (S) and ${b2.count} (B2) rows, expected 1`);
        } else if (r.q.kind === 'read') check(name, r.persona.name, 'the secured answer', b2, s, "B2 (the hand-written statement; the runs without --mixed check it against B1)");
        const timing = (xs: number[], k: number): Timing => {
          const p = plans(k);
          return { ...stats(xs), buffers: null, planningMs: null, executionMs: null, plans: { ...p, explained: p.generic + p.custom === 0 ? null : p.generic > p.custom ? 'generic' : 'custom' } };
        };
        const secured = timing(samples[i]!.s, 2 * i);
        const expert = timing(samples[i]!.b2, 2 * i + 1);
        const toB2 = ratio(secured, expert);
        const result: QueryResult = {
          persona: r.persona.name,
          target: r.persona.target,
          visibleRows: each[i]!.visible,
          visibleShare: each[i]!.visible / total,
          query: name,
          kind: r.q.kind,
          rows: r.q.kind === 'read' ? rowCount(s) : s.count,
          secured,
          b0: null,
          b1: null,
          b2: expert,
          b2AfterSession: null,
          ratios: { toB0: null, toB1: null, toB2: toB2, toB2AfterSession: null },
          targets: toB2 === null ? [] : [b2Target(toB2)],
          securedPlan: '',
        };
        byPersona[i]!.push(result);
        options.log(`  ${r.persona.name.padEnd(22).slice(0, 22)} ${formatRow(result)}`);
      }
    }
  } finally {
    conn.release();
  }
  return byPersona.flat();
}

/** set_session as the postgres.js adapter sends it: with `SHOW search_path`, which pg and Kysely do not send. */
async function timeSetSession(conn: ReservedSql, schema: string, userId: string, options: RunOptions): Promise<Timing> {
  const [session] = await sampleInTurn(options, [async () => {
    await conn.unsafe('BEGIN');
    await conn.unsafe('SET LOCAL ROLE app_user');
    const t0 = process.hrtime.bigint();
    await setSession(conn, { schema, id: userId }, undefined, {});
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    await conn.unsafe('ROLLBACK');
    return ms;
  }]);
  return { ...session!, buffers: null, planningMs: null, executionMs: null };
}

/** A count query returns one row with the number; a page returns its rows. */
function rowCount(rows: readonly postgres.Row[]): number {
  const first = rows[0];
  if (rows.length === 1 && first && Object.keys(first).length === 1 && 'count' in first) return Number(first.count);
  return rows.length;
}

const compareIds = (a: string, b: string): number => (a.length - b.length) || byCodePoint(a, b);

function share(n: number, total: number): string {
  const p = (100 * n) / total;
  return `${p < 0.1 ? p.toFixed(3) : p < 10 ? p.toFixed(2) : p.toFixed(1)}%`;
}

const ms = (t: Timing | null): string => (t ? t.medianMs.toFixed(3).padStart(9) : '        -');
const x = (r: number | null): string => (r === null ? '     -' : `${r.toFixed(2)}×`.padStart(6));

/** Prepared: which plan most timed runs had, generic or custom ("-" unprepared). */
const planKind = (t: Timing | null): string => t?.plans?.explained ?? '-';

export function formatRow(r: QueryResult): string {
  const verdict = r.targets.length === 0 ? '' : r.targets.map((t) => `${t.met ? 'ok' : 'MISS'} ${t.name}`).join(', ');
  const plans = r.secured.plans ? `  plan S ${planKind(r.secured)} B2 ${planKind(r.b2)}` : '';
  return `${r.query.padEnd(22)} rows ${String(r.rows).padStart(7)}  S ${ms(r.secured)} p95 ${r.secured.p95Ms.toFixed(3).padStart(8)}  B0 ${ms(r.b0)}  B1 ${ms(r.b1)}  B2 ${ms(r.b2)}  B2s ${ms(r.b2AfterSession ?? null)}  S/B1 ${x(r.ratios.toB1)} S/B2 ${x(r.ratios.toB2)} S/B2s ${x(r.ratios.toB2AfterSession ?? null)} S/B0 ${x(r.ratios.toB0)}  buf S ${String(r.secured.buffers ?? '-').padStart(6)} B1 ${String(r.b1?.buffers ?? '-').padStart(6)} B2 ${String(r.b2?.buffers ?? '-').padStart(6)}${plans}  ${verdict}`;
}

export function formatTable(model: string, results: readonly QueryResult[]): string {
  const lines = [
    `${model}: medians in ms (S = secured as app_user; B0 = owner without RLS; B1 = visible rows by primary key; B2 = hand-written WHERE; B2s = B2 after the persona's set_session in its transaction, not a target)`,
  ];
  let persona = '';
  for (const r of results) {
    if (r.persona !== persona) {
      persona = r.persona;
      lines.push(`${r.persona} (${r.target}; ${r.visibleRows} visible, ${(100 * r.visibleShare).toPrecision(2)}%)`);
    }
    lines.push(`  ${formatRow(r)}`);
  }
  const missed = results.flatMap((r) => r.targets.filter((t) => !t.met).map((t) => `${r.persona} / ${r.query}: ${t.name}`));
  lines.push(missed.length === 0 ? 'every target met' : `targets missed (${missed.length}):\n  ${missed.join('\n  ')}`);
  return lines.join('\n');
}

/**
 * "The visible-set computation alone" for `userId`: the per-statement values (fact functions) the
 * table's SELECT policies compute for that user, as one statement. They are read from the plan of
 * `SELECT count(*)` on the table as that user (its InitPlans), not from the policies' text: the
 * planner marks `set_session` puts in force drop the arms, and with them the facts, that cannot
 * admit a row for that user (a client user's debtors need no principals, a user with security on
 * no "security off" flag), and a statement of every fact the policies name would time facts the
 * policy never computes for them.
 */
export async function policyFacts(owner: Sql, schema: string, table: string, userId: string): Promise<Statement> {
  const plan = await owner.begin(async (tx) => {
    await actAs(tx, schema, userId);
    const [row] = await tx.unsafe(`EXPLAIN (VERBOSE, FORMAT JSON) SELECT count(*) FROM ${schema}.${table}`);
    return JSON.stringify(row);
  });
  const names = new Set<string>();
  for (const m of plan.matchAll(new RegExp(`${schema}\\.(\\w+)\\(\\)`, 'g'))) names.add(m[1]!);
  names.delete('current_user_id');
  if (names.size === 0) throw new Error(`no fact function in the plan of ${schema}.${table} for user ${userId}`);
  return { text: `SELECT ${[...names].sort().map((n) => `${schema}.${n}() AS ${n}`).join(', ')}` };
}

/** The first ids (1, 2, …) that are not visible, for primary-key lookups of an invisible row. */
export function firstInvisible(visible: readonly string[], from = 1): string {
  const set = new Set(visible);
  for (let id = from; ; id++) if (!set.has(String(id))) return String(id);
}

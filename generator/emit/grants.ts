// Table privileges: the commands the rules need, and nothing else. Without a GRANT a command is
// refused before RLS is even consulted, which is the clearest answer for commands no rule allows.
import type { Expr, ModelNode, QueryNode } from '../model/nodes.ts';
import { COMMANDS } from '../model/nodes.ts';
import { byCodePoint, ident, identifierBytes, MAX_IDENTIFIER_BYTES, qualified } from '../sql/print.ts';
import { dependsOnRow, exprContext, itemsArray, printExpr, readsRowOnly, visit } from './expr.ts';
import { APP_ROLE, DEFINER_ROLE, REPORTING_ROLE } from './roles.ts';
import { statement, type Section, type Statement } from './statement.ts';
import { ROW_SCOPE } from '../dsl/model.ts';
import { createHash } from 'node:crypto';

export function grantsSection(model: ModelNode): Section {
  const statements: Statement[] = [];
  const updatedByRules = new Set(model.writeRules.flatMap((r) => (r.alsoUpdate ? [r.alsoUpdate.table] : [])));
  for (const table of model.tables) {
    const name = qualified(model.schema, table.name);
    const commands = COMMANDS.filter((c) => model.policies.some((p) => p.table === table.name && p.mode === 'permissive' && (p.command === c || p.command === 'all')));
    const lines: string[] = [`GRANT SELECT${updatedByRules.has(table.name) ? ', UPDATE' : ''} ON ${name} TO ${ident(DEFINER_ROLE)};`];
    // The counters' triggers run as the definer and write only their own columns.
    const counters = model.counters.filter((c) => c.table === table.name).map((c) => c.column);
    if (counters.length > 0 && !updatedByRules.has(table.name)) lines.push(`GRANT UPDATE (${counters.map(ident).join(', ')}) ON ${name} TO ${ident(DEFINER_ROLE)};`);
    if (commands.length > 0) lines.push(`GRANT ${commands.map((c) => c.toUpperCase()).join(', ')} ON ${name} TO ${ident(APP_ROLE)};`);
    if (commands.includes('select')) lines.push(`GRANT SELECT ON ${name} TO ${ident(REPORTING_ROLE)};`);
    statements.push(statement(`grants ${model.schema}.${table.name}`, lines.join('\n'), `REVOKE ALL ON ${name} FROM ${[APP_ROLE, REPORTING_ROLE, DEFINER_ROLE].map(ident).join(', ')};`));
  }
  return { title: 'Privileges', statements };
}

/**
 * Indexes for the columns rules filter on: every column of a policy's row compared with `=` or
 * `= any(...)` against a value that does not depend on the row (an index can drive those arms),
 * every foreign key column (joins and the reference checks of deletes), and both edge columns of
 * every hierarchy (each recursion step of a walker looks up one of them; without an index every
 * step reads the whole edge table).
 */
export function indexesSection(model: ModelNode): Section {
  const wanted = new Map<string, Set<string>>();
  const want = (table: string, column: string) => {
    if (!wanted.has(table)) wanted.set(table, new Set());
    wanted.get(table)!.add(column);
  };
  for (const p of model.policies) {
    for (const e of [p.using, p.check]) if (e) indexableColumns(e).forEach((c) => want(p.table, c));
  }
  for (const t of model.tables) for (const c of t.columns) if (c.references) want(t.name, c.name);
  for (const h of model.hierarchies) for (const c of [h.child, h.parent]) want(h.table, c);
  for (const t of model.tables) for (const i of t.indexes) if (!i.where) want(t.name, i.columns.join(','));
  const carried = lookupColumns(model);
  for (const [table, byKey] of carried) for (const key of byKey.keys()) want(table, key);

  const statements: Statement[] = [];
  for (const table of [...wanted.keys()].sort(byCodePoint)) {
    const def = model.tables.find((t) => t.name === table);
    if (!def) continue;
    const covered = new Set<string>([def.primaryKey[0] ?? '', ...def.columns.filter((c) => c.unique).map((c) => c.name)]);
    for (const key of [...wanted.get(table)!].sort(byCodePoint)) {
      const columns = key.split(',');
      if (columns.length === 1 && covered.has(columns[0]!)) continue;
      const name = indexName(table, columns);
      const include = [...(carried.get(table)?.get(key) ?? [])].filter((c) => !columns.includes(c)).sort(byCodePoint);
      statements.push(
        statement(
          `index ${model.schema}.${name}`,
          `CREATE INDEX ${ident(name)} ON ${qualified(model.schema, table)} (${columns.map(ident).join(', ')})${include.length > 0 ? ` INCLUDE (${include.map(ident).join(', ')})` : ''};`,
          `DROP INDEX ${qualified(model.schema, name)};`,
        ),
      );
    }
  }
  statements.push(...partialIndexes(model), ...anyOfIndexes(model), ...armIndexes(model));
  return { title: 'Indexes for the columns the rules filter on', statements };
}

/** Declared partial indexes, in table then name order. */
function partialIndexes(model: ModelNode): Statement[] {
  const out: { name: string; statement: Statement }[] = [];
  for (const t of model.tables) {
    for (const i of t.indexes) {
      if (!i.where) continue;
      const name = partialIndexName(t.name, i);
      const where = printExpr(i.where, exprContext(model, ''));
      out.push({
        name: `${t.name}\u0000${name}`,
        statement: statement(
          `index ${model.schema}.${name}`,
          `CREATE INDEX ${ident(name)} ON ${qualified(model.schema, t.name)} (${i.columns.map(ident).join(', ')})\n  WHERE ${where};`,
          `DROP INDEX ${qualified(model.schema, name)};`,
        ),
      });
    }
  }
  return out.sort((a, b) => byCodePoint(a.name, b.name)).map((x) => x.statement);
}

/** Index statements by name, in name order (the generated SQL is the same bytes every run). */
function inNameOrder(byName: Map<string, Statement>): Statement[] {
  return [...byName.keys()].sort(byCodePoint).map((name) => byName.get(name)!);
}

/** The `anyOf(…).in(set)` arm over the row's own columns, else undefined. */
function anyOfArm(e: Expr): Extract<Expr, { kind: 'any-in-set' }> | undefined {
  return e.kind === 'any-in-set' && e.items.every((i) => rowColumn(i) !== undefined) && !dependsOnRow(e.set) ? e : undefined;
}

/**
 * One GIN index over the array of each `anyOf(…).in(set)` arm's columns, printed as the arm prints
 * it (itemsArray), so `ARRAY[cols] && set` is an index condition: one index read where the same
 * rule as `or` of `.in` arms reads one btree index per column. Without fastupdate: a write adds
 * its keys to the index at once (as it would to one btree index per column), and no read scans a
 * pending list of recent writes (up to gin_pending_list_limit, 4 MB, on every statement).
 *
 * An arm ANDed with conditions on the row alone (SmartOffice's rule 2: `is_private = false AND
 * assignee_keys && <my keys>`) gets a partial GIN index with those conditions as its WHERE, as an
 * arm index would (armIndexes): its bitmap is then the arm's rows exactly, and the policy needs no
 * re-check of each row it returns.
 */
function anyOfIndexes(model: ModelNode): Statement[] {
  const out = new Map<string, Statement>();
  const ctx = exprContext(model, '');
  const add = (table: string, arm: Extract<Expr, { kind: 'any-in-set' }>, predicate: readonly Expr[]) => {
    const where = predicate.length === 0 ? undefined : printExpr(predicate.length === 1 ? predicate[0]! : { kind: 'and', items: predicate }, ctx);
    const columns = arm.items.map((i) => rowColumn(i)!);
    const name = indexName(table, where === undefined ? [...columns, 'any'] : [...columns, 'any', createHash('sha256').update(`${columns.join(',')} WHERE ${where}`).digest('hex').slice(0, 6)]);
    out.set(
      name,
      statement(
        `index ${model.schema}.${name}`,
        `CREATE INDEX ${ident(name)} ON ${qualified(model.schema, table)} USING gin ((${itemsArray(arm, ctx)})) WITH (fastupdate = off)${where ? `\n  WHERE ${where}` : ''};`,
        `DROP INDEX ${qualified(model.schema, name)};`,
      ),
    );
  };
  // USING clauses only: those find rows, where a WITH CHECK only tests the row written.
  for (const p of model.policies) {
    if (!p.using) continue;
    const partial = new Set<Expr>();
    for (const d of disjuncts(p.using)) {
      const cover = anyOfCover(d);
      if (cover && cover.predicate.length > 0) {
        add(p.table, cover.arm, cover.predicate);
        partial.add(cover.arm);
      }
    }
    visit(p.using, (n) => {
      const arm = anyOfArm(n);
      if (arm && !partial.has(arm)) add(p.table, arm, []);
    });
  }
  return inNameOrder(out);
}

/** A disjunct that is one anyOf arm ANDed with conditions on the row alone: its GIN index (with those as its WHERE) answers it. */
function anyOfCover(d: Expr): { arm: Extract<Expr, { kind: 'any-in-set' }>; predicate: Expr[] } | undefined {
  const parts = conjuncts(d);
  const arms = parts.map(anyOfArm).filter((a) => a !== undefined);
  if (arms.length !== 1) return undefined;
  const predicate = parts.filter((c) => c !== arms[0]);
  return predicate.every(rowConstant) ? { arm: arms[0]!, predicate } : undefined;
}

export function partialIndexName(table: string, index: { readonly columns: readonly string[]; readonly name?: string }): string {
  return index.name ?? indexName(table, [...index.columns, 'partial']);
}

export function indexName(table: string, columns: readonly string[]): string {
  const plain = `${table}_${columns.join('_')}_idx`;
  if (identifierBytes(plain) <= MAX_IDENTIFIER_BYTES) return plain;
  const hash = createHash('sha256').update(plain).digest('hex').slice(0, 8);
  return `${table.slice(0, 40)}_${hash}_idx`;
}

function indexableColumns(e: Expr): string[] {
  const out: string[] = [];
  visit(e, (n) => {
    const key = lookupKey(n, rowColumn, dependsOnRow);
    if (key) out.push(key.column);
  });
  return out;
}

/**
 * The column an index can look `c` up by: `col = <value>` or `col = any(<set>)` where the value does
 * not read the row (`readsRow`). A comparison with a constant (a flag, a status) selects too much
 * of a table to be worth an index of its own, so it is not a key.
 */
function lookupKey(c: Expr, column: (e: Expr) => string | undefined, readsRow: (e: Expr) => boolean): { column: string; equality: boolean } | undefined {
  if (c.kind === 'compare' && c.op === '=') {
    const col = column(c.left) ?? column(c.right);
    const other = column(c.left) ? c.right : c.left;
    return col && other.kind !== 'literal' && !readsRow(other) ? { column: col, equality: true } : undefined;
  }
  if (c.kind === 'in-set') {
    const col = column(c.item);
    return col && !readsRow(c.set) ? { column: col, equality: false } : undefined;
  }
  return undefined;
}

function rowColumn(e: Expr): string | undefined {
  return e.kind === 'column' && e.scope === ROW_SCOPE ? e.column : undefined;
}

/**
 * Indexes that answer whole arms of a table's SELECT policies, so a BitmapOr returns exactly the
 * visible rows and PostgreSQL drops the policy from the scan's Filter.
 *
 * A permissive SELECT policy is an OR of arms, each an AND of conditions. PostgreSQL runs each arm
 * as one bitmap index scan on its indexable condition (`office_id = any(<fact>)`), but unless every
 * condition of every arm is answered by an index (its key columns or its partial-index predicate),
 * it re-evaluates the whole OR on every row the bitmap returns. For a broad persona that is the
 * cost of the query: SmartOffice's root enterprise user (980,000 rows) spent 4.6 s of a 4.7 s count
 * comparing office_id with the 1,111 offices of the fact's array, row by row; with indexes covering
 * every arm the count took 0.3 s (the owner reading the same rows by primary key: 1.1 s), and an
 * ILIKE search, which must run after the policy, 0.6 s instead of 5.1 s.
 *
 * An arm is covered by an index on its key columns (`col = <per-statement value>`, `col = any(…)`,
 * the primary key of `everyRowWhen`) whose WHERE is the arm's conditions on the row alone
 * (`is_private IS DISTINCT FROM true`, `assignment_count = 0`), printed exactly as the policy prints
 * them so the planner proves the match. An index is emitted only where the plain column indexes do
 * not already cover the arm (a predicate, or several key columns), and only for tables where every
 * arm can be covered: one arm left to the Filter keeps the whole OR there, and the indexes would
 * only cost writes. An arm with several key columns stays covered only while the planner picks the
 * index on all of them; where one key alone is selective it takes a one-column index and the
 * Filter is back (SmartOffice with small offices: 4.3 s instead of 65 ms for a 10% count), so
 * policies should give each arm one key and narrow the set in a fact instead.
 */
function armIndexes(model: ModelNode): Statement[] {
  const out = new Map<string, Statement>();
  const ctx = exprContext(model, '');
  for (const table of model.tables) {
    const policies = model.policies.filter((p) => p.table === table.name && p.mode === 'permissive' && (p.command === 'select' || p.command === 'all') && p.using);
    const arms = policies.flatMap((p) => disjuncts(p.using!)).map((arm) => coverArm(arm, table.primaryKey[0]));
    if (arms.length === 0 || arms.some((a) => a === undefined)) continue;
    const declared = new Set(table.indexes.filter((i) => i.where).map((i) => `${i.columns.join(',')} WHERE ${printExpr(i.where!, ctx)}`));
    for (const arm of arms as ArmCover[]) {
      if (arm.predicate.length === 0 && arm.keys.length < 2) continue;
      const where = arm.predicate.length === 0 ? undefined : printExpr(arm.predicate.length === 1 ? arm.predicate[0]! : { kind: 'and', items: arm.predicate }, ctx);
      const signature = `${arm.keys.join(',')}${where ? ` WHERE ${where}` : ''}`;
      if (declared.has(signature)) continue;
      const name = indexName(table.name, [...arm.keys, 'arm', createHash('sha256').update(signature).digest('hex').slice(0, 6)]);
      out.set(
        name,
        statement(
          `index ${model.schema}.${name}`,
          `CREATE INDEX ${ident(name)} ON ${qualified(model.schema, table.name)} (${arm.keys.map(ident).join(', ')})${where ? `\n  WHERE ${where}` : ''};`,
          `DROP INDEX ${qualified(model.schema, name)};`,
        ),
      );
    }
  }
  return inNameOrder(out);
}

interface ArmCover {
  /** Columns an index condition of the arm reads, equality comparisons first. */
  readonly keys: string[];
  /** The arm's conditions on the row's own columns and constants: the partial index's WHERE. */
  readonly predicate: Expr[];
}

function disjuncts(e: Expr): Expr[] {
  return e.kind === 'or' ? e.items.flatMap(disjuncts) : [e];
}

function conjuncts(e: Expr): Expr[] {
  return e.kind === 'and' ? e.items.flatMap(conjuncts) : [e];
}

/** How an index answers the arm completely, or undefined when some condition needs the Filter. */
function coverArm(arm: Expr, primaryKey: string | undefined): ArmCover | undefined {
  const equal: string[] = [];
  const any: string[] = [];
  const predicate: Expr[] = [];
  // Its GIN index (anyOfIndexes) answers an anyOf arm, alone or with conditions on the row.
  if (anyOfCover(arm)) return { keys: [], predicate: [] };
  for (const c of conjuncts(arm)) {
    const key = lookupKey(c, rowColumn, dependsOnRow);
    if (key) {
      (key.equality ? equal : any).push(key.column);
      continue;
    }
    if (c.kind === 'every-row-when' && primaryKey !== undefined) {
      any.push(primaryKey);
      continue;
    }
    if (rowConstant(c)) {
      predicate.push(c);
      continue;
    }
    return undefined;
  }
  const keys = [...new Set([...equal, ...any])];
  return keys.length === 0 ? undefined : { keys, predicate };
}

/** Reads only the row's own columns and constants (so it can be a partial index's predicate). */
function rowConstant(e: Expr): boolean {
  return dependsOnRow(e) && readsRowOnly(e, { arrays: false });
}

/**
 * The columns the set lookups of facts return, by the one column they look up:
 * `arrayOf(from(t, { where: a = x, select: c }))` reads the rows of t whose a matches and returns
 * their c. The index on a then carries c (`INCLUDE (c)`), so the lookup is an index-only scan
 * instead of one heap page per row: SmartOffice's `contacts_assigned_to_me_or_my_agents` (184
 * assignments for the benchmark's agent; replaced by the assignee keys in migration 0184, and
 * `contacts_assigned_to_me` reads the same index) ~200 → ~100 µs per statement. By table, then looked-up column.
 */
function lookupColumns(model: ModelNode): Map<string, Map<string, Set<string>>> {
  const out = new Map<string, Map<string, Set<string>>>();
  const lookup = (q: QueryNode) => {
    const selected = q.select?.kind === 'column' && q.select.scope === q.scope ? q.select.column : undefined;
    const table = model.tables.find((t) => t.name === q.table);
    const where = q.where ? conjuncts(q.where) : [];
    if (!table || !selected || where.length !== 1) return;
    const own = (e: Expr) => (e.kind === 'column' && e.scope === q.scope ? e.column : undefined);
    const readsRow = (e: Expr) => {
      let found = false;
      visit(e, (n) => (found ||= own(n) !== undefined));
      return found;
    };
    const key = lookupKey(where[0]!, own, readsRow)?.column;
    if (key === undefined || key === selected || table.primaryKey[0] === key) return;
    if (!out.has(table.name)) out.set(table.name, new Map());
    const byKey = out.get(table.name)!;
    if (!byKey.has(key)) byKey.set(key, new Set());
    byKey.get(key)!.add(selected);
  };
  for (const f of model.facts) visit(f.expr, (n) => n.kind === 'array-of' && lookup(n.query));
  return out;
}

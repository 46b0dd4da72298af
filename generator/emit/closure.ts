// Closure tables (one per m.hierarchy): every (ancestor, descendant) pair of the hierarchy, kept
// current by statement triggers on its edge table, so a walker is one index range scan instead of
// a recursive walk on every statement (the walk of a 1,111-office tree cost ~1.3 ms per
// statement for the root; the range scan ~0.15 ms).
//
// How the triggers keep it right:
// - Only the edges count: (child, parent) pairs with both set. A statement's changed edges are the
//   symmetric difference of its transition tables; a change that touches no edge (renaming an
//   office) costs two scans of the transition tables and nothing else.
// - The nodes whose ancestors can change are the children of changed edges and everything below
//   them, before (read from the closure) and after (walked in the new edges). Their rows are
//   deleted and re-derived by walking up the edges. UNION ends the walks on cycles, which the
//   data may contain: a node is never stored as its own ancestor, as the recursive walkers never
//   returned it.
// - Concurrency: every statement that changes edges first updates the hierarchy's one state row.
//   Its row lock makes the next such statement wait for the commit; under READ COMMITTED each
//   statement of the trigger then reads with a fresh snapshot that includes the committed change.
//   Under REPEATABLE READ and SERIALIZABLE the second UPDATE fails with 40001 (could not
//   serialize) instead of deriving rows from a snapshot that misses the other change: retry it.
// - TRUNCATE of the edge table empties the closure. Triggers that do not fire (a subscriber
//   applying logical replication with session_replication_role = replica, triggers disabled by
//   hand) leave the closure stale: `SELECT <schema>.<hierarchy>_closure_rebuild()` re-derives it.
// - The functions are SECURITY DEFINER, owned by the BYPASSRLS definer role; app_user writes the
//   edge tables under its own policies and can neither read nor write the closure directly.
import type { HierarchyNode, ModelNode } from '../model/nodes.ts';
import { ident, literal, qualified } from '../sql/print.ts';
import { createFunction } from './functions.ts';
import { DEFINER_ROLE } from './roles.ts';
import { statement, type Statement } from './statement.ts';

export interface ClosureNames {
  readonly table: string;
  readonly state: string;
  readonly maintain: string;
  readonly rebuild: string;
}

export function closureNames(h: Pick<HierarchyNode, 'name'>): ClosureNames {
  return { table: `${h.name}_closure`, state: `${h.name}_closure_state`, maintain: `maintain_${h.name}_closure`, rebuild: `${h.name}_closure_rebuild` };
}

/**
 * Deletes the closure rows of the nodes `nodes` (a SQL array expression) and derives them again by
 * walking up the edges; `nodes` = NULL means every node (the rebuild).
 */
function rederive(model: ModelNode, h: HierarchyNode, nodes: string | null, indent: string): string {
  const n = closureNames(h);
  const closure = qualified(model.schema, n.table);
  const edges = qualified(model.schema, h.table);
  const child = ident(h.child);
  const parent = ident(h.parent);
  return [
    nodes === null ? `DELETE FROM ${closure};` : `DELETE FROM ${closure} AS c WHERE c."descendant" = ANY (${nodes});`,
    `INSERT INTO ${closure} ("ancestor", "descendant")`,
    `WITH RECURSIVE up(descendant, ancestor) AS (`,
    `  SELECT e.${child}, e.${parent} FROM ${edges} AS e`,
    `  WHERE e.${parent} IS NOT NULL AND ${nodes === null ? `e.${child} IS NOT NULL` : `e.${child} = ANY (${nodes})`}`,
    '  UNION',
    `  SELECT u.descendant, e.${parent} FROM up AS u JOIN ${edges} AS e ON e.${child} = u.ancestor`,
    `  WHERE e.${parent} IS NOT NULL`,
    ')',
    'SELECT up.ancestor, up.descendant FROM up WHERE up.ancestor <> up.descendant;',
  ]
    .map((line) => indent + line)
    .join('\n');
}

export function closureStatements(model: ModelNode, h: HierarchyNode, type: string): Statement[] {
  const n = closureNames(h);
  const closure = qualified(model.schema, n.table);
  const state = qualified(model.schema, n.state);
  const edges = qualified(model.schema, h.table);
  const child = ident(h.child);
  const parent = ident(h.parent);
  const what = `${h.name} (${h.table}.${h.child} -> ${h.parent})`;
  // Taken first by every writer of the closure (see the comment on the state table).
  const serialize = `UPDATE ${state} SET "version" = "version" + 1;`;

  const tables = statement(
    `closure ${model.schema}.${n.table}`,
    [
      `CREATE TABLE ${closure} (`,
      `  "ancestor" ${type} NOT NULL,`,
      `  "descendant" ${type} NOT NULL,`,
      `  PRIMARY KEY ("ancestor", "descendant")`,
      ');',
      `CREATE INDEX ${ident(`${n.table}_descendant_idx`)} ON ${closure} ("descendant", "ancestor");`,
      `CREATE TABLE ${state} (`,
      `  "singleton" boolean PRIMARY KEY DEFAULT true CHECK ("singleton"),`,
      `  "version" bigint NOT NULL DEFAULT 0`,
      ');',
      `INSERT INTO ${state} DEFAULT VALUES;`,
      ...[closure, state].flatMap((t) => [
        `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY;`,
        `ALTER TABLE ${t} FORCE ROW LEVEL SECURITY;`,
        `REVOKE ALL ON ${t} FROM PUBLIC;`,
      ]),
      `GRANT SELECT, INSERT, DELETE ON ${closure} TO ${ident(DEFINER_ROLE)};`,
      `GRANT SELECT, UPDATE ON ${state} TO ${ident(DEFINER_ROLE)};`,
      `COMMENT ON TABLE ${closure} IS ${literal(`Every (ancestor, descendant) pair of ${what}, a node never its own ancestor; kept by triggers on ${model.schema}.${h.table}. Read by the facts and the ${h.name} walkers.`)};`,
      `COMMENT ON TABLE ${state} IS ${literal(`One row; every statement that changes an edge of ${h.name} updates it, so changes to the closure happen one transaction at a time.`)};`,
    ].join('\n'),
    `DROP TABLE ${state};\nDROP TABLE ${closure};`,
  );

  const rebuild = createFunction({
    schema: model.schema,
    name: n.rebuild,
    args: [],
    returns: 'void',
    volatility: 'VOLATILE',
    securityDefiner: true,
    grantTo: [],
    comment: `DBA: derives ${model.schema}.${n.table} again from every edge (after triggers were bypassed, e.g. by logical replication).`,
    body: ['BEGIN', `  ${serialize}`, rederive(model, h, null, '  '), 'END'].join('\n'),
  });

  // Children of the edges that differ between the transition tables; which tables exist depends
  // on the event, so each event has its own query.
  const pairs = (t: string) => `SELECT t.${child}, t.${parent} FROM ${t} AS t WHERE t.${child} IS NOT NULL AND t.${parent} IS NOT NULL`;
  const maintain = createFunction({
    schema: model.schema,
    name: n.maintain,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    securityDefiner: true,
    grantTo: [],
    comment: `Keeps ${model.schema}.${n.table} equal to the pairs of ${what} after each statement that changes an edge.`,
    body: [
      'DECLARE',
      `  seeds ${type}[];`,
      `  affected ${type}[];`,
      'BEGIN',
      `  IF TG_OP = 'TRUNCATE' THEN`,
      `    ${serialize}`,
      `    DELETE FROM ${closure};`,
      '    RETURN NULL;',
      '  END IF;',
      // plpgsql plans a statement when it first runs it: each names only its event's tables.
      `  IF TG_OP = 'INSERT' THEN`,
      `    seeds := ARRAY(SELECT DISTINCT d.${child} FROM (${pairs('rg_new')}) AS d);`,
      `  ELSIF TG_OP = 'DELETE' THEN`,
      `    seeds := ARRAY(SELECT DISTINCT d.${child} FROM (${pairs('rg_old')}) AS d);`,
      '  ELSE',
      `    seeds := ARRAY(SELECT DISTINCT d.${child} FROM ((${pairs('rg_old')} EXCEPT ${pairs('rg_new')})`,
      `      UNION ALL (${pairs('rg_new')} EXCEPT ${pairs('rg_old')})) AS d);`,
      '  END IF;',
      `  IF cardinality(seeds) = 0 THEN`,
      '    RETURN NULL;',
      '  END IF;',
      '  -- One statement at a time per hierarchy (see the comment on the state table).',
      `  ${serialize}`,
      '  affected := ARRAY(',
      '    WITH RECURSIVE down(node) AS (',
      '      SELECT unnest(seeds)',
      '      UNION',
      `      SELECT e.${child} FROM ${edges} AS e JOIN down AS d ON e.${parent} = d.node WHERE e.${child} IS NOT NULL`,
      '    )',
      '    SELECT down.node FROM down',
      '    UNION',
      `    SELECT c."descendant" FROM ${closure} AS c WHERE c."ancestor" = ANY (seeds)`,
      '  );',
      rederive(model, h, 'affected', '  '),
      '  RETURN NULL;',
      'END',
    ].join('\n'),
  });

  const trigger = (event: 'insert' | 'update' | 'delete', referencing: string) =>
    statement(
      `trigger ${model.schema}.${h.table}.${n.maintain}_on_${event}`,
      [
        `CREATE TRIGGER ${ident(`${n.maintain}_on_${event}`)} AFTER ${event.toUpperCase()} ON ${edges}`,
        `  REFERENCING ${referencing}`,
        `  FOR EACH STATEMENT EXECUTE FUNCTION ${qualified(model.schema, n.maintain)}();`,
      ].join('\n'),
      `DROP TRIGGER ${ident(`${n.maintain}_on_${event}`)} ON ${edges};`,
    );

  const truncate = statement(
    `trigger ${model.schema}.${h.table}.${n.maintain}_on_truncate`,
    [
      `CREATE TRIGGER ${ident(`${n.maintain}_on_truncate`)} AFTER TRUNCATE ON ${edges}`,
      `  FOR EACH STATEMENT EXECUTE FUNCTION ${qualified(model.schema, n.maintain)}();`,
      `-- Derive the pairs of the edges that are there already. CREATE TRIGGER keeps writers of`,
      `-- ${h.table} waiting until this migration commits, so no change is missed in between.`,
      `SELECT ${qualified(model.schema, n.rebuild)}();`,
    ].join('\n'),
    `DROP TRIGGER ${ident(`${n.maintain}_on_truncate`)} ON ${edges};`,
  );

  return [
    tables,
    rebuild,
    maintain,
    trigger('insert', 'NEW TABLE AS rg_new'),
    trigger('update', 'OLD TABLE AS rg_old NEW TABLE AS rg_new'),
    trigger('delete', 'OLD TABLE AS rg_old'),
    truncate,
  ];
}

/** The walker body: one range scan of the closure table. */
export function closureWalk(model: ModelNode, h: HierarchyNode, direction: 'descendants' | 'ancestors'): string {
  const closure = qualified(model.schema, closureNames(h).table);
  const [by, pick] = closureColumns(direction);
  return [
    '  RETURN ARRAY(',
    `    SELECT c.${pick} FROM ${closure} AS c WHERE c.${by} = $1`,
    '    UNION ALL',
    '    SELECT $1 WHERE $2',
    '  );',
  ].join('\n');
}

/**
 * A walk read in place, for SQL that runs as the definer (a fact's body): the walker's one range
 * scan without the walker's call, a SECURITY DEFINER PL/pgSQL function running a query of its own
 * (Collect!'s my_principal_ids: ~35 -> ~26 µs a call, and a statement may call it eight times).
 * Same elements as the walker, also for a NULL node (none). `node` is SQL: a plain reference is
 * read where it is needed; anything else is computed once, in a sub-select of its own, as the
 * walker's argument was (inside the scan's WHERE a function call could run once per closure row).
 * `type` is the node column's type; the sub-select casts to it without a type modifier, as a
 * function argument is (a numeric(10,2) node must not be rounded to another node).
 */
export function closureRead(model: ModelNode, h: HierarchyNode, direction: 'descendants' | 'ancestors', node: string, type: string, includeSelf: boolean): string {
  const closure = qualified(model.schema, closureNames(h).table);
  const [by, pick] = closureColumns(direction);
  const read = (n: string) =>
    `ARRAY(SELECT rg_closure.${pick} FROM ${closure} AS rg_closure WHERE rg_closure.${by} = ${n}${includeSelf ? ` UNION ALL SELECT ${n} WHERE ${n} IS NOT NULL` : ''})`;
  if (PLAIN_REFERENCE.test(node)) return read(node);
  const base = type.replace(/\(.*\)$/, '');
  const cast = node.endsWith(`::${base}`) ? node : `(${node})::${base}`;
  // OFFSET 0 keeps PostgreSQL from pulling the sub-select up, which would put `node` back where it was.
  return `(SELECT ${read('rg_walk.node')} FROM (SELECT ${cast} OFFSET 0) AS rg_walk(node))`;
}

/** A variable, a column or a record field, in parentheses or cast or not: nothing to compute twice. */
const PLAIN_REFERENCE = /^\(*(?:[A-Za-z_]\w*|"[^"]+")(?:\.(?:[A-Za-z_]\w*|"[^"]+"))*\)*(?:::\w+)?\)*$/;

/** [the column a walk looks up by, the column it returns]. */
function closureColumns(direction: 'descendants' | 'ancestors'): [string, string] {
  return direction === 'descendants' ? ['"ancestor"', '"descendant"'] : ['"descendant"', '"ancestor"'];
}

/**
 * How many nodes the walker would return for `node` (SQL), counted up to `limit` only: the closure
 * rows of the node, read no further than needed, plus the node itself when included.
 */
export function closureWalkSize(model: ModelNode, h: HierarchyNode, direction: 'descendants' | 'ancestors', node: string, includeSelf: boolean, limit: number): string {
  const closure = qualified(model.schema, closureNames(h).table);
  const [by] = closureColumns(direction);
  const rows = `(SELECT count(*) FROM (SELECT 1 FROM ${closure} AS c WHERE c.${by} = ${node} LIMIT ${limit}) AS rg_bound)`;
  return `CASE WHEN ${node} IS NULL THEN 0 ELSE ${rows}${includeSelf ? ' + 1' : ''} END`;
}

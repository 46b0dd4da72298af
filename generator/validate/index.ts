// Validation collects every problem at once, each with the file, the path inside the model and a fix.
import type { Expr, ModelNode, Problem, SqlType } from '../model/nodes.ts';
import { comparable, elementOf, TypeResolver, typeMinimum, UNKNOWN } from '../model/types.ts';
import { byCodePoint, identifierBytes, MAX_IDENTIFIER_BYTES } from '../sql/print.ts';
import { RECORD_SCHEMA_PREFIX } from '../emit/functions.ts';
import { GUARDS_CHANGED, GUARDS_COMMITTED, GUARDS_UNMARK, MARK_SCHEMA_PREFIX, PLAN_FOLD_PREFIX, PLAN_HINT_PREFIX, PLAN_MARKS, PLAN_TRUE_PREFIX, PLAN_WHEN_PREFIX } from '../emit/hints.ts';
import { visit } from '../emit/expr.ts';
import { NEW_SCOPE, OLD_SCOPE, ROW_SCOPE } from '../dsl/model.ts';
import { indexName, partialIndexName } from '../emit/grants.ts';
import { constraintName } from '../emit/tables.ts';
import { counterNames, keyListOf } from '../emit/counters.ts';

export interface ValidatedModel {
  readonly model: ModelNode;
  /** Every fact's type, declared or inferred. */
  readonly factTypes: ReadonlyMap<string, SqlType>;
}

export class ValidationError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} in the policy definitions`);
  }
}

/** Names the generator itself creates in each model schema; facts and rules may not take them. */
const RESERVED_FUNCTIONS = ['current_user_id', 'set_session', 'establish_session', 'bind_login', 'unbind_login', PLAN_MARKS, GUARDS_CHANGED, GUARDS_COMMITTED, GUARDS_UNMARK];

export function validateModel(model: ModelNode): { result?: ValidatedModel; problems: Problem[] } {
  const problems: Problem[] = model.buildProblems.map((p) => ({ ...p, file: model.file }));
  const add = (path: string, code: string, message: string, fix: string) => problems.push({ code, file: model.file, path, message, fix });
  const types = new TypeResolver(model);
  /**
   * A table's key column and its type when the type has no least value, so that no range on the
   * key can be printed (everyRowWhen's range, a lookup's estimate); undefined otherwise.
   */
  const unrangedKey = (table: string): { key: string; type: SqlType } | undefined => {
    const key = model.tables.find((t) => t.name === table)?.primaryKey[0];
    const type = key === undefined ? UNKNOWN : types.columnType(table, key);
    return key !== undefined && type !== UNKNOWN && typeMinimum(type) === undefined ? { key, type } : undefined;
  };
  const RANGED_KEY_TYPES = 'bigint, integer, smallint, text, varchar, date, timestamp, timestamptz, numeric or uuid';
  /** The type of the set `what` (`anyOf(…).in`, `allOf(…).in`) tests against, and its element's; a set that is no array is a problem. */
  const elementOfSet = (path: string, set: Expr, what: string) => {
    const setType = types.of(set);
    const element = elementOf(setType);
    if (setType !== UNKNOWN && element === UNKNOWN) add(path, 'not-a-set', `"${what}" needs a set (an array), but got a value of type ${setType}`, 'pass a set fact, a hierarchy set or arrayOf()');
    return { setType, element };
  };

  const checkName = (path: string, what: string, name: string) => {
    if (identifierBytes(name) > MAX_IDENTIFIER_BYTES) {
      add(path, 'name-too-long', `${what} "${name}" is ${identifierBytes(name)} bytes; PostgreSQL keeps only the first ${MAX_IDENTIFIER_BYTES}`, `shorten it to ${MAX_IDENTIFIER_BYTES} bytes or fewer`);
    }
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
      add(path, 'bad-name', `${what} "${name}" is not a lower-case SQL identifier`, 'use lower case letters, digits and underscores, starting with a letter');
    }
  };

  checkName('model', 'schema name', model.schema);
  for (const prefix of [RECORD_SCHEMA_PREFIX, MARK_SCHEMA_PREFIX]) {
    if (model.schema.startsWith(prefix)) add('model', 'reserved-name', `schema name "${model.schema}" starts with "${prefix}", which names schemas rowguard creates for each model`, 'choose a name with another beginning');
  }

  // ---- tables
  const tableNames = new Set(model.tables.map((t) => t.name));
  for (const t of model.tables) {
    const at = `tables.${t.name}`;
    checkName(at, 'table name', t.name);
    if (t.name === 'login_bindings') add(at, 'reserved-name', 'table name "login_bindings" is used by rowguard for reporting logins', 'rename the table');
    if (t.columns.length === 0) add(at, 'no-columns', `table "${t.name}" declares no columns`, 'declare its columns');
    if (t.primaryKey.length === 0) add(at, 'no-primary-key', `table "${t.name}" has no primary key`, "mark a column with .primaryKey() or pass { primaryKey: ['a', 'b'] }");
    for (const k of t.primaryKey) if (!t.columns.some((c) => c.name === k)) add(at, 'unknown-column', `primary key column "${k}" is not a column of "${t.name}"`, 'name declared columns only');
    for (const c of t.columns) {
      checkName(`${at}.${c.name}`, 'column name', c.name);
      if (!c.references) continue;
      if (!tableNames.has(c.references.table)) {
        add(`${at}.${c.name}`, 'unknown-table', `column "${c.name}" references table "${c.references.table}", which this model does not declare`, 'declare the referenced table in the same model');
        continue;
      }
      const target = model.tables.find((x) => x.name === c.references!.table)!;
      const targetCol = c.references.column || target.primaryKey[0];
      const targetDef = target.columns.find((x) => x.name === targetCol);
      if (!targetDef) add(`${at}.${c.name}`, 'unknown-column', `column "${c.name}" references "${c.references.table}.${targetCol ?? '?'}", which does not exist`, 'reference a declared key column');
      else if (!comparable(targetDef.type, c.type)) add(`${at}.${c.name}`, 'type-mismatch', `column "${c.name}" is ${c.type} but references ${c.references.table}.${targetCol} of type ${targetDef.type}`, 'give both columns the same type');
      checkName(`${at}.${c.name}`, 'foreign key constraint name', constraintName(t.name, c.name, 'fkey'));
    }
    for (const check of t.checks) checkExpr(`${at}.checks.${check.name}`, check.condition, { row: true, rowTable: t.name });
    t.indexes.forEach((index, i) => {
      const ip = `${at}.indexes[${i}]`;
      for (const c of index.columns) if (!t.columns.some((x) => x.name === c)) add(ip, 'unknown-column', `index column "${c}" is not a column of "${t.name}"`, `use one of: ${t.columns.map((x) => x.name).join(', ')}`);
      if (!index.where) return;
      checkName(ip, 'index name', partialIndexName(t.name, index));
      checkExpr(ip, index.where, { row: true, rowTable: t.name });
      // PostgreSQL requires an index predicate to be immutable: it may read the row, not the session.
      visit(index.where, (e) => {
        if (['session-user', 'fact', 'exists', 'array-of', 'scalar-of', 'hierarchy-set', 'every-row-when'].includes(e.kind)) {
          add(ip, 'index-predicate-not-immutable', `the partial index predicate of "${t.name}" uses ${e.kind}, which depends on the session or other rows`, "write the predicate over the row's own columns and constants only");
        }
      });
    });
  }

  // ---- identity
  if (!model.identity && (model.policies.length > 0 || model.facts.length > 0)) {
    add('identity', 'no-identity', 'the model has rules but no identity', 'call m.identity(users) so set_session knows which table holds the users');
  }
  // set_session names one user, and the facts read that user's row as one record (emit/expr.ts,
  // identityRowLookup): a value the column holds twice would name several.
  const identityTable = model.identity && model.tables.find((t) => t.name === model.identity!.table);
  if (model.identity && identityTable) {
    const column = model.identity.column;
    const unique = (identityTable.primaryKey.length === 1 && identityTable.primaryKey[0] === column) || identityTable.columns.some((c) => c.name === column && c.unique === true);
    if (!unique) {
      add(
        'identity',
        'identity-not-unique',
        `the identity column "${identityTable.name}.${column}" may hold a value twice, so one id could name several users`,
        `make "${column}" the primary key of ${identityTable.name}, or declare it unique (t.<type>().unique())`,
      );
    }
  }

  // ---- hierarchies
  const hierarchyNames = new Set<string>();
  for (const h of model.hierarchies) {
    const at = h.origin.path;
    if (hierarchyNames.has(h.name)) add(at, 'duplicate-name', `hierarchy "${h.name}" is declared twice`, 'give each hierarchy its own name');
    hierarchyNames.add(h.name);
    checkName(at, 'hierarchy name', h.name);
    checkName(at, 'hierarchy function name', `${h.name}_descendants`);
    if (!comparable(types.columnType(h.table, h.child), types.columnType(h.table, h.parent))) {
      add(at, 'type-mismatch', `hierarchy "${h.name}": ${h.child} and ${h.parent} have different types`, 'child and parent must hold the same kind of id');
    }
  }

  // ---- facts
  /** Names of generated functions may not take the planner hints' prefixes. */
  const hintPrefix = (at: string, what: string, name: string) => {
    for (const prefix of [PLAN_HINT_PREFIX, PLAN_FOLD_PREFIX, PLAN_WHEN_PREFIX, PLAN_TRUE_PREFIX]) {
      if (name.startsWith(prefix)) add(at, 'reserved-name', `${what} starts with "${prefix}", which names the generated planner hints`, 'choose a name with another beginning');
    }
  };
  // A hierarchy's walkers are named after it (<name>_descendants), like a guard's mark functions.
  for (const h of model.hierarchies) hintPrefix(h.origin.path, `hierarchy "${h.name}"`, h.name);
  const factNames = new Set<string>();
  const functionNames = new Set<string>(RESERVED_FUNCTIONS);
  for (const h of model.hierarchies) functionNames.add(`${h.name}_descendants`).add(`${h.name}_ancestors`);
  for (const f of model.facts) {
    const at = f.origin.path;
    checkName(at, 'fact name', f.name);
    if (factNames.has(f.name)) add(at, 'duplicate-name', `fact "${f.name}" is declared twice`, 'give each fact its own name');
    if (functionNames.has(f.name)) add(at, 'reserved-name', `fact "${f.name}" would replace the generated function of the same name`, 'choose another name');
    hintPrefix(at, `fact "${f.name}"`, f.name);
    if (f.planHint && !(Number.isInteger(f.planHint.few) && f.planHint.few >= 0 && f.planHint.few <= 1000)) {
      add(at, 'bad-option', `planHint.few of fact "${f.name}" is ${String(f.planHint.few)}`, 'give a whole number of elements from 0 to 1000');
    }
    factNames.add(f.name);
    functionNames.add(f.name);
    checkExpr(at, f.expr, { row: false });
    if (types.factType(f.name) === UNKNOWN) add(at, 'unknown-type', `the type of fact "${f.name}" cannot be inferred`, "pass { type: 'bigint[]' } (or the right type) to m.fact");
  }
  const cyclic = factCycle(model);
  if (cyclic) add(`facts.${cyclic[0]}`, 'fact-cycle', `facts depend on each other in a cycle: ${cyclic.join(' -> ')}`, 'break the cycle; a fact may only use facts declared without it');

  // ---- policies
  const policyNames = new Set<string>();
  for (const p of model.policies) {
    const at = p.origin.path;
    checkName(at, 'policy name', p.name);
    const key = `${p.table}\u0000${p.name}`;
    if (policyNames.has(key)) add(at, 'duplicate-policy', `two policies on "${p.table}" are named "${p.name}"`, 'give every policy of a table its own name');
    policyNames.add(key);
    if (p.command === 'select' && p.check) add(at, 'check-on-select', `policy "${p.name}" is FOR SELECT but has a WITH CHECK clause; SELECT never writes a row`, 'move the condition into using, or make the policy FOR INSERT/UPDATE');
    if (p.command === 'delete' && p.check) add(at, 'check-on-delete', `policy "${p.name}" is FOR DELETE but has a WITH CHECK clause; DELETE writes no new row`, 'move the condition into using');
    if (p.command === 'insert' && p.using) add(at, 'using-on-insert', `policy "${p.name}" is FOR INSERT but has a USING clause; INSERT reads no existing row`, 'move the condition into check');
    if (!p.using && !p.check) add(at, 'empty-policy', `policy "${p.name}" has neither using nor check`, 'give it a condition');
    if (p.lookup) {
      const unranged = unrangedKey(p.table);
      if (p.command !== 'select' && p.command !== 'all') {
        add(at, 'lookup-not-read', `policy "${p.name}" is FOR ${p.command.toUpperCase()} with lookup: true, which only changes how reads are planned`, "declare lookup on the table's policy for: 'select' (or 'all')");
      } else if (!p.using) {
        add(at, 'lookup-not-read', `policy "${p.name}" has lookup: true but no using clause, the clause the estimate is added to`, 'give it a using clause, or drop lookup');
      } else if (p.mode === 'restrictive') {
        add(at, 'lookup-restrictive', `policy "${p.name}" is restrictive with lookup: true; a restrictive policy only narrows what the permissive ones admit, so widening its estimate changes nothing`, "declare lookup on the table's permissive read policy");
      } else if (unranged) {
        // A table without a primary key is refused on its own (no-primary-key).
        add(at, 'lookup-key-type', `policy "${p.name}" has lookup: true, but its key "${p.table}.${unranged.key}" is ${unranged.type}; the estimate is a comparison on the key, for the key types everyRowWhen takes`, `key the table by ${RANGED_KEY_TYPES}, or drop lookup`);
      }
    }
    for (const e of [p.using, p.check]) if (e) checkExpr(at, e, { row: true, rowTable: p.table });
  }

  // ---- guards, write rules, views
  for (const g of model.guards) {
    checkName(g.origin.path, 'guard name', g.name);
    hintPrefix(g.origin.path, `guard "${g.name}"`, g.name);
    if (functionNames.has(g.name)) add(g.origin.path, 'duplicate-name', `"${g.name}" is already the name of a generated function`, 'choose another name');
    functionNames.add(g.name);
    checkExpr(g.origin.path, g.when, { row: false, oldNew: true });
  }
  for (const r of model.writeRules) {
    checkName(r.origin.path, 'write rule name', r.name);
    hintPrefix(r.origin.path, `write rule "${r.name}"`, r.name);
    if (functionNames.has(r.name)) add(r.origin.path, 'duplicate-name', `"${r.name}" is already the name of a generated function`, 'choose another name');
    functionNames.add(r.name);
    if (r.when) checkExpr(r.origin.path, r.when, { row: false, oldNew: true });
    for (const s of r.set) checkExpr(r.origin.path, s.value, { row: false, oldNew: true });
    if (r.alsoUpdate) {
      for (const s of r.alsoUpdate.set) checkExpr(r.origin.path, s.value, { row: false, oldNew: true, extraScope: r.alsoUpdate.scope });
      checkExpr(r.origin.path, r.alsoUpdate.where, { row: false, oldNew: true, extraScope: r.alsoUpdate.scope });
    }
  }
  for (const v of model.maskedViews) {
    checkName(v.origin.path, 'view name', v.name);
    if (!model.policies.some((p) => p.table === v.table && (p.command === 'select' || p.command === 'all'))) {
      add(v.origin.path, 'no-select-policy', `masked view "${v.name}" masks rows of "${v.table}", which has no SELECT policy to decide who sees what`, `add m.policy(${v.table}, …, { for: 'select', … })`);
    }
    checkExpr(v.origin.path, v.showMaskedWhen, { row: false });
  }
  for (const v of model.reportingViews) {
    checkName(v.origin.path, 'view name', v.name);
    if (v.columns.length === 0) add(v.origin.path, 'empty-view', `reporting view "${v.name}" has no columns`, 'return at least one column from columns(row)');
    for (const c of v.columns) {
      checkName(`${v.origin.path}.${c.name}`, 'column name', c.name);
      checkExpr(`${v.origin.path}.${c.name}`, c.value, { row: true });
    }
  }
  for (const f of model.membershipFunctions) {
    checkName(f.origin.path, 'function name', f.name);
    hintPrefix(f.origin.path, `membership function "${f.name}"`, f.name);
    if (functionNames.has(f.name)) add(f.origin.path, 'duplicate-name', `"${f.name}" is already the name of a generated function`, 'choose another name');
    functionNames.add(f.name);
    checkExpr(f.origin.path, f.set, { row: false });
    const setType = types.of(f.set);
    if (setType !== UNKNOWN && !setType.endsWith('[]')) add(f.origin.path, 'not-a-set', `membership function "${f.name}" needs a set, got ${setType}`, 'pass a set fact (an array)');
  }
  // A new row's key list is empty when an INSERT's WITH CHECK runs: the rows that fill it name the row, so they come later.
  for (const p of model.policies) {
    if (!p.check || (p.command !== 'insert' && p.command !== 'all')) continue;
    visit(p.check, (e) => {
      if (e.kind === 'any-in-set' && e.spread) {
        add(p.origin.path, 'key-list-in-insert-check', `the WITH CHECK of ${p.command === 'all' ? 'a FOR ALL' : 'an INSERT'} policy reads a key list, which is always empty on a row being inserted`, `check what the new row itself holds (for an ALL policy, give inserts a policy of their own)`);
      }
    });
  }
  // ---- counters
  for (const k of model.counters) {
    const at = k.origin.path;
    checkName(at, 'counter column name', k.column);
    const parent = model.tables.find((t) => t.name === k.table);
    const child = model.tables.find((t) => t.name === k.from);
    if (!parent || !child) continue; // the DSL reported the unknown table
    const names = counterNames(k);
    for (const name of [names.maintain, names.protect]) {
      checkName(at, 'counter function name', name);
      if (functionNames.has(name)) add(at, 'duplicate-name', `"${name}" is already the name of a generated function`, `rename the fact or rule called "${name}", or the counter column`);
      functionNames.add(name);
    }
    checkName(at, 'counter trigger name', names.onTruncate);
    const counterOf = `counter ${k.table}.${k.column}`;
    if (k.from === k.table) {
      const [noun, verb] = k.list ? ['key list', 'list'] : ['counter', 'count'];
      add(at, 'counter-on-itself', `${noun} ${k.table}.${k.column} ${verb}s rows of its own table`, `${verb} the rows of another table (a ${noun} over a self-referencing table is not supported)`);
      continue;
    }
    const keyColumn = child.columns.find((c) => c.name === k.key);
    if (!keyColumn) {
      add(at, 'unknown-column', `${counterOf}: table "${k.from}" has no column "${k.key}"`, `use the column of "${k.from}" that references "${k.table}": one of ${child.columns.map((c) => c.name).join(', ')}`);
      continue;
    }
    if (parent.primaryKey.length !== 1) {
      add(at, 'counter-composite-key', `${counterOf}: "${k.table}" has a composite primary key (${parent.primaryKey.join(', ')}); a counter needs a single-column key to find the row it counts for`, `put the counter on a table keyed by one column`);
      continue;
    }
    const pk = parent.primaryKey[0]!;
    if (keyColumn.references?.table !== k.table) {
      add(
        at,
        'counter-key-not-foreign-key',
        `${counterOf}: "${k.from}.${k.key}" does not reference "${k.table}"`,
        `declare it with .references(${k.table}) in m.table('${k.from}', …), or give the counter the column that does`,
      );
    } else if (keyColumn.references.column && keyColumn.references.column !== pk) {
      add(at, 'counter-key-not-primary-key', `${counterOf}: "${k.from}.${k.key}" references "${k.table}.${keyColumn.references.column}", not its primary key "${pk}"`, `reference the primary key: .references(${k.table}) without { column }`);
    }
    if (k.list) {
      const fromPk = [...child.primaryKey].sort(byCodePoint).join(',');
      const value = child.columns.find((c) => c.name === k.list!.value);
      const scope = parent.columns.find((c) => c.name === k.list!.scope);
      if (!value) add(at, 'unknown-column', `key list ${k.table}.${k.column}: table "${k.from}" has no column "${k.list.value}"`, `give value one of ${child.columns.map((c) => c.name).join(', ')}`);
      else if (value.nullable) add(at, 'key-list-nullable', `key list ${k.table}.${k.column}: "${k.from}.${k.list.value}" may be NULL, which no key can hold`, `declare it .notNull() in m.table('${k.from}', …)`);
      if (!scope) add(at, 'unknown-column', `key list ${k.table}.${k.column}: table "${k.table}" has no column "${k.list.scope}"`, `give scope one of ${parent.columns.map((c) => c.name).join(', ')}`);
      else if (scope.nullable) add(at, 'key-list-nullable', `key list ${k.table}.${k.column}: its scope "${k.table}.${k.list.scope}" may be NULL, which no key can hold`, `declare it .notNull() in m.table('${k.table}', …)`);
      else if (parent.primaryKey.includes(scope.name) || model.counters.some((d) => d.table === k.table && d.column === scope.name)) {
        const is = parent.primaryKey.includes(scope.name) ? 'the primary key' : 'a counter or key list itself';
        add(at, 'key-list-scope', `key list ${k.table}.${k.column}: its scope "${k.list.scope}" is ${is}`, `scope the keys by a column of "${k.table}" that says where the row belongs, as contacts.office_id does: m.keyList(${k.table}, '${k.column}', { …, scope: '<that column>' })`);
      }
      // The list's BEFORE trigger rewrites the keys when the scope changes; another BEFORE trigger
      // that sets the scope may run after it (triggers fire in name order) and leave them stale.
      for (const r of model.writeRules) {
        if (r.table === k.table && r.set.some((x) => x.column === k.list!.scope)) {
          add(r.origin.path, 'key-list-scope-written', `write rule "${r.name}" sets ${k.table}.${k.list.scope}, the scope of key list ${k.table}.${k.column}, in a trigger that may run after the list's rewrite of its keys`, `set ${k.list.scope} in the statement itself, or scope the key list by another column`);
        }
      }
      // A key is the columns' text: only types whose text no setting changes (DateStyle, TimeZone and
      // extra_float_digits change a date's, a timestamp's or a float's) and that has one text per value.
      for (const [c, table] of [[value, k.from], [scope, k.table]] as const) {
        if (c && !KEY_LIST_TYPES.test(c.type)) {
          add(at, 'key-list-type', `key list ${k.table}.${k.column}: "${table}.${c.name}" is ${c.type}, whose text form is not one fixed text per value`, `key the list by columns of type bigint, integer, smallint, text, varchar or uuid`);
        }
      }
      if (value && fromPk !== [k.key, k.list.value].sort(byCodePoint).join(',')) {
        add(at, 'key-list-not-unique', `key list ${k.table}.${k.column}: "${k.from}" must be keyed by (${k.key}, ${k.list.value}), so each of its rows gives one key; its primary key is (${child.primaryKey.join(', ')})`, `declare { primaryKey: ['${k.key}', '${k.list.value}'] } in m.table('${k.from}', …)`);
      }
    }
    // Only the counter's own triggers may write the column: anything else would be refused at run time.
    const written = (what: string, path: string) =>
      add(path, 'counter-written', `${what} ${k.table}.${k.column}, which only the triggers of ${counterOf} may change`, `leave ${k.column} out; insert or delete rows of "${k.from}" instead`);
    for (const r of model.writeRules) {
      if (r.table === k.table && r.set.some((x) => x.column === k.column)) written(`write rule "${r.name}" sets`, r.origin.path);
      if (r.alsoUpdate?.table === k.table && r.alsoUpdate.set.some((x) => x.column === k.column)) written(`write rule "${r.name}" updates`, r.origin.path);
    }
    for (const g of model.guards) if (g.table === k.table && g.columns.includes(k.column)) written(`column guard "${g.name}" guards`, g.origin.path);
    for (const s of model.seeds) if (s.table === k.table && s.rows.some((r) => k.column in r)) written('a seed row gives a value for', s.origin.path);
  }

  for (const s of model.seeds) {
    const table = model.tables.find((t) => t.name === s.table);
    if (table && s.rows.some((r) => table.primaryKey.some((k) => !(k in r) && !table.columns.find((c) => c.name === k)?.identity))) {
      add(s.origin.path, 'seed-without-key', `every seed row of "${s.table}" must give its primary key (${table.primaryKey.join(', ')})`, 'add the key columns to each row, so the down migration can delete exactly these rows');
    }
  }
  for (const t of model.tables) for (const c of t.columns) if (c.references) checkName(`tables.${t.name}.${c.name}`, 'index name', indexName(t.name, [c.name]));

  function checkExpr(path: string, root: Expr, allowed: { row: boolean; oldNew?: boolean; extraScope?: string; rowTable?: string }): void {
    visit(root, (e) => {
      switch (e.kind) {
        case 'column':
          if ((e.scope === ROW_SCOPE && !allowed.row) || ((e.scope === OLD_SCOPE || e.scope === NEW_SCOPE) && !allowed.oldNew)) {
            add(path, 'row-out-of-scope', `column "${e.table}.${e.column}" of the ${e.scope === ROW_SCOPE ? 'policy' : e.scope} row is used where there is no such row`, allowed.row ? 'use the row argument of this callback' : 'a fact is about the acting user: it cannot read the policy row; move that part into the policy');
          }
          break;
        case 'fact':
          if (!model.facts.some((f) => f.name === e.name)) add(path, 'unknown-fact', `fact "${e.name}" is not declared`, 'declare it with m.fact(...) before using it');
          break;
        case 'hierarchy-set': {
          const h = model.hierarchies.find((x) => x.name === e.hierarchy);
          if (!h) add(path, 'unknown-hierarchy', `hierarchy "${e.hierarchy}" is not declared`, 'declare it with m.hierarchy(...)');
          else {
            // Whole numbers and numeric do not mix: a fractional node converted to the hierarchy's
            // type would be rounded to another node.
            const [node, column] = [types.of(e.of), types.columnType(h.table, h.child)];
            const numeric = (t: string) => t.startsWith('numeric');
            if (!comparable(node, column) || (node !== UNKNOWN && numeric(node) !== numeric(column))) {
              add(path, 'type-mismatch', `a ${node} node is looked up in hierarchy "${h.name}" of ${column} nodes`, `pass a ${column} value, as ${h.table}.${h.child} holds`);
            }
          }
          break;
        }
        case 'session-user':
          if (!model.identity) add(path, 'no-identity', 'the condition uses the acting user, but the model has no identity', 'call m.identity(users)');
          break;
        case 'in-set': {
          const setType = types.of(e.set);
          if (setType !== UNKNOWN && !setType.endsWith('[]')) add(path, 'not-a-set', `"in" needs a set (an array), but got a value of type ${setType}`, 'use eq() for a single value, or arrayOf()/a hierarchy/a set fact');
          else if (setType !== UNKNOWN && !comparable(types.of(e.item), setType.slice(0, -2))) add(path, 'type-mismatch', `a ${types.of(e.item)} value is tested for membership in a set of ${setType}`, 'compare values of the same type');
          break;
        }
        case 'any-in-set': {
          if (e.spread) {
            const column = e.items[0];
            const list = column?.kind === 'column' ? keyListOf(model, column.table, column.column) : undefined;
            const setType = types.of(e.set);
            if (!list || column?.kind !== 'column' || column.scope !== ROW_SCOPE) {
              add(path, 'key-list-of-row', "a key list's .of(row) takes the row of a rule on the list's own table", 'pass the row argument of the callback of a policy on that table: list.of(c).in(myKeys)');
            }
            if (setType !== UNKNOWN && setType !== 'text[]') {
              add(path, 'type-mismatch', `a key list is tested against a set of ${setType}; its keys are text`, `pass a set fact of list.keysOf(scope, values)`);
            }
            break;
          }
          const { setType, element } = elementOfSet(path, e.set, 'anyOf(…).in');
          if (e.items.length < 2 || e.items.some((i) => i.kind !== 'column' || i.scope !== ROW_SCOPE)) {
            add(path, 'any-of-columns', 'anyOf(…) takes two or more columns of the policy\'s own row (one GIN index covers them)', 'pass the row\'s columns, e.g. anyOf(d.operator_id, d.sales_id); for one column write d.operator_id.in(set)');
          } else {
            // Exactly the set's element type (or, where the set's type is not known, one type): the
            // array's cast is then no conversion, in the arm and in its GIN index alike.
            const itemTypes = e.items.map((i) => types.of(i)).filter((t) => t !== UNKNOWN);
            const expected = element !== UNKNOWN ? element : itemTypes[0];
            const mismatched = itemTypes.find((t) => t !== expected);
            if (mismatched) {
              const against = element !== UNKNOWN ? `a set of ${setType}` : `a ${expected} column beside it`;
              add(path, 'type-mismatch', `anyOf(…) has a ${mismatched} column, tested against ${against}`, `give every column ${element !== UNKNOWN ? `the set's element type, ${element}` : 'the same type'}`);
            }
          }
          break;
        }
        case 'all-in-set': {
          const { setType, element } = elementOfSet(path, e.set, 'allOf(…).in');
          if (e.items.length === 0) add(path, 'all-of-values', 'allOf() needs at least one value', "pass the values the set must hold, e.g. allOf(lit('read'), lit('write'))");
          const mismatched = element === UNKNOWN ? undefined : e.items.map((i) => types.of(i)).find((t) => t !== UNKNOWN && !comparable(t, element));
          if (mismatched) add(path, 'type-mismatch', `allOf(…) has a ${mismatched} value, tested against a set of ${setType}`, `give every value the set's element type, ${element}`);
          break;
        }
        case 'compare': {
          const [left, right] = [types.of(e.left), types.of(e.right)];
          if (comparable(left, right)) break;
          // A plain string against a uuid, a date, …: the literal needs the other side's type.
          const text = [e.left, e.right].find((x) => x.kind === 'literal' && x.type === undefined && typeof x.value === 'string');
          const fix = text?.kind === 'literal' ? `give the string its type: lit('${String(text.value).replaceAll("'", "\\'")}', '${text === e.left ? right : left}')` : 'compare values of the same type';
          add(path, 'type-mismatch', `comparing ${left} with ${right}`, fix);
          break;
        }
        case 'every-row-when': {
          if (!allowed.row) {
            add(path, 'row-out-of-scope', `everyRowWhen(${e.table}, …) reads the row's primary key, but there is no row here`, `use it in a policy of "${e.table}"; a fact can hold the condition itself`);
          } else if (allowed.rowTable !== undefined && allowed.rowTable !== e.table) {
            add(path, 'wrong-table', `everyRowWhen(${e.table}, …) is used in a rule of "${allowed.rowTable}"`, `pass the table the rule is on: m.everyRowWhen(${allowed.rowTable}, …)`);
          }
          const unranged = unrangedKey(e.table);
          if (unranged) {
            add(path, 'no-key-minimum', `everyRowWhen(${e.table}, …) needs a primary key type with a least value, but "${e.table}.${unranged.key}" is ${unranged.type}`, `key the table by ${RANGED_KEY_TYPES}, or write the bypass as its own policy`);
          }
          if (types.of(e.when) !== 'boolean' && types.of(e.when) !== UNKNOWN) add(path, 'type-mismatch', `everyRowWhen needs a boolean condition, got ${types.of(e.when)}`, 'pass a boolean fact or condition');
          break;
        }
        case 'list-keys': {
          const list = keyListOf(model, e.table, e.column);
          if (!list) break; // built only by the list's own handle
          // Exactly the column's type, as for the values: the key is the scope's text (3 and 3.0 differ).
          const [scope, scopeColumn] = [types.of(e.scope), types.columnType(list.table, list.list.scope)];
          if (scope !== UNKNOWN && scopeColumn !== UNKNOWN && scope !== scopeColumn) add(path, 'type-mismatch', `keysOf() of key list ${list.table}.${list.column} gets a ${scope} scope; its scope column "${list.table}.${list.list.scope}" is ${scopeColumn}`, `pass a ${scopeColumn} value`);
          const [values, valueColumn] = [types.of(e.values), types.columnType(list.from, list.list.value)];
          if (values !== UNKNOWN && !values.endsWith('[]')) add(path, 'not-a-set', `keysOf() of key list ${list.table}.${list.column} needs a set of values, but got a value of type ${values}`, 'pass a set fact (an array), e.g. union(array([me]), …)');
          else if (values !== UNKNOWN && values.slice(0, -2) !== valueColumn && valueColumn !== UNKNOWN) {
            // Exactly the column's type: the key is the value's text, which differs between types (1 and 1.0).
            add(path, 'type-mismatch', `keysOf() of key list ${list.table}.${list.column} gets a set of ${values}; its values, "${list.from}.${list.list.value}", are ${valueColumn}`, `pass a set of ${valueColumn}`);
          }
          break;
        }
        case 'raw':
          if (!e.reason.trim()) add(path, 'raw-without-reason', 'raw SQL needs a reason, printed beside it in the generated SQL', "raw('…', { type, reason: 'why the DSL cannot say this' })");
          break;
        default:
          break;
      }
    });
  }

  if (problems.length > 0) return { problems };
  const factTypes = new Map(model.facts.map((f) => [f.name, types.factType(f.name)] as const));
  return { result: { model, factTypes }, problems };
}

/** The types a key list may key by (see the key-list-type check). */
const KEY_LIST_TYPES = /^(bigint|integer|smallint|text|uuid|varchar(\(\d+\))?|character varying(\(\d+\))?)$/;

function factCycle(model: ModelNode): string[] | undefined {
  const deps = new Map(model.facts.map((f) => {
    const uses: string[] = [];
    visit(f.expr, (e) => {
      if (e.kind === 'fact') uses.push(e.name);
    });
    return [f.name, uses] as const;
  }));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const walk = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const d of deps.get(name) ?? []) {
      const found = walk(d);
      if (found) return found;
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const f of model.facts) {
    const found = walk(f.name);
    if (found) return found;
  }
  return undefined;
}

export function formatProblems(problems: readonly Problem[]): string {
  return problems
    .map((p) => `${p.file ?? '<unknown file>'}: ${p.path}: ${p.message} [${p.code}]\n    fix: ${p.fix}`)
    .join('\n');
}

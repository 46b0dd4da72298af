// defineModel(): the entry point of a policy file. The callback declares tables, the identity,
// hierarchies, facts and rules through `m`; the result is a frozen ModelNode of plain data.
import type {
  ColumnGuardNode,
  ColumnNode,
  Command,
  CounterNode,
  Expr,
  FactNode,
  HierarchyNode,
  MaskedViewNode,
  MembershipFunctionNode,
  SeedNode,
  ReportingViewNode,
  ModelNode,
  PolicyNode,
  Problem,
  QueryNode,
  SqlType,
  TableNode,
  WriteRuleNode,
} from '../model/nodes.ts';
import { ColumnSpec } from './columns.ts';
import { E, toNode, type Value } from './expr.ts';

export type Columns = Record<string, ColumnSpec>;

/** Typed access to a table's columns inside a condition. Unknown names are reported at generate time. */
export type Row<C extends Columns> = { readonly [K in keyof C]: E };

/** The row type of a table handle, for helpers shared by several policies. */
export type RowOf<T extends TableHandle<Columns>> = Row<T['columns']>;

export interface TableHandle<C extends Columns> {
  readonly name: string;
  readonly columns: C;
}

/** An extra index. With `where`, a partial index: give a policy arm such as "no clerk and no
 *  access" its own index, so its scan needs no Filter. */
export interface IndexSpec<C extends Columns = Columns> {
  readonly columns: readonly string[];
  readonly where?: (row: Row<C>) => E;
  readonly name?: string;
}

export interface TableOptions<C extends Columns = Columns> {
  /** Named CHECK constraints over the row. */
  readonly checks?: Record<string, (row: Row<C>) => E>;
  /** Extra indexes (policy columns get theirs automatically); see also m.index. */
  readonly indexes?: readonly IndexSpec<C>[];
  /** A composite primary key; single-column keys use `.primaryKey()` on the column. */
  readonly primaryKey?: readonly string[];
}

export interface QuerySpec {
  readonly where?: E;
  readonly select?: E;
  readonly distinct?: boolean;
}

export interface PolicySpec<C extends Columns> {
  readonly for: Command | 'all';
  /** Which existing rows the command may see or touch (SELECT, UPDATE, DELETE). */
  readonly using?: (row: Row<C>) => E;
  /** Which new rows the command may write (INSERT, UPDATE). */
  readonly check?: (row: Row<C>) => E;
  /** Restrictive policies are ANDed with the permissive ones instead of ORed. */
  readonly restrictive?: boolean;
  readonly description?: string;
  /**
   * A read policy (`for: 'select'` or `'all'`) of a table mostly reached by a join from rows that
   * name its rows (an account's producer code, a contact's company), where a user who sees a row
   * almost always sees the row it names. PostgreSQL multiplies the two tables' estimates as if
   * unrelated, so such a join ordered by the large table's key with LIMIT sorts every visible row
   * instead of walking the key. `lookup: true` has the planner count a user whose sets are not few
   * as seeing a third of this table (README, "Performance"). It changes plans, never rows.
   */
  readonly lookup?: boolean;
}

export interface HierarchyHandle {
  readonly name: string;
  /** Every node below `root` at any depth (with `root` itself when includeSelf). */
  descendantsOf(root: Value, options?: { includeSelf?: boolean }): E;
  /** Every node above `node` at any depth (with `node` itself when includeSelf). */
  ancestorsOf(node: Value, options?: { includeSelf?: boolean }): E;
}

export interface FactHandle extends E {}

export interface CounterSpec<F extends Columns> {
  /** The table whose rows are counted. */
  readonly from: TableHandle<F>;
  /** Its column that names the counted row: a foreign key to that table's primary key. */
  readonly key: keyof F & string;
  readonly description?: string;
}

export interface KeyListSpec<F extends Columns, C extends Columns> {
  /** The table whose rows give the keys. */
  readonly from: TableHandle<F>;
  /** Its column that names the row: a foreign key to that table's primary key. */
  readonly key: keyof F & string;
  /** Its column whose value goes into the key (with `key`, unique in `from`: its primary key). */
  readonly value: keyof F & string;
  /** The column of the list's own table that scopes each key (SmartOffice: the contact's office). */
  readonly scope: keyof C & string;
  readonly description?: string;
}

/** A key list declared with m.keyList. */
export interface KeyListHandle<C extends Columns> {
  readonly table: string;
  readonly column: string;
  /** `list.of(c).in(myKeys)`: some key of the row's list is in the set (`col && set`, one GIN index). */
  of(row: Row<C>): { in(set: E): E };
  /** The keys a row's list holds when its scope is `scope` and rows of `from` name it with one of `values`: the set a fact computes for `.in`. */
  keysOf(scope: Value, values: E): E;
}

/** A counter column declared with m.counter. */
export interface CounterHandle<C extends Columns> {
  readonly table: string;
  readonly column: string;
  /** The counter of a row of its table, for conditions and index predicates: `assignmentCount.of(c).eq(0)`. */
  of(row: Row<C>): E;
}

export interface ModelBuilder {
  table<C extends Columns>(name: string, columns: C, options?: TableOptions<C>): TableHandle<C>;
  /**
   * `<column> integer NOT NULL DEFAULT 0` on `table`: how many rows of `spec.from` name the row in
   * `spec.key`, kept current by triggers (see emit/counters.ts). Applications cannot set it.
   * In rules: `counter.of(row)`, e.g. `assignmentCount.of(c).eq(0)` for "assigned to nobody".
   */
  counter<C extends Columns, F extends Columns>(table: TableHandle<C>, column: string, spec: CounterSpec<F>): CounterHandle<C>;
  /**
   * `<column> text[] NOT NULL DEFAULT '{}'` on `table`: for each row of `spec.from` that names the
   * row in `spec.key`, one key of the row's `spec.scope` and that row's `spec.value`, kept current
   * by triggers as counters are (emit/counters.ts); a change of the scope rewrites the keys. One
   * GIN index then answers "scope is S and some row of `from` names it with one of V" in a single
   * condition: `list.of(c).in(<fact of list.keysOf(S, V)>)`. Applications cannot set it.
   */
  keyList<C extends Columns, F extends Columns>(table: TableHandle<C>, column: string, spec: KeyListSpec<F, C>): KeyListHandle<C>;
  /** An index declared after its table, e.g. a partial index over a counter column. */
  index<C extends Columns>(table: TableHandle<C>, index: IndexSpec<C>): void;
  /** Who can act: `set_session(<argument>)` takes a value of this column and refuses unknown ones. */
  identity(table: TableHandle<Columns>, options?: { column?: string; argument?: string }): void;
  /** The acting user's id, or NULL when no identity is set. */
  readonly me: E;
  /**
   * A named value about the acting user, computed once per statement. `planHint: false` keeps set_session
   * from computing it to tell the planner whether it is small (see README, "Planner hints"): for a
   * fact that is costly for some users and guards only small tables. `planHint: { few: n }`: the
   * set counts as small with at most n elements (default 10), for elements that each stand for
   * many rows (a group of a thousand contacts).
   */
  fact(name: string, value: E, options?: { type?: SqlType; description?: string; planHint?: boolean | { few: number } }): E;
  /** A row source for `exists`, `arrayOf` and `scalarOf`. */
  from<C extends Columns>(table: TableHandle<C>, spec: (row: Row<C>) => QuerySpec): QueryNode;
  hierarchy(name: string, options: { table: TableHandle<Columns>; child: string; parent: string }): HierarchyHandle;
  policy<C extends Columns>(table: TableHandle<C>, name: string, spec: PolicySpec<C>): void;
  /** Refuse changes to `columns` when `when(old, new)` holds (checked by a BEFORE UPDATE trigger). */
  guardColumns<C extends Columns>(
    table: TableHandle<C>,
    name: string,
    spec: { columns: readonly (keyof C & string)[]; when: (old: Row<C>, row: Row<C>) => E; message: string },
  ): void;
  /** Derived values of a write (BEFORE: set columns of the new row) and its effects on another table (AFTER). */
  onWrite<C extends Columns, T extends Columns = Columns>(
    table: TableHandle<C>,
    name: string,
    spec: {
      events: readonly ('insert' | 'update')[];
      when?: (old: Row<C>, row: Row<C>) => E;
      set?: (old: Row<C>, row: Row<C>) => Partial<Record<keyof C & string, Value>>;
      alsoUpdate?: { table: TableHandle<T>; set: (target: Row<T>, row: Row<C>) => Partial<Record<keyof T & string, Value>>; where: (target: Row<T>, old: Row<C>, row: Row<C>) => E };
      description?: string;
    },
  ): void;
  /**
   * "Every row of `table` when `condition` holds" (an administrator's bypass), for the policies of
   * that table. Printed as a range on the primary key that an index drives, instead of a bare
   * boolean OR'd into the predicate, which would turn every user's query into a sequential scan.
   * `{ mostRows: true }`: ANDed with conditions on the row, the arm still admits most of the table
   * when `condition` holds (a scope that is "every row the other scopes do not match"), so a user
   * for whom it holds is planned as one who sees most rows (the true mark, README "Performance").
   * `{ shortcut: true }`: the policy's other arms admit every row whenever `condition` holds (the
   * rights matrix's "every scope"), so the arm only lets a statement admit each row at it without
   * computing the other arms' facts; for a user without it, the planner drops it by its own mark,
   * with no stand-in counting the rows it might have admitted (where the policy's sets are told by
   * marks, see README "Performance"). Put it first: OR is evaluated in order.
   * Both change plans, never rows.
   */
  everyRowWhen(table: TableHandle<Columns>, condition: E, options?: { readonly mostRows?: boolean; readonly shortcut?: boolean }): E;
  /** A security_invoker view for BI tools: `columns(row)` names each output column's expression. */
  reportingView<C extends Columns>(name: string, spec: { table: TableHandle<C>; columns: (row: Row<C>) => Record<string, E>; description?: string }): void;
  /** Rows the migration inserts (and the down migration deletes again), e.g. predefined roles. */
  seed<C extends Columns>(table: TableHandle<C>, rows: readonly Partial<Record<keyof C & string, string | number | boolean | null>>[]): void;
  /** `<schema>.<name>(<argument> <type>) returns boolean`: whether the value is in `set` (a set fact). */
  membershipFunction(name: string, spec: { argument: string; type: SqlType; set: E; description?: string }): void;
  /** A view of every row of `table` where rows the caller may not see are shown masked. */
  maskedView<C extends Columns>(
    name: string,
    spec: {
      table: TableHandle<C>;
      keep: readonly (keyof C & string)[];
      masks?: Partial<Record<keyof C & string, Value>>;
      flagColumn?: string;
      showMaskedWhen: E;
      description?: string;
    },
  ): void;
}

export type ModelDefinition = ModelNode;

/** Old and new rows inside triggers use these scope names; the emitter prints them as OLD/NEW. */
export const OLD_SCOPE = 'old';
export const NEW_SCOPE = 'new';
export const ROW_SCOPE = 'row';

export function defineModel(schema: string, build: (m: ModelBuilder) => void, options: { description?: string } = {}): ModelDefinition {
  const tables = new Map<string, TableNode>();
  const specs = new Map<string, Columns>();
  const hierarchies: HierarchyNode[] = [];
  const facts: FactNode[] = [];
  const policies: PolicyNode[] = [];
  const guards: ColumnGuardNode[] = [];
  const writeRules: WriteRuleNode[] = [];
  const maskedViews: MaskedViewNode[] = [];
  const seeds: SeedNode[] = [];
  const reportingViews: ReportingViewNode[] = [];
  const membershipFunctions: MembershipFunctionNode[] = [];
  const counters: CounterNode[] = [];
  const problems: Problem[] = [];
  let identity: ModelNode['identity'];
  let path = 'model';
  let scopeCounter = 0;
  const policyCounts = new Map<string, number>();

  const problem = (code: string, message: string, fix: string) => problems.push({ code, path, message, fix });

  /**
   * A column that triggers derive from the rows of another table (m.counter, m.keyList): it joins
   * its table, so everything that reads columns (CREATE TABLE and ALTER TABLE, rules, the typed
   * module) sees it like any other. Returns the table's name.
   */
  const derivedColumn = (
    what: 'counter' | 'keyList',
    table: TableHandle<Columns>,
    column: string,
    spec: CounterSpec<Columns>,
    shape: { type: SqlType; default: Expr; list?: CounterNode['list'] },
  ): string => {
    const [label, section] = what === 'counter' ? ['counter', 'counters'] : ['key list', 'keyLists'];
    const tname = within(`${section} "${column}"`, () => tableName(table, `${label} "${column}"`));
    within(`${tname}.${section} "${column}"`, () => {
      const from = tableName(spec.from as TableHandle<Columns>, `${label} "${column}"`);
      const columns = specs.get(tname);
      const node = tables.get(tname);
      if (columns && column in columns) {
        problem(
          'duplicate-column',
          `table "${tname}" already has a column "${column}"; the ${label} would add it a second time`,
          `name the ${label}'s column something else, e.g. m.${what}(${tname}, '${column}_${what === 'counter' ? 'count' : 'keys'}', …), or remove "${column}" from m.table('${tname}', …)`,
        );
      } else if (columns && node) {
        specs.set(tname, { ...columns, [column]: new ColumnSpec({ type: shape.type, nullable: false, primaryKey: false, unique: false, default: shape.default }) });
        tables.set(tname, { ...node, columns: [...node.columns, { kind: 'column-def', name: column, type: shape.type, nullable: false, default: shape.default }] });
      }
      counters.push({
        kind: 'counter',
        table: tname,
        column,
        from,
        key: spec.key,
        ...(shape.list ? { list: shape.list } : {}),
        ...(spec.description ? { description: spec.description } : {}),
        origin: { path },
      });
    });
    return tname;
  };

  /** A row proxy: known columns give column refs, unknown names a placeholder node plus a problem. */
  function rowOf<C extends Columns>(tableName: string, scope: string): Row<C> {
    const columns = specs.get(tableName) ?? {};
    const known = new Map<string, E>();
    for (const name of Object.keys(columns)) known.set(name, new E({ kind: 'column', scope, table: tableName, column: name }));
    return new Proxy({} as Row<C>, {
      get(_target, prop) {
        if (typeof prop !== 'string') return undefined;
        const hit = known.get(prop);
        if (hit) return hit;
        if (prop === 'then' || prop === 'toJSON') return undefined;
        problem(
          'unknown-column',
          `table "${tableName}" has no column "${prop}"`,
          `use one of: ${Object.keys(columns).join(', ') || '(no columns declared)'}; or declare the column in m.table('${tableName}', …)`,
        );
        return new E({ kind: 'unknown-column', table: tableName, column: prop });
      },
    });
  }

  function tableName(handle: TableHandle<Columns> | string, what: string): string {
    const name = typeof handle === 'string' ? handle : handle?.name;
    if (typeof name !== 'string' || !tables.has(name)) {
      problem('unknown-table', `${what} names table "${String(name)}", which this model does not declare`, `declare it first with m.table('${String(name)}', { … })`);
    }
    return String(name);
  }

  function within<T>(at: string, fn: () => T): T {
    const saved = path;
    path = at;
    try {
      return fn();
    } finally {
      path = saved;
    }
  }

  function assignments(values: Partial<Record<string, Value>> | undefined, table: string): { column: string; value: Expr }[] {
    const cols = specs.get(table) ?? {};
    return Object.entries(values ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([column, value]) => {
        if (!(column in cols)) problem('unknown-column', `table "${table}" has no column "${column}"`, `use one of: ${Object.keys(cols).join(', ')}`);
        return { column, value: toNode(value as Value) };
      });
  }

  function indexNode(table: string, index: IndexSpec, position: number): TableNode['indexes'][number] {
    return {
      columns: index.columns,
      ...(index.name ? { name: index.name } : {}),
      ...(index.where ? { where: within(`tables.${table}.indexes[${position}]`, () => index.where!(rowOf(table, ROW_SCOPE) as never).node) } : {}),
    };
  }

  const m: ModelBuilder = {
    table(name, columns, opts = {}) {
      within(`tables.${name}`, () => {
        if (tables.has(name)) problem('duplicate-table', `table "${name}" is declared twice`, 'give each table one m.table(...) call');
        specs.set(name, columns);
        const cols: ColumnNode[] = Object.entries(columns).map(([colName, spec]) => {
          const d = spec.data;
          const col: ColumnNode = {
            kind: 'column-def',
            name: colName,
            type: d.type,
            nullable: d.nullable,
            ...(d.default ? { default: d.default } : {}),
            ...(d.references ? { references: { table: d.references.table, column: d.references.column ?? '', ...(d.references.onDelete ? { onDelete: d.references.onDelete } : {}) } } : {}),
            ...(d.oneOf ? { oneOf: d.oneOf } : {}),
            ...(d.unique ? { unique: true } : {}),
            ...(d.identity ? { identity: true } : {}),
          };
          return col;
        });
        const pk = opts.primaryKey ?? Object.entries(columns).filter(([, s]) => s.data.primaryKey).map(([n]) => n);
        // Register before running check callbacks so they can read the row.
        tables.set(name, { kind: 'table', name, columns: cols, primaryKey: pk, checks: [], indexes: [], origin: { path } });
        const checks = Object.entries(opts.checks ?? {}).map(([checkName, fn]) => ({
          name: checkName,
          condition: within(`tables.${name}.checks.${checkName}`, () => fn(rowOf(name, ROW_SCOPE) as never).node),
        }));
        const indexes = (opts.indexes ?? []).map((index, i) => indexNode(name, index as IndexSpec, i));
        tables.set(name, { ...tables.get(name)!, checks, indexes });
      });
      return { name, columns };
    },

    counter(table, column, spec) {
      const tname = derivedColumn('counter', table as TableHandle<Columns>, column, spec as unknown as CounterSpec<Columns>, { type: 'integer', default: { kind: 'literal', value: 0 } });
      return { table: tname, column, of: (row) => (row as unknown as Record<string, E>)[column]! };
    },

    keyList(table, column, spec) {
      const tname = derivedColumn('keyList', table as TableHandle<Columns>, column, spec as unknown as CounterSpec<Columns>, {
        type: 'text[]',
        default: { kind: 'literal', value: '{}', type: 'text[]' },
        list: { value: spec.value, scope: spec.scope },
      });
      return {
        table: tname,
        column,
        of: (row) => ({ in: (set: E) => new E({ kind: 'any-in-set', items: [(row as unknown as Record<string, E>)[column]!.node], set: set.node, spread: true }) }),
        keysOf: (scope, values) => new E({ kind: 'list-keys', table: tname, column, scope: toNode(scope), values: values.node }),
      };
    },

    index(table, index) {
      const tname = within('index()', () => tableName(table as TableHandle<Columns>, 'index()'));
      const node = tables.get(tname);
      if (!node) return;
      tables.set(tname, { ...node, indexes: [...node.indexes, indexNode(tname, index as IndexSpec, node.indexes.length)] });
    },

    identity(table, opts = {}) {
      within('identity', () => {
        const name = tableName(table, 'the identity');
        const column = opts.column ?? 'id';
        const spec = specs.get(name)?.[column];
        if (!spec) {
          problem('unknown-column', `the identity column "${name}.${column}" does not exist`, 'pass { column } naming the key of the users table');
          return;
        }
        identity = { table: name, column, type: spec.data.type, argument: opts.argument ?? `${name.replace(/s$/, '')}_id` };
      });
    },

    me: new E({ kind: 'session-user' }),

    fact(name, value, opts = {}) {
      facts.push({
        kind: 'fact',
        name,
        type: opts.type ?? '',
        expr: value.node,
        ...(opts.description ? { description: opts.description } : {}),
        ...(opts.planHint === false || typeof opts.planHint === 'object' ? { planHint: opts.planHint } : {}),
        origin: { path: `facts.${name}` },
      });
      return new E({ kind: 'fact', name });
    },

    from(table, spec) {
      const name = tableName(table, 'from()');
      const scope = `q${++scopeCounter}`;
      const built = spec(rowOf(name, scope));
      return {
        kind: 'query',
        scope,
        table: name,
        ...(built.where ? { where: built.where.node } : {}),
        ...(built.select ? { select: built.select.node } : {}),
        ...(built.distinct ? { distinct: true } : {}),
      };
    },

    hierarchy(name, opts) {
      within(`hierarchies.${name}`, () => {
        const table = tableName(opts.table, `hierarchy "${name}"`);
        for (const col of [opts.child, opts.parent]) {
          if (!(col in (specs.get(table) ?? {}))) problem('unknown-column', `hierarchy "${name}": table "${table}" has no column "${col}"`, 'name the child and parent columns of the edge');
        }
        hierarchies.push({ kind: 'hierarchy', name, table, child: opts.child, parent: opts.parent, origin: { path } });
      });
      const set = (direction: 'descendants' | 'ancestors') => (of: Value, o: { includeSelf?: boolean } = {}) =>
        new E({ kind: 'hierarchy-set', hierarchy: name, direction, of: toNode(of), includeSelf: o.includeSelf ?? false });
      return { name, descendantsOf: set('descendants'), ancestorsOf: set('ancestors') };
    },

    policy(table, name, spec) {
      const tname = within(`policies "${name}"`, () => tableName(table, `policy "${name}"`));
      const key = `${tname}.${spec.for}`;
      const index = policyCounts.get(key) ?? 0;
      policyCounts.set(key, index + 1);
      within(`${key}[${index}] "${name}"`, () => {
        const row = rowOf<Columns>(tname, ROW_SCOPE);
        const using = spec.using ? spec.using(row as never).node : undefined;
        const check = spec.check ? spec.check(row as never).node : undefined;
        policies.push({
          kind: 'policy',
          name,
          table: tname,
          command: spec.for,
          mode: spec.restrictive ? 'restrictive' : 'permissive',
          ...(using ? { using } : {}),
          ...(check ? { check } : {}),
          ...(spec.description ? { description: spec.description } : {}),
          ...(spec.lookup ? { lookup: true as const } : {}),
          origin: { path },
        });
      });
    },

    guardColumns(table, name, spec) {
      const tname = within(`guards "${name}"`, () => tableName(table, `column guard "${name}"`));
      within(`${tname}.guards "${name}"`, () => {
        const cols = specs.get(tname) ?? {};
        for (const c of spec.columns) if (!(c in cols)) problem('unknown-column', `table "${tname}" has no column "${c}"`, `use one of: ${Object.keys(cols).join(', ')}`);
        const when = spec.when(rowOf(tname, OLD_SCOPE) as never, rowOf(tname, NEW_SCOPE) as never).node;
        guards.push({ kind: 'column-guard', name, table: tname, columns: spec.columns, when, message: spec.message, origin: { path } });
      });
    },

    onWrite(table, name, spec) {
      const tname = within(`onWrite "${name}"`, () => tableName(table, `write rule "${name}"`));
      within(`${tname}.onWrite "${name}"`, () => {
        const oldRow = rowOf(tname, OLD_SCOPE) as never;
        const newRow = rowOf(tname, NEW_SCOPE) as never;
        const when = spec.when ? spec.when(oldRow, newRow).node : undefined;
        const set = assignments(spec.set?.(oldRow, newRow) as Partial<Record<string, Value>>, tname);
        let alsoUpdate: WriteRuleNode['alsoUpdate'];
        if (spec.alsoUpdate) {
          const target = tableName(spec.alsoUpdate.table as TableHandle<Columns>, `write rule "${name}"`);
          const scope = `u${++scopeCounter}`;
          const targetRow = rowOf(target, scope) as never;
          alsoUpdate = {
            table: target,
            scope,
            set: assignments(spec.alsoUpdate.set(targetRow, newRow) as Partial<Record<string, Value>>, target),
            where: spec.alsoUpdate.where(targetRow, oldRow, newRow).node,
          };
        }
        writeRules.push({
          kind: 'write-rule',
          name,
          table: tname,
          events: spec.events,
          ...(when ? { when } : {}),
          set,
          ...(alsoUpdate ? { alsoUpdate } : {}),
          ...(spec.description ? { description: spec.description } : {}),
          origin: { path },
        });
      });
    },

    reportingView(name, spec) {
      const tname = tableName(spec.table as TableHandle<Columns>, `reporting view "${name}"`);
      within(`views.${name}`, () => {
        const columns = Object.entries(spec.columns(rowOf(tname, ROW_SCOPE) as never)).map(([column, value]) => ({ name: column, value: value.node }));
        reportingViews.push({ kind: 'reporting-view', name, table: tname, columns, ...(spec.description ? { description: spec.description } : {}), origin: { path } });
      });
    },

    seed(table, rows) {
      const tname = tableName(table as TableHandle<Columns>, 'seed()');
      within(`seeds.${tname}`, () => {
        const cols = specs.get(tname) ?? {};
        for (const row of rows) for (const c of Object.keys(row)) if (!(c in cols)) problem('unknown-column', `table "${tname}" has no column "${c}"`, `use one of: ${Object.keys(cols).join(', ')}`);
        seeds.push({ kind: 'seed', table: tname, rows: rows as SeedNode['rows'], origin: { path } });
      });
    },

    membershipFunction(name, spec) {
      membershipFunctions.push({
        kind: 'membership-function',
        name,
        argument: spec.argument,
        type: spec.type,
        set: spec.set.node,
        ...(spec.description ? { description: spec.description } : {}),
        origin: { path: `functions.${name}` },
      });
    },

    everyRowWhen(table, condition, options) {
      const tname = tableName(table, 'everyRowWhen()');
      return new E({
        kind: 'every-row-when',
        table: tname,
        when: condition.node,
        ...(options?.mostRows ? { mostRows: true as const } : {}),
        ...(options?.shortcut ? { shortcut: true as const } : {}),
      });
    },

    maskedView(name, spec) {
      const tname = tableName(spec.table as TableHandle<Columns>, `masked view "${name}"`);
      within(`views.${name}`, () => {
        const cols = specs.get(tname) ?? {};
        for (const c of spec.keep) if (!(c in cols)) problem('unknown-column', `table "${tname}" has no column "${c}"`, `use one of: ${Object.keys(cols).join(', ')}`);
        maskedViews.push({
          kind: 'masked-view',
          name,
          table: tname,
          scope: ROW_SCOPE,
          keep: spec.keep,
          masks: assignments(spec.masks as Partial<Record<string, Value>>, tname),
          flagColumn: spec.flagColumn ?? 'restricted',
          showMaskedWhen: spec.showMaskedWhen.node,
          ...(spec.description ? { description: spec.description } : {}),
          origin: { path },
        });
      });
    },
  };

  build(m);

  const model: ModelNode = {
    kind: 'model',
    schema,
    file: '<unknown>',
    ...(options.description ? { description: options.description } : {}),
    ...(identity ? { identity } : {}),
    tables: [...tables.values()],
    hierarchies,
    facts,
    policies,
    guards,
    writeRules,
    maskedViews,
    seeds,
    reportingViews,
    membershipFunctions,
    counters,
    buildProblems: problems,
  };
  return deepFreeze(model);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export function isModel(value: unknown): value is ModelNode {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'model';
}

// The policy model: a small union of plain, readonly, `kind`-tagged nodes.
// The DSL builds these; validation reads them; emitters turn them into SQL.
// Nothing here is SQL text except the explicit `raw` escape hatch.

export type Command = 'select' | 'insert' | 'update' | 'delete';
export const COMMANDS: readonly Command[] = ['select', 'insert', 'update', 'delete'];

/** A PostgreSQL type name as printed, e.g. `bigint`, `text`, `numeric(12,2)`, `bigint[]`. */
export type SqlType = string;

/** Where a node was declared: a path inside the model, e.g. `contacts.select[2]`. The file is the model's. */
export interface Origin {
  readonly path: string;
}

// ---------------------------------------------------------------- tables

export interface ColumnNode {
  readonly kind: 'column-def';
  readonly name: string;
  readonly type: SqlType;
  readonly nullable: boolean;
  readonly default?: Expr;
  readonly references?: { readonly table: string; readonly column: string; readonly onDelete?: 'cascade' | 'set null' | 'restrict' };
  /** Allowed values, printed as a CHECK constraint. */
  readonly oneOf?: readonly (string | number)[];
  readonly unique?: boolean;
  readonly identity?: boolean;
}

export interface TableNode {
  readonly kind: 'table';
  readonly name: string;
  readonly columns: readonly ColumnNode[];
  readonly primaryKey: readonly string[];
  readonly checks: readonly { readonly name: string; readonly condition: Expr }[];
  /** Extra indexes; with `where` a partial index (its predicate reads only the row's columns). */
  readonly indexes: readonly { readonly columns: readonly string[]; readonly where?: Expr; readonly name?: string }[];
  readonly origin: Origin;
}

// ---------------------------------------------------------------- expressions

export type CompareOp = '=' | '<>' | '<' | '<=' | '>' | '>=';

/** A row source inside an expression: `from(table)` with an alias the emitter assigns. */
export interface QueryNode {
  readonly kind: 'query';
  /** Unique within one model; column refs point at it. Printed as a short alias. */
  readonly scope: string;
  readonly table: string;
  readonly where?: Expr;
  readonly select?: Expr;
  readonly distinct?: boolean;
}

export type Expr =
  | { readonly kind: 'column'; readonly scope: string; readonly table: string; readonly column: string }
  /** A property read on a row proxy that names no column: kept so validation can report it with its path. */
  | { readonly kind: 'unknown-column'; readonly table: string; readonly column: string }
  | { readonly kind: 'literal'; readonly value: string | number | boolean | null; readonly type?: SqlType }
  | { readonly kind: 'session-user' }
  | { readonly kind: 'fact'; readonly name: string }
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'distinct-from'; readonly negated: boolean; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'in-set'; readonly item: Expr; readonly set: Expr }
  /** Some non-NULL one of several columns of the row is in `set` (`anyOf(…).in(set)`): printed as
   *  `ARRAY[cols] && set`, which one GIN index over that array answers (and the set is computed once).
   *  With `spread`, `items` is one array column of the row (a key list, m.keyList) whose elements
   *  are tested: `col && set`. */
  | { readonly kind: 'any-in-set'; readonly items: readonly Expr[]; readonly set: Expr; readonly spread?: true }
  /** Every one of several values is in `set` (`allOf(…).in(set)`): printed as `ARRAY[values] <@ set`,
   *  the set read once. */
  | { readonly kind: 'all-in-set'; readonly items: readonly Expr[]; readonly set: Expr }
  | { readonly kind: 'is-null'; readonly negated: boolean; readonly expr: Expr }
  | { readonly kind: 'and'; readonly items: readonly Expr[] }
  | { readonly kind: 'or'; readonly items: readonly Expr[] }
  | { readonly kind: 'not'; readonly item: Expr }
  | { readonly kind: 'exists'; readonly query: QueryNode }
  | { readonly kind: 'array-of'; readonly query: QueryNode }
  | { readonly kind: 'scalar-of'; readonly query: QueryNode }
  | { readonly kind: 'array'; readonly items: readonly Expr[]; readonly type?: SqlType }
  | { readonly kind: 'set-union'; readonly items: readonly Expr[] }
  | { readonly kind: 'hierarchy-set'; readonly hierarchy: string; readonly direction: 'descendants' | 'ancestors'; readonly of: Expr; readonly includeSelf: boolean }
  | { readonly kind: 'case'; readonly branches: readonly { readonly when: Expr; readonly then: Expr }[]; readonly else: Expr }
  | { readonly kind: 'coalesce'; readonly items: readonly Expr[] }
  | { readonly kind: 'array-position'; readonly array: readonly string[]; readonly item: Expr }
  /** The keys a key list (m.keyList on `table`.`column`) holds for `scope` and each non-NULL element
   *  of the set `values`: what a row's list holds when its scope column is `scope` and rows of the
   *  listed table name it with those values. A text[]. */
  | { readonly kind: 'list-keys'; readonly table: string; readonly column: string; readonly scope: Expr; readonly values: Expr }
  | { readonly kind: 'raw'; readonly sql: string; readonly type: SqlType; readonly reason: string }
  /** "Every row of `table` when `when` holds", printed as `pk >= (SELECT CASE WHEN … THEN <min> END)`:
   *  an index range condition on the primary key instead of a bare boolean OR'd into the policy. */
  | {
      readonly kind: 'every-row-when';
      readonly table: string;
      readonly when: Expr;
      /** Declared to admit most of the table when `when` holds, even ANDed with conditions on the row (planner hints only). */
      readonly mostRows?: true;
      /** Declared to admit no row the policy's other arms do not: it only lets a statement stop there (planner hints only). */
      readonly shortcut?: true;
    };

export type ExprKind = Expr['kind'];

// ---------------------------------------------------------------- model-level nodes

/** A hierarchy stored as child → parent edges: a self-referencing table (offices.parent_id) or an
 *  edge table (team_members.member_id → team_id). Cycles in the data are tolerated everywhere. */
export interface HierarchyNode {
  readonly kind: 'hierarchy';
  readonly name: string;
  readonly table: string;
  readonly child: string;
  readonly parent: string;
  readonly origin: Origin;
}

/** A value about the acting user computed once per statement by a generated function. */
export interface FactNode {
  readonly kind: 'fact';
  readonly name: string;
  readonly type: SqlType;
  readonly expr: Expr;
  readonly description?: string;
  /**
   * false: set_session does not compute it for a planner hint; `few`: it is small with at most
   * this many elements (generator/emit/hints.ts; default FEW_ELEMENTS).
   */
  readonly planHint?: false | { readonly few: number };
  readonly origin: Origin;
}

export interface PolicyNode {
  readonly kind: 'policy';
  readonly name: string;
  readonly table: string;
  readonly command: Command | 'all';
  readonly mode: 'permissive' | 'restrictive';
  readonly using?: Expr;
  readonly check?: Expr;
  readonly description?: string;
  /** Planned as a table reached by joins: see PolicySpec.lookup and emit/hints.ts. */
  readonly lookup?: true;
  readonly origin: Origin;
}

/** "These columns may not change for these users": a BEFORE UPDATE trigger (see emit/triggers). */
export interface ColumnGuardNode {
  readonly kind: 'column-guard';
  readonly name: string;
  readonly table: string;
  readonly columns: readonly string[];
  /** Evaluated with `old`/`new` scopes and facts; when true, a change to a guarded column is refused. */
  readonly when: Expr;
  readonly message: string;
  readonly origin: Origin;
}

/** Derived values and side effects of a write, run as a definer trigger. */
export interface WriteRuleNode {
  readonly kind: 'write-rule';
  readonly name: string;
  readonly table: string;
  readonly events: readonly ('insert' | 'update')[];
  readonly when?: Expr;
  /** BEFORE: assignments to the new row. */
  readonly set: readonly { readonly column: string; readonly value: Expr }[];
  /** AFTER: an UPDATE of another table. */
  readonly alsoUpdate?: { readonly table: string; readonly scope: string; readonly set: readonly { readonly column: string; readonly value: Expr }[]; readonly where: Expr };
  readonly description?: string;
  readonly origin: Origin;
}

/** A view that shows every row, with columns masked on the rows the caller may not see. */
export interface MaskedViewNode {
  readonly kind: 'masked-view';
  readonly name: string;
  readonly table: string;
  readonly scope: string;
  /** Columns shown as they are on masked rows. */
  readonly keep: readonly string[];
  /** Replacement values on masked rows (others become NULL). */
  readonly masks: readonly { readonly column: string; readonly value: Expr }[];
  /** The name of the boolean column that says a row is masked. */
  readonly flagColumn: string;
  /** When true for the acting user, masked rows are shown; otherwise only visible rows. */
  readonly showMaskedWhen: Expr;
  readonly description?: string;
  readonly origin: Origin;
}

/** A view for reporting tools: the rows of `table` the caller may see (security_invoker, so the
 *  caller's own row-level security applies to the table and to every sub-select), with columns
 *  computed from expressions over the row. */
export interface ReportingViewNode {
  readonly kind: 'reporting-view';
  readonly name: string;
  readonly table: string;
  readonly columns: readonly { readonly name: string; readonly value: Expr }[];
  readonly description?: string;
  readonly origin: Origin;
}

/**
 * A column of `table` that counts the rows of `from` whose `key` names the row (`key` is a foreign
 * key to the table's single-column primary key). Triggers keep it current (see emit/counters), so
 * a rule such as "assigned to nobody" is `count = 0`, which a partial index can answer, instead of
 * an anti-join run on every statement.
 */
export interface CounterNode {
  readonly kind: 'counter';
  /** The table that holds the counter column. */
  readonly table: string;
  readonly column: string;
  /** The table whose rows are counted. */
  readonly from: string;
  readonly key: string;
  /**
   * A key list (m.keyList) instead of a count: the column is a text[] holding, for each row of
   * `from` that names the row, one key made of the row's own `scope` column and that row's `value`
   * column (see emit/counters.ts, listKey). `(key, value)` is unique in `from`.
   */
  readonly list?: { readonly value: string; readonly scope: string };
  readonly description?: string;
  readonly origin: Origin;
}

/** Rows a migration ships (reference data such as predefined roles). */
export interface SeedNode {
  readonly kind: 'seed';
  readonly table: string;
  readonly rows: readonly Readonly<Record<string, string | number | boolean | null>>[];
  readonly origin: Origin;
}

/** `<schema>.<name>(value) returns boolean`: is the value in a per-user set fact? For applications
 *  to ask questions such as "may I bulk-update?" with the same identity the policies use. */
export interface MembershipFunctionNode {
  readonly kind: 'membership-function';
  readonly name: string;
  readonly argument: string;
  readonly type: SqlType;
  readonly set: Expr;
  readonly description?: string;
  readonly origin: Origin;
}

export interface IdentityNode {
  readonly table: string;
  readonly column: string;
  readonly type: SqlType;
  /** Name of the set_session argument. */
  readonly argument: string;
}

export interface ModelNode {
  readonly kind: 'model';
  readonly schema: string;
  readonly file: string;
  readonly description?: string;
  readonly identity?: IdentityNode;
  readonly tables: readonly TableNode[];
  readonly hierarchies: readonly HierarchyNode[];
  readonly facts: readonly FactNode[];
  readonly policies: readonly PolicyNode[];
  readonly guards: readonly ColumnGuardNode[];
  readonly writeRules: readonly WriteRuleNode[];
  readonly maskedViews: readonly MaskedViewNode[];
  readonly seeds: readonly SeedNode[];
  readonly reportingViews: readonly ReportingViewNode[];
  readonly membershipFunctions: readonly MembershipFunctionNode[];
  readonly counters: readonly CounterNode[];
  /** Problems the DSL noticed while building (unknown names); validation reports them with the rest. */
  readonly buildProblems: readonly Problem[];
}

export interface Problem {
  readonly code: string;
  /** Filled in by validation from the model's file. */
  readonly file?: string;
  readonly path: string;
  readonly message: string;
  readonly fix: string;
}

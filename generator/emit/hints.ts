// Planner hints: the acting user's shape, told to the planner.
//
// The planner cannot see a fact's value (an InitPlan): it estimates `office_id = any(<fact>)` as
// ten elements, whoever acts. For an enterprise user with 1,111 offices that is about right; for
// an agent whose array is empty it is 1% of the table instead of none, so `ORDER BY id LIMIT 50`
// walks the primary key and filters a million rows (100–400 ms) where a bitmap of the agent's
// few hundred rows and a sort would take 1 ms. And a prepared statement keeps whichever plan its
// first user got: an agent's plan made the root user's first page take 4.5 s.
//
// So an arm `col = any(<fact>)` on a non-key column, in the USING of a read policy, is printed as
//
//   col = any(<fact>) AND (NOT (<schema>.plan_hint_<fact>() [AND <marks below>]) OR (col >= (SELECT <min>) AND col <= (SELECT <max>)))
//
// A type with no greatest value, text, gets `col >= ALL((SELECT '{}'::text[])::text[])` instead:
// ALL over no elements, true for every row (NULL included), compares nothing (no collation can
// matter), and the planner, which cannot see the array, estimates it as ten unknown one-sided
// comparisons that must all hold (a third each: 0.333^10, about 2e-5). It is a Filter, not an
// index condition, but the estimate is what decides the plan. It replaced a range up to the set's
// greatest element, which computed the fact a second time for each column (Collect!'s four text
// routing arms called my_principal_ids eight times per statement; since they are one anyOf arm,
// once, and its hint is the containment below).
//
// An `anyOf(cols).in(<fact>)` arm, `ARRAY[cols] && <fact>`, gets `ARRAY[cols] @> (SELECT '{}'::T[])`
// whatever the type: every array contains the empty one, NULL elements included (a range on a
// column would drop a row that matches through another column while that one is NULL). Since it
// bounds no single column, the key may be among the columns, and a type with no least value
// (boolean) gets it too. It is an
// index condition on the arm's own GIN index, never on a btree of one column, and the planner,
// which cannot see the array, estimates it as a containment (0.5%), so the arm's bitmap counts
// as narrow where it is built. (Until migration 0144 it was `>= ALL` on the first column: a
// Filter, which left the bitmap's estimate at overlap's 1%, so a generic plan of a keyset page
// ANDed it with a bitmap of a third of the primary key: Collect!'s locked-out operator, 24 ms
// against 1 ms.) GIN does not read the whole index for a key with no entries when the scan has
// another key (PostgreSQL 13 and later): it checks it on the rows the overlap finds.
//
// - plan_hint_<fact>() is IMMUTABLE with no arguments, so PostgreSQL folds it while planning. It
//   is true when the transaction's search_path names a schema rg_plan_<schema>_few_<fact> (empty
//   but for its marker view, see markHeld), which set_session appends when the fact has at most
//   FEW_ELEMENTS elements for the user it sets. A fact declared with `planHint: false` gets none.
//   The IMMUTABLE label is true only of what PostgreSQL does with it here, folding it into a plan;
//   it must never be used where a value is stored (an index, a generated column) or cached by
//   PL/pgSQL.
// - No hint: `true OR x` folds to true and the conjunct vanishes: the plan is exactly as without.
// - Hint: the range holds for every value the arm admits (a type's least and greatest values), and
//   it is an index condition on the arm's own index (no Filter), but with bounds the planner cannot
//   see it counts as a narrow range (0.5%), which is what this user's arm is. On text, ALL of no
//   elements holds for every row, as a Filter the planner estimates at ~2e-5. (PostgreSQL's
//   documentation says ALL with a NULL on the left is "ordinarily" NULL; the executor,
//   ExecEvalScalarArrayOp, returns TRUE for an empty array before it looks at the left side, and
//   test/plan/collect.test.ts checks it on rows with NULL routing fields.)
// - Either way `A AND (NOT h OR range)` has A's value in three-valued logic (when A is true the
//   column equals an element, so the range is true; an anyOf arm's `@>` is true for every row):
//   a wrong, stale or forged hint changes a plan, never a row.
// - PostgreSQL re-plans a cached statement when the search_path has changed, so a prepared
//   statement is planned for the marks of the user acting now, never kept from its first user
//   (a connection that alternates users of different classes re-plans at each change).
// - Every role may use the mark schemas (USAGE to PUBLIC; each holds a view of no columns that
//   grants nothing): a mark function finds its marker view by name, which needs USAGE for whoever
//   plans the statement (see markHeld).
//
// Not while a read policy on the same table keeps an "every row when" arm: its range on the key
// (NULL unless the condition holds) is estimated as 0.5% of the table whoever acts, and
// PostgreSQL merges every further range on the key into that one estimate, so no conjunct can
// lower it (measured on PolicyCenter's accounts: the agency user's first page kept its
// primary-key walk).
//
// That arm itself is the other kind of hint, and so is every arm with a guard: a condition
// without which it is false or NULL. An every-row arm's condition is one; so is the guard of
// `col = CASE WHEN <guard> THEN v END` or `col = any(CASE WHEN <guard> THEN <set> END)` (no ELSE,
// or ELSE NULL: SuperOffice's scope arms, `CASE WHEN 'own' = any(<scopes>) THEN me END`), and of
// an arm compared with, or whose set is, a fact defined that way (`when(<guard>, v)`: SmartOffice's
// enterprise offices and open office, Collect!'s principals). A guard that is a boolean fact,
// `'x' = any(<fact>)` (named `<fact>_has_x`) or `allOf('a', 'b').in(<fact>)` (`<fact>_has_a_b`: the
// rights matrix's every-scope arm), gets a mark; any other guard of a fact's definition gets one
// named after the fact, `<fact>_when`. Such an arm, reached from the clause through AND
// and OR only, is printed as
//
//   (NOT (<schema>.plan_fold_<fact>() [AND <schema>.plan_hint_<set fact>() ...]) AND id >= (SELECT CASE WHEN <fact> THEN <min> END) AND id <= <max>)
//
// (for an every-row arm; a compared arm likewise, its test before the comparison; a test of
// several marks, here and in a range's conjunct, is one call of <schema>.plan_when_<hash>(), see
// marksTest) and
// set_session appends the schema rg_plan_<schema>_not_<guard> when the guard is not true for the
// user it sets (false or NULL: the arm is then false or NULL). When every listed mark is
// there the planner folds the arm to false and drops it, so the user's plan is made from the arms
// that can hold (the agency user's first page: a walk of the primary key filtering 400,000
// accounts becomes a probe of the producer-code index), and the fact is not computed at all.
// - In the USING of a read, the list also names the "few" mark of every set fact of the clause's
//   set arms (for a guarded set: its guard's not-true mark or its fact's few mark): a user with
//   many rows needs an every-row arm's 0.5% to keep `ORDER BY id LIMIT n` on the key
//   (PolicyCenter's 10% user: 4 ms by the key, 78 ms by a bitmap of its 96,000 rows). A set whose
//   size no mark tells, or a fact declared `planHint: false`, keeps the arms for everyone. Then,
//   and only then, the clause's set arms get their range hints too, and a range also waits for
//   every every-row arm of its table's permissive reads to be dropped, by all the marks that drop
//   it (one that stays holds the key walk, which a range beside it would trade for a bitmap of the
//   user's many rows); a table with an every-row arm no mark drops gets no ranges. "Few" is at most
//   FEW_ELEMENTS elements, or what the fact says with `planHint: { few: n }` (SuperOffice's
//   secondary groups: 1, since a group holds a large share of the contacts).
// - Between the two (the guard not true, the sets many) the arm and what it is ANDed with are
//   still NULL, so a range on the key that is NULL for every row stands in for them, keeping the
//   estimate without their facts or their Filter; a guarded set or comparison arm stands in as
//   itself with a NULL value, and an anyOf arm as a NULL range on the key (see StandIn).
// - In WITH CHECK and in the USING of UPDATE and DELETE (which take no LIMIT) arms are dropped
//   by the not-true mark alone: there the estimate decides nothing, and the fact is not
//   computed. Every-row arms (a boolean fact, `'x' = any(<fact>)` or `allOf(…).in(<fact>)` as
//   the guard) always; guarded set and comparison arms only by a mark set_session computes
//   anyway, for a read's arm or an every-row arm (SmartOffice's agent: the enterprise and
//   open-office arms, two facts in USING and two in WITH CHECK of each update; SuperOffice's 36
//   create, update and delete scopes would each have cost every transaction a test, for the few
//   writes they spare). A clause that repeats a read's USING is printed as that read's instead
//   (twinRead), which PostgreSQL then applies once.
// Unlike the set arms' hints, this one decides rows, so what keeps it exact is:
// - The mark is set only when the arm cannot hold, and an arm reached through AND and OR only
//   can only shrink what a policy admits when it goes from NULL to false (three-valued AND and OR
//   are monotone; permissive policies are ORed, restrictive ones ANDed, for reading and writing
//   alike): with a correct mark every statement returns, changes and admits exactly the same rows.
// - A wrong mark can only hide rows. Whoever adds the schema to their own search_path loses rows
//   and gains none; a path without it, or with a relation of its marker's name earlier in the
//   path, keeps the arm.
// - The fact is read when set_session runs. A user who loses it loses the rows at once: without
//   the mark the arm is computed in each statement, as before. One who gains it later in the
//   transaction gains them in the next statement too: a write to a table a guard reads bumps a
//   sequence, and a not-true mark counts only while its value is the one set_session recorded
//   (see GUARDS_CHANGED). Plans PostgreSQL keeps in other transactions are the exception.
//
// The third kind says the opposite: a guard that is true. An every-row arm is then every row, but
// its range on the key still counts as 0.5% of the table, so a user who sees every row got the
// plans of one who sees a few (PolicyCenter's View All user: a join by a bitmap of the million
// accounts and a sort, 614 ms, where the owner walks the key for 50 rows in under 1 ms). So an
// every-row arm that a read's USING ORs with its other arms, reached through OR only (and not
// also, as the same DSL value, through an AND), whose guard has a name, is printed as
//
//   ((NOT (<its marks test, each group ORed with plan_true_<guard>()>) AND <key range>) OR (<schema>.plan_true_<guard>() AND (SELECT <guard>)))
//
// and set_session appends rg_plan_<schema>_is_<guard> when the guard is true. With the mark the
// planner keeps the second part, the guard alone, which it estimates as half the table like any
// boolean it cannot see, and plans like the owner's. Where the arm is ANDed with a condition on
// the row (Collect!'s open accounts) it keeps its range: there the narrow estimate served best (a
// true mark on Collect!'s open accounts made the 10% operator's ILIKE search a walk of the key,
// 176 -> 554 ms), unless the arm is declared `everyRowWhen(t, c, { mostRows: true })`: the rights
// matrix's "otherwise" scope (SuperOffice's "others", every row the other scopes do not match),
// whose level-2 user's count went 397 -> 192 ms and join 25.6 -> 2.3 ms with it.
// - Both parts are true exactly when the guard is: the range is NULL otherwise, the guard false or
//   NULL. Reached through AND and OR only (OR only, or AND too when declared `mostRows`), an
//   arm's NULL and false count the same (AND, OR and the policies' combination keep a row only
//   when something is true), so a missing, stale or forged true mark changes a plan, never a row.
//   Under NOT they would not (NOT false is true), and there no hint is printed.
//
// A fourth kind widens instead: a read policy declared `lookup: true` (a table reached by joins
// from rows that name its rows: PolicyCenter's producer codes from accounts, SuperOffice's
// companies from contacts). PostgreSQL estimates such a join as the referencing rows times the
// share of referenced rows it expects the user to see, as if the two were unrelated, where in
// fact a visible account's producer code is visible; expecting a few joined rows it sorts every
// visible account instead of walking their key (PolicyCenter's 10% user: 65 ms, B1 0.7 ms). So
// the USING gets one more arm, last:
//
//   OR (NOT (<every set of the clause few>) AND <key> >= (SELECT NULL::<key type>))
//
// NULL for every row: where it stands (the top of a read's USING, or of a write's clause printed
// as the read's: twinRead) NULL and false alike reject a row, so it admits nothing, whatever
// marks there are. The planner cannot see the NULL and counts a one-sided comparison as a third
// of the table. The test drops it while the clause's sets are
// all few (the lookup table's own pages want the narrow estimate then); a set whose size no mark
// tells keeps it for everyone.
//
// Reporting logins (bound by a DBA, never calling set_session) have no hint schemas in their path
// and keep the unhinted plans (a lookup read's widened one: without marks its arm stays).
import { createHash } from 'node:crypto';
import type { Command, Expr, ModelNode, PolicyNode } from '../model/nodes.ts';
import { elementOf, TypeResolver, typeMaximum, typeMinimum, UNKNOWN } from '../model/types.ts';
import { byCodePoint, ident, identifierBytes, literal, MAX_IDENTIFIER_BYTES, qualified } from '../sql/print.ts';
import { ROW_SCOPE } from '../dsl/model.ts';
import { closureWalkSize } from './closure.ts';
import { boundedRowCount, fuseArrayReads, printExpr, reaches, readsRowOnly, visit, visitThroughFacts, type ExprContext } from './expr.ts';
import { createFunction, factBody, factDefinitions, localVariable, type FactBodyParts, type FactDefinitions } from './functions.ts';
import { applicablePolicies } from './policies.ts';
import { APP_ROLE, DEFINER_ROLE, REPORTING_ROLE } from './roles.ts';
import { statement, type Section, type Statement } from './statement.ts';

/** A fact with at most this many elements marks its arms as narrow (see the file comment). */
export const FEW_ELEMENTS = 10;

/**
 * Where plan_marks counts a fact, every set the count reads on the way is cut at this many
 * elements: the count then costs little for a user with large sets, and it can only come out at
 * most FEW_ELEMENTS wrongly when over a hundred elements of a set lead to at most that many.
 */
const READ_SETS_CUT = 10 * FEW_ELEMENTS + 1;

/**
 * Guards change while marks are in use: a not-true mark is read when set_session runs, and a guard
 * granted later (by the user's own transaction, or committed by another while it is open) would
 * stay dropped until the next set_session, where the rules must read live data in the next
 * statement. So every write to a table a guard reads bumps this sequence, set_session records its
 * value before it computes the marks, and a not-true mark counts only while the value is the one
 * recorded. After a bump the arms are planned as if unmarked (computed, correct, slower) until the
 * next set_session; a bump that comes to nothing (a rollback, a write that changes no guard) only
 * costs that.
 * - Two bumps per write: a statement trigger at the write, which also takes the writing
 *   transaction's own marks out of its search_path (its prepared statements are then re-planned),
 *   and a deferred row trigger at its commit. A sequence is not transactional: a set_session that
 *   runs between the write and the commit reads the first bump but computes its marks from the
 *   rows before the write; the second retires them. What is left is the commit itself (and, under
 *   synchronous replication, its wait for the standby), during which a set_session can still read
 *   the last bump and the old rows.
 * - The bumps are setval(nextval()) by definer functions: app_user reads the sequence and cannot
 *   move it, and setval is written to the WAL at every call (nextval logs 32 values ahead), so a
 *   standby's set_session and marks follow the primary's bumps as they replay.
 * - Not covered: plans PostgreSQL keeps (prepared statements, PL/pgSQL queries) in a transaction
 *   other than the writer's are not re-planned by a bump and keep their set_session's marks; writes
 *   that fire no trigger (session_replication_role = replica, as logical replication applies them;
 *   disabled triggers; a closure rebuild); raw SQL in a guard that reads outside the model.
 */
export const GUARDS_CHANGED = 'rg_guards_changed';

/** The deferred trigger function that bumps the sequence again at the writer's commit. */
export const GUARDS_COMMITTED = 'rg_guards_committed';

/** The statement trigger function that takes the writing transaction's own marks out of its path. */
export const GUARDS_UNMARK = 'rg_guards_unmark';

/** The transaction-local setting in which set_session records the sequence's value. */
export function guardsSeenSetting(schema: string): string {
  return `rowguard.${schema}_guards_seen`;
}

/** The sequence's value now (0 before its first bump), as text. */
function guardsNow(schema: string): string {
  return `COALESCE(pg_catalog.pg_sequence_last_value(${sequenceOid(schema)}), 0)::pg_catalog.text`;
}

/** The sequence as a regclass, every name qualified (it is also read by a definer function). */
function sequenceOid(schema: string): string {
  return `${literal(qualified(schema, GUARDS_CHANGED))}::pg_catalog.regclass`;
}

/** True while no guard's table has been written since set_session (never NULL: an unset setting is ''). */
function guardsUnchanged(schema: string): string {
  return `(COALESCE(pg_catalog.current_setting(${literal(guardsSeenSetting(schema))}, true), '') OPERATOR(pg_catalog.=) ${guardsNow(schema)})`;
}

/** set_session's first step: record the sequence's value before the marks are computed. */
export function guardsSeenSql(model: ModelNode): string[] {
  if (planHints(model).folds.length === 0) return [];
  return [
    `  -- Not-true marks count while no table a guard reads is written (see ${model.schema}.${GUARDS_CHANGED}).`,
    `  PERFORM pg_catalog.set_config(${literal(guardsSeenSetting(model.schema))}, ${guardsNow(model.schema)}, true);`,
  ];
}

/**
 * The tables whose rows decide the guards: those the guards' facts read, through the facts those
 * read, and a walk's table. Raw SQL could read any: then every table of the model.
 */
function guardTables(model: ModelNode, guards: readonly Expr[], facts: FactDefinitions): string[] {
  const tables = new Set<string>();
  const seen = new Set<string>();
  let opaque = false;
  const read = (e: Expr): void =>
    visitThroughFacts(
      e,
      facts,
      (n) => {
        if (n.kind === 'exists' || n.kind === 'array-of' || n.kind === 'scalar-of') {
          tables.add(n.query.table);
        } else if (n.kind === 'hierarchy-set') {
          const h = model.hierarchies.find((x) => x.name === n.hierarchy);
          if (h) tables.add(h.table);
          else opaque = true;
        } else if (n.kind === 'raw') {
          opaque = true;
        }
      },
      seen,
    );
  guards.forEach(read);
  return (opaque ? model.tables.map((t) => t.name) : [...tables]).sort(byCodePoint);
}

/** Fact names may not start with it: the hint functions are named with it. */
export const PLAN_HINT_PREFIX = 'plan_hint_';

/** Fact names may not start with it either: the functions that drop every-row arms are named with it. */
export const PLAN_FOLD_PREFIX = 'plan_fold_';

/** Nor with this: the functions that test several marks at once are named with it. */
export const PLAN_WHEN_PREFIX = 'plan_when_';

/** Nor with this: the functions that read an every-row arm as its guard are named with it. */
export const PLAN_TRUE_PREFIX = 'plan_true_';

/** The beginning of every mark schema's name (`rg_plan_<schema>_few_<fact>` and its kin), which a model's own schema may not take. */
export const MARK_SCHEMA_PREFIX = 'rg_plan_';

export interface HintedFact {
  readonly fact: string;
  /** The IMMUTABLE function the planner folds, in the model's schema. */
  readonly hint: string;
  /** The empty schema set_session puts in the search_path when the fact is small. */
  readonly fewSchema: string;
  /** Small: at most this many elements (FEW_ELEMENTS unless the fact says `planHint: { few }`). */
  readonly few: number;
}

/**
 * A guard: the condition without which an arm is false or NULL (an every-row arm's condition, or
 * the one branch of `CASE WHEN <guard> THEN v END` that an arm compares with). The planner drops
 * such arms while set_session finds the guard not true (see the file comment).
 */
export interface FoldedGuard {
  /** A boolean fact `f`, or `f_has_x` for `'x' = any(f)`. */
  readonly name: string;
  readonly when: Expr;
  readonly hint: string;
  /** The empty schema set_session puts in the search_path when the guard is not true. */
  readonly notSchema: string;
  /** Named after this fact, whose definition it guards (`when(<guard>, v)`), having no name of its own. */
  readonly of?: string;
}

/**
 * A guard of an every-row arm in a read's USING: while set_session finds it true, the planner
 * reads the arm as the guard itself (see the file comment).
 */
export interface TrueGuard {
  /** As a FoldedGuard's. */
  readonly name: string;
  readonly when: Expr;
  readonly hint: string;
  /** The empty schema set_session puts in the search_path when the guard is true. */
  readonly isSchema: string;
}

/** How a hinted arm is printed: a set arm gets a range that narrows its estimate, a guarded arm a test that drops it. */
export type HintedArm = RangeHint | FoldHint;

export interface RangeHint {
  readonly kind: 'range';
  /**
   * The range applies while every group has a hint that holds (as a fold's): the fact is few, and
   * the table's every-row arms are dropped.
   */
  readonly hints: readonly (readonly string[])[];
  /**
   * How the arm is narrowed: between bounds the planner cannot see through (sub-selects); for a
   * type with no greatest value, `>= ALL` of an empty array of `noneOf`; for an anyOf arm, its
   * array `@>` an empty array of `contains` (see the file comment).
   */
  readonly narrow: { readonly lower: string; readonly upper: string } | { readonly noneOf: string } | { readonly contains: string };
}

export interface FoldHint {
  readonly kind: 'fold';
  /**
   * Dropped when every group of `hints` has a hint that holds: the guard is not true, and each set
   * of the clause is small (or its own guard is not true).
   */
  readonly hints: readonly (readonly string[])[];
  /** A guarded set arm that stays is narrowed too. */
  readonly range?: RangeHint;
  /**
   * An every-row arm of a read's USING: the hint of its guard's true mark. The arm is printed as
   * the range, dropped while that mark is there as well, OR the mark and the guard itself.
   */
  readonly whenTrue?: string;
}

export interface PolicyHints {
  readonly using: ReadonlyMap<Expr, HintedArm>;
  /** Disjuncts of a read's USING printed with a stand-in (see StandIn). */
  readonly standIns: ReadonlyMap<Expr, StandIn>;
  readonly check: ReadonlyMap<Expr, HintedArm>;
  /** A `lookup` read's arm that widens its estimate (see the file comment). */
  readonly lookup?: LookupHint;
  /** The read whose USING this policy's USING repeats, printed as that read's (see twinRead). */
  readonly usingAs?: PolicyNode;
  /** The read whose USING this policy's WITH CHECK repeats, printed as that read's (see twinRead). */
  readonly checkAs?: PolicyNode;
}

/**
 * `OR (<test> AND <key> >= (SELECT NULL::<type>))`, NULL for every row: estimated as a third of
 * the table. Dropped while every group of `hints` has a mark that holds (each set of the clause
 * few); with no groups (a set no mark counts, no set arm but on the key) it stays for
 * everyone, reporting logins and roles without the marks included. On a composite key, its first
 * column.
 */
export interface LookupHint {
  readonly hints: readonly (readonly string[])[];
  readonly key: string;
  readonly type: string;
}

/**
 * A disjunct of a read's USING (a node reached through AND and OR whose parent is an OR, or the
 * clause itself) that ANDs an every-row arm, through AND only, with whatever else (SuperOffice's
 * "others": the range AND not mine AND not my groups'), where the arm is dropped only while its
 * guard is not true AND the clause's sets are few. For a user whose guard is not true but whose
 * sets are many the arm is NULL, yet it stayed, and with it the conditions beside it: fact calls
 * on every statement, and a Filter that rechecks the whole policy on every row a bitmap returns
 * (PostgreSQL drops that recheck only when the policy is exactly the OR of the bitmap's index
 * conditions). So the disjunct is printed as
 *
 *   (NOT <schema>.plan_fold_<guard>() AND <disjunct>)
 *   OR (<schema>.plan_fold_<guard>() AND <the arm's drop test> AND <key> >= (SELECT NULL::<type>) AND <key> <= <max>)
 *
 * Without the not-true mark the second part folds away and the first is the disjunct as before.
 * With it the first folds away, and the second is a range on the key that is NULL for every row
 * (admits nothing, where NULL and false alike reject) and that the planner estimates as the arm's
 * range was (0.5% of the table: the key walk it holds for users with many rows stays), computing
 * no fact; while the sets are few as well, the drop test folds it away too.
 * - Rows: the second part is never true, whatever the marks; the first drops the disjunct only
 *   while the guard's not-true mark is there, when the arm is NULL or false, and a wrong mark, as
 *   every not-true mark, can only hide rows, from whoever forged it. A mark that a later write
 *   to a guard's table has made stale no longer counts (GUARDS_CHANGED).
 */
export interface StandIn {
  /** The guard's not-true mark (its plan_fold_ function). */
  readonly notTrue: string;
  /** The arm's drop test: its fold hint's groups. */
  readonly hints: readonly (readonly string[])[];
  /** What stands in: a NULL range on the key, or (a guarded set or comparison arm) the arm with its guarded operand NULL. */
  readonly with: KeyStandIn | OperandStandIn;
}

export interface KeyStandIn {
  readonly kind: 'key';
  /** The table whose key the range is on. */
  readonly table: string;
  /**
   * The disjunct's other conjuncts that read the row alone (no fact, no identity, no query), kept
   * beside the range so the estimate stays the disjunct's (Collect!'s open accounts: no clerk and
   * no access; without them the 0.5% made the client-subtree user's ILIKE search a parallel walk
   * of the key, 34 -> 445 ms). Conjuncts that read facts are left out: they cost the calls.
   */
  readonly rowConditions: readonly Expr[];
}

/**
 * A guarded arm `col = any(<set NULL unless the guard holds>)` or `col = <value NULL unless…>`
 * stands in for itself as `col = any((SELECT NULL::<type>)::<type>)` or `col = (SELECT NULL::<type>)`:
 * NULL for every row, as the arm is then, estimated as the arm was (a value the planner cannot see),
 * computing nothing. An `anyOf(cols).in(<set>)` arm (Collect!'s routing arm, whose principals are
 * NULL for a client login) stands in as a NULL range on the key (KeyStandIn, no row conditions),
 * or where the key has no least and greatest value as `ARRAY[cols] @> (SELECT NULL::<type>)::<type>`
 * (see standing in expr.ts).
 */
export interface OperandStandIn {
  readonly kind: 'operand';
  /** The operand printed as NULL: an in-set arm's set, or a comparison's guarded side. */
  readonly operand: 'set' | 'left' | 'right';
  readonly type: string;
}

/** A guarded arm of a read that gets a stand-in: its guard's not-true mark, and the operand that stands in as NULL (none for an every-row arm). */
interface StandingArm {
  readonly notTrue: string;
  readonly operand?: Omit<OperandStandIn, 'kind'>;
}

/** A policy's hints while they are found. */
interface FoundHints {
  using: Map<Expr, HintedArm>;
  standIns: Map<Expr, StandIn>;
  check: Map<Expr, HintedArm>;
  lookup: LookupHint | undefined;
  usingAs?: PolicyNode;
  checkAs?: PolicyNode;
}

export interface PlanHints {
  /** By fact name. */
  readonly facts: readonly HintedFact[];
  /** By name. */
  readonly folds: readonly FoldedGuard[];
  /** By name. */
  readonly trues: readonly TrueGuard[];
  /** By policy: the nodes of its USING and WITH CHECK that get a conjunct. */
  readonly arms: ReadonlyMap<PolicyNode, PolicyHints>;
}

/**
 * The arms that get a hint, all reached from their clause through AND and OR only (under NOT a
 * narrower estimate would mean a wider one, and a dropped arm more rows):
 * - set arms `col = any(<set>)` on a column of the policy's row other than the first key column
 *   (a key arm is already estimated as ten rows), of a type with a least value, in the USING of
 *   reads, on a table where no every-row arm stays whoever acts, while the table's every-row arms
 *   are dropped: a range (for text, which has no greatest value, `>= ALL` of an empty array); and
 *   `anyOf(cols).in(<set>)` arms alike, with their array `@>` an empty array whatever its type;
 * - guarded arms (see the file comment and guardOf): a test that drops them.
 */
export function planHints(model: ModelNode): PlanHints {
  // The policies, the hint section and set_session each ask; the model does not change between.
  const known = computed.get(model);
  if (known) return known;
  const hints = findPlanHints(model);
  computed.set(model, hints);
  return hints;
}

const computed = new WeakMap<ModelNode, PlanHints>();

function findPlanHints(model: ModelNode): PlanHints {
  const types = new TypeResolver(model);
  const arms = new Map<PolicyNode, FoundHints>();
  const facts = new Map<string, HintedFact>();
  const folds = new Map<string, FoldedGuard>();
  const definitions = new Map(model.facts.map((f) => [f.name, f]));
  const optedOut = new Set(model.facts.filter((f) => f.planHint === false).map((f) => f.name));
  const fewOf = (fact: string) => {
    const hint = definitions.get(fact)?.planHint;
    return hint ? hint.few : FEW_ELEMENTS;
  };
  const armsOf = (policy: PolicyNode) => {
    const found: FoundHints = arms.get(policy) ?? { using: new Map(), standIns: new Map(), check: new Map(), lookup: undefined };
    arms.set(policy, found);
    return found;
  };
  const few = (fact: string) => {
    const found = facts.get(fact) ?? { fact, hint: fitName(`${PLAN_HINT_PREFIX}${fact}`), fewSchema: fitName(`${MARK_SCHEMA_PREFIX}${model.schema}_few_${fact}`), few: fewOf(fact) };
    facts.set(fact, found);
    return found.hint;
  };
  /** A guard's name: a boolean fact, `'x' = any(<fact>)` as `<fact>_has_x`, `allOf('a', 'b').in(<fact>)` as `<fact>_has_a_b`; others get no mark. */
  const guardName = (g: Expr): string | undefined => {
    if (g.kind === 'fact') return optedOut.has(g.name) ? undefined : g.name;
    // `'x' = any(<fact>)`: <fact>_has_x; `allOf('a', 'b').in(<fact>)` (the rights matrix's "every
    // scope"): <fact>_has_a_b.
    const values = g.kind === 'in-set' ? [g.item] : g.kind === 'all-in-set' ? g.items : [];
    const words = values.map((v) => (v.kind === 'literal' && typeof v.value === 'string' && /^[a-z0-9_]+$/.test(v.value) ? v.value : undefined));
    const set = (g.kind === 'in-set' || g.kind === 'all-in-set') && g.set.kind === 'fact' && !optedOut.has(g.set.name) ? g.set.name : undefined;
    return set !== undefined && words.length > 0 && words.every((w) => w !== undefined) ? `${set}_has_${words.join('_')}` : undefined;
  };
  const trues = new Map<string, TrueGuard>();
  /** Every guard's name, for its not-true and its true mark alike, and the guard it names. */
  const guardNames = new Map<string, string>();
  /**
   * The guard's name: a fact may itself be named like another guard's name, so the later one gets
   * a hash (and a counter, should that be taken too), and no two guards ever share a name, nor
   * one guard two (plan_fold_<name> and plan_true_<name> test the same guard).
   */
  const uniqueName = (g: Expr, name: string) => {
    const key = JSON.stringify(g);
    const hash = createHash('sha256').update(key).digest('hex').slice(0, 8);
    let unique = name;
    for (let n = 1; guardNames.has(unique) && guardNames.get(unique) !== key; n++) unique = `${name}_${hash}${n > 1 ? `_${n}` : ''}`;
    guardNames.set(unique, key);
    return unique;
  };
  const notTrue = (g: Expr, name: string, of?: string) => {
    const unique = uniqueName(g, name);
    const found = folds.get(unique) ?? { name: unique, when: g, hint: fitName(`${PLAN_FOLD_PREFIX}${unique}`), notSchema: fitName(`${MARK_SCHEMA_PREFIX}${model.schema}_not_${unique}`), ...(of ? { of } : {}) };
    folds.set(unique, found);
    return found.hint;
  };
  const isTrue = (g: Expr, name: string) => {
    const unique = uniqueName(g, name);
    const found = trues.get(unique) ?? { name: unique, when: g, hint: fitName(`${PLAN_TRUE_PREFIX}${unique}`), isSchema: fitName(`${MARK_SCHEMA_PREFIX}${model.schema}_is_${unique}`) };
    trues.set(unique, found);
    return found.hint;
  };
  /** `CASE WHEN <guard> THEN v END` (no ELSE, or ELSE NULL): its guard. */
  const caseGuard = (x: Expr) => (x.kind === 'case' && x.branches.length === 1 && x.else.kind === 'literal' && x.else.value === null ? x.branches[0]!.when : undefined);
  /**
   * A fact defined as `when(<guard>, v)` (a CASE like the above): NULL unless its guard holds, so
   * an arm compared with it, or whose set it is, is guarded too (SmartOffice's enterprise offices
   * and open office). A guard with no name of its own is named after the fact, `<fact>_when`.
   */
  const factGuard = (x: Expr): { when: Expr; name: string; of?: string } | undefined => {
    const definition = x.kind === 'fact' && !optedOut.has(x.name) ? definitions.get(x.name) : undefined;
    const when = definition && caseGuard(definition.expr);
    if (!when || x.kind !== 'fact') return undefined;
    const name = guardName(when);
    return name ? { when, name } : { when, name: `${x.name}_when`, of: x.name };
  };
  /**
   * The guard of an arm that is false or NULL unless its guard is true: an every-row arm, a
   * comparison with a guarded CASE or such a fact, a set arm whose set is one. `everyRowOnly` for
   * the places where only every-row arms are dropped.
   */
  const guardOf = (e: Expr, everyRowOnly: boolean): { when: Expr; name: string; of?: string; operand?: Expr } | undefined => {
    if (e.kind === 'every-row-when') {
      const name = guardName(e.when);
      return name ? { when: e.when, name } : undefined;
    }
    if (everyRowOnly) return undefined;
    // The operand that is NULL unless the guard holds (a CASE, else a fact defined as one).
    const operands = e.kind === 'compare' ? [e.right, e.left] : e.kind === 'in-set' || e.kind === 'any-in-set' ? [e.set] : [];
    for (const x of operands) {
      const when = caseGuard(x);
      if (when === undefined) continue;
      const name = guardName(when);
      return name ? { when, name, operand: x } : undefined;
    }
    for (const x of operands) {
      const guard = factGuard(x);
      if (guard) return { ...guard, operand: x };
    }
    return undefined;
  };
  const keyOf = (table: string) => model.tables.find((t) => t.name === table)?.primaryKey[0];
  /**
   * A set arm: `col = any(<set>)` on a column of the row other than the first key column, or
   * `anyOf(cols).in(<set>)` (`several`: its hint is on the columns' array, as `@>` an empty array,
   * never a range on one column, so the key may be among them and any type will do).
   */
  const setArm = (e: Expr, table: string): { set: Expr; column: string; several: boolean } | undefined => {
    if (e.kind !== 'in-set' && e.kind !== 'any-in-set') return undefined;
    const several = e.kind === 'any-in-set';
    const item = several ? e.items[0] : e.item;
    return item?.kind === 'column' && item.scope === ROW_SCOPE && (several || item.column !== keyOf(table)) ? { set: e.set, column: item.column, several } : undefined;
  };
  /** The set's fact, when set_session may count it. */
  const countable = (set: Expr) => (set.kind === 'fact' && !optedOut.has(set.name) && elementOf(types.of(set)) !== UNKNOWN ? set.name : undefined);
  /** `CASE WHEN <guard> THEN <fact> END`: the fact (the set holds its elements or none), when set_session may count it. */
  const guardedFact = (set: Expr) => (caseGuard(set) !== undefined && set.kind === 'case' ? countable(set.branches[0]!.then) : undefined);
  /**
   * What makes each set of a clause small enough to drop a guarded arm beside it, as groups of
   * marks registered on use: a counted fact is few, or a guarded set's guard is not true (or its
   * fact few). Undefined when a set is neither.
   */
  const smallSets = (clause: Expr, table: string): (() => string[])[] | undefined => {
    const found: (() => string[])[] = [];
    let unknown = false;
    eachArm(clause, (e) => {
      const arm = setArm(e, table);
      if (!arm) return;
      const fact = countable(arm.set);
      const guard = caseGuard(arm.set);
      const inGuard = guardedFact(arm.set);
      const name = guard && guardName(guard);
      if (fact) found.push(() => [few(fact)]);
      else if (guard && name && inGuard) found.push(() => [notTrue(guard, name), few(inGuard)]);
      else unknown = true;
    });
    return unknown ? undefined : found;
  };
  // Where a read's every-row arm stays (its guard true), it holds the key walk on its own; a set
  // arm's range beside it would lower the clause's estimate and trade that walk for a bitmap of
  // the user's many rows (Collect!'s operator who sees every open account: 3 ms by the key, 58 ms
  // by a bitmap). So a table's ranges wait for all its every-row arms to be dropped: their guards'
  // not-true marks, and the marks that say the clause's sets are few.
  const everyRowDrops = new Map<string, string[][]>();
  const narrow = (e: Expr, table: string, fold: HintedArm | undefined): HintedArm | undefined => {
    const arm = setArm(e, table);
    const fact = arm && (countable(arm.set) ?? guardedFact(arm.set));
    if (!arm || !fact) return undefined;
    const type = types.columnType(table, arm.column);
    const minimum = typeMinimum(type);
    const maximum = typeMaximum(type);
    if (minimum === undefined && !arm.several) return undefined;
    const element = elementOf(types.of(arm.set));
    const bound = arm.several
      ? { contains: element === UNKNOWN ? type : element }
      : maximum !== undefined
        ? { lower: `(SELECT ${minimum})`, upper: `(SELECT ${maximum})` }
        : { noneOf: type };
    const range: RangeHint = { kind: 'range', hints: distinctGroups([[few(fact)], ...(everyRowDrops.get(table) ?? [])]), narrow: bound };
    return fold?.kind === 'fold' ? { ...fold, range } : range;
  };
  const walk = (clause: Expr, hinted: Map<Expr, HintedArm>, hint: (e: Expr) => HintedArm | undefined) =>
    eachArm(clause, (e) => {
      const arm = hint(e);
      if (arm) hinted.set(e, arm);
    });
  const reads = model.policies.filter((p) => p.using !== undefined && (p.command === 'select' || p.command === 'all'));
  for (const p of model.policies) {
    const usingAs = p.using && !reads.includes(p) ? twinRead(model, p, p.using, 'using') : undefined;
    const checkAs = p.check && twinRead(model, p, p.check, 'check');
    if (usingAs) armsOf(p).usingAs = usingAs;
    if (checkAs) armsOf(p).checkAs = checkAs;
  }
  /** The clauses printed as they are, not as a read's. */
  const own = (p: PolicyNode) => ({ using: p.using && !arms.get(p)?.usingAs ? p.using : undefined, check: p.check && !arms.get(p)?.checkAs ? p.check : undefined });
  /** What makes each read's sets small (smallSets), where its clause has sets the marks count. */
  const readSets = new Map<PolicyNode, (() => string[])[]>();
  /**
   * Guarded arms of reads dropped only while their sets are few as well, by policy: their guard's
   * not-true mark, and for a set or comparison arm the operand that stands in as NULL (see StandIn).
   */
  const standing = new Map<PolicyNode, Map<Expr, StandingArm>>();
  /** The operand of a guarded set or comparison arm that is NULL unless its guard holds, with its type (see guardOf). */
  const nullOperand = (e: Expr, guarded: Expr | undefined): Omit<OperandStandIn, 'kind'> | undefined => {
    if (guarded === undefined) return undefined;
    const type = types.of(guarded);
    if (type === UNKNOWN) return undefined;
    if ((e.kind === 'in-set' || e.kind === 'any-in-set') && guarded === e.set) return { operand: 'set', type };
    if (e.kind === 'compare') return { operand: guarded === e.right ? 'right' : 'left', type };
    return undefined;
  };
  if (model.identity) {
    // Guarded arms. Where a statement only tests rows it has found by other means (WITH CHECK;
    // the USING of UPDATE and DELETE, which take no LIMIT), an arm is dropped whenever its guard
    // is not true: every-row arms here, the others below (a clause printed as a read's, twinRead,
    // has the read's hints). In the USING of reads every guarded arm is, but only where the
    // clause's sets are all small as well: for a user whose sets are large, an every-row arm's
    // 0.5% estimate is what keeps `ORDER BY id LIMIT n` on the primary key (PolicyCenter's 10%
    // user: 4 ms that way, 78 ms by a bitmap of its rows).
    /** A policy's clauses that only test rows found by other means, as printed (not as a read's). */
    const walkWrites = (p: PolicyNode, hint: (e: Expr) => HintedArm | undefined) => {
      const { using, check } = own(p);
      if (check) walk(check, armsOf(p).check, hint);
      if (using && !reads.includes(p)) walk(using, armsOf(p).using, hint);
    };
    const dropWhenNotTrue = (e: Expr): HintedArm | undefined => {
      const guard = guardOf(e, true);
      return guard && { kind: 'fold', hints: [[notTrue(guard.when, guard.name)]] };
    };
    for (const p of model.policies) {
      walkWrites(p, dropWhenNotTrue);
      const sets = reads.includes(p) ? smallSets(p.using!, p.table) : undefined;
      if (!sets) continue;
      readSets.set(p, sets);
      const guarded = new Map<Expr, StandingArm>();
      standing.set(p, guarded);
      walk(p.using!, armsOf(p).using, (e) => {
        const guard = guardOf(e, false);
        if (!guard) return undefined;
        const fold = notTrue(guard.when, guard.name, guard.of);
        // A shortcut (an arm the others imply) adds no rows to the estimate: dropped by its own
        // mark without waiting for the clause's sets to be few, and with no stand-in (the rights
        // matrix's "every scope"). Where a set's size is told by no mark, it stays with the rest.
        const groups = e.kind === 'every-row-when' && e.shortcut ? [[fold]] : distinctGroups([[fold], ...sets.map((group) => group())]);
        if (e.kind === 'every-row-when' && p.mode === 'permissive') everyRowDrops.set(p.table, distinctGroups([...(everyRowDrops.get(p.table) ?? []), ...groups]));
        const operand = groups.length > 1 && e.kind !== 'every-row-when' ? nullOperand(e, guard.operand) : undefined;
        if (groups.length > 1 && (e.kind === 'every-row-when' || operand)) guarded.set(e, { notTrue: fold, ...(operand ? { operand } : {}) });
        return { kind: 'fold', hints: groups };
      });
    }
    // A write's arm compared with a guarded value, or whose set is guarded, once every mark is
    // registered: dropped by its guard's not-true mark where set_session computes one anyway (for
    // a read, or for an every-row arm), never by a mark of its own. The drop spares the statement
    // that arm's fact; a mark of its own would cost every transaction of every user a test
    // (SuperOffice's 36 create, update and delete scopes) to spare the statements that write.
    // By guard (its expression's JSON); the first registered where two names test one guard.
    const held = new Map<string, string>();
    for (const f of folds.values()) {
      const key = JSON.stringify(f.when);
      if (!held.has(key)) held.set(key, f.hint);
    }
    const dropByHeldMark = (e: Expr): HintedArm | undefined => {
      const guard = e.kind === 'every-row-when' ? undefined : guardOf(e, false);
      const mark = guard && held.get(JSON.stringify(guard.when));
      return mark === undefined ? undefined : { kind: 'fold', hints: [[mark]] };
    };
    for (const p of model.policies) walkWrites(p, dropByHeldMark);
    // Set arms are narrowed only in reads (and clauses printed as theirs), and only where no
    // every-row arm stays whoever acts (one reached through AND and OR that no mark drops): one
    // that stays is estimated as 0.5% of the table, and PostgreSQL merges every further range on
    // the key into it. Restrictive policies only narrow what the permissive ones admit, so only
    // those are looked at.
    const stays = (p: PolicyNode): boolean => {
      let found = false;
      eachArm(p.using!, (e) => {
        if (e.kind === 'every-row-when' && armsOf(p).using.get(e)?.kind !== 'fold') found = true;
      });
      return found;
    };
    const floored = new Set(reads.filter((p) => p.mode === 'permissive' && stays(p)).map((p) => p.table));
    for (const p of reads) if (!floored.has(p.table)) walk(p.using!, armsOf(p).using, (e) => narrow(e, p.table, armsOf(p).using.get(e)));
    // An every-row arm that a read's USING ORs with its others (not one ANDed with a condition on
    // the row) and whose guard has a name also gets its true mark: the range (dropped then as
    // well) OR the mark and the guard. Last, so the ranges above still see which arms the
    // not-true marks drop.
    // An arm declared `mostRows` (SuperOffice's "others" scope: every row the other scopes do not
    // match) gets it wherever AND and OR reach it.
    for (const p of reads) {
      // The hint goes with the DSL value, which may stand in several places (each value once):
      // one that also stands under an AND gets it only when declared `mostRows`.
      const anded = new Set<Expr>();
      const values = new Set<Expr>();
      eachArm(p.using!, (e, underAnd) => {
        values.add(e);
        if (underAnd) anded.add(e);
      });
      for (const e of values) {
        const name = e.kind === 'every-row-when' ? guardName(e.when) : undefined;
        if (e.kind !== 'every-row-when' || !name || (anded.has(e) && !e.mostRows)) continue;
        const t = isTrue(e.when, name);
        const fold = armsOf(p).using.get(e);
        const groups = fold?.kind === 'fold' ? fold.hints.map((g) => [t, ...g]) : [[t]];
        armsOf(p).using.set(e, { kind: 'fold', hints: distinctGroups(groups), whenTrue: t });
      }
    }
  }
  // Disjuncts with such an arm get their stand-in, its drop test the arm's (true marks included).
  for (const p of reads) {
    const guarded = standing.get(p) ?? new Map<Expr, StandingArm>();
    const foldOf = (arm: Expr) => {
      const hint = armsOf(p).using.get(arm);
      return hint?.kind === 'fold' ? hint : undefined;
    };
    eachDisjunct(p.using!, (disjunct, conjuncts) => {
      const arm = conjuncts.find((c) => c.kind === 'every-row-when' && guarded.has(c));
      const fold = arm && foldOf(arm);
      const rowConditions = conjuncts.filter((c) => c !== arm && readsRowOnly(c, { arrays: true }));
      if (fold) armsOf(p).standIns.set(disjunct, { notTrue: guarded.get(arm!)!.notTrue, hints: fold.hints, with: { kind: 'key', table: p.table, rowConditions } });
    });
    for (const [arm, { notTrue, operand }] of guarded) {
      const fold = foldOf(arm);
      if (!fold || !operand) continue;
      // An anyOf arm stands in as a NULL range on the key where the key has a least and a
      // greatest value: as narrow to the planner as its containment (0.5%; a range open at one
      // end counts as a third of the table), answered by the key's index alone, and per row two
      // comparisons with NULL instead of the row's array built (a key walk of 4,600 rows: 0.4 ms).
      // Its own `ARRAY[…] @> NULL` did the same but for that array.
      const key = keyOf(p.table);
      const keyType = key === undefined ? UNKNOWN : types.columnType(p.table, key);
      const byKey = arm.kind === 'any-in-set' && typeMinimum(keyType) !== undefined && typeMaximum(keyType) !== undefined;
      armsOf(p).standIns.set(arm, { notTrue, hints: fold.hints, with: byKey ? { kind: 'key', table: p.table, rowConditions: [] } : { kind: 'operand', ...operand } });
    }
  }
  // A lookup read's widening arm, dropped while the clause's sets are all few; kept for everyone
  // when a set's size is not told, or when the clause has no set the marks count (see LookupHint).
  for (const p of reads) {
    const key = p.lookup ? keyOf(p.table) : undefined;
    if (key === undefined) continue;
    const sets = readSets.get(p) ?? [];
    armsOf(p).lookup = { hints: distinctGroups(sets.map((group) => group())), key, type: types.columnType(p.table, key) };
  }
  for (const [p, found] of arms) if (found.using.size === 0 && found.check.size === 0 && !found.lookup && !found.usingAs && !found.checkAs) arms.delete(p);
  return {
    facts: [...facts.values()].sort((a, b) => byCodePoint(a.fact, b.fact)),
    folds: [...folds.values()].sort((a, b) => byCodePoint(a.name, b.name)),
    trues: [...trues.values()].sort((a, b) => byCodePoint(a.name, b.name)),
    arms,
  };
}

/**
 * The read on the policy's table whose USING `clause` repeats (the same shape, see sameShape:
 * PolicyCenter's update says "accounts I can see" with the function its read uses), where
 * PostgreSQL would then apply the two once; undefined elsewhere. Such a clause is printed as that
 * read's USING, hints and all.
 *
 * PostgreSQL applies a table's read policies to an UPDATE or DELETE that reads a column (a WHERE,
 * a SET from a column, RETURNING) beside the command's own, and checks an UPDATE's new row (and
 * an INSERT's that returns it) against them as well. It drops a qual or check equal to one it
 * already has (list_append_unique in rowsecurity.c): a restrictive policy's qual on its own; the
 * permissive ones as their OR, and a check carries no policy name only then. So a permissive
 * clause is printed as the read's only where each command has that one permissive policy (the
 * read's OR is the read, the write's the write), and a restrictive one only in USING (its check
 * names its policy). The same text then computes its facts once, not once per policy:
 * PolicyCenter's many-zones update ran its 960-code fact four times, now twice (3.04 → 1.97 ms,
 * paired). A read's hints change plans, never rows, and a wrong or forged mark only hides rows
 * (see the file comment): as a write's clause the text admits exactly the clause's rows with
 * correct marks, and never more with any.
 */
function twinRead(model: ModelNode, policy: PolicyNode, clause: Expr, which: 'using' | 'check'): PolicyNode | undefined {
  const restrictive = policy.mode === 'restrictive';
  if (restrictive && which === 'check') return undefined;
  const applying = (command: Command) => applicablePolicies(model, policy.table, command).filter((q) => q.mode === policy.mode);
  const reads = applying('select').filter((r) => r.using !== undefined);
  const commands: Command[] = policy.command === 'all' ? ['insert', 'update'] : [policy.command];
  if (!restrictive && (reads.length !== 1 || commands.some((c) => applying(c).length !== 1))) return undefined;
  const text = sameShape(clause);
  return reads.find((r) => sameShape(r.using!) === text);
}

/**
 * An expression as text that two clauses built alike share: keys sorted, every value tagged with
 * its type (NaN is not null), and the scopes of its sub-queries (`q1`, `q2`, … numbered across
 * the whole model, so a clause built twice by the same function gets new ones) renamed `@0`,
 * `@1`, … in the order they appear, unquoted where every other scope is a quoted string. A scope
 * no sub-query of the expression declares (the policy's row) stays as it is, and so do all of
 * them when the expression holds raw SQL, which may name a sub-query's alias. Exported for tests.
 */
export function sameShape(e: Expr): string {
  const scopes = new Map<string, string>();
  let raw = false;
  const declare = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(declare);
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (o.kind === 'raw') raw = true;
      if (o.kind === 'query' && typeof o.scope === 'string' && !scopes.has(o.scope)) scopes.set(o.scope, `@${scopes.size}`);
      for (const key of Object.keys(o).sort()) declare(o[key]);
    }
  };
  const text = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(text).join(',')}]`;
    if (v === null) return 'null';
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v !== 'object') return `${typeof v}:${String(v)}`;
    const o = v as Record<string, unknown>;
    const field = (key: string) => (key === 'scope' && typeof o[key] === 'string' && !raw && scopes.has(o[key]) ? scopes.get(o[key])! : text(o[key]));
    return `{${Object.keys(o).filter((key) => o[key] !== undefined).sort().map((key) => `${JSON.stringify(key)}:${field(key)}`).join(',')}}`;
  };
  declare(e);
  return text(e);
}

/** A set arm's conjunct, its column (an anyOf arm's array) printed as `column`. */
export function hintConjunct(arm: RangeHint, schema: string, column: string): string {
  const narrow =
    'contains' in arm.narrow
      ? `${column} @> (SELECT '{}'::${arm.narrow.contains}[])`
      : 'noneOf' in arm.narrow
        ? `${column} >= ALL((SELECT '{}'::${arm.narrow.noneOf}[])::${arm.narrow.noneOf}[])`
        : `(${column} >= ${arm.narrow.lower} AND ${column} <= ${arm.narrow.upper})`;
  return `(${marksTest(arm.hints, schema)} OR ${narrow})`;
}

/** A lookup read's disjunct (see LookupHint), its table printed as `table`. */
export function lookupDisjunct(hint: LookupHint, schema: string, table: string): string {
  const widen = `${table}.${ident(hint.key)} >= (SELECT NULL::${hint.type})`;
  return hint.hints.length === 0 ? widen : `${marksTest(hint.hints, schema)} AND ${widen}`;
}

/**
 * A stand-in (see StandIn) around the text of what it stands in for, `standing` what stands in as
 * printed (row conditions and the key's NULL range, or the arm with its operand NULL).
 */
export function standInText(standIn: StandIn, schema: string, text: string, standing: readonly string[]): string {
  const fold = `${qualified(schema, standIn.notTrue)}()`;
  return `(NOT ${fold} AND (${text.replaceAll('\n', '\n  ')}))\nOR (${[fold, marksTest(standIn.hints, schema), ...standing].join(' AND ')})`;
}

/** The test before a guarded arm: false once the planner has folded it, when it drops the arm. */
export function foldTest(arm: HintedArm, schema: string): string {
  if (arm.kind !== 'fold') throw new Error(`internal: a ${arm.kind} hint on a guarded arm`);
  return marksTest(arm.hints, schema);
}

/**
 * `NOT (<every group has a mark>)`: false once the planner has folded the marks in. A test of one
 * mark calls its function; a test of several calls one function that reads the search_path once
 * for all of them (marksFunctionName, emitted by planHintsSection): PostgreSQL evaluates every
 * call it folds on its own, and Collect!'s debtors_select made 38 of them (as the locked-out
 * operator, 0.03 ms of a point lookup's planning and 0.09 ms of an UPDATE's).
 */
function marksTest(hints: readonly (readonly string[])[], schema: string): string {
  return `NOT ${qualified(schema, marksFunctionName(hints) ?? hints[0]![0]!)}()`;
}

/** Groups joined by `and`, the marks of a group ORed (in parentheses when several), each printed by `atom`. */
function andOfOrs(groups: readonly (readonly string[])[], atom: (mark: string) => string, and = ' AND '): string {
  return groups.map((g) => (g.length === 1 ? atom(g[0]!) : `(${g.map(atom).join(' OR ')})`)).join(and);
}

/** A test's groups in one order, each group's marks too, whatever order the policy met them in. */
function canonicalGroups(hints: readonly (readonly string[])[]): string[][] {
  return hints.map((g) => [...g].sort(byCodePoint)).sort((a, b) => byCodePoint(a.join(' '), b.join(' ')));
}

/**
 * The name of the function that tests several marks at once (named by what it tests), or
 * undefined for a test of one mark, which calls that mark's own function.
 */
function marksFunctionName(hints: readonly (readonly string[])[]): string | undefined {
  if (hints.flat().length < 2) return undefined;
  const canonical = canonicalGroups(hints).map((g) => g.join(' OR ')).join(' AND ');
  return `${PLAN_WHEN_PREFIX}${createHash('sha256').update(canonical).digest('hex').slice(0, 12)}`;
}

/**
 * The groups, each once (by its marks), in first-seen order, without those another group implies
 * (a group that holds all of a smaller group's marks is true whenever that one is).
 */
function distinctGroups(groups: readonly (readonly string[])[]): string[][] {
  const unique = [...new Map(groups.map((g) => [g.join(' '), [...g]])).values()];
  return unique.filter((g) => !unique.some((h) => h !== g && h.length < g.length && h.every((m) => g.includes(m))));
}

/** The definer function that tells set_session which marks the acting user gets. */
export const PLAN_MARKS = 'plan_marks';

/** The hint schemas and functions, and the function that computes the marks. */
export function planHintsSection(model: ModelNode, factTypes: ReadonlyMap<string, string>): Section {
  const { facts: hinted, folds, trues, arms } = planHints(model);
  const facts = factDefinitions(model, factTypes);
  const q = (fact: string) => `${model.schema}.${fact}()`;
  const guardText = (f: FoldedGuard | TrueGuard) => {
    const g = f.when;
    if (g.kind === 'in-set' && g.item.kind === 'literal' && g.set.kind === 'fact') return `${literal(g.item.value)} = any(${q(g.set.name)})`;
    if (g.kind === 'all-in-set' && g.items.every((i) => i.kind === 'literal') && g.set.kind === 'fact') {
      return `ARRAY[${g.items.map((i) => literal((i as { value: string }).value)).join(', ')}] <@ ${q(g.set.name)}`;
    }
    return g.kind === 'fact' ? q(g.name) : 'of' in f && f.of ? `the condition of ${q(f.of)}` : 'its guard';
  };
  // The facts the guards read, computed once in plan_marks (SuperOffice's scope lists each hold
  // four guards).
  const guardFacts = [...new Set([...folds, ...trues].flatMap((f) => factsIn(f.when)))].sort(byCodePoint);
  const guardColumns = new Map(guardFacts.map((f) => [f, `rg_guard_facts.${ident(f)}`]));
  // Each mark: its schema, when set_session sets it (as SQL in plan_marks' body), and what it says.
  const marks = [
    ...hinted.map((f) => ({
      schema: f.fewSchema,
      hint: f.hint,
      // Every set the count reads is cut too (ExprContext.boundedSets): a guess that can only be
      // wrong about a plan, which is all a "few" mark decides.
      when: (_ctx: ExprContext, counting: ExprContext) => `${boundedSize({ kind: 'fact', name: f.fact }, counting, facts, f.few + 1)} <= ${f.few}`,
      says: `${q(f.fact)} has at most ${f.few} elements`,
      effect: 'Changes plans, never results.',
    })),
    ...folds.map((f) => ({
      schema: f.notSchema,
      hint: f.hint,
      // Facts read from the row of guardFacts below, each computed once for every guard.
      when: (ctx: ExprContext) => `(${printExpr(f.when, { ...ctx, factColumns: guardColumns })}) IS NOT TRUE`,
      says: `${guardText(f)} is not true`,
      effect: 'The planner then drops the arms it guards (false or NULL for this user); a forged mark can only hide rows from whoever forged it.',
    })),
    ...trues.map((f) => ({
      schema: f.isSchema,
      hint: f.hint,
      when: (ctx: ExprContext) => `(${printExpr(f.when, { ...ctx, factColumns: guardColumns })}) IS TRUE`,
      says: `${guardText(f)} is true`,
      effect: 'The planner then reads its every-row arms as the guard itself, true for every row, and plans for most of the table. Changes plans, never results.',
    })),
  ];
  const marksFunction = marks.length === 0
    ? []
    : [
        createFunction({
          schema: model.schema,
          name: PLAN_MARKS,
          args: [],
          returns: 'text[]',
          volatility: 'STABLE',
          securityDefiner: true,
          grantTo: [APP_ROLE],
          comment: 'Internal, for set_session: the planner-hint schemas of the acting user (facts with few elements, counted no further than that; guards that are not true, and guards of every-row arms that are).',
          ...factBody(model, facts, (ctx) => {
            const shared = sharedCountedSets(hinted, { ...ctx, boundedSets: READ_SETS_CUT }, facts);
            const counting = { ...ctx, boundedSets: READ_SETS_CUT, factColumns: shared.columns };
            const array = `pg_catalog.array_remove(ARRAY[\n    ${marks.map((m) => `CASE WHEN ${m.when(ctx, counting)} THEN ${literal(m.schema)} END`).join(',\n    ')}\n  ]::text[], NULL)`;
            const locals = shared.locals(counting);
            if (guardFacts.length === 0) return { locals, expr: array };
            // Array facts read from one table under the same conditions, one scan for all of them.
            const fused = fuseArrayReads(guardFacts.map((f) => ({ name: f, ...facts.get(f)! })), ctx);
            const row = guardFacts.map((f) => `${fused.columns.get(f) ?? printExpr({ kind: 'fact', name: f }, ctx)} AS ${ident(f)}`).join(',\n    ');
            const sources = fused.from.length === 0 ? '' : `\n  FROM ${fused.from.join(',\n    ')}`;
            return { locals, expr: `(SELECT ${array}\n  FROM (SELECT\n    ${row}${sources}) AS rg_guard_facts)` };
          }),
        }),
      ];
  // The tests of several marks the policies make, each once.
  const schemaOf = new Map(marks.map((m) => [m.hint, m.schema]));
  const notHints = new Set(folds.map((f) => f.hint));
  const tests = new Map<string, string[][]>();
  for (const { using, check, lookup } of arms.values()) {
    const armTests = [...using.values(), ...check.values()].flatMap((arm) => [arm.hints, ...(arm.kind === 'fold' && arm.range ? [arm.range.hints] : [])]);
    for (const hints of [...armTests, ...(lookup ? [lookup.hints] : [])]) {
      const name = marksFunctionName(hints);
      if (name === undefined) continue;
      const groups = canonicalGroups(hints);
      const known = tests.get(name);
      // 48 bits of a hash: a collision is not expected, but one must not pass unnoticed.
      if (known && JSON.stringify(known) !== JSON.stringify(groups)) throw new Error(`internal: ${name} names two tests of marks; lengthen the hash`);
      tests.set(name, groups);
    }
  }
  const testFunctions = [...tests].sort(([a], [b]) => byCodePoint(a, b)).map(([name, groups]) => {
    const schemaFor = (h: string) => {
      const schema = schemaOf.get(h);
      if (schema === undefined) throw new Error(`internal: ${name} tests ${h}, which has no mark schema`);
      return schema;
    };
    const held = (h: string) => markHeld(schemaFor(h));
    const says = `${andOfOrs(groups, (h) => `${h}()`)} in one call.`;
    if (!groups.some((g) => g.some((h) => notHints.has(h)))) {
      return hintFunction(model, name, says, ['BEGIN', `  RETURN ${andOfOrs(groups, held, '\n    AND ')};`, 'END']);
    }
    // Without its not-true marks a group of them alone is false, and so is the test.
    const stale = groups.map((g) => g.filter((h) => !notHints.has(h)));
    return hintFunction(model, name, says, [
      'BEGIN',
      ...liveMarksTest(model.schema, `(${andOfOrs(groups, held, '\n    AND ')})`, stale.some((g) => g.length === 0) ? undefined : andOfOrs(stale, held, '\n    AND ')),
      'END',
    ]);
  });
  return {
    title: 'Planner hints: which facts are small or not true for the acting user',
    statements: [...marksFunction, ...testFunctions, ...marks.flatMap((m) => [
      statement(
        `hint-schema ${m.schema}`,
        [
          `-- set_session puts it in the search_path when ${m.says}.`,
          '-- Its one relation, a view of no columns and no rows, is how the mark functions find it there.',
          `CREATE SCHEMA ${ident(m.schema)};`,
          // Every role that plans a statement on the model's tables resolves the marker's name.
          `GRANT USAGE ON SCHEMA ${ident(m.schema)} TO PUBLIC;`,
          `CREATE VIEW ${markerView(m.schema)} AS SELECT;`,
          `COMMENT ON VIEW ${markerView(m.schema)} IS ${literal(`Planner-hint marker, read by the ${model.schema}.plan_* functions: visible while ${m.schema} is in the search_path. Grants nothing and reads nothing. Do not drop it: statements on the model's tables would fail to plan.`)};`,
        ].join('\n'),
        `DROP VIEW ${markerView(m.schema)};\nDROP SCHEMA ${ident(m.schema)};`,
      ),
      hintFunction(
        model,
        m.hint,
        `true when set_session found that ${m.says} (schema ${m.schema} in the search_path)${notHints.has(m.hint) ? ` and no table a guard reads has been written since (${model.schema}.${GUARDS_CHANGED})` : ''}. ${m.effect}`,
        [
          'BEGIN',
          ...(notHints.has(m.hint)
            ? liveMarksTest(model.schema, markHeld(m.schema), undefined)
            : [`  RETURN ${markHeld(m.schema)};`]),
          'END',
        ],
      ),
    ]), ...(folds.length > 0 ? guardsChangedStatements(model, guardTables(model, folds.map((f) => f.when), facts)) : [])],
  };
}

/** A mark schema's one relation (see markHeld). */
function markerView(schema: string): string {
  return qualified(schema, schema);
}

/**
 * Whether a mark schema is in the search_path, as SQL: whether its marker view is visible there.
 * PostgreSQL answers from the path it keeps resolved (the schemas that exist and the role may use:
 * the list it compares to re-plan a cached statement), where current_schemas(false) built an
 * array of that path's names on every call: ~0.8 µs instead of ~4.6 while planning.
 * - A relation of the same name earlier in the path hides the mark, which only leaves an arm in.
 * - The regclass constant is resolved when PL/pgSQL plans the expression (again after each change
 *   of the search_path), which needs USAGE on the schema: hence USAGE to PUBLIC, so that whoever
 *   plans a statement on the model's tables can resolve it. A dropped view or schema, or a revoked
 *   grant, makes that planning fail with PostgreSQL's error rather than go unhinted.
 * - IS TRUE: PostgreSQL answers NULL for a relation dropped since the constant was resolved, and a
 *   NULL must read as no mark (for a not-true mark, NULL would drop the arm).
 */
function markHeld(schema: string): string {
  return `(pg_catalog.pg_table_is_visible(${literal(markerView(schema))}::pg_catalog.regclass) IS TRUE)`;
}

/** The mark schemas a mark function's body looks for (markHeld, read back: `rowguard lint`). */
export function marksHeldIn(body: string): string[] {
  const unquote = (s: string) => s.replaceAll("''", "'").replaceAll('""', '"');
  return [...body.matchAll(/pg_catalog\.pg_table_is_visible\('"((?:[^"]|"")+)"\."\1"'::pg_catalog\.regclass\) IS TRUE\)/g)].map((m) => unquote(m[1]!));
}

/**
 * The statements of a mark function that decide its value when `test` (its marks, as they read
 * with every mark there) holds a not-true mark, which counts only while the guards' counter is
 * unchanged (see GUARDS_CHANGED). Marks appear in a test only positively, so where it fails with
 * them it fails without them: the counter is read once, and only when the test holds. If it has
 * moved, the value is `withoutNotTrue`, the test with every not-true mark absent (undefined where
 * that is false).
 */
function liveMarksTest(schema: string, test: string, withoutNotTrue: string | undefined): string[] {
  return [
    `  IF NOT ${test} THEN`,
    '    RETURN false;',
    '  END IF;',
    ...(withoutNotTrue === undefined
      ? [`  RETURN ${guardsUnchanged(schema)};`]
      : [`  IF ${guardsUnchanged(schema)} THEN`, '    RETURN true;', '  END IF;', `  RETURN ${withoutNotTrue};`]),
  ];
}

/** The sequence a write to a guard's table bumps, its trigger function, and the triggers. */
function guardsChangedStatements(model: ModelNode, tables: readonly string[]): Statement[] {
  const sequence = qualified(model.schema, GUARDS_CHANGED);
  // setval is written to the WAL at every call (nextval logs 32 values ahead): a standby follows.
  const bumpBody = ['BEGIN', `  PERFORM pg_catalog.setval(${sequenceOid(model.schema)}, pg_catalog.nextval(${sequenceOid(model.schema)}));`, '  RETURN NULL;', 'END'].join('\n');
  return [
    statement(
      `sequence ${model.schema}.${GUARDS_CHANGED}`,
      [
        `-- Bumped by every write to a table the planner hints' guards read; see ${model.schema}.${PLAN_MARKS} and set_session.`,
        `CREATE SEQUENCE ${sequence};`,
        `REVOKE ALL ON SEQUENCE ${sequence} FROM PUBLIC;`,
        // The hint functions run with the caller's rights and read its value; only the triggers'
        // definer functions bump it (setval, which PostgreSQL writes to the WAL each time, so that a
        // standby sees every bump: nextval logs 32 values ahead).
        `GRANT SELECT ON SEQUENCE ${sequence} TO ${ident(APP_ROLE)};`,
        `GRANT SELECT, UPDATE ON SEQUENCE ${sequence} TO ${ident(DEFINER_ROLE)};`,
      ].join('\n'),
      `DROP SEQUENCE ${sequence};`,
    ),
    createFunction({
      schema: model.schema,
      name: GUARDS_CHANGED,
      args: [],
      returns: 'trigger',
      volatility: 'VOLATILE',
      // The definer bumps the sequence: a writer needs no right on it, and app_user cannot move it.
      securityDefiner: true,
      grantTo: [],
      comment: 'Statement trigger on the tables the planner hints\' guards read: a write there retires the not-true marks of every open transaction (they count again from its next set_session).',
      body: bumpBody,
    }),
    createFunction({
      schema: model.schema,
      name: GUARDS_UNMARK,
      args: [],
      returns: 'trigger',
      volatility: 'VOLATILE',
      // The writer's rights and search_path (a function-level SET would undo the set_config on
      // return); it needs no right, and every name in it is qualified.
      securityDefiner: false,
      pinSearchPath: false,
      grantTo: [],
      comment: 'Statement trigger beside rg_guards_changed: takes the writing transaction\'s own marks out of its search_path, so that its next statement is planned without them, a prepared one too.',
      body: [
        'BEGIN',
        `  IF ${pathMayHoldMarks('>')} THEN`,
        `    PERFORM pg_catalog.set_config('search_path', pg_catalog.btrim(${pathWithoutMarks(markHints(model))}, ', '), true);`,
        '  END IF;',
        '  RETURN NULL;',
        'END',
      ].join('\n'),
    }),
    createFunction({
      schema: model.schema,
      name: GUARDS_COMMITTED,
      args: [],
      returns: 'trigger',
      volatility: 'VOLATILE',
      securityDefiner: true,
      grantTo: [],
      comment: `Deferred to the commit of a write to a table the planner hints' guards read: bumps ${model.schema}.${GUARDS_CHANGED} again, so that a set_session that read the sequence after the write but computed its marks before the commit does not keep them.`,
      body: bumpBody,
    }),
    ...tables.flatMap((table) => [
      ...[GUARDS_CHANGED, GUARDS_UNMARK].map((name) =>
        statement(
          `trigger ${model.schema}.${table}.${name}`,
          [
            `CREATE TRIGGER ${ident(name)} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${qualified(model.schema, table)}`,
            `  FOR EACH STATEMENT EXECUTE FUNCTION ${qualified(model.schema, name)}();`,
          ].join('\n'),
          `DROP TRIGGER ${ident(name)} ON ${qualified(model.schema, table)};`,
        ),
      ),
      // The bump above comes before the writer's commit: a set_session between the two reads the
      // new value but computes its marks from the old rows. A second bump at commit retires them.
      statement(
        `trigger ${model.schema}.${table}.${GUARDS_COMMITTED}`,
        [
          `CREATE CONSTRAINT TRIGGER ${ident(GUARDS_COMMITTED)} AFTER INSERT OR UPDATE OR DELETE ON ${qualified(model.schema, table)}`,
          `  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${qualified(model.schema, GUARDS_COMMITTED)}();`,
        ].join('\n'),
        `DROP TRIGGER ${ident(GUARDS_COMMITTED)} ON ${qualified(model.schema, table)};`,
      ),
    ]),
  ];
}

/**
 * A function the planner folds: IMMUTABLE and PARALLEL SAFE, no arguments, the caller's rights, and no pinned
 * search_path, which would hide the very entries it reads (every name in `body` is qualified).
 */
function hintFunction(model: ModelNode, name: string, says: string, body: string[]): Statement {
  return createFunction({
    schema: model.schema,
    name,
    args: [],
    returns: 'boolean',
    volatility: 'IMMUTABLE',
    // It reads the search_path, which PostgreSQL copies to parallel workers.
    parallel: 'SAFE',
    securityDefiner: false,
    pinSearchPath: false,
    grantTo: [APP_ROLE, REPORTING_ROLE],
    comment: `Planner hint, folded while planning: ${says}`,
    body: body.join('\n'),
  });
}

/**
 * How many elements a fact's value has, counted up to `limit` (one more than "few") only where its
 * shape allows (a query's rows, a walker's nodes, a CASE or a concatenation of those): set_session
 * needs only "few?", and the enterprise user's 1,111 offices need not be built for that.
 */
function boundedSize(e: Expr, ctx: ExprContext, facts: FactDefinitions, limit: number): string {
  const size = (x: Expr) => boundedSize(x, ctx, facts, limit);
  switch (e.kind) {
    case 'fact': {
      // A set plan_marks builds once (sharedCountedSets): its length, where the count reads no
      // further than the variable holds (a `few` above 100 counts the fact's own rows instead).
      const built = ctx.factColumns?.get(e.name);
      if (built !== undefined && ctx.boundedSets !== undefined && limit <= ctx.boundedSets) return `LEAST(${limit}, COALESCE(pg_catalog.cardinality(${built}), 0))`;
      const definition = facts.get(e.name);
      if (definition) return size(definition.expr);
      break;
    }
    case 'literal':
      if (e.value === null) return '0';
      break;
    case 'case':
      return `CASE ${e.branches.map((b) => `WHEN ${printExpr(b.when, ctx)} THEN ${size(b.then)}`).join(' ')} ELSE ${size(e.else)} END`;
    case 'set-union':
      return `LEAST(${limit}, ${e.items.map(size).join(' + ')})`;
    case 'array-of':
      return boundedRowCount(e.query, ctx, limit);
    case 'hierarchy-set': {
      const h = ctx.model.hierarchies.find((x) => x.name === e.hierarchy);
      if (h) return closureWalkSize(ctx.model, h, e.direction, `(${printExpr(e.of, ctx)})`, e.includeSelf, limit);
      break;
    }
    default:
      break;
  }
  return `COALESCE(pg_catalog.cardinality(${printExpr(e, ctx)}), 0)`;
}

/**
 * The sets plan_marks' counts would build more than once (PolicyCenter's organizations in my
 * zones: counted for their own mark, and read again to count the producer codes they own), each
 * built once, cut as every set a count reads is (a walk of a hierarchy is read whole, as it is
 * where a count reads it), into a variable of the body the counts then read (`columns`; the count
 * of such a set is its variable's length, unless it counts further than the cut). Chosen
 * outermost first: once a set is a variable, the sets inside it are built once with it. The
 * variable is built before the counts, for every user, also where each count would have read the
 * set only in a branch of a CASE that user does not take; it changes no mark.
 */
function sharedCountedSets(
  hinted: readonly HintedFact[],
  counting: ExprContext,
  facts: FactDefinitions,
): { readonly columns: ReadonlyMap<string, string>; readonly locals: (ctx: ExprContext) => FactBodyParts['locals'] } {
  const columns = new Map<string, string>();
  const variables: string[] = [];
  for (;;) {
    // Print the counts as they would be, counting each set's printed copies, and throw the
    // text away (a scratch context: the identity row's columns and raw SQL are noted on the
    // real one when the counts are printed for the body).
    const copies = new Map<string, number>();
    const counted = new (class extends Map<string, { readonly expr: Expr; readonly type: string }> {
      override get(name: string) {
        copies.set(name, (copies.get(name) ?? 0) + 1);
        return super.get(name);
      }
    })(facts);
    const scratch: ExprContext = { ...counting, rawReasons: [], inlineFacts: counted, factColumns: new Map(columns), ...(counting.identityRow ? { identityRow: { ...counting.identityRow, columns: new Set<string>() } } : {}) };
    for (const f of hinted) boundedSize({ kind: 'fact', name: f.fact }, scratch, facts, f.few + 1);
    // Its own count reads the variable too where it counts no further than the variable holds.
    const uses = (name: string) => (copies.get(name) ?? 0) + (hinted.some((f) => f.fact === name && f.few + 1 <= READ_SETS_CUT) ? 1 : 0);
    const shared = [...copies.keys()].filter((name) => !columns.has(name) && facts.get(name)?.type.endsWith('[]') && uses(name) > 1);
    if (shared.length === 0) break;
    // Outermost: the one no other shared set reads.
    const reads = (outer: string, inner: string) => reaches(facts.get(outer)?.expr, facts, (n) => n.kind === 'fact' && n.name === inner);
    const outermost = shared.sort(byCodePoint).find((name) => !shared.some((other) => other !== name && reads(other, name)))!;
    const variable = `rg_set_${variables.length + 1}`;
    variables.push(outermost);
    columns.set(outermost, localVariable(variable));
  }
  return {
    columns,
    // Inner sets first: a value reads the variables of the sets inside it.
    locals: (ctx) =>
      variables
        .map((fact, i) => ({ fact, variable: `rg_set_${i + 1}` }))
        .reverse()
        .map(({ fact, variable }) => {
          const inner = new Map([...columns].filter(([name]) => name !== fact));
          return {
            name: variable,
            type: facts.get(fact)!.type,
            value: printExpr({ kind: 'fact', name: fact }, { ...ctx, factColumns: inner }),
            says: `${ctx.model.schema}.${fact}() as its marks' counts read it (every set cut at ${READ_SETS_CUT} elements${reaches({ kind: 'fact', name: fact }, facts, (n) => n.kind === 'hierarchy-set') ? ', a walk of a hierarchy read whole' : ''}), built once for all of them.`,
          };
        }),
  };
}

/** Every mark of the model: its hint function and its schema. */
function markHints(model: ModelNode): { readonly schema: string; readonly hint: string }[] {
  const { facts, folds, trues } = planHints(model);
  return [
    ...facts.map((f) => ({ schema: f.fewSchema, hint: f.hint })),
    ...folds.map((f) => ({ schema: f.notSchema, hint: f.hint })),
    ...trues.map((f) => ({ schema: f.isSchema, hint: f.hint })),
  ];
}

/** The search_path under the "C" collation, where lower() and \s are ASCII alone, as they are to PostgreSQL's reading of it. */
const PATH_IN_C = `pg_catalog.current_setting('search_path') COLLATE pg_catalog."C"`;

/**
 * The search_path without these marks (a model's), as SQL: its entries as PostgreSQL reads them
 * (a double-quoted name, commas and doubled quotes inside it; or a bare one, which PostgreSQL
 * folds to lower case, between commas and white space), joined again as they were written, but
 * for those that name one of our marks in any spelling (`rg_plan_x`, `"rg_plan_x"`, `RG_PLAN_X`,
 * after a form feed, or longer than the 63 bytes PostgreSQL keeps of a name). Split at commas alone, a quoted name with a comma in it broke the path,
 * and a mark in capitals stayed in force. Not a regular expression of the marks' names: one with
 * their alternation and a lookahead took 0.4-1 ms once the path held marks (a second set_session
 * in a transaction); this pattern is the same for every model and compiled once per connection.
 * The escapes are E'' so that no string setting changes them.
 */
function pathWithoutMarks(hints: readonly { readonly schema: string }[]): string {
  const ours = `ARRAY[${hints.map((h) => literal(h.schema)).join(', ')}]::pg_catalog.text[]`;
  const entry = 'rg_entry[1]';
  // As PostgreSQL resolves it: unquoted, or folded to lower case in ASCII alone (the "C" collation:
  // another would fold a Turkish I to a dotless ı, or a Kelvin sign to k); either way cut to 63
  // bytes (the cast to name), so a mark of 63 bytes with more after it is that mark too. The
  // pattern reads the path under "C" too, where \s is ASCII white space, as it is to PostgreSQL.
  const name = `(CASE WHEN pg_catalog.left(${entry}, 1) OPERATOR(pg_catalog.=) '"' THEN pg_catalog.replace(pg_catalog.substr(${entry}, 2, pg_catalog.length(${entry}) OPERATOR(pg_catalog.-) 2), '""', '"') ELSE pg_catalog.lower(${entry} COLLATE pg_catalog."C") END)::pg_catalog.name::pg_catalog.text`;
  return [
    `pg_catalog.array_to_string(ARRAY(SELECT ${entry} FROM pg_catalog.regexp_matches(${PATH_IN_C}, E'"(?:[^"]|"")*"|[^,\\\\s]+', 'g')`,
    `        WITH ORDINALITY AS rg_path(rg_entry, rg_n) WHERE (${name}) OPERATOR(pg_catalog.<>) ALL (${ours}) ORDER BY rg_n), ', ')`,
  ].join('\n');
}

/** Whether the search_path may hold a mark, in any spelling (a bare name is folded to lower case). */
const pathMayHoldMarks = (op: '>' | '='): string =>
  `pg_catalog.strpos(pg_catalog.lower(${PATH_IN_C}), ${literal(MARK_SCHEMA_PREFIX)}) OPERATOR(pg_catalog.${op}) 0`;

/**
 * set_session's last step: the search_path without this model's hint schemas (quoted or not: a
 * path copied into a session-level SET must not keep an old user's marks), plus one per fact that
 * is small, or not true, for the user just set. Transaction-local, like the identity.
 */
export function hintSearchPathSql(model: ModelNode): string[] {
  const hints = markHints(model);
  const [first] = hints;
  if (first === undefined) return [];
  const split = pathWithoutMarks(hints);
  // The trim drops the separator left before a mark that came first, or before no mark at all.
  const setPath = (kept: string) => [
    `    PERFORM pg_catalog.set_config('search_path', pg_catalog.btrim(pg_catalog.concat_ws(', ', VARIADIC`,
    `      ARRAY[${kept}] OPERATOR(pg_catalog.||) ${qualified(model.schema, PLAN_MARKS)}()), ', '), true);`,
  ];
  return [
    ...guardsSeenSql(model),
    `  -- Planner hints (see ${model.schema}.${first.hint} and its siblings): mark the facts that are small or not`,
    '  -- true for this user, so the planner plans for them; the rows each statement returns stay the same.',
    // A path without a mark, as a transaction starts, is kept as it is: the statement that splits
    // it costs ~0.08 ms to start even where it would not run.
    `  IF ${pathMayHoldMarks('=')} THEN`,
    ...setPath(`pg_catalog.current_setting('search_path')`),
    '  ELSE',
    ...setPath(split),
    '  END IF;',
  ];
}

/** `plain`, or a prefix of it and a hash of the whole when it is longer than PostgreSQL keeps. */
export function fitName(plain: string): string {
  if (identifierBytes(plain) <= MAX_IDENTIFIER_BYTES) return plain;
  return `${plain.slice(0, MAX_IDENTIFIER_BYTES - 9)}_${createHash('sha256').update(plain).digest('hex').slice(0, 8)}`;
}

/**
 * The arms of a clause: every node reached from it through AND and OR, other than AND and OR,
 * each with whether an AND was crossed on the way (else the clause ORs it with its other arms).
 */
function eachArm(clause: Expr, fn: (arm: Expr, underAnd: boolean) => void, underAnd = false): void {
  if (clause.kind === 'and' || clause.kind === 'or') clause.items.forEach((i) => eachArm(i, fn, underAnd || clause.kind === 'and'));
  else fn(clause, underAnd);
}

/**
 * The disjuncts of a clause (see StandIn): the clause, and every item of an OR reached from it
 * through AND and OR; each with what it ANDs, through AND only.
 */
function eachDisjunct(clause: Expr, fn: (disjunct: Expr, conjuncts: readonly Expr[]) => void): void {
  const conjuncts = (e: Expr): Expr[] => (e.kind === 'and' ? e.items.flatMap(conjuncts) : [e]);
  const all = conjuncts(clause);
  fn(clause, all);
  for (const c of all) if (c.kind === 'or') c.items.forEach((item) => eachDisjunct(item, fn));
}

/** The facts an expression reads, by name. */
function factsIn(e: Expr): string[] {
  const found: string[] = [];
  visit(e, (n) => {
    if (n.kind === 'fact') found.push(n.name);
  });
  return found;
}

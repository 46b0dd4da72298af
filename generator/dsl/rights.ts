// A data-driven rights matrix: role × object type × scope → an ordered level, kept in a table an
// administrator edits at run time. Built from core DSL pieces only (facts and policy predicates),
// so it works for any schema that stores rights this way.
//
// Speed: for each object type and level, the scopes the acting user's role allows are one fact,
// computed once per statement. Every arm of the resulting predicate is a column compared with a
// per-statement value (`owner_id = CASE WHEN 'own' = any(scopes) THEN me END`), which an index
// drives; no arm looks the matrix up per row.
//
// A role that has the level in every scope, the otherwise scope included, has it on every row: a
// row matches some scope's rule or, matching none, has the otherwise scope. So the predicate starts
// with an every-row arm whose condition is "every scope" (`ARRAY['own', …, 'others'] <@ scopes`).
// For such a role (most of SuperOffice's predefined ones read everything) it holds before any other
// arm is evaluated: the row is admitted at once and the other arms' facts, InitPlans evaluated only
// when first read, are never computed (SuperOffice's level-2 user: 13 definer calls per statement,
// then 2). For every other role set_session's not-true mark drops the arm from the plan.
// The otherwise arm's "matches none" is "no rule's test is true" (IS NOT TRUE), so a row whose
// column is NULL, or a set holding a NULL, falls to the otherwise scope as its name says, and the
// every-row arm admits exactly what the scope arms together would.
import type { Command } from '../model/nodes.ts';
import { allOf, and, arrayOf, lit, or, rank, when, type E } from './expr.ts';
import type { Columns, ModelBuilder, Row, TableHandle } from './model.ts';

export interface RightsTable {
  readonly table: TableHandle<Columns>;
  /** Columns of the rights table. */
  readonly role: string;
  readonly object: string;
  readonly scope: string;
  readonly level: string;
}

/** How a row of a secured table relates to the acting user: the row has scope `name` when its
 *  `column` equals `is` (a value) or is one of `in` (a set). */
export interface ScopeRule {
  readonly name: string;
  readonly column: string;
  readonly is?: E;
  readonly in?: E;
}

export interface RightsMatrixSpec {
  readonly rights: RightsTable;
  /** Ordered from weakest to strongest, e.g. none < read < create < update < delete. */
  readonly levels: readonly string[];
  /** The level each command needs. */
  readonly needs: Readonly<Record<Command, string>>;
  /** The acting user's role. */
  readonly role: E;
  /** When false (or NULL) the matrix grants nothing (e.g. users whose kind overrides it). */
  readonly applies: E;
  /** The scopes a row can have, in order; a row has every scope whose rule matches it. */
  readonly scopes: readonly ScopeRule[];
  /** The scope of a row that matches none of `scopes` (e.g. 'others'). */
  readonly otherwise: string;
}

export interface RightsMatrix {
  /** The predicate "the acting user's role grants `command` on this row of `table`" for its policies. */
  allows<C extends Columns>(table: TableHandle<C>, objectType: string, command: Command): (row: Row<C>) => E;
}

export function rightsMatrix(m: ModelBuilder, spec: RightsMatrixSpec): RightsMatrix {
  const scopesFacts = new Map<string, E>();
  const allowedScopes = (objectType: string, level: string): E => {
    const key = `${objectType}\u0000${level}`;
    const known = scopesFacts.get(key);
    if (known) return known;
    const needed = spec.levels.indexOf(level) + 1;
    if (needed === 0) throw new Error(`rightsMatrix: level "${level}" is not one of ${spec.levels.join(', ')}`);
    const fact = m.fact(
      `${objectType}_scopes_with_${level}`,
      when(
        spec.applies,
        arrayOf(
          m.from(spec.rights.table, (r) => ({
            where: and(r[spec.rights.role]!.eq(spec.role), r[spec.rights.object]!.eq(objectType), rank(spec.levels, r[spec.rights.level]!).ge(needed)),
            select: r[spec.rights.scope]!,
          })),
        ),
      ),
      { description: `The scopes in which my role grants at least ${level} on ${objectType} rows (NULL when the matrix does not apply to me).` },
    );
    scopesFacts.set(key, fact);
    return fact;
  };
  return {
    allows(table, objectType, command) {
      const scopes = allowedScopes(objectType, spec.needs[command]);
      const everyScope = allOf(...[...spec.scopes.map((s) => s.name), spec.otherwise].map((name) => lit(name))).in(scopes);
      return (row) => {
        const cols = row as Record<string, E>;
        // A rule's test of the row against its value or set, as such, or only when the role has the scope.
        const test = (s: ScopeRule, value: E) => (s.is ? cols[s.column]!.eq(value) : cols[s.column]!.in(value));
        const tests = spec.scopes.map((s) => test(s, (s.is ?? s.in)!));
        const arms = spec.scopes.map((s) => test(s, when(inSet(s.name, scopes), (s.is ?? s.in)!)));
        // The otherwise scope is every row the others do not match: for a role that has it, most rows.
        const otherwise = and(m.everyRowWhen(table, inSet(spec.otherwise, scopes), { mostRows: true }), ...tests.map((t) => t.isNotTrue()));
        return or(m.everyRowWhen(table, everyScope, { shortcut: true }), ...arms, otherwise);
      };
    },
  };
}

/** `'own' = any(scopes)`: row-independent, so it is computed once with the fact it reads. */
function inSet(name: string, set: E): E {
  return lit(name).in(set);
}

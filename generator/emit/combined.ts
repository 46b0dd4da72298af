// Statement values that would make several definer calls, printed as one.
//
// A policy computes each value about the acting user once per statement, as an InitPlan. When the
// value is built from more than one fact (SuperOffice's rights arms: `CASE WHEN 'own' =
// any(contact_scopes_with_read()) THEN current_user_id() END`), each fact is its own SECURITY
// DEFINER call, and each of those reads and checks the identity again: ~40 µs a call, most of what
// a point lookup or a one-row write costs beyond the hand-written query. Such a value becomes a
// function of its own, with the body of a fact (facts inlined, the identity read once), and the
// policy calls it once: one definer call where the expression made two or more.
import { createHash } from 'node:crypto';
import type { Expr, ModelNode } from '../model/nodes.ts';
import { UNKNOWN } from '../model/types.ts';
import { byCodePoint } from '../sql/print.ts';
import { evaluatedOnce, factCall, printExpr, visit, type ExprContext } from './expr.ts';
import { factFunction, type FactDefinitions } from './functions.ts';
import type { Section } from './statement.ts';

/** Node kinds printed as a definer call of their own where a policy reads them (expr.ts). */
const CALLS: ReadonlySet<Expr['kind']> = new Set<Expr['kind']>(['fact', 'session-user', 'hierarchy-set']);
/**
 * A policy's own queries run with the caller's rights, under the row-level security of the tables
 * they read; in a definer's function they would read as the definer, which sees every row. A value
 * that holds one stays in the policy.
 */
const QUERIES: ReadonlySet<Expr['kind']> = new Set<Expr['kind']>(['exists', 'array-of', 'scalar-of']);

export class CombinedValues {
  private readonly values = new Map<string, { readonly expr: Expr; readonly type: string; readonly text: string; readonly calls: number }>();

  constructor(
    private readonly model: ModelNode,
    private readonly facts: FactDefinitions,
  ) {}

  /**
   * The call that computes `e`, a statement value printed as its own sub-select in `ctx`, or
   * undefined where it makes fewer than two definer calls (or its type is not known).
   */
  call(e: Expr, ctx: ExprContext): string | undefined {
    let calls = 0;
    let readsTables = false;
    visit(e, (n) => {
      if (CALLS.has(n.kind)) calls++;
      if (QUERIES.has(n.kind)) readsTables = true;
    });
    const type = ctx.types.of(e);
    if (calls < 2 || readsTables || type === UNKNOWN) return undefined;
    // Named by what it computes, as the policy would print it: the same value in two policies (an
    // update's USING and its WITH CHECK) is one function, and the name changes with the meaning.
    const text = printExpr(e, evaluatedOnce(ctx));
    const name = `rg_once_${createHash('sha256').update(`${type}\u0000${text}`).digest('hex').slice(0, 12)}`;
    if (!this.values.has(name)) this.values.set(name, { expr: e, type, text, calls });
    // What it computes stays readable where the policy calls it (a block comment cannot end early:
    // PostgreSQL nests them, so both of its delimiters are broken up).
    return `${factCall(this.model.schema, name)} /* ${text.replaceAll('*/', '* /').replaceAll('/*', '/ *')} */`;
  }

  /** The functions, after the facts and before the policies that call them; ordered by name. */
  section(): Section {
    const statements = [...this.values.entries()]
      .sort(([a], [b]) => byCodePoint(a, b))
      .map(([name, v]) =>
        factFunction(this.model, this.facts, {
          name,
          type: v.type,
          expr: v.expr,
          comment: `Computed once per statement by policies, in one definer call where it would make ${v.calls}: ${v.text}`,
        }),
      );
    return { title: 'Policy values: statement values of several facts, one call each', statements };
  }
}

// What PostgreSQL checks when a user runs a command against one row, taken from the policy model
// and cut into pieces a DBA can read: each policy's predicate split into its OR arms, each arm into
// its AND conditions, each condition printed exactly as the policy prints it.
//
// The stages follow PostgreSQL's rules for a statement that names the row by its key
// (`… WHERE id = $1`), which is how applications reach a row:
// - SELECT: the SELECT policies' USING.
// - DELETE: the SELECT policies' USING too (the WHERE clause reads the row, which requires SELECT
//   rights and so the SELECT policies), and the DELETE policies' USING.
// - UPDATE: SELECT and UPDATE USING on the existing row, then the UPDATE policies' WITH CHECK
//   (USING where a policy has none) on the new row; explain checks the row as it is, an update
//   that changes nothing.
// In each stage the permissive policies are ORed (none means no row) and the restrictive ones ANDed.
import type { Command, Expr, ModelNode, PolicyNode } from '../model/nodes.ts';
import { applicablePolicies } from '../emit/policies.ts';
import { exprContext, printExpr } from '../emit/expr.ts';
import { ident } from '../sql/print.ts';
import { describeExpr, factsUsed, rowColumnsUsed, usesSessionUser } from './words.ts';

export type ExplainCommand = 'select' | 'update' | 'delete';
export const EXPLAIN_COMMANDS: readonly ExplainCommand[] = ['select', 'update', 'delete'];

export type Clause = 'using' | 'check';

export interface ConditionPlan {
  readonly expr: Expr;
  /** As PostgreSQL sees it inside the policy, with the row qualified by the table name. */
  readonly sql: string;
  readonly words: string;
  readonly facts: readonly string[];
  readonly columns: readonly string[];
  readonly usesMe: boolean;
}

export interface ArmPlan {
  readonly conditions: readonly ConditionPlan[];
}

export interface PolicyPlan {
  readonly policy: PolicyNode;
  readonly arms: readonly ArmPlan[];
}

export interface StagePlan {
  readonly command: Command;
  readonly clause: Clause;
  /** Why this stage is checked, in a sentence. */
  readonly why: string;
  readonly policies: readonly PolicyPlan[];
}

export function stagesFor(command: ExplainCommand): readonly { command: Command; clause: Clause; why: string }[] {
  const read = { command: 'select' as const, clause: 'using' as const };
  switch (command) {
    case 'select':
      return [{ ...read, why: 'SELECT policies decide which rows the user can see' }];
    case 'delete':
      return [
        { ...read, why: 'DELETE … WHERE <key> reads the row, so the SELECT policies apply too' },
        { command: 'delete', clause: 'using', why: 'DELETE policies decide which visible rows may be deleted' },
      ];
    case 'update':
      return [
        { ...read, why: 'UPDATE … WHERE <key> reads the row, so the SELECT policies apply too' },
        { command: 'update', clause: 'using', why: 'UPDATE policies (USING) decide which existing rows may be updated' },
        { command: 'update', clause: 'check', why: 'UPDATE policies (WITH CHECK, else USING) must admit the new row; checked here for the row as it is' },
      ];
  }
}

export function planCommand(model: ModelNode, table: string, command: ExplainCommand): StagePlan[] {
  return stagesFor(command).map((s) => ({
    ...s,
    policies: applicablePolicies(model, table, s.command)
      .map((policy) => ({ policy, expr: clauseOf(policy, s.clause) }))
      .filter((p): p is { policy: PolicyNode; expr: Expr } => p.expr !== undefined)
      .map(({ policy, expr }) => ({ policy, arms: armsOf(model, table, expr) })),
  }));
}

/** PostgreSQL uses a policy's USING as its WITH CHECK when it has none. */
export function clauseOf(policy: PolicyNode, clause: Clause): Expr | undefined {
  return clause === 'using' ? policy.using : (policy.check ?? policy.using);
}

export function armsOf(model: ModelNode, table: string, expr: Expr): ArmPlan[] {
  return orArms(expr).map((arm) => ({ conditions: andConditions(arm).map((c) => conditionPlan(model, table, c)) }));
}

function conditionPlan(model: ModelNode, table: string, expr: Expr): ConditionPlan {
  return {
    expr,
    sql: printExpr(expr, exprContext(model, ident(table))),
    words: describeExpr(expr, { asCaller: true }),
    facts: factsUsed(expr),
    columns: rowColumnsUsed(expr),
    usesMe: usesSessionUser(expr),
  };
}

function orArms(e: Expr): Expr[] {
  return e.kind === 'or' && e.items.length > 0 ? e.items.flatMap(orArms) : [e];
}

function andConditions(e: Expr): Expr[] {
  return e.kind === 'and' && e.items.length > 0 ? e.items.flatMap(andConditions) : [e];
}

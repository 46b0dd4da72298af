// CREATE POLICY per table and command, plus the predicate a secured view re-uses to decide
// whether the caller may see a row (the same text PostgreSQL enforces on the table).
import type { Command, Expr, ModelNode, PolicyNode } from '../model/nodes.ts';
import { ident, indent, lineComment, literal, qualified } from '../sql/print.ts';
import type { CombinedValues } from './combined.ts';
import { exprContext, printExpr } from './expr.ts';
import { lookupDisjunct, planHints } from './hints.ts';
import { APP_ROLE, REPORTING_ROLE } from './roles.ts';
import { statement, type Section } from './statement.ts';

export function policiesSection(model: ModelNode, combined: CombinedValues): Section {
  const hinted = planHints(model).arms;
  return {
    title: 'Policies',
    statements: model.policies.map((p) => {
      const ctx = { ...exprContext(model, ident(p.table)), combined };
      const hints = hinted.get(p);
      const clause = (word: string, text: string | undefined) => (text !== undefined ? [`  ${word} (`, indent(text, '    '), '  )'] : []);
      /** A policy's USING as printed; a clause that repeats a read's is printed as the read's (hints.ts, twinRead). */
      const usingOf = (r: PolicyNode) => {
        const own = hinted.get(r);
        const using = printExpr(r.using!, { ...ctx, planHints: own?.using ?? new Map(), standIns: own?.standIns ?? new Map() });
        // A lookup read's widening arm goes last, ORed with the whole clause (in parentheses unless
        // the clause is an OR itself, whose arms it joins).
        return own?.lookup ? `${r.using!.kind === 'or' ? using : `(${using})`}\nOR (${lookupDisjunct(own.lookup, model.schema, ident(r.table))})` : using;
      };
      const using = p.using && usingOf(hints?.usingAs ?? p);
      const check = p.check && (hints?.checkAs ? usingOf(hints.checkAs) : printExpr(p.check, { ...ctx, planHints: hints?.check ?? new Map() }));
      const body = [...clause('USING', using), ...clause('WITH CHECK', check)];
      const header = [
        lineComment(`${p.origin.path}${p.description ? `: ${p.description}` : ''}`),
        ...ctx.rawReasons.map((r) => lineComment(`raw SQL (escape hatch): ${r}`)),
      ];
      const up = [
        ...header,
        `CREATE POLICY ${ident(p.name)} ON ${qualified(model.schema, p.table)}`,
        `  AS ${p.mode.toUpperCase()}`,
        `  FOR ${p.command.toUpperCase()}`,
        `  TO ${rolesFor(p).map(ident).join(', ')}`,
        ...body,
      ].join('\n') + ';' + (p.description ? `\nCOMMENT ON POLICY ${ident(p.name)} ON ${qualified(model.schema, p.table)} IS ${literal(p.description)};` : '');
      return statement(`policy ${model.schema}.${p.table}.${p.name}`, up, `DROP POLICY ${ident(p.name)} ON ${qualified(model.schema, p.table)};`);
    }),
  };
}

/** Reporting roles only read; only read policies name them. */
function rolesFor(p: PolicyNode): string[] {
  return p.command === 'select' || p.command === 'all' ? [APP_ROLE, REPORTING_ROLE] : [APP_ROLE];
}

/** Policies that apply to `command` on `table`, as PostgreSQL combines them. */
export function applicablePolicies(model: ModelNode, table: string, command: Command): PolicyNode[] {
  return model.policies.filter((p) => p.table === table && (p.command === command || p.command === 'all'));
}

/**
 * The USING predicate PostgreSQL applies for `command`: permissive policies ORed, restrictive ones
 * ANDed onto that. No permissive policy means no row.
 */
export function visibilityExpr(model: ModelNode, table: string, command: Command): Expr {
  const policies = applicablePolicies(model, table, command);
  const permissive = policies.filter((p) => p.mode === 'permissive' && p.using).map((p) => p.using!);
  const restrictive = policies.filter((p) => p.mode === 'restrictive' && p.using).map((p) => p.using!);
  if (permissive.length === 0) return { kind: 'literal', value: false };
  const anyOf: Expr = permissive.length === 1 ? permissive[0]! : { kind: 'or', items: permissive };
  return restrictive.length === 0 ? anyOf : { kind: 'and', items: [anyOf, ...restrictive] };
}

// Column guards and write rules, as BEFORE triggers.
//
// Why a trigger for "this column may not change for these users": a WITH CHECK clause sees only
// the new row, so it cannot tell a change from an unchanged value; column privileges belong to
// roles, and every application user shares app_user. A BEFORE UPDATE trigger sees OLD and NEW and
// the acting identity, and raising there aborts the statement with nothing written.
import type { ColumnGuardNode, ModelNode, WriteRuleNode } from '../model/nodes.ts';
import { ident, literal, qualified } from '../sql/print.ts';
import { evaluatedOnce, exprContext, printExpr } from './expr.ts';
import { createFunction } from './functions.ts';
import { statement, type Section, type Statement } from './statement.ts';

export function triggersSection(model: ModelNode): Section {
  const statements: Statement[] = [];
  for (const rule of model.writeRules) statements.push(...writeRule(model, rule));
  for (const guard of model.guards) statements.push(...columnGuard(model, guard));
  return { title: 'Triggers: write rules and column guards', statements };
}

function trigger(model: ModelNode, name: string, table: string, events: string, fn: string): Statement {
  return statement(
    `trigger ${model.schema}.${table}.${name}`,
    `CREATE TRIGGER ${ident(name)} BEFORE ${events} ON ${qualified(model.schema, table)}\n  FOR EACH ROW EXECUTE FUNCTION ${qualified(model.schema, fn)}();`,
    `DROP TRIGGER ${ident(name)} ON ${qualified(model.schema, table)};`,
  );
}

function columnGuard(model: ModelNode, guard: ColumnGuardNode): Statement[] {
  // The IF is evaluated once per row written: facts in it are plain calls, so PL/pgSQL evaluates
  // it without running a query (a sub-select would make it one, per row).
  const ctx = evaluatedOnce(exprContext(model));
  const changed = guard.columns.map((c) => `NEW.${ident(c)} IS DISTINCT FROM OLD.${ident(c)}`).join(' OR ');
  const fn = createFunction({
    schema: model.schema,
    name: guard.name,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    securityDefiner: true,
    grantTo: [],
    comment: `${guard.origin.path}: ${guard.message}`,
    body: [
      'BEGIN',
      `  IF (${changed}) AND coalesce(${printExpr(guard.when, ctx)}, false) THEN`,
      `    RAISE EXCEPTION ${literal(guard.message)}`,
      `      USING ERRCODE = 'insufficient_privilege',`,
      `            DETAIL = ${literal(`column(s) ${guard.columns.join(', ')} of ${model.schema}.${guard.table} may not change for this user`)},`,
      `            HINT = 'Leave these columns out of the UPDATE.';`,
      '  END IF;',
      '  RETURN NEW;',
      'END',
    ].join('\n'),
  });
  return [fn, trigger(model, guard.name, guard.table, 'UPDATE', guard.name)];
}

function writeRule(model: ModelNode, rule: WriteRuleNode): Statement[] {
  const ctx = exprContext(model);
  const once = evaluatedOnce(ctx);
  const body: string[] = [];
  for (const { column, value } of rule.set) body.push(`NEW.${ident(column)} := ${printExpr(value, once)};`);
  if (rule.alsoUpdate) {
    const u = rule.alsoUpdate;
    body.push(
      `UPDATE ${qualified(model.schema, u.table)} AS ${ident(u.scope)}`,
      `  SET ${u.set.map(({ column, value }) => `${ident(column)} = ${printExpr(value, ctx)}`).join(', ')}`,
      `  WHERE ${printExpr(u.where, ctx)};`,
    );
  }
  // OLD is NULL on INSERT; `when` conditions that read it see NULLs there.
  const guarded = rule.when ? [`  IF coalesce(${printExpr(rule.when, once)}, false) THEN`, ...body.map((l) => `    ${l}`), '  END IF;'] : body.map((l) => `  ${l}`);
  const fn = createFunction({
    schema: model.schema,
    name: rule.name,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    securityDefiner: true,
    grantTo: [],
    comment: `${rule.origin.path}${rule.description ? `: ${rule.description}` : ''}`,
    body: ['BEGIN', ...guarded, '  RETURN NEW;', 'END'].join('\n'),
  });
  const events = rule.events.map((e) => e.toUpperCase()).join(' OR ');
  return [fn, trigger(model, rule.name, rule.table, events, rule.name)];
}

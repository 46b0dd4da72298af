// Masked views (Oracle VPD's column masking with ALL_ROWS): every row, with the columns of rows
// the caller may not see replaced. Such a view must read rows the caller's RLS hides, so it runs
// with its owner's rights (the BYPASSRLS definer) and filters by the caller's identity itself:
// no identity, no rows. security_barrier keeps a caller's own WHERE functions from running
// before that filter. CASE expressions make it non-updatable, so a placeholder cannot be written.
// Visibility is the table's own SELECT policy predicate, re-printed here; an EXISTS in it over
// another table is evaluated with the owner's rights (no RLS on that table), so masked views suit
// tables whose policies rest on facts and columns, as generated models do.
import type { MaskedViewNode, ModelNode, ReportingViewNode } from '../model/nodes.ts';
import { ident, indent, lineComment, literal, qualified } from '../sql/print.ts';
import { exprContext, printExpr, sessionUserSql } from './expr.ts';
import { visibilityExpr } from './policies.ts';
import { APP_ROLE, DEFINER_ROLE, REPORTING_ROLE } from './roles.ts';
import { statement, type Section } from './statement.ts';

export function viewsSection(model: ModelNode): Section {
  return { title: 'Secured views', statements: [...model.maskedViews.map((v) => maskedView(model, v)), ...model.reportingViews.map((v) => reportingView(model, v))] };
}

function reportingView(model: ModelNode, view: ReportingViewNode): ReturnType<typeof statement> {
  const ctx = exprContext(model, ident(view.table));
  const name = qualified(model.schema, view.name);
  const up = [
    lineComment(`${view.origin.path}${view.description ? `: ${view.description}` : ''}`),
    `-- security_invoker: the caller's row-level security applies to ${view.table} and to every sub-select.`,
    `CREATE VIEW ${name} WITH (security_invoker = true) AS`,
    'SELECT',
    view.columns.map((c) => `  ${printExpr(c.value, ctx)} AS ${ident(c.name)}`).join(',\n'),
    `FROM ${qualified(model.schema, view.table)} AS ${ident(view.table)};`,
    ...ctx.rawReasons.map((r) => lineComment(`raw SQL (escape hatch): ${r}`)),
    `GRANT SELECT ON ${name} TO ${ident(APP_ROLE)}, ${ident(REPORTING_ROLE)};`,
    ...(view.description ? [`COMMENT ON VIEW ${name} IS ${literal(view.description)};`] : []),
  ].join('\n');
  return statement(`view ${model.schema}.${view.name}`, up, `DROP VIEW ${name};`);
}

function maskedView(model: ModelNode, view: MaskedViewNode): ReturnType<typeof statement> {
  const table = model.tables.find((t) => t.name === view.table)!;
  const alias = 'd';
  const ctx = exprContext(model, alias);
  const visible = printExpr(visibilityExpr(model, view.table, 'select'), ctx);
  const columns = table.columns.map((c) => {
    if (view.keep.includes(c.name)) return `  ${alias}.${ident(c.name)}`;
    const mask = view.masks.find((m) => m.column === c.name);
    const replacement = mask ? `${printExpr(mask.value, ctx)}::${c.type}` : `NULL::${c.type}`;
    return `  CASE WHEN ${alias}.rg_visible THEN ${alias}.${ident(c.name)} ELSE ${replacement} END AS ${ident(c.name)}`;
  });
  columns.push(`  NOT ${alias}.rg_visible AS ${ident(view.flagColumn)}`);
  const name = qualified(model.schema, view.name);
  const up = [
    lineComment(`${view.origin.path}${view.description ? `: ${view.description}` : ''}`),
    `CREATE VIEW ${name} WITH (security_barrier = true) AS`,
    'SELECT',
    columns.join(',\n'),
    // coalesce: a policy arm such as `x = any(NULL)` is NULL rather than false, and a NULL here
    // would print `restricted` as NULL instead of true on a placeholder.
    'FROM (',
    `  SELECT ${alias}.*, coalesce((`,
    indent(visible, '    '),
    '  ), false) AS rg_visible',
    `  FROM ${qualified(model.schema, view.table)} AS ${alias}`,
    `) AS ${alias}`,
    `WHERE ${sessionUserSql(model.schema)} IS NOT NULL`,
    `  AND (${alias}.rg_visible OR coalesce(${printExpr(view.showMaskedWhen, exprContext(model))}, false));`,
    `ALTER VIEW ${name} OWNER TO ${ident(DEFINER_ROLE)};`,
    `GRANT SELECT ON ${name} TO ${ident(APP_ROLE)}, ${ident(REPORTING_ROLE)};`,
    ...(view.description ? [`COMMENT ON VIEW ${name} IS ${literal(view.description)};`] : []),
  ].join('\n');
  return statement(`view ${model.schema}.${view.name}`, up, `DROP VIEW ${name};`);
}

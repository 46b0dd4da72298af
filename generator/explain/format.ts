// The text form of an Explanation, for a terminal: the verdict first, then for each stage the
// policies considered — for a granted stage the arm that admits the row, for a refused one every
// arm with the conditions that failed, their SQL and the values they read.
import type { ArmResult, ConditionResult, Explanation, FactValue, PolicyResult, StageResult, Truth } from './explain.ts';

const MARK = { true: '✓', false: '✗', null: '∅' } as const;

export function formatExplanation(x: Explanation): string {
  const out: string[] = [x.summary, ''];
  if (x.row === null) return out.join('\n');
  out.push(`The row: ${Object.entries(x.row).map(([c, v]) => `${c} = ${show(v)}`).join(', ')}`);
  out.push(`PostgreSQL, asked as the user (SELECT … WHERE ${Object.keys(x.key).join(', ')}): the row is ${x.visibleToUser ? 'visible' : 'not visible'}.`);
  if (!x.privileges.ok) out.push(`app_user lacks the ${x.privileges.missing.join(', ')} privilege on ${x.schema}.${x.table}: PostgreSQL refuses the statement before any policy is looked at.`);
  if (!x.rowSecurityEnabled) {
    out.push(`Row-level security is not enabled on ${x.schema}.${x.table}: PostgreSQL applies none of its policies and every row is reachable (fix: ALTER TABLE ${x.schema}.${x.table} ENABLE ROW LEVEL SECURITY, or apply the migrations).`);
    return out.join('\n') + '\n';
  }
  const facts = new Map(x.facts.map((f) => [f.name, f]));
  const shown = new Set<string>();
  let refusedAt: StageResult | undefined;
  for (const stage of x.stages) {
    if (refusedAt) {
      out.push('', `${stageTitle(stage)}: not reached — PostgreSQL already refused the row at ${stageTitle(refusedAt)}.`);
      continue;
    }
    out.push('', ...formatStage(stage, facts, shown));
    if (!stage.admitted) refusedAt = stage;
  }
  const listed = x.facts.filter((f) => shown.has(f.name));
  if (listed.length > 0) {
    out.push('', 'Facts about the user that these conditions read (computed once per statement):');
    for (const f of listed) out.push(`  ${f.name} = ${f.value ?? 'NULL'}${f.description ? `   — ${f.description}` : ''}`);
  }
  if (x.warnings.length > 0) {
    out.push('', 'Warnings:');
    for (const w of x.warnings) out.push(`  ! ${w}`);
  }
  return out.join('\n') + '\n';
}

function formatStage(stage: StageResult, facts: ReadonlyMap<string, FactValue>, shown: Set<string>): string[] {
  const title = `${stageTitle(stage)}: ${stage.admitted ? 'admitted' : 'refused'} — ${stage.why}.`;
  const out = [title];
  if (stage.policies.length === 0 && stage.unknownInstalled.length === 0) {
    out.push(`  No ${stage.command.toUpperCase()} policy exists for this table; PostgreSQL then admits no row.`);
  }
  for (const p of stage.policies) out.push(...formatPolicy(p, stage.admitted, facts, shown));
  for (const u of stage.unknownInstalled) {
    out.push(`  ${u.admits ? MARK.true : MARK.false} ${u.name} (${u.mode}, installed in the database but not in the policy files): ${u.admits ? 'admits' : 'refuses'}`, `      ${u.sql}`);
  }
  return out;
}

function stageTitle(stage: StageResult): string {
  return `${stage.command.toUpperCase()} ${stage.clause === 'using' ? 'USING' : 'WITH CHECK'}`;
}

function formatPolicy(p: PolicyResult, stageAdmitted: boolean, facts: ReadonlyMap<string, FactValue>, shown: Set<string>): string[] {
  const verb = p.admits ? (p.mode === 'permissive' ? 'grants' : 'allows') : p.mode === 'permissive' ? 'does not grant' : 'refuses';
  const out = [`  ${p.admits ? MARK.true : MARK.false} policy ${p.name} (${p.mode}, FOR ${p.policyCommand.toUpperCase()}) ${verb}${p.description ? ` — ${p.description}` : ''}`];
  out.push(`      declared in ${p.origin}`);
  if (p.admits) {
    // Show the arm(s) that admit the row; the others do not matter for the verdict.
    p.arms.forEach((arm, i) => {
      if (arm.result === true) out.push(...formatArm(arm, i, p.arms.length, false, facts, shown));
    });
    return out;
  }
  if (stageAdmitted && p.mode === 'permissive') {
    out.push('      (another permissive policy admits the row)');
    return out;
  }
  p.arms.forEach((arm, i) => out.push(...formatArm(arm, i, p.arms.length, true, facts, shown)));
  return out;
}

function formatArm(arm: ArmResult, index: number, count: number, showFailures: boolean, facts: ReadonlyMap<string, FactValue>, shown: Set<string>): string[] {
  const label = count === 1 ? 'condition' : `arm ${index + 1} of ${count}`;
  const out: string[] = [];
  for (const c of arm.conditions) {
    if (c.usesMe) shown.add('me');
    for (const f of c.facts) shown.add(f);
  }
  if (!showFailures) {
    out.push(`      ${MARK.true} ${label}: all ${arm.conditions.length} condition(s) hold`);
    for (const c of arm.conditions) out.push(`          ${MARK.true} ${c.words}${valuesOf(c, facts).length > 0 ? `   (${valuesOf(c, facts).join(', ')})` : ''}`);
    return out;
  }
  const failed = arm.conditions.filter((c) => c.result !== true);
  out.push(`      ${MARK[String(arm.result) as keyof typeof MARK]} ${label}: ${failed.length} of ${arm.conditions.length} condition(s) fail`);
  for (const c of arm.conditions) {
    if (c.result === true) {
      out.push(`          ${MARK.true} ${c.words}`);
      continue;
    }
    out.push(...formatFailed(c, facts));
  }
  return out;
}

function formatFailed(c: ConditionResult, facts: ReadonlyMap<string, FactValue>): string[] {
  const out = [`          ${MARK[String(c.result) as keyof typeof MARK]} ${c.words}   ${truthWord(c.result)}`];
  out.push(`              SQL:  ${c.sql.replaceAll('\n', '\n                    ')}`);
  const values = valuesOf(c, facts);
  if (values.length > 0) out.push(`              with: ${values.join(', ')}`);
  return out;
}

function valuesOf(c: ConditionResult, facts: ReadonlyMap<string, FactValue>): string[] {
  return [
    ...c.columns.map((col) => `row.${col.name} = ${show(col.value)}`),
    ...(c.usesMe ? [`me = ${facts.get('me')?.value ?? 'NULL'}`] : []),
    ...c.facts.map((f) => `${f} = ${facts.get(f)?.value ?? 'NULL'}`),
  ];
}

function truthWord(t: Truth): string {
  return t === null ? '(NULL: counts as false)' : t ? '' : '(false)';
}

function show(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  return typeof v === 'string' ? `'${v}'` : JSON.stringify(v);
}

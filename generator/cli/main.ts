// The rowguard command line. Thin: parse arguments, call the toolkit, print results and errors.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { applyPlan, driftOf, planGeneration } from '../migrations/write.ts';
import { formatProblems } from '../validate/index.ts';

const USAGE = `rowguard — row-level security that lives in PostgreSQL

Usage:
  rowguard generate [--check] [--config FILE] [--policies DIR] [--sql DIR] [--migrations DIR]
      Compile policies/*.ts into sql/*.sql (reviewable) and migrations/*.sql (node-pg-migrate).
      --check writes nothing and exits 1 when the committed files differ from the policies.
      Committed migrations are never rewritten: a policy change adds a new migration, computed from
      the snapshot in migrations/.rowguard/<schema>.json. --accept-manual records table changes
      rowguard refused (and you wrote by hand) without emitting them.
  rowguard lint [--json] [--schema S]... [--role R]...
      Inspect the live database at DATABASE_URL: RLS not enabled/forced, unprotected tables in
      secured schemas, application/reporting roles that skip RLS or own tables, owner-rights views,
      SECURITY DEFINER functions without search_path, per-row function calls in policies, and
      policy columns (and anyOf arrays) without an index. Exit 0: no errors (warnings allowed); 1: errors; 2: could
      not run. --json prints the findings as JSON; --role replaces app_user/reporting_user.
  rowguard demo
      Start embedded PostgreSQL (data in .rowguard/), apply the migrations, load sample data
      and show what each persona sees.
  rowguard explain --schema S --user U --table T --id ID [--command select|update|delete] [--json]
      With DATABASE_URL: may user U do that to the row, which policy grants it, or which conditions
      of each policy failed (with their SQL and the facts they read). Exit 0 allowed, 1 denied.
      A composite key is --id a,b (key order) or --id col=a,col2=b.
  rowguard report [--out report.html] [--users N]
      With DATABASE_URL: a self-contained HTML page with each model's hierarchies, each table's
      policies in plain language and a persona × table matrix of visible rows.
  rowguard help
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'generate':
      return generate(rest);
    case 'lint': {
      const { lint } = await import('./lint.ts');
      return lint(rest);
    }
    case 'demo': {
      const { runDemo } = await import('./demo.ts');
      return runDemo(rest);
    }
    case 'explain': {
      const { runExplain } = await import('./explain.ts');
      return runExplain(rest);
    }
    case 'report': {
      const { runReport } = await import('./report.ts');
      return runReport(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`rowguard: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function generate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      check: { type: 'boolean', default: false },
      config: { type: 'string' },
      policies: { type: 'string' },
      sql: { type: 'string' },
      migrations: { type: 'string' },
      'accept-manual': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const config = loadConfig(process.cwd(), { policies: values.policies, sql: values.sql, migrations: values.migrations }, values.config);
  const plan = await planGeneration(config, { acceptManual: values['accept-manual'] });
  if (plan.problems.length > 0) {
    process.stderr.write(`rowguard generate: ${plan.problems.length} problem(s); nothing was written.\n\n${formatProblems(plan.problems)}\n`);
    return 1;
  }
  if (values.check) {
    const drift = driftOf(config, plan);
    const lines = [
      ...drift.changed.map((p) => `  changed: ${p}`),
      ...drift.pending.map((p) => `  pending: ${p} (a migration the current policies need: run \`rowguard generate\`)`),
      ...drift.missing.filter((p) => !drift.pending.includes(p)).map((p) => `  missing: ${p}`),
      ...drift.stale.map((p) => `  stale:   ${p} (no policy produces it any more)`),
    ];
    if (lines.length > 0) {
      process.stderr.write(`rowguard generate --check: the generated files are out of date:\n${lines.join('\n')}\nRun \`rowguard generate\` and commit the result.\n`);
      return 1;
    }
    process.stdout.write(`rowguard generate --check: ${plan.files.length} files up to date (${plan.models.map((m) => m.model.schema).join(', ')}).\n`);
    return 0;
  }
  const { written, removed } = applyPlan(config, plan);
  for (const p of written) process.stdout.write(`  wrote   ${p}\n`);
  for (const p of removed) process.stdout.write(`  removed ${p}\n`);
  process.stdout.write(`rowguard generate: ${plan.models.length} model(s), ${written.length} file(s) written, ${plan.files.length - written.length} unchanged.\n`);
  return 0;
}

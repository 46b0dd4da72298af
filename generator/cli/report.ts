// `rowguard report`: argument parsing and file writing around generator/report.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { loadConfig } from '../config.ts';
import { BypassUnavailable } from '../db/bypass.ts';
import { loadModels } from '../load.ts';
import { collectReport } from '../report/collect.ts';
import { renderReport } from '../report/html.ts';
import { formatProblems } from '../validate/index.ts';
import { samples } from './samples/index.ts';

export async function runReport(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'report.html' },
      users: { type: 'string' },
      config: { type: 'string' },
      policies: { type: 'string' },
    },
    strict: true,
  });
  const users = values.users === undefined ? undefined : Number(values.users);
  if (users !== undefined && !(Number.isInteger(users) && users > 0)) {
    process.stderr.write(`rowguard report: --users takes a positive whole number (got "${values.users}")\n`);
    return 2;
  }
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('rowguard report: set DATABASE_URL to the database to picture (a superuser, BYPASSRLS role or member of rowguard_definer)\n');
    return 2;
  }
  const config = loadConfig(process.cwd(), { policies: values.policies }, values.config);
  const { models, problems } = await loadModels(config.root, config.policies);
  if (problems.length > 0) {
    process.stderr.write(`rowguard report: the policy files have problems:\n\n${formatProblems(problems)}\n`);
    return 2;
  }
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const data = await collectReport(sql, models, samples, users === undefined ? {} : { users });
    const out = resolve(process.cwd(), values.out);
    writeFileSync(out, renderReport(data));
    const personas = data.models.reduce((n, m) => n + m.personas.length, 0);
    process.stdout.write(`rowguard report: wrote ${out} (${data.models.length} model(s), ${personas} persona(s))\n`);
    return 0;
  } catch (error) {
    if (error instanceof BypassUnavailable) {
      process.stderr.write(`rowguard report: ${error.message}\n`);
      return 2;
    }
    throw error;
  } finally {
    await sql.end();
  }
}

// `rowguard explain`: argument parsing and printing around generator/explain.
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { loadConfig } from '../config.ts';
import { loadModels } from '../load.ts';
import { EXPLAIN_COMMANDS, type ExplainCommand } from '../explain/plan.ts';
import { ExplainError, explainRow } from '../explain/explain.ts';
import { formatExplanation } from '../explain/format.ts';
import { formatProblems } from '../validate/index.ts';

export async function runExplain(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      schema: { type: 'string' },
      user: { type: 'string' },
      table: { type: 'string' },
      id: { type: 'string' },
      command: { type: 'string', default: 'select' },
      json: { type: 'boolean', default: false },
      config: { type: 'string' },
      policies: { type: 'string' },
    },
    strict: true,
  });
  const missing = (['schema', 'user', 'table', 'id'] as const).filter((k) => values[k] === undefined);
  if (missing.length > 0) {
    process.stderr.write(`rowguard explain: missing ${missing.map((m) => `--${m}`).join(', ')}\n  e.g. rowguard explain --schema smartoffice --user 11 --table contacts --id 101\n`);
    return 2;
  }
  const command = values.command as ExplainCommand;
  if (!EXPLAIN_COMMANDS.includes(command)) {
    process.stderr.write(`rowguard explain: --command must be one of ${EXPLAIN_COMMANDS.join(', ')} (got "${values.command}")\n`);
    return 2;
  }
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('rowguard explain: set DATABASE_URL to the database to ask (a superuser, BYPASSRLS role or member of rowguard_definer)\n');
    return 2;
  }
  const config = loadConfig(process.cwd(), { policies: values.policies }, values.config);
  const { models, problems } = await loadModels(config.root, config.policies);
  if (problems.length > 0) {
    process.stderr.write(`rowguard explain: the policy files have problems:\n\n${formatProblems(problems)}\n`);
    return 2;
  }
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const explanation = await explainRow(sql, models, { schema: values.schema!, table: values.table!, user: values.user!, id: values.id!, command });
    process.stdout.write(values.json ? `${JSON.stringify(explanation, null, 2)}\n` : formatExplanation(explanation));
    return explanation.allowed ? 0 : 1;
  } catch (error) {
    if (error instanceof ExplainError) {
      process.stderr.write(`rowguard explain: ${error.message}\n`);
      return 2;
    }
    throw error;
  } finally {
    await sql.end();
  }
}

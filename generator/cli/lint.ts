// `rowguard lint`: connect to DATABASE_URL, print the findings (text or --json), exit 1 on errors.
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { formatFindings, hasErrors, lintDatabase } from '../lint/index.ts';

export async function lint(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      schema: { type: 'string', multiple: true },
      role: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('rowguard lint: set DATABASE_URL to the database to inspect, e.g. DATABASE_URL=postgres://user@host/db rowguard lint\n');
    return 2;
  }
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const findings = await lintDatabase(sql, { schemas: values.schema, roles: values.role });
    if (values.json) {
      const errors = findings.filter((f) => f.severity === 'error').length;
      process.stdout.write(`${JSON.stringify({ errors, warnings: findings.length - errors, findings }, null, 2)}\n`);
    } else {
      process.stdout.write(formatFindings(findings));
    }
    return hasErrors(findings) ? 1 : 0;
  } catch (error) {
    process.stderr.write(`rowguard lint: could not inspect the database: ${(error as Error).message}\n`);
    return 2;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

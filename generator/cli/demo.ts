// `npm start`: the main job on the embedded default. Starts PostgreSQL with its data in
// .rowguard/demo-db, applies the migrations, loads the sample data once, and prints for each
// persona of each model what they can see — queried as app_user with set_session, like an app.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { migrate } from '../db/migrate.ts';
import { startDatabase, withDatabase } from '../db/server.ts';
import { samples } from './samples/index.ts';

const DEMO_DB = 'rowguard_demo';

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { fresh: { type: 'boolean', default: false } }, strict: true });
  const root = process.cwd();
  const dataDir = resolve(root, '.rowguard', 'demo-db');
  const server = await startDatabase({ dataDir, persistent: !values.fresh, preferEmbedded: true, log: (m) => process.stdout.write(`• ${m}\n`) });
  try {
    const maintenance = postgres(server.url, { max: 1, onnotice: () => {} });
    const exists = (await maintenance`SELECT 1 FROM pg_database WHERE datname = ${DEMO_DB}`).length > 0;
    if (!exists) await maintenance.unsafe(`CREATE DATABASE ${DEMO_DB}`);
    await maintenance.end();
    const url = withDatabase(server.url, DEMO_DB);

    const ran = await migrate(url, { dir: join(root, 'migrations') });
    process.stdout.write(`• migrations: ${ran.length === 0 ? 'already up to date' : `applied ${ran.join(', ')}`}\n`);

    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      for (const sample of samples) {
        const loaded = (await sql.unsafe(`SELECT count(*)::int AS n FROM ${sample.schema}.${sample.table}`))[0]!.n as number;
        if (loaded === 0) {
          await sql.begin((tx) => tx.unsafe(sample.sql));
          process.stdout.write(`• loaded the ${sample.schema} sample data\n`);
        }
      }
      for (const sample of samples) {
        process.stdout.write(`\n${sample.schema}: what each persona sees in ${sample.schema}.${sample.table} (as app_user, after ${sample.schema}.set_session)\n`);
        const rows: string[][] = [];
        for (const persona of sample.personas) {
          const seen = await sql.begin(async (tx) => {
            await tx.unsafe('SET LOCAL ROLE app_user');
            await tx.unsafe(`SELECT ${sample.schema}.set_session($1)`, [persona.id as never]);
            return tx.unsafe(`SELECT id FROM ${sample.schema}.${sample.table} ORDER BY id`);
          });
          const got = seen.map((r) => String(r.id));
          const expected = persona.sees.map(String);
          const agrees = got.join(',') === [...expected].join(',');
          rows.push([String(persona.id), persona.name, String(got.length), got.join(', ') || '(nothing)', agrees ? 'yes' : `NO, expected ${expected.join(', ')}`]);
        }
        const nobody = await sql.begin(async (tx) => {
          await tx.unsafe('SET LOCAL ROLE app_user');
          return tx.unsafe(`SELECT count(*)::int AS n FROM ${sample.schema}.${sample.table}`);
        });
        rows.push(['-', 'nobody (no set_session)', String(nobody[0]!.n), '(nothing)', nobody[0]!.n === 0 ? 'yes' : 'NO']);
        process.stdout.write(table(['id', 'persona', 'rows', `${sample.table}.id visible`, 'as the contract says'], rows));
      }
    } finally {
      await sql.end();
    }
    process.stdout.write(`\nThe database keeps running only while this command runs; its data stays in ${dataDir}.\n`);
    process.stdout.write('Start over with `npm start -- --fresh`.\n');
    return 0;
  } finally {
    await server.stop();
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  │  ')}\n`;
  const rule = `  ${widths.map((w) => '─'.repeat(w)).join('──┼──')}\n`;
  return line(header) + rule + rows.map(line).join('');
}

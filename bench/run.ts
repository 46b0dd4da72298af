// `npm run bench`: generates each model's data (10^6 rows × --scale), runs every persona's queries
// secured and in the three baselines, checks the answers, prints the table and writes JSON to
// bench/results/. Not part of `npm test`. See bench/README.md for what is measured and why.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { migrate } from '../generator/db/migrate.ts';
import { startDatabase, withDatabase } from '../generator/db/server.ts';
import { formatTable, runMixed, runScenario, type Scenario } from './harness.ts';
import { BENCH_DATA_DIR, BENCH_SETTINGS } from './server.ts';
import { collect } from './scenarios/collect.ts';
import { policycenter } from './scenarios/policycenter.ts';
import { smartoffice } from './scenarios/smartoffice.ts';
import { superoffice } from './scenarios/superoffice.ts';

const usage = `npm run bench -- [options]
  --model a,b        models to run (smartoffice, collect, policycenter, superoffice; default all four)
  --scale N          10^6 × N rows in the large table (default 1; 10 for 10^7)
  --offices N        SmartOffice office-tree size (default 1111)
  --shape S          balanced | deep office tree (default balanced)
  --clients N        Collect! client-tree size (default 1111)
  --persona a,b      only these personas (names as printed)
  --runs N           timed runs per variant (default 25; fewer when a query is slow). A query's
                     variants (S, B1, B2, B0) are timed in turn, one run of each per round
  --budget MS        stop sampling a query after MS milliseconds per variant once it has 5 rounds
                     (default 3000)
  --prepare          run every statement as a named prepared statement (what postgres.js does by
                     default): after the first executions PostgreSQL reuses a cached plan, so the
                     times show what an application pays once planning is out of the way
  --mixed            prepared, with one connection serving the personas in turn, as a pool serves
                     its users: each run of a statement is for another persona than the run before
                     (S and B2 only; writes of many rows left out). S's text begins with the mark of
                     the persona's kind, as the runtime sends it. Writes <model>-mixed.json
  --one-text         with --mixed: one text of S for every kind of user, as an application sends
                     it without the runtime. Writes <model>-mixed-one-text.json
  --reuse            keep the database in /tmp/rowguard-bench and reuse loaded data with the same parameters
  --no-write         do not write bench/results/*.json`;

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'smartoffice,collect,policycenter,superoffice' },
    scale: { type: 'string', default: '1' },
    offices: { type: 'string', default: '1111' },
    shape: { type: 'string', default: 'balanced' },
    clients: { type: 'string', default: '1111' },
    persona: { type: 'string' },
    runs: { type: 'string', default: '25' },
    budget: { type: 'string', default: '3000' },
    prepare: { type: 'boolean', default: false },
    mixed: { type: 'boolean', default: false },
    'one-text': { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const positive = (name: string, text: string): number => {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number, got "${text}"\n\n${usage}`);
    process.exit(2);
  }
  return n;
};
if (values['one-text'] && !values.mixed) {
  console.error(`--one-text goes with --mixed\n\n${usage}`);
  process.exit(2);
}
const scale = positive('scale', values.scale);
const shape = values.shape === 'deep' ? 'deep' : values.shape === 'balanced' ? 'balanced' : (console.error(`--shape must be balanced or deep\n\n${usage}`), process.exit(2));
const scenarios: Record<string, () => Scenario> = {
  smartoffice: () => smartoffice({ offices: Math.round(positive('offices', values.offices)), shape }),
  collect: () => collect({ clients: Math.round(positive('clients', values.clients)) }),
  policycenter: () => policycenter(),
  superoffice: () => superoffice({ groups: 1_000 }),
};
const chosen = values.model.split(',').map((m) => m.trim()).filter(Boolean);
for (const m of chosen) {
  if (!scenarios[m]) {
    console.error(`unknown model "${m}"; choose from ${Object.keys(scenarios).join(', ')}`);
    process.exit(2);
  }
}
const personaNames = values.persona?.split(',').map((p) => p.trim());
const log = (m: string) => process.stderr.write(`${m}\n`);

const server = await startDatabase({ dataDir: BENCH_DATA_DIR, persistent: values.reuse, preferEmbedded: true, settings: BENCH_SETTINGS, log });
let failed = false;
try {
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  const serverVersion = (await admin`SHOW server_version`)[0]!.server_version as string;
  for (const name of chosen) {
    const scenario = scenarios[name]!();
    const params = { scale, offices: values.offices, shape, clients: values.clients };
    const key = `${name} ${JSON.stringify(params)}`;
    const db = `bench_${name}`;
    const exists = (await admin`SELECT 1 FROM pg_database WHERE datname = ${db}`).length > 0;
    let loaded = false;
    if (exists && values.reuse) {
      const probe = postgres(withDatabase(server.url, db), { max: 1, onnotice: () => {} });
      loaded = (await probe.unsafe(`SELECT 1 FROM pg_tables WHERE tablename = 'bench_meta'`)).length > 0 && (await probe.unsafe(`SELECT 1 FROM public.bench_meta WHERE key = $1`, [key])).length > 0;
      await probe.end();
    }
    const url = withDatabase(server.url, db);
    if (!loaded) {
      if (exists) await admin.unsafe(`DROP DATABASE ${db} WITH (FORCE)`);
      await admin.unsafe(`CREATE DATABASE ${db}`);
    }
    // Reused data gets the migrations written since it was loaded.
    const migrated = await migrate(url, { dir: 'migrations' });
    const owner = postgres(url, { max: 4, onnotice: () => {} });
    try {
      log(`${name}: ${scenario.describe(scale)}`);
      if (!loaded) {
        const t0 = Date.now();
        await scenario.load(owner, scale, (m) => log(`  loading ${m}`));
        await owner.unsafe(`CREATE TABLE public.bench_meta (key text PRIMARY KEY); INSERT INTO public.bench_meta VALUES ('${key.replaceAll("'", "''")}')`);
        log(`  loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      } else {
        // Every run's writes are rolled back, and their dead tuples stay in the heap and the
        // indexes until a VACUUM (autovacuum waits for 20% of a million rows). A selective
        // persona's bitmap then visits them too: after a day of runs Collect!'s locked-out
        // operator's count read 688 heap pages where 163 hold its rows (server time
        // 2.05 -> 1.36 ms). So reused data is vacuumed first, as loaded data is.
        // Migrations just applied may have rewritten columns (a key list's fill updates every
        // listed row) and added ones without statistics, which a loaded database gets from the
        // load's ANALYZE: then the vacuum analyzes too (with stale row counts the open office's
        // join went parallel, 6.7 -> 24 ms). Otherwise it does not, so the statistics, and with
        // them the plans, stay those of the load from one run to the next.
        const t0 = Date.now();
        await owner.unsafe(migrated.length > 0 ? 'VACUUM (ANALYZE, INDEX_CLEANUP ON)' : 'VACUUM (INDEX_CLEANUP ON)');
        log(`  vacuumed${migrated.length > 0 ? ` and analyzed (${migrated.length} migration(s) applied)` : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
      // The load (or the VACUUM) leaves up to gigabytes of dirty buffers for the checkpointer to
      // write while the first persona is timed (in one run right after a load, PolicyCenter's first
      // persona took three times its usual time for every statement, SELECT 1 included). They are
      // written now.
      const t1 = Date.now();
      await owner.unsafe('CHECKPOINT');
      log(`  checkpoint in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
      const options = {
        runs: Math.round(positive('runs', values.runs)),
        warmup: 3,
        minRuns: 5,
        budgetMs: positive('budget', values.budget),
        prepare: values.prepare,
        oneText: values['one-text'],
        log,
        ...(personaNames ? { personaFilter: (p: { name: string }) => personaNames.includes(p.name) } : {}),
      };
      const results = values.mixed ? await runMixed(owner, scenario, scale, options) : await runScenario(owner, scenario, scale, options);
      console.log(formatTable(name, results));
      if (!values['no-write']) {
        mkdirSync('bench/results', { recursive: true });
        const defaults = scale === 1 && values.offices === '1111' && shape === 'balanced' && values.clients === '1111' && !personaNames;
        const suffix = `${defaults ? '' : `-${Object.values(params).join('-')}`}${values.mixed ? `-mixed${values['one-text'] ? '-one-text' : ''}` : values.prepare ? '-prepared' : ''}`;
        const file = join('bench/results', `${name}${suffix}.json`);
        const mode = values.mixed
          ? `every statement a named prepared statement on one connection serving the personas in turn (each run of a statement for another persona than the run before; S and B2 only); ${values['one-text'] ? "one text of S for every kind of user; `plans` counts all personas' runs of the statement" : "S's text begins with the mark of the persona's kind, as the runtime sends it; `plans` counts the runs of all personas of the kind"}`
          : values.prepare
            ? 'every statement a named prepared statement, those without parameters too (cached plan after the first executions; `plans`: how many timed runs had a generic plan and how many a custom one); buffers from an EXPLAIN (ANALYZE, BUFFERS) of the same text prepared in SQL, its plan forced to the kind most timed runs had'
            : 'planned at every execution; buffers from one EXPLAIN (ANALYZE, BUFFERS)';
        const doc = {
          model: name,
          data: scenario.describe(scale),
          params,
          environment: { postgres: serverVersion, server: server.kind, settings: BENCH_SETTINGS, cpus: cpus().length, cpu: cpus()[0]?.model ?? '', node: process.version, date: new Date().toISOString().slice(0, 10) },
          timing: `wall time of one statement seen by the client (postgres.js, loopback), identity already set in the transaction; ${mode}; medians and p95 over the runs`,
          results,
        };
        writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
        log(`wrote ${file}`);
      }
    } catch (error) {
      failed = true;
      console.error(`${name}: ${(error as Error).message}`);
    } finally {
      await owner.end();
    }
  }
  await admin.end();
} finally {
  await server.stop();
}
process.exit(failed ? 1 : 0);

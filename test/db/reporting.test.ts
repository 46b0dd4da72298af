// Reporting tools log in with their own role, bound by a DBA to a model user. They see exactly
// what that user sees with no setter call, cannot become anyone else, and see nothing once unbound.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samples } from '../../generator/cli/samples/index.ts';
import { sqlState, useTestDatabase } from '../support/db.ts';

const run = promisify(execFile);
const db = useTestDatabase(async (admin) => {
  for (const s of samples) await admin.unsafe(s.sql);
});

const BI = `rowguard_bi_${process.pid}`;
let biUrl = '';
let bi: postgres.Sql;
const persona = (schema: string, id: number | string) => samples.find((s) => s.schema === schema)!.personas.find((p) => String(p.id) === String(id))!;

beforeAll(async () => {
  await db.current.admin.unsafe(`CREATE ROLE ${BI} LOGIN PASSWORD 'bi'`);
  await db.current.admin.unsafe(`SELECT smartoffice.bind_login('${BI}', 10)`); // Carla, enterprise view
  await db.current.admin.unsafe(`SELECT collect.bind_login('${BI}', 'nina')`);
  const u = new URL(db.current.url);
  u.username = BI;
  u.password = 'bi';
  biUrl = u.toString();
  bi = postgres(biUrl, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await bi?.end();
  await db.current.admin.unsafe(`SELECT smartoffice.unbind_login('${BI}'); SELECT collect.unbind_login('${BI}'); DROP OWNED BY ${BI}; DROP ROLE ${BI}`);
});

const contactIds = async (sql: postgres.Sql) => (await sql`SELECT id FROM smartoffice.contacts ORDER BY id`).map((r) => Number(r.id));

describe('reporting logins', () => {
  it('a bound login sees exactly what its user sees, in every model it is bound in, with no setter', async () => {
    expect(await contactIds(bi)).toEqual(persona('smartoffice', 10).sees);
    expect((await bi`SELECT id FROM collect.debtors ORDER BY id`).map((r) => Number(r.id))).toEqual(persona('collect', 'nina').sees.map(Number));
    // Not bound in policycenter: nothing there.
    expect((await bi`SELECT count(*)::int AS n FROM policycenter.organizations`)[0]!.n).toBe(0);
  });

  it('works through psql, as a BI tool would connect', async () => {
    const { stdout } = await run('psql', [biUrl, '-X', '-A', '-t', '-c', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM smartoffice.contacts']);
    expect(stdout.trim()).toBe(persona('smartoffice', 10).sees.join(','));
  });

  it('cannot become anyone else: set_session is refused with a clear error', async () => {
    const error = await bi.begin((tx) => tx`SELECT smartoffice.set_session(11)`).catch((e: postgres.PostgresError) => e);
    expect(error).toMatchObject({ code: '42501' });
    expect(String((error as Error).message)).toContain('may not assert an identity');
    expect(await sqlState(bi.begin((tx) => tx.unsafe('SET LOCAL ROLE app_user')))).toBe('42501');
  });

  it('setting the identity parameters by hand changes nothing it sees', async () => {
    const seen = await bi.begin(async (tx) => {
      await tx`SELECT set_config('rowguard.smartoffice_user_id', '11', true)`;
      await tx`SELECT set_config('rowguard.smartoffice_token', 'forged', true)`;
      const a = (await tx`SELECT id FROM smartoffice.contacts ORDER BY id`).map((r) => Number(r.id));
      await tx.unsafe(`SET LOCAL rowguard.smartoffice_user_id = '14'`);
      const b = (await tx`SELECT id FROM smartoffice.contacts ORDER BY id`).map((r) => Number(r.id));
      return [a, b];
    });
    expect(seen).toEqual([persona('smartoffice', 10).sees, persona('smartoffice', 10).sees]);
  });

  it('only a DBA binds: the login cannot bind itself or read the bindings', async () => {
    expect(await sqlState(bi`SELECT smartoffice.bind_login(${BI}, 11)`)).toBe('42501');
    expect(await sqlState(bi`SELECT * FROM smartoffice.login_bindings`)).toBe('42501');
  });

  it('bind_login refuses roles that could bypass it, and unknown users', async () => {
    expect(await sqlState(db.current.admin`SELECT smartoffice.bind_login('app_user', 10)`)).toBe('42704');
    expect(await sqlState(db.current.admin`SELECT smartoffice.bind_login(${BI}, 999)`)).toBe('28000');
  });

  it('an unbound login sees nothing', async () => {
    await db.current.admin.unsafe(`SELECT smartoffice.unbind_login('${BI}')`);
    try {
      const fresh = postgres(biUrl, { max: 1, onnotice: () => {} });
      try {
        expect(await contactIds(fresh)).toEqual([]);
      } finally {
        await fresh.end();
      }
    } finally {
      await db.current.admin.unsafe(`SELECT smartoffice.bind_login('${BI}', 10)`);
    }
  });
});

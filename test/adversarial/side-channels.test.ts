// Side channels: a user probing rows the policies hide — through errors, non-leakproof functions
// and operators, RETURNING, ON CONFLICT, MERGE, COPY, EXPLAIN ANALYZE and aggregates — learns nothing
// PostgreSQL's RLS does not already concede. The concessions (a unique or foreign key reveals that
// a hidden key exists; EXPLAIN and statistics reveal how many rows a table has) are asserted at
// the end, as the README documents them.
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelNode, TableNode } from '../../generator/model/nodes.ts';
import { ident } from '../../generator/sql/print.ts';
import { savepointed, sqlState, useTestDatabase, waitForLockWait, type Tx } from '../support/db.ts';
import { hasPolicy, keySql, loadSamples, models, personasOf, tableSql } from '../support/models.ts';

const db = useTestDatabase(async (admin) => {
  await loadSamples(admin);
  // Deliberately leaky helpers an attacker could create: not LEAKPROOF, nearly free (so the
  // planner would love to run them first), and they print whatever they are given.
  await admin.unsafe(`
    CREATE FUNCTION public.rg_peek(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
      AS $$ BEGIN RAISE NOTICE 'peek:%', $1; RETURN true; END $$;
    CREATE FUNCTION public.rg_peek2(text, text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
      AS $$ BEGIN RAISE NOTICE 'peek:%', $1; RETURN true; END $$;
    CREATE OPERATOR public.#~# (LEFTARG = text, RIGHTARG = text, FUNCTION = public.rg_peek2);
    GRANT EXECUTE ON FUNCTION public.rg_peek(text), public.rg_peek2(text, text) TO app_user;`);
});

let notices: string[] = [];
let spy: Sql;
beforeAll(() => {
  spy = postgres(db.current.url, { max: 1, onnotice: (n) => notices.push(String(n.message)) });
});
afterAll(async () => {
  await spy?.end();
});

class Rollback extends Error {}
/** As app_user acting as `id` on the notice-recording connection; always rolls back. */
async function as<T>(schema: string, id: number | string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  let value: T;
  await spy
    .begin(async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx.unsafe(`SELECT ${ident(schema)}.set_session($1)`, [id]);
      value = await fn(tx as unknown as Tx);
      throw new Rollback();
    })
    .catch((e) => {
      if (!(e instanceof Rollback)) throw e;
    });
  return value!;
}

interface Target {
  readonly table: TableNode;
  readonly persona: number | string;
  readonly visible: Map<string, Record<string, unknown>>;
  readonly hidden: Map<string, Record<string, unknown>>;
}

/** Per table with a SELECT policy: the first persona that sees some rows but not all. */
async function targets(model: ModelNode): Promise<Target[]> {
  const out: Target[] = [];
  for (const table of model.tables.filter((t) => hasPolicy(model, t.name, 'select'))) {
    const q = `SELECT ${keySql(table)} AS k, to_jsonb(t) AS r FROM ${tableSql(model, table.name)} AS t`;
    const all = new Map((await db.current.admin.unsafe(q)).map((x) => [x.k as string, x.r as Record<string, unknown>]));
    for (const persona of personasOf(model.schema)) {
      const seen = await as(model.schema, persona, async (tx) => new Set((await tx.unsafe(q)).map((x) => x.k as string)));
      const visible = new Map([...all].filter(([k]) => seen.has(k)));
      const hidden = new Map([...all].filter(([k]) => !seen.has(k)));
      if (visible.size > 0 && hidden.size > 0) {
        out.push({ table, persona, visible, hidden });
        break;
      }
    }
  }
  return out;
}

/**
 * Text values of hidden rows that appear nowhere in the visible rows, not even inside a longer
 * value ('Acme East' hidden, 'Acme East Retail' visible): finding one in any output is a leak.
 */
function secrets(t: Target): string[] {
  const shown = [...t.visible.values()].flatMap((r) => Object.values(r).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))));
  return [...t.hidden.values()].flatMap((r) => Object.values(r).filter((v): v is string => typeof v === 'string' && v.length >= 4 && !shown.some((x) => x.includes(v))));
}

for (const model of models) {
  describe(`${model.schema}: probing hidden rows`, () => {
    let found: Target[] = [];
    beforeAll(async () => {
      found = await targets(model);
    });

    it('has tables with hidden rows to probe', () => {
      expect(found.length, 'no table has a persona who sees some but not all rows').toBeGreaterThan(0);
    });

    it('errors: 1/0 guarded by a condition on a hidden row never fires; on a visible row it does', async () => {
      for (const t of found) {
        const name = tableSql(model, t.table.name);
        const probe = `SELECT count(*)::int AS n FROM ${name} AS t WHERE 1 / (CASE WHEN ${keySql(t.table)} = $1 THEN 0 ELSE 1 END) = 1`;
        await as(model.schema, t.persona, async (tx) => {
          const run = savepointed(tx);
          for (const key of t.hidden.keys()) expect(await run(probe, [key]), `${t.table.name} hidden ${key}`).toEqual({ rows: [{ n: t.visible.size }] });
          // The control: the probe does fire on a row the user can see.
          expect(await run(probe, [[...t.visible.keys()][0]]), `${t.table.name} control`).toEqual({ refused: '22012' });
        });
      }
    });

    it('non-leakproof functions and operators in WHERE only ever see visible rows', async () => {
      for (const t of found) {
        const name = tableSql(model, t.table.name);
        for (const where of ['public.rg_peek(to_jsonb(t)::text)', `to_jsonb(t)::text OPERATOR(public.#~#) 'x'`, `public.rg_peek(to_jsonb(t)::text) AND ${keySql(t.table)} IS NOT NULL`]) {
          notices = [];
          const n = await as(model.schema, t.persona, async (tx) => (await tx.unsafe(`SELECT count(*)::int AS n FROM ${name} AS t WHERE ${where}`))[0]!.n);
          expect(n).toBe(t.visible.size);
          const peeked = notices.filter((m) => m.startsWith('peek:'));
          expect(peeked.length, `${t.table.name}: ${where}`).toBe(t.visible.size);
          for (const s of secrets(t)) expect(peeked.join('\n'), `${t.table.name}: ${where}`).not.toContain(s);
        }
      }
    });

    it('a leaky function over any view of the schema only sees the rows the view returns', async () => {
      const views = (await db.current.admin`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${model.schema} AND c.relkind IN ('v', 'm') ORDER BY 1`).map((r) => r.relname as string);
      for (const view of views) {
        for (const persona of personasOf(model.schema)) {
          notices = [];
          const n = await as(model.schema, persona, async (tx) => (await tx.unsafe(`SELECT count(*)::int AS n FROM ${tableSql(model, view)} AS v WHERE public.rg_peek(to_jsonb(v)::text)`))[0]!.n as number);
          const all = await as(model.schema, persona, async (tx) => (await tx.unsafe(`SELECT count(*)::int AS n FROM ${tableSql(model, view)}`))[0]!.n as number);
          expect(n).toBe(all);
          expect(notices.filter((m) => m.startsWith('peek:')).length, `${view} as ${persona}`).toBe(all);
        }
      }
    });

    it('UPDATE/DELETE … RETURNING on hidden rows return and change nothing', async () => {
      for (const t of found) {
        const name = tableSql(model, t.table.name);
        const col = ident(t.table.columns.find((c) => !t.table.primaryKey.includes(c.name))?.name ?? t.table.primaryKey[0]!);
        await as(model.schema, t.persona, async (tx) => {
          const run = savepointed(tx);
          for (const key of t.hidden.keys()) {
            for (const q of [`UPDATE ${name} AS t SET ${col} = t.${col} WHERE ${keySql(t.table)} = $1 RETURNING *`, `DELETE FROM ${name} AS t WHERE ${keySql(t.table)} = $1 RETURNING *`]) {
              const o = await run(q, [key]);
              expect('rows' in o ? o.rows : o.refused, `${t.table.name} ${key}: ${q}`).toSatisfy((v: unknown) => v === '42501' || (Array.isArray(v) && v.length === 0));
            }
          }
        });
      }
    });

    it('INSERT … ON CONFLICT on a hidden key neither returns nor changes the hidden row', async () => {
      for (const t of found) {
        const name = tableSql(model, t.table.name);
        const pk = t.table.primaryKey.map(ident).join(', ');
        const col = t.table.columns.find((c) => !t.table.primaryKey.includes(c.name))?.name ?? t.table.primaryKey[0]!;
        const before = await db.current.admin.unsafe(`SELECT ${keySql(t.table)} AS k, to_jsonb(t) AS r FROM ${name} AS t ORDER BY 1`);
        await as(model.schema, t.persona, async (tx) => {
          const run = savepointed(tx);
          for (const [key, row] of t.hidden) {
            for (const conflict of ['DO NOTHING', `(${pk}) DO UPDATE SET ${ident(col)} = EXCLUDED.${ident(col)}`]) {
              const q = `INSERT INTO ${name} SELECT * FROM jsonb_populate_record(NULL::${name}, $1) ON CONFLICT ${conflict} RETURNING *`;
              const o = await run(q, [row]);
              // Refused (no INSERT right, WITH CHECK, or the UPDATE policy's USING as a hard check)
              // or nothing inserted: never the hidden row's values.
              expect('rows' in o ? o.rows : o.refused, `${t.table.name} ${key}: ON CONFLICT ${conflict}`).toSatisfy((v: unknown) => v === '42501' || (Array.isArray(v) && v.length === 0));
            }
          }
        });
        const after = await db.current.admin.unsafe(`SELECT ${keySql(t.table)} AS k, to_jsonb(t) AS r FROM ${name} AS t ORDER BY 1`);
        expect(after).toEqual(before);
      }
    });

    it('MERGE on a hidden key matches nothing: its UPDATE and DELETE change no row, its INSERT is refused; a visible key is matched', async () => {
      for (const t of found) {
        const name = tableSql(model, t.table.name);
        const cols = t.table.columns.map((c) => ident(c.name));
        const col = ident(t.table.columns.find((c) => !t.table.primaryKey.includes(c.name))?.name ?? t.table.primaryKey[0]!);
        const merge = (action: string) =>
          `MERGE INTO ${name} AS t USING (SELECT * FROM jsonb_populate_record(NULL::${name}, $1)) AS s ON ${t.table.primaryKey.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(' AND ')} ${action}`;
        const update = merge(`WHEN MATCHED THEN UPDATE SET ${col} = s.${col}`);
        const upsert = merge(`WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT (${cols.join(', ')}) VALUES (${cols.map((c) => `s.${c}`).join(', ')})`);
        await as(model.schema, t.persona, async (tx) => {
          /** The rows MERGE reports it changed, or the SQLSTATE it was refused with; undone either way. */
          const outcome = async (q: string, row: Record<string, unknown>) => {
            await tx.unsafe('SAVEPOINT merge');
            try {
              return (await tx.unsafe(q, [row] as never[])).count;
            } catch (error) {
              return (error as { code?: string }).code;
            } finally {
              await tx.unsafe('ROLLBACK TO SAVEPOINT merge');
            }
          };
          for (const [key, row] of t.hidden) {
            // The policies hide the row from MERGE's scan of the target, so it is not matched
            // (42501: the role may not UPDATE or DELETE that table at all).
            expect([0, '42501'], `${t.table.name} ${key}: MERGE … UPDATE`).toContain(await outcome(update, row));
            expect([0, '42501'], `${t.table.name} ${key}: MERGE … DELETE`).toContain(await outcome(merge('WHEN MATCHED THEN DELETE'), row));
            // Not matched, it is inserted: refused by the INSERT policy, or by the key that exists
            // (23505, the concession asserted at the end).
            expect(['42501', '23505'], `${t.table.name} ${key}: MERGE … INSERT`).toContain(await outcome(upsert, row));
          }
          // The control: a visible key is matched (changed, or refused by the UPDATE policy).
          const [key, row] = [...t.visible][0]!;
          expect([1, '42501'], `${t.table.name} ${key}: MERGE … UPDATE of a visible row`).toContain(await outcome(update, row));
        });
      }
    });

    it('COPY table TO STDOUT and COPY (SELECT …) TO STDOUT copy only visible rows; COPY FROM is refused', async () => {
      for (const t of found) {
        const name = tableSql(model, t.table.name);
        await as(model.schema, t.persona, async (tx) => {
          const copy = async (q: string) => {
            const chunks: Buffer[] = [];
            for await (const chunk of await tx.unsafe(q).readable()) chunks.push(chunk as Buffer);
            return Buffer.concat(chunks).toString('utf8');
          };
          const whole = await copy(`COPY ${name} TO STDOUT`);
          expect(whole.split('\n').filter(Boolean).length, t.table.name).toBe(t.visible.size);
          for (const s of secrets(t)) expect(whole).not.toContain(s);
          const keys = (await copy(`COPY (SELECT ${keySql(t.table)} FROM ${name} AS t) TO STDOUT`)).split('\n').filter(Boolean);
          expect(keys.sort()).toEqual([...t.visible.keys()].map((k) => k.replace(/\\/g, '\\\\')).sort());
        });
        const refused = await sqlState(as(model.schema, t.persona, async (tx) => tx.unsafe(`COPY ${name} FROM STDIN`).writable()));
        expect(['42501', '0A000'], `${t.table.name}: COPY FROM`).toContain(refused);
      }
    });

    it('EXPLAIN ANALYZE reports visible row counts and no hidden values', async () => {
      for (const t of found) {
        const name = tableSql(model, t.table.name);
        const plan = await as(model.schema, t.persona, async (tx) => (await tx.unsafe(`EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) SELECT * FROM ${name}`))[0]!['QUERY PLAN']);
        const top = (plan as { Plan: Record<string, unknown> }[])[0]!.Plan;
        expect(top['Actual Rows'], t.table.name).toBe(t.visible.size);
        for (const s of secrets(t)) expect(JSON.stringify(plan)).not.toContain(s);
      }
    });

    it('column statistics (pg_stats most common values, histograms) of the tables are hidden', async () => {
      await db.current.admin.unsafe(`ANALYZE ${model.tables.map((t) => tableSql(model, t.name)).join(', ')}`);
      const [{ n: gathered }] = (await db.current.admin`SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = ${model.schema}`) as unknown as [{ n: number }];
      expect(gathered).toBeGreaterThan(0);
      for (const persona of personasOf(model.schema).slice(0, 3)) {
        const n = await as(model.schema, persona, async (tx) => (await tx.unsafe(`SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = $1`, [model.schema]))[0]!.n);
        expect(n, `pg_stats rows visible to ${persona}`).toBe(0);
      }
    });

    it('aggregates and keyed lookups count visible rows only; no sequence is readable but the guards\' counter, by app_user only', async () => {
      for (const t of found) {
        const name = tableSql(model, t.table.name);
        await as(model.schema, t.persona, async (tx) => {
          const [agg] = await tx.unsafe(`SELECT count(*)::int AS n, count(DISTINCT ${keySql(t.table)})::int AS d, max(${keySql(t.table)}) AS m FROM ${name} AS t`);
          expect(agg!.n).toBe(t.visible.size);
          expect(agg!.d).toBe(t.visible.size);
          expect([...t.visible.keys()]).toContain(agg!.m);
          for (const key of t.hidden.keys()) {
            const n = (await tx.unsafe(`SELECT count(*)::int AS n FROM ${name} AS t WHERE ${keySql(t.table)} = $1`, [key]))[0]!.n;
            expect(n, `${t.table.name} ${key}`).toBe(0);
          }
        });
      }
      // The counter of writes to the guards' tables (README, "How identity works") is read by the
      // planner hints as app_user, which may assert any identity anyway; no role moves it but the
      // definer, and the reporting role reads no sequence.
      const readable = (role: string, privilege: string) => db.current.admin`
        SELECT c.relname AS s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ${model.schema} AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(${role}, c.oid, ${privilege}) ELSE false END`;
      const names = async (role: string, privilege: string) => (await readable(role, privilege)).map((r) => r.s);
      expect((await names('app_user', 'SELECT')).filter((s) => s !== 'rg_guards_changed')).toEqual([]);
      expect(await names('app_user', 'USAGE')).toEqual([]);
      expect(await names('app_user', 'UPDATE')).toEqual([]);
      expect(await names('reporting_user', 'SELECT')).toEqual([]);
    });
  });
}

// ---------------------------------------------------------------- residual channels, documented
const smartoffice = models.find((m) => m.schema === 'smartoffice');
describe.runIf(smartoffice)('smartoffice: what PostgreSQL RLS concedes (README "Residual channels")', () => {
  const S = 'smartoffice';
  const insertContact = (id: number, extra = '') => `INSERT INTO smartoffice.contacts (id, office_id, name${extra ? ', private_owner_id' : ''}) VALUES (${id}, 3, 'probe'${extra ? `, ${extra}` : ''})`;

  it('a unique key reveals that a hidden key exists (23505), never the row', async () => {
    // John cannot see contact 106 (Branch B); inserting id 106 into his own office collides.
    expect(await sqlState(as(S, 11, (tx) => tx.unsafe(insertContact(106))))).toBe('23505');
    expect(await as(S, 11, async (tx) => (await tx.unsafe(insertContact(990))).count)).toBe(1);
  });

  it('ON CONFLICT DO NOTHING reveals the same: 0 rows for a hidden key, 1 for a free one', async () => {
    expect(await as(S, 11, async (tx) => (await tx.unsafe(`${insertContact(106)} ON CONFLICT DO NOTHING`)).count)).toBe(0);
    expect(await as(S, 11, async (tx) => (await tx.unsafe(`${insertContact(990)} ON CONFLICT DO NOTHING`)).count)).toBe(1);
  });

  it('ON CONFLICT DO UPDATE on a hidden row is refused with 42501 (the UPDATE policy as a hard check)', async () => {
    expect(await sqlState(as(S, 11, (tx) => tx.unsafe(`${insertContact(106)} ON CONFLICT (id) DO UPDATE SET name = 'x'`)))).toBe('42501');
  });

  it('a foreign key reveals that a hidden referenced row exists (23503 only for a missing one), without its values', async () => {
    // Eve (16) is in another company: John cannot see her row, yet may name her.
    expect(await as(S, 11, async (tx) => (await tx.unsafe(insertContact(991, '16'))).count)).toBe(1);
    const error = await as(S, 11, (tx) => tx.unsafe(insertContact(991, '987654')).then(() => undefined, (e: unknown) => e as { code?: string; detail?: string }));
    expect(error?.code).toBe('23503');
    // PostgreSQL leaves the key out of the message when the referenced table has RLS.
    expect(error?.detail ?? '').not.toMatch(/987654/);
  });

  it('deleting a visible row that hidden rows reference fails with 23503', async () => {
    // Contact 103 (unassigned, so John sees it) is shared on a link between Tom and Eve that John cannot see.
    await db.current.admin.unsafe(`INSERT INTO smartoffice.user_links (id, sharer_id, receiver_id, status) VALUES (70, 12, 16, 'active'); INSERT INTO smartoffice.shared_contacts VALUES (70, 103)`);
    try {
      expect(await sqlState(as(S, 11, async (tx) => {
        await tx.unsafe('DELETE FROM smartoffice.contact_assignments WHERE contact_id = 103');
        return tx.unsafe('DELETE FROM smartoffice.contacts WHERE id = 103');
      }))).toBe('23503');
    } finally {
      await db.current.admin.unsafe('DELETE FROM smartoffice.user_links WHERE id = 70');
    }
  });

  it('INSERT … RETURNING of a row the SELECT policy hides is refused (42501)', async () => {
    // Carla may insert into her office, but a private contact owned by John is not hers to see.
    const q = `INSERT INTO smartoffice.contacts (id, office_id, name, is_private, private_owner_id) VALUES (992, 1, 'p', true, 11)`;
    expect(await as(S, 10, async (tx) => (await tx.unsafe(q)).count)).toBe(1);
    expect(await sqlState(as(S, 10, (tx) => tx.unsafe(`${q} RETURNING *`)))).toBe('42501');
  });

  it('a locking read skips a row moved out of reach while it waited: FOR UPDATE also applies the UPDATE policy', async () => {
    // Contact 100 is in John's office and assigned to him. Another transaction moves it to Branch B
    // while John's SELECT … FOR UPDATE waits for the row. PostgreSQL re-checks the new version with
    // the facts John's statement computed at its start; the SELECT policy reads rule 2 as a set of
    // contact ids (which still names 100), but a locking read must also pass the UPDATE policy,
    // which compares the row's own office_id: the moved row is skipped.
    const writer = await db.current.admin.reserve();
    try {
      await writer.unsafe('BEGIN');
      await writer.unsafe(`UPDATE smartoffice.contacts SET office_id = 4, phone = '555-moved' WHERE id = 100`);
      const reading = as(S, 11, async (tx) => {
        const locked = await tx.unsafe('SELECT id, office_id, phone FROM smartoffice.contacts WHERE id = 100 FOR UPDATE');
        return locked.map((r) => ({ ...r }));
      });
      await waitForLockWait(db.current.admin, 10_000);
      await writer.unsafe('COMMIT');
      expect(await reading).toEqual([]);
    } finally {
      await writer.unsafe('ROLLBACK').catch(() => undefined);
      writer.release();
      await db.current.admin.unsafe(`UPDATE smartoffice.contacts SET office_id = 3, phone = '555-0100' WHERE id = 100`);
    }
  });

  it('EXPLAIN ANALYZE shows how many rows the policy filtered out (a count, never a value)', async () => {
    // Any user may steer the planner to a sequential scan, where the policy is a Filter.
    const plan = await as(S, 19, async (tx) => {
      await tx.unsafe('SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off');
      return JSON.stringify((await tx.unsafe(`EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM smartoffice.contacts`))[0]!['QUERY PLAN']);
    });
    const removed = [...plan.matchAll(/"Rows Removed by Filter":\s*(\d+)/g)].map((m) => Number(m[1]));
    // Finn sees 1 of 12 contacts; on a sequential scan the other 11 show up as "removed".
    expect(removed).toContain(11);
  });
});

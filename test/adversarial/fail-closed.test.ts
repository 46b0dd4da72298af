// Fail closed: for every table and view of every model, app_user with no identity (or with an
// identity forged with set_config) reads no row and writes none, and no function it may call
// answers anything about the data.
import { describe, expect, it } from 'vitest';
import type { TableNode } from '../../generator/model/nodes.ts';
import { ident } from '../../generator/sql/print.ts';
import { sqlState, useTestDatabase, type Tx } from '../support/db.ts';
import { keySql, loadSamples, models, personasOf, tableSql, viewsOf } from '../support/models.ts';

const db = useTestDatabase(loadSamples);

/** Rows a statement returns or touches, or the SQLSTATE it was refused with. */
async function outcome(tx: Tx, query: string, params: unknown[] = []): Promise<{ rows: number } | { refused: string }> {
  await tx.unsafe('SAVEPOINT probe');
  try {
    const result = await tx.unsafe(query, params as never[]);
    await tx.unsafe('RELEASE SAVEPOINT probe');
    return { rows: result.count ?? result.length };
  } catch (error) {
    await tx.unsafe('ROLLBACK TO SAVEPOINT probe');
    return { refused: (error as { code?: string }).code ?? String(error) };
  }
}
/** A row with a value of the right type in every column, for tables the samples leave empty. */
function syntheticRow(table: TableNode): Record<string, unknown> {
  const value = (type: string, oneOf?: readonly (string | number)[]): unknown => {
    if (oneOf && oneOf.length > 0) return oneOf[0];
    if (/\[\]$/.test(type)) return [];
    if (/int|numeric|real|double/.test(type)) return 1;
    if (/bool/.test(type)) return false;
    if (/date|timestamp/.test(type)) return '2020-01-01';
    if (/uuid/.test(type)) return '00000000-0000-0000-0000-000000000001';
    if (/json/.test(type)) return {};
    return 'x';
  };
  return Object.fromEntries(table.columns.map((c) => [c.name, value(c.type, c.oneOf)]));
}

const nothing = (o: { rows: number } | { refused: string }) => ('rows' in o ? o.rows === 0 : o.refused === '42501');

for (const model of models) {
  describe(`${model.schema}: no identity, no rows, no writes`, () => {
    for (const table of model.tables) {
      const name = tableSql(model, table.name);
      it(`${table.name}: reads nothing and writes nothing without set_session`, async () => {
        const total = (await db.current.admin.unsafe(`SELECT count(*)::int AS n FROM ${name}`))[0]!.n as number;
        const [sample] = await db.current.admin.unsafe(`SELECT to_jsonb(t) AS row FROM ${name} AS t LIMIT 1`);
        const column = ident(table.columns.find((c) => !table.primaryKey.includes(c.name))?.name ?? table.columns[0]!.name);
        await db.current.as(model.schema, null, async (tx) => {
          expect(nothing(await outcome(tx, `SELECT * FROM ${name}`)), 'SELECT').toBe(true);
          expect(nothing(await outcome(tx, `SELECT count(*) FROM ${name} HAVING count(*) > 0`)), 'count').toBe(true);
          expect(nothing(await outcome(tx, `UPDATE ${name} SET ${column} = ${column}`)), 'UPDATE').toBe(true);
          expect(nothing(await outcome(tx, `DELETE FROM ${name}`)), 'DELETE').toBe(true);
          // A copy of an existing row (a new key would be model-specific): WITH CHECK runs before
          // any unique check, so anything but 42501 would mean the policy admitted the row.
          const row = sample?.row ?? syntheticRow(table);
          const insert = await outcome(tx, `INSERT INTO ${name} SELECT * FROM jsonb_populate_record(NULL::${name}, $1)`, [row]);
          expect(insert, 'INSERT').toEqual({ refused: '42501' });
        });
        const after = (await db.current.admin.unsafe(`SELECT count(*)::int AS n FROM ${name}`))[0]!.n as number;
        expect(after).toBe(total);
      });
    }

    it('an identity written with set_config (not set_session) opens no table', async () => {
      const forged = personasOf(model.schema);
      for (const id of forged.length > 0 ? forged : [1]) {
        await db.current.as(model.schema, null, async (tx) => {
          await tx.unsafe(`SELECT set_config($1, $2, true)`, [`rowguard.${model.schema}_user_id`, String(id)]);
          for (const table of model.tables) {
            expect(nothing(await outcome(tx, `SELECT * FROM ${tableSql(model, table.name)}`)), `${table.name} as forged ${id}`).toBe(true);
          }
        });
      }
    });

    it('every view of the schema shows nothing and takes no write', async () => {
      const views = await viewsOf(db.current.admin, model.schema);
      expect(views.length).toBeGreaterThanOrEqual(model.hierarchies.length + model.maskedViews.length);
      for (const view of views) {
        const name = tableSql(model, view);
        await db.current.as(model.schema, null, async (tx) => {
          expect(nothing(await outcome(tx, `SELECT * FROM ${name}`)), `${view}: SELECT`).toBe(true);
          const [col] = await tx.unsafe(`SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1`, [name]);
          const c = ident(col!.attname as string);
          for (const write of [`UPDATE ${name} SET ${c} = ${c}`, `DELETE FROM ${name}`]) {
            const o = await outcome(tx, write);
            // Not updatable (closure and masked views) or nothing visible to touch.
            expect('rows' in o ? o.rows : 0, `${view}: ${write}`).toBe(0);
          }
        });
      }
    });

    it('every function app_user may call answers nothing about the data without an identity', async () => {
      const fns = await db.current.admin`
        SELECT p.oid::regprocedure::text AS sig, p.proname, p.pronargs, pg_get_function_result(p.oid) AS result,
               pg_get_function_identity_arguments(p.oid) AS args
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ${model.schema} AND has_function_privilege('app_user', p.oid, 'EXECUTE')
          AND p.prorettype <> 'trigger'::regtype AND p.prorettype <> 'void'::regtype ORDER BY 1`;
      let called = 0;
      for (const f of fns) {
        if (f.pronargs === 0) {
          const value = await db.current.as(model.schema, null, async (tx) => (await tx.unsafe(`SELECT ${f.sig.replace(/\(\)$/, '')}() AS v`))[0]!.v);
          expect([null, false, '{}'].includes(value) || (Array.isArray(value) && value.length === 0), `${f.sig} returned ${JSON.stringify(value)}`).toBe(true);
          called++;
        }
      }
      // Hierarchy walkers take any node: callable by app_user only when a policy needs them, and
      // then they answer nothing without an identity.
      for (const h of model.hierarchies) {
        const table = model.tables.find((t) => t.name === h.table)!;
        const nodes = await db.current.admin.unsafe(`SELECT DISTINCT ${ident(h.parent)}::text AS n FROM ${tableSql(model, table.name)} WHERE ${ident(h.parent)} IS NOT NULL`);
        for (const direction of ['descendants', 'ancestors']) {
          const fn = `${ident(model.schema)}.${ident(`${h.name}_${direction}`)}`;
          for (const { n } of nodes) {
            const o = await db.current.as(model.schema, null, async (tx) => {
              const type = table.columns.find((c) => c.name === h.child)!.type;
              try {
                return (await tx.unsafe(`SELECT cardinality(${fn}($1::${type}, true)) AS k`, [n]))[0]!.k as number;
              } catch (error) {
                return (error as { code?: string }).code;
              }
            });
            expect(o === 0 || o === '42501', `${fn}(${n}) without identity gave ${o}`).toBe(true);
          }
        }
      }
      expect(called + model.hierarchies.length).toBeGreaterThan(0);
    });

    it('primary keys of the tables are not guessable through a keyed lookup without identity', async () => {
      for (const table of model.tables) {
        const keys = await db.current.admin.unsafe(`SELECT ${keySql(table)} AS k FROM ${tableSql(model, table.name)} AS t LIMIT 3`);
        await db.current.as(model.schema, null, async (tx) => {
          for (const { k } of keys) {
            const o = await outcome(tx, `SELECT 1 FROM ${tableSql(model, table.name)} AS t WHERE ${keySql(table)} = $1`, [k]);
            expect(nothing(o), `${table.name} ${k}`).toBe(true);
          }
        });
      }
    });
  });
}

it('sqlState helper sanity', async () => {
  expect(await sqlState(Promise.reject(Object.assign(new Error('x'), { code: '42501' })))).toBe('42501');
});

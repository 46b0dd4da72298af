// Data shapes: every hierarchy of every model terminates on cycles, self-loops and a chain 1,000
// levels deep, through its walkers (the closure table, rebuilt) and its closure view; NULLs in the columns rules read never
// raise and never open a table to nobody.
import type { Sql } from 'postgres';
import { describe, expect, it } from 'vitest';
import type { Expr, HierarchyNode, ModelNode } from '../../generator/model/nodes.ts';
import { ident } from '../../generator/sql/print.ts';
import { visit } from '../../generator/emit/expr.ts';
import { closureNames } from '../../generator/emit/closure.ts';
import { ids, useTestDatabase } from '../support/db.ts';
import { loadSamples, models, personasOf, sampleOf, tableSql } from '../support/models.ts';

const db = useTestDatabase(loadSamples);
const DEPTH = 1000;

class Rollback extends Error {}
async function inRolledBack(admin: Sql, fn: (tx: Sql) => Promise<void>): Promise<void> {
  await admin
    .begin(async (tx) => {
      await fn(tx as unknown as Sql);
      throw new Rollback();
    })
    .catch((e) => {
      if (!(e instanceof Rollback)) throw e;
    });
}

/**
 * Inserts edges child → parent into the hierarchy's table, copying the other columns from an
 * existing row. Foreign keys are not the point here, so the transaction runs with
 * session_replication_role = replica (no RI triggers) and rolls back at the end.
 */
async function edges(tx: Sql, model: ModelNode, h: HierarchyNode, pairs: readonly (readonly [string, string | null])[]): Promise<void> {
  const table = model.tables.find((t) => t.name === h.table)!;
  const nodeTable = table.primaryKey.length === 1 && table.primaryKey[0] === h.child;
  const [template] = await tx.unsafe(`SELECT to_jsonb(t) AS r FROM ${tableSql(model, h.table)} AS t LIMIT 1`);
  const base = (template?.r ?? {}) as Record<string, unknown>;
  const unique = new Set(table.columns.filter((c) => c.unique).map((c) => c.name));
  const rows = pairs
    .filter(([, parent]) => nodeTable || parent !== null)
    .map(([child, parent], i) => {
      const row: Record<string, unknown> = { ...base, [h.child]: child, [h.parent]: parent };
      for (const c of table.columns) if (unique.has(c.name) && c.name !== h.child) row[c.name] = /int|numeric/.test(c.type) ? 900_000_000 + i : `${String(base[c.name])}_${i}`;
      return row;
    });
  await tx.unsafe(`INSERT INTO ${tableSql(model, h.table)} SELECT * FROM jsonb_populate_recordset(NULL::${tableSql(model, h.table)}, $1)`, [rows as never]);
}

/**
 * The closure table's triggers do not fire under session_replication_role = replica, as with a
 * logical-replication subscriber; the DBA's rebuild function derives the pairs again, walking the
 * same cycles and depths the triggers would (test/db/closure.test.ts covers the triggers).
 */
async function rebuildClosure(tx: Sql, model: ModelNode, h: HierarchyNode): Promise<void> {
  await tx.unsafe(`SET LOCAL session_replication_role = origin; SELECT ${ident(model.schema)}.${ident(closureNames(h).rebuild)}()`);
}

function nodeId(model: ModelNode, h: HierarchyNode, i: number | string): string {
  const type = model.tables.find((t) => t.name === h.table)!.columns.find((c) => c.name === h.child)!.type;
  return /int|numeric/.test(type) ? String(800_000_000 + (typeof i === 'number' ? i : 500_000 + i.length)) : `rg_node_${i}`;
}

for (const model of models) {
  for (const h of model.hierarchies) {
    describe(`${model.schema}.${h.name}: shapes that must terminate`, () => {
      const type = () => model.tables.find((t) => t.name === h.table)!.columns.find((c) => c.name === h.child)!.type;
      const walk = (direction: string, node: string, self: boolean) =>
        `SELECT coalesce(cardinality(${ident(model.schema)}.${ident(`${h.name}_${direction}`)}('${node}'::${type()}, ${self})), 0)::int AS n`;
      const closure = tableSql(model, h.name);

      it(`a chain ${DEPTH} levels deep: walkers and the closure view`, async () => {
        await inRolledBack(db.current.admin, async (tx) => {
          await tx.unsafe("SET LOCAL session_replication_role = replica; SET LOCAL statement_timeout = '60s'");
          const chain = Array.from({ length: DEPTH + 1 }, (_, i) => [nodeId(model, h, i), i === 0 ? null : nodeId(model, h, i - 1)] as const);
          await edges(tx, model, h, chain);
          await rebuildClosure(tx, model, h);
          const root = nodeId(model, h, 0);
          const leaf = nodeId(model, h, DEPTH);
          expect((await tx.unsafe(walk('descendants', root, true)))[0]!.n).toBe(DEPTH + 1);
          expect((await tx.unsafe(walk('ancestors', leaf, false)))[0]!.n).toBe(DEPTH);
          const [below] = await tx.unsafe(`SELECT count(*)::int AS n, max(depth)::int AS deepest FROM ${closure} WHERE ancestor_id = '${root}'::${type()}`);
          expect({ ...below }).toEqual({ n: DEPTH, deepest: DEPTH });
          const [above] = await tx.unsafe(`SELECT count(*)::int AS n FROM ${closure} WHERE descendant_id = '${leaf}'::${type()}`);
          expect(above!.n).toBe(DEPTH);
        });
      });

      it('cycles and self-loops: walkers and the closure view end, each node once', async () => {
        await inRolledBack(db.current.admin, async (tx) => {
          await tx.unsafe("SET LOCAL session_replication_role = replica; SET LOCAL statement_timeout = '60s'");
          const ring = Array.from({ length: 5 }, (_, i) => [nodeId(model, h, 10_000 + i), nodeId(model, h, 10_000 + ((i + 1) % 5))] as const);
          const self = nodeId(model, h, 20_000);
          await edges(tx, model, h, [...ring, [self, self]]);
          await rebuildClosure(tx, model, h);
          const r0 = nodeId(model, h, 10_000);
          expect((await tx.unsafe(walk('descendants', r0, true)))[0]!.n).toBe(5);
          expect((await tx.unsafe(walk('descendants', r0, false)))[0]!.n).toBe(4);
          expect((await tx.unsafe(walk('ancestors', r0, true)))[0]!.n).toBe(5);
          expect((await tx.unsafe(walk('descendants', self, false)))[0]!.n).toBe(0);
          expect((await tx.unsafe(walk('descendants', self, true)))[0]!.n).toBe(1);
          const [ringPairs] = await tx.unsafe(`SELECT count(DISTINCT descendant_id)::int AS n FROM ${closure} WHERE ancestor_id = '${r0}'::${type()}`);
          expect(ringPairs!.n).toBeLessThanOrEqual(5);
          expect(ringPairs!.n).toBeGreaterThanOrEqual(4);
          const [selfPairs] = await tx.unsafe(`SELECT count(*)::int AS n FROM ${closure} WHERE ancestor_id = '${self}'::${type()}`);
          expect(selfPairs!.n).toBeLessThanOrEqual(1);
        });
      });
    });
  }

  /** Nullable, non-key columns of a table that any rule reads: policies, facts, hierarchies. */
  const ruleColumns = (table: string): string[] => {
    const cols = new Set<string>();
    const scan = (e: Expr | undefined) => e && visit(e, (n) => n.kind === 'column' && n.table === table && cols.add(n.column));
    for (const p of model.policies) [p.using, p.check].forEach(scan);
    for (const f of model.facts) scan(f.expr);
    for (const h of model.hierarchies) if (h.table === table) cols.add(h.parent).add(h.child);
    const def = model.tables.find((t) => t.name === table)!;
    return [...cols].filter((c) => def.columns.find((x) => x.name === c)?.nullable && !def.primaryKey.includes(c)).sort();
  };

  describe(`${model.schema}: NULL in every nullable column a rule reads`, () => {
    for (const table of model.tables) {
      for (const column of ruleColumns(table.name)) {
        it(`${table.name}.${column} = NULL: no error for any persona, nothing without an identity`, async () => {
          const name = tableSql(model, table.name);
          await inRolledBack(db.current.admin, async (tx) => {
            await tx.unsafe(`ALTER TABLE ${name} DISABLE TRIGGER USER`);
            await tx.unsafe(`UPDATE ${name} SET ${ident(column)} = NULL`);
            await tx.unsafe('SET LOCAL ROLE app_user');
            const count = `SELECT count(*)::int AS n FROM ${name}`;
            expect((await tx.unsafe(count).catch((e: { code?: string }) => [{ n: e.code === '42501' ? 0 : -1 }]))[0]!.n).toBe(0);
            for (const persona of personasOf(model.schema)) {
              await tx.unsafe(`SELECT ${ident(model.schema)}.set_session($1)`, [persona]);
              await tx.unsafe(count).catch((e: { code?: string }) => expect(e.code, `${persona}`).toBe('42501'));
            }
          });
        });
      }
    }
  });
}

// What the SmartOffice contract says about NULLs, read so that a NULL grants nothing: is_private
// NULL counts as private (its owner and enabled proxies, never the office); a private contact with
// no owner is nobody's; NULL flags grant nothing.
const smartoffice = models.find((m) => m.schema === 'smartoffice');
describe.runIf(smartoffice && sampleOf('smartoffice'))('smartoffice: NULLs as the contract reads them', () => {
  const seen = async (tx: Sql, user: number) => {
    await tx.unsafe('SELECT smartoffice.set_session($1)', [user]);
    return ids(tx as never, 'SELECT id FROM smartoffice.contacts');
  };
  it('is_private NULL counts as private: 104 stays John\'s (and his enabled proxy Ann\'s), 100 (no owner) is nobody\'s', async () => {
    await inRolledBack(db.current.admin, async (tx) => {
      await tx.unsafe('UPDATE smartoffice.contacts SET is_private = NULL WHERE id IN (100, 104)');
      await tx.unsafe('SET LOCAL ROLE app_user');
      expect(await seen(tx, 11)).toEqual([102, 103, 104]);
      expect(await seen(tx, 12)).toEqual([101, 102, 103, 105]);
      expect(await seen(tx, 13)).toEqual([101, 102, 103, 104]);
      for (const persona of sampleOf('smartoffice')!.personas) expect(await seen(tx, persona.id as number), persona.name).not.toContain(100);
    });
  });
  it('a private contact with private_owner_id NULL is seen by nobody', async () => {
    await inRolledBack(db.current.admin, async (tx) => {
      await tx.unsafe('UPDATE smartoffice.contacts SET private_owner_id = NULL WHERE id = 104');
      await tx.unsafe('SET LOCAL ROLE app_user');
      for (const persona of sampleOf('smartoffice')!.personas) expect(await seen(tx, persona.id as number), persona.name).not.toContain(104);
    });
  });
  it('NULL is_admin / enterprise_view / record_sharing grant nothing', async () => {
    await inRolledBack(db.current.admin, async (tx) => {
      await tx.unsafe('UPDATE smartoffice.users SET is_admin = NULL, enterprise_view = NULL, record_sharing = NULL');
      await tx.unsafe('SET LOCAL ROLE app_user');
      // Carla loses enterprise view: only her own assigned contact in HQ.
      expect(await seen(tx, 10)).toEqual([109]);
      await tx.unsafe('SELECT smartoffice.set_session(14)');
      expect((await tx.unsafe('INSERT INTO smartoffice.proxies VALUES (12, 11) ON CONFLICT DO NOTHING').catch((e: { code: string }) => e.code))).toBe('42501');
    });
  });
  it('offices.parent_id NULL makes a root: enterprise view stops there', async () => {
    await inRolledBack(db.current.admin, async (tx) => {
      await tx.unsafe('UPDATE smartoffice.offices SET parent_id = NULL WHERE id = 3');
      await tx.unsafe('SET LOCAL ROLE app_user');
      expect(await seen(tx, 18)).toEqual([106, 107]);
    });
  });
});

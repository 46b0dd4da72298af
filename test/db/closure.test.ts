// Closure tables (generator/emit/closure.ts) against PostgreSQL: after every kind of change to the
// edges — single and multi-row inserts, moves, deletes, cycles, several parents, TRUNCATE, and two
// connections changing the tree at once — each closure table holds exactly the pairs the recursive
// view of the same hierarchy derives from the edges, and app_user can neither read nor write it.
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { collectSample } from '../../generator/cli/samples/collect.ts';
import { smartofficeSample } from '../../generator/cli/samples/smartoffice.ts';
import { readdirSync } from 'node:fs';
import { migrate } from '../../generator/db/migrate.ts';
import { rolledBack, sqlState, useTestDatabase, type Tx } from '../support/db.ts';
import { blankDatabase } from '../support/project.ts';
import { random } from '../support/random.ts';

const db = useTestDatabase(async (admin) => {
  await admin.unsafe(smartofficeSample.sql);
  await admin.unsafe(collectSample.sql);
});

/**
 * Pairs the closure table has and the recursive view does not, and the other way round (read by
 * the superuser). The view keeps a self-loop edge as a pair; the walkers never returned a node as
 * its own descendant, and neither does the closure.
 */
async function drift(schema: string, hierarchy: string, tx: postgres.Sql | Tx = db.current.admin): Promise<string[]> {
  const rows = await tx.unsafe(`
    (SELECT 'extra ' || ancestor || ' > ' || descendant AS d FROM ${schema}.${hierarchy}_closure
     EXCEPT SELECT 'extra ' || ancestor_id || ' > ' || descendant_id FROM ${schema}.${hierarchy})
    UNION ALL
    (SELECT 'missing ' || ancestor_id || ' > ' || descendant_id FROM ${schema}.${hierarchy} WHERE ancestor_id <> descendant_id
     EXCEPT SELECT 'missing ' || ancestor || ' > ' || descendant FROM ${schema}.${hierarchy}_closure)
    ORDER BY 1`);
  return rows.map((r) => String(r.d));
}

/**
 * Runs `change` in a transaction on `sql` and keeps it open once the change has run; the function
 * it resolves to commits it.
 */
async function heldOpen(sql: postgres.Sql, change: string): Promise<() => Promise<void>> {
  let commit!: () => void;
  const held = new Promise<void>((resolve) => (commit = resolve));
  let ran!: () => void;
  const changed = new Promise<void>((resolve) => (ran = resolve));
  const done = sql.begin(async (tx) => {
    await tx.unsafe(change);
    ran();
    await held;
  });
  await Promise.race([changed, done]);
  return async () => {
    commit();
    await done;
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('closure tables', () => {
  it('hold the pairs of the sample data, loaded before and after the triggers', async () => {
    expect(await drift('smartoffice', 'office_tree')).toEqual([]);
    expect(await drift('collect', 'team_tree')).toEqual([]);
    expect(await drift('collect', 'client_tree')).toEqual([]);
    const n = await db.current.admin`SELECT count(*)::int AS n FROM smartoffice.office_tree_closure`;
    expect(n[0]!.n).toBeGreaterThan(0);
  });

  it('are filled from the rows already there by the migration that adds them', async () => {
    const blank = await blankDatabase();
    try {
      const before = readdirSync('migrations').filter((f) => f.endsWith('.sql')).sort().findIndex((f) => f.includes('change_function_office_tree_ancestors'));
      await migrate(blank.url, { dir: 'migrations', count: before - 1 });
      await blank.admin.unsafe(smartofficeSample.sql);
      await blank.admin.unsafe(collectSample.sql);
      expect(await migrate(blank.url, { dir: 'migrations' })).toContain('0026_smartoffice_change_function_office_tree_ancestors_and_8_more');
      for (const [schema, hierarchy] of [['smartoffice', 'office_tree'], ['collect', 'team_tree'], ['collect', 'client_tree']] as const) {
        expect(await drift(schema, hierarchy, blank.admin), hierarchy).toEqual([]);
        expect((await blank.admin.unsafe(`SELECT count(*)::int AS n FROM ${schema}.${hierarchy}_closure`))[0]!.n, hierarchy).toBeGreaterThan(0);
      }
    } finally {
      await blank.drop();
    }
  });

  it('follow 150 random changes to the office tree: inserts, moves (cycles too), multi-row updates and deletes', async () => {
    await rolledBack(db.current.admin, async (tx) => {
      const next = random(7);
      let nextId = 1000;
      const created: number[] = [];
      for (let step = 0; step < 150; step++) {
        const offices = (await tx`SELECT id::int AS id FROM smartoffice.offices ORDER BY id`).map((r) => r.id as number);
        const any = () => offices[next(offices.length)]!;
        const kind = next(6);
        if (kind === 0 || created.length < 3) {
          const rows = Array.from({ length: 1 + next(3) }, () => [nextId++, next(5) === 0 ? null : any()] as const);
          await tx.unsafe(`INSERT INTO smartoffice.offices (id, parent_id, name) SELECT i, p, 'office ' || i FROM unnest($1::bigint[], $2::bigint[]) AS n(i, p)`, [
            rows.map((r) => r[0]),
            rows.map((r) => r[1]),
          ] as never[]);
          created.push(...rows.map((r) => r[0]));
        } else if (kind === 1) {
          await tx`UPDATE smartoffice.offices SET parent_id = ${any()} WHERE id = ${any()}`;
        } else if (kind === 2) {
          await tx`UPDATE smartoffice.offices SET parent_id = NULL WHERE id = ${any()}`;
        } else if (kind === 3) {
          await tx`UPDATE smartoffice.offices SET parent_id = ${any()} WHERE id = ANY (${[any(), any(), any()]})`;
        } else if (kind === 4) {
          // Renaming changes no edge.
          await tx`UPDATE smartoffice.offices SET name = name || '.' WHERE id = ${any()}`;
        } else {
          // Delete a created office after detaching its children (no user or contact points at it).
          const victim = created.splice(next(created.length), 1)[0]!;
          await tx`UPDATE smartoffice.offices SET parent_id = NULL WHERE parent_id = ${victim}`;
          await tx`DELETE FROM smartoffice.offices WHERE id = ${victim}`;
        }
        expect(await drift('smartoffice', 'office_tree', tx), `after step ${step} (kind ${kind})`).toEqual([]);
      }
    });
  });

  it('follow changes to a hierarchy with several parents and cycles (Collect! teams), and TRUNCATE', async () => {
    await rolledBack(db.current.admin, async (tx) => {
      const next = random(11);
      const teams = ['COLLECTIONS', 'EAST', 'EAST_CALLS', 'T1', 'T2', 'T3', 'W1', 'W2', 'W3'];
      const members = [...teams, 'nina', 'cyd', 'olga'];
      await tx`INSERT INTO collect.teams (id, name) VALUES ('W1', 'W1'), ('W2', 'W2'), ('W3', 'W3')`;
      for (let step = 0; step < 120; step++) {
        const team = () => teams[next(teams.length)]!;
        const member = () => members[next(members.length)]!;
        const kind = next(4);
        if (kind === 0 || kind === 1) {
          await tx`INSERT INTO collect.team_members (team_id, member_id) VALUES (${team()}, ${member()}), (${team()}, ${member()}) ON CONFLICT DO NOTHING`;
        } else if (kind === 2) {
          await tx`DELETE FROM collect.team_members WHERE member_id = ${member()}`;
        } else {
          // Moves every membership of one member to one team (rows that would collide stay).
          const [to, who] = [team(), member()];
          await tx`UPDATE collect.team_members AS m SET team_id = ${to} WHERE m.member_id = ${who}
            AND m.ctid = (SELECT min(x.ctid) FROM collect.team_members AS x WHERE x.member_id = ${who})
            AND NOT EXISTS (SELECT 1 FROM collect.team_members AS t WHERE t.team_id = ${to} AND t.member_id = ${who})`;
        }
        expect(await drift('collect', 'team_tree', tx), `after step ${step} (kind ${kind})`).toEqual([]);
      }
      await tx`TRUNCATE collect.team_members`;
      expect((await tx`SELECT count(*)::int AS n FROM collect.team_tree_closure`)[0]!.n).toBe(0);
      await tx`INSERT INTO collect.team_members (team_id, member_id) VALUES ('T1', 'T2'), ('T2', 'nina')`;
      expect(await drift('collect', 'team_tree', tx)).toEqual([]);
    });
  });

  it('are neither readable nor writable by app_user, and the maintenance functions are not callable', async () => {
    for (const statement of [
      'SELECT * FROM smartoffice.office_tree_closure',
      'INSERT INTO smartoffice.office_tree_closure VALUES (1, 6)',
      'DELETE FROM smartoffice.office_tree_closure',
      'UPDATE smartoffice.office_tree_closure_state SET version = 0',
      'SELECT smartoffice.office_tree_closure_rebuild()',
    ]) {
      expect(await sqlState(db.current.as('smartoffice', 10, (tx) => tx.unsafe(statement))), statement).toBe('42501');
    }
  });

  it('answer a change made as app_user in the next statement of the same transaction', async () => {
    // Carla (enterprise view from HQ) sees the contacts of every office below HQ. Office 6 is
    // another company; once an administrator's office hangs under HQ, Carla sees it at once.
    await rolledBack(db.current.admin, async (tx) => {
      const visible = async () => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx.unsafe('SELECT smartoffice.set_session(10)');
        const rows = await tx.unsafe('SELECT smartoffice.enterprise_office_ids() AS ids');
        await tx.unsafe('RESET ROLE');
        return (rows[0]!.ids as string[]).map(Number).sort((a, b) => a - b);
      };
      const before = await visible();
      expect(before).not.toContain(6);
      await tx`UPDATE smartoffice.offices SET parent_id = 5 WHERE id = 6`;
      expect(await visible()).toEqual([...before, 6].sort((a, b) => a - b));
    });
  });

  it('stay exact when two READ COMMITTED transactions move parts of the tree at once; REPEATABLE READ gets 40001 instead of a stale closure', async () => {
    const admin = db.current.admin;
    await admin`INSERT INTO smartoffice.offices (id, parent_id, name) VALUES (2001, NULL, 'A'), (2002, NULL, 'B'), (2003, 2001, 'A1'), (2004, 2002, 'B1'), (2005, NULL, 'C')`;
    const other = postgres(db.current.url, { max: 1, onnotice: () => {} });
    try {
      // T1 hangs A under B and holds its transaction open; T2 hangs B under C and must wait, then
      // see A below B: A1 ends up below C.
      const commitT1 = await heldOpen(admin, 'UPDATE smartoffice.offices SET parent_id = 2002 WHERE id = 2001');
      const t2 = other.begin(async (tx) => {
        await tx`UPDATE smartoffice.offices SET parent_id = 2005 WHERE id = 2002`;
      });
      await pause(200);
      await commitT1();
      await t2;
      expect(await drift('smartoffice', 'office_tree')).toEqual([]);
      const a1 = await admin`SELECT ancestor::int AS a FROM smartoffice.office_tree_closure WHERE descendant = 2003 ORDER BY 1`;
      expect(a1.map((r) => r.a)).toEqual([2001, 2002, 2005]);

      // The same race under REPEATABLE READ: T4's snapshot predates T3's commit.
      const commitT3 = await heldOpen(admin, 'UPDATE smartoffice.offices SET parent_id = NULL WHERE id = 2001');
      const t4 = other
        .begin('isolation level repeatable read', async (tx) => {
          await tx`SELECT 1 FROM smartoffice.offices LIMIT 1`;
          await tx`UPDATE smartoffice.offices SET parent_id = NULL WHERE id = 2002`;
        })
        .then(
          () => 'committed',
          (error: { code?: string }) => error.code,
        );
      await pause(200);
      await commitT3();
      expect(await t4).toBe('40001');
      expect(await drift('smartoffice', 'office_tree')).toEqual([]);
    } finally {
      await other.end();
    }
  });

  it('can be rebuilt by a DBA after triggers were bypassed', async () => {
    await rolledBack(db.current.admin, async (tx) => {
      await tx`SET LOCAL session_replication_role = replica`;
      await tx`UPDATE smartoffice.offices SET parent_id = NULL WHERE id = 3`;
      await tx`SET LOCAL session_replication_role = origin`;
      expect(await drift('smartoffice', 'office_tree', tx)).toEqual(['missing 1 > 3', 'missing 1 > 5', 'missing 2 > 3', 'missing 2 > 5'].map((d) => d.replace('missing', 'extra')));
      await tx`SELECT smartoffice.office_tree_closure_rebuild()`;
      expect(await drift('smartoffice', 'office_tree', tx)).toEqual([]);
    });
  });
});

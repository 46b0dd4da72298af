// The SuperOffice contract as app_user with superoffice.set_session, across all four object types.
import { describe, expect, it } from 'vitest';
import { superofficeSample } from '../../generator/cli/samples/superoffice.ts';
import { asOwner, ids, rolledBack, sqlState, useTestDatabase, type Tx } from '../support/db.ts';
import { planMarks } from '../support/plan.ts';

const db = useTestDatabase(async (admin) => {
  await admin.unsafe(superofficeSample.sql);
});
const as = <T>(user: number | null, fn: (tx: Tx) => Promise<T>) => db.current.as('superoffice', user, fn);
/** Object tables with the id offset of their copy of the six sample rows. */
const OBJECTS = [
  ['companies', 0, true],
  ['contacts', 100, false],
  ['projects', 200, true],
  ['sales', 300, false],
] as const;

/** Runs `fn` as the user inside a transaction the admin can also write in (rolled back). */
async function mixed(user: number, fn: (step: { asUser: (q: string) => Promise<number[]>; asAdmin: (q: string) => Promise<unknown> }) => Promise<void>) {
  await db.current.admin
    .begin(async (tx) => {
      const asUser = async (q: string) => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx.unsafe('SELECT superoffice.set_session($1)', [user]);
        const result = await ids(tx as never, q);
        await tx.unsafe('RESET ROLE');
        return result;
      };
      await fn({ asUser, asAdmin: (q) => tx.unsafe(q) });
      throw new Rollback();
    })
    .catch(ignoreRollback);
}

describe('superoffice: reading, for every object type', () => {
  for (const [table, offset, externalsRead] of OBJECTS) {
    for (const persona of superofficeSample.personas) {
      const expected = persona.id === 5 && !externalsRead ? [] : persona.sees.map((id) => Number(id) + offset);
      it(`${persona.name} sees ${table} ${JSON.stringify(expected)}`, async () => {
        expect(await as(persona.id as number, (tx) => ids(tx, `SELECT id FROM superoffice.${table} ORDER BY id`))).toEqual(expected);
      });
    }
  }
  it('no identity: nothing in any table, and can() is false', async () => {
    for (const table of ['user_groups', 'roles', 'role_rights', 'role_functions', 'users', 'user_secondary_groups', 'companies', 'contacts', 'projects', 'sales']) {
      expect(await as(null, async (tx) => (await tx.unsafe(`SELECT count(*)::int AS n FROM superoffice.${table}`))[0]!.n), table).toBe(0);
    }
    expect(await as(null, async (tx) => (await tx`SELECT superoffice.can('export') AS c`)[0]!.c)).toBe(false);
  });
  it('an unknown user id is refused', async () => {
    expect(await sqlState(as(999, async () => 0))).toBe('28000');
  });
});

describe('superoffice: each level for each command', () => {
  for (const [table, offset] of OBJECTS) {
    const row = (n: number) => n + offset;
    it(`${table}: User level 4 (own delete, group read) updates and deletes own rows only`, async () => {
      await as(3, async (tx) => {
        expect((await tx.unsafe(`UPDATE superoffice.${table} SET name = 'x' WHERE id IN (${row(102)}, ${row(104)})`)).count).toBe(1);
        expect((await tx.unsafe(`DELETE FROM superoffice.${table} WHERE id = ${row(104)}`)).count).toBe(0);
        expect((await tx.unsafe(`DELETE FROM superoffice.${table} WHERE id = ${row(102)}`)).count).toBe(1);
      });
    });
    it(`${table}: create is judged on the new row's scope`, async () => {
      expect(await as(3, async (tx) => (await tx.unsafe(`INSERT INTO superoffice.${table} (id, name, owner_id, group_id) VALUES (${row(150)}, 'n', 3, 2)`)).count)).toBe(1);
      // Owned by Alice in Carol's primary group: Carol has only read there.
      expect(await sqlState(as(3, (tx) => tx.unsafe(`INSERT INTO superoffice.${table} (id, name, owner_id, group_id) VALUES (${row(150)}, 'n', 1, 2)`)))).toBe('42501');
    });
    it(`${table}: User level 5 (own create) creates but may not update or delete its own rows`, async () => {
      await as(4, async (tx) => {
        expect((await tx.unsafe(`INSERT INTO superoffice.${table} (id, name, owner_id, group_id) VALUES (${row(151)}, 'n', 4, 3)`)).count).toBe(1);
        expect((await tx.unsafe(`UPDATE superoffice.${table} SET name = 'x' WHERE id = ${row(103)}`)).count).toBe(0);
        expect((await tx.unsafe(`DELETE FROM superoffice.${table} WHERE id = ${row(103)}`)).count).toBe(0);
      });
    });
    it(`${table}: moving a row into a scope one cannot write fails`, async () => {
      // Carol hands her row to Alice within her own group: it would become primary-group (read only).
      expect(await sqlState(as(3, (tx) => tx.unsafe(`UPDATE superoffice.${table} SET owner_id = 1 WHERE id = ${row(102)}`)))).toBe('42501');
    });
  }

  it('several scopes apply: the highest right wins', async () => {
    // Bob owns 101 in his primary group: own = delete beats primary = read.
    expect(await as(2, async (tx) => (await tx`DELETE FROM superoffice.companies WHERE id = 101`).count)).toBe(1);
    // Alice: 104 is in her secondary group (delete) and would otherwise be "others" (read).
    expect(await as(1, async (tx) => (await tx`UPDATE superoffice.companies SET name = 'x' WHERE id = 104`).count)).toBe(1);
  });

  it('"others" applies only when no other scope does: own = none hides one\'s own row even with others = read', async () => {
    await mixed(2, async ({ asUser, asAdmin }) => {
      await asAdmin(`INSERT INTO superoffice.companies (id, name, owner_id, group_id) VALUES (106, 'Bob in Marketing', 2, 3)`);
      expect(await asUser('SELECT id FROM superoffice.companies WHERE id = 106')).toEqual([106]);
      await asAdmin(`UPDATE superoffice.role_rights SET rights = 'none' WHERE role_id = 4 AND object_type = 'company' AND scope = 'own'`);
      expect(await asUser('SELECT id FROM superoffice.companies WHERE id = 106')).toEqual([]);
      // 103 (Dave's, Marketing) is still "others" for Bob: read.
      expect(await asUser('SELECT id FROM superoffice.companies WHERE id = 103')).toEqual([103]);
    });
  });

  it('a rights change takes effect in the next statement of the same transaction', async () => {
    await mixed(9, async ({ asUser, asAdmin }) => {
      expect(await asUser('SELECT id FROM superoffice.companies ORDER BY id')).toEqual([100, 101]);
      await asAdmin(`UPDATE superoffice.role_rights SET rights = 'read' WHERE role_id = 9 AND object_type = 'company' AND scope = 'others'`);
      expect(await asUser('SELECT id FROM superoffice.companies ORDER BY id')).toEqual([100, 101, 102, 103, 104, 105]);
      await asAdmin(`UPDATE superoffice.role_rights SET rights = 'none' WHERE role_id = 9 AND object_type = 'company'`);
      expect(await asUser('SELECT id FROM superoffice.companies ORDER BY id')).toEqual([]);
    });
  });
});

describe('superoffice: rights changes without another set_session', () => {
  // Role 9 lacks the "others" scope on companies: set_session marks that guard not true and the
  // planner drops its arm. A write to role_rights retires the mark for the rest of the transaction.
  const companies = 'SELECT id FROM superoffice.companies ORDER BY id';
  it('a grant made in the same transaction shows in the next statement, prepared statements too', async () => {
    await rolledBack(db.current.admin, async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx.unsafe('SELECT superoffice.set_session(9)');
      const prepared = async () => (await tx`SELECT id FROM superoffice.companies ORDER BY id`).map((r) => Number(r.id));
      expect(await planMarks(tx)).toContain('rg_plan_superoffice_not_company_scopes_with_read_has_others');
      expect(await ids(tx, companies)).toEqual([100, 101]);
      expect(await prepared()).toEqual([100, 101]);
      await asOwner(tx, () => tx.unsafe(`UPDATE superoffice.role_rights SET rights = 'read' WHERE role_id = 9 AND object_type = 'company' AND scope = 'others'`));
      expect(await ids(tx, companies)).toEqual([100, 101, 102, 103, 104, 105]);
      expect(await prepared()).toEqual([100, 101, 102, 103, 104, 105]);
    });
  });
  it('a grant committed by another session shows in the next statement of an open transaction', async () => {
    const admin = db.current.admin;
    const grant = (rights: string) => admin.unsafe(`UPDATE superoffice.role_rights SET rights = '${rights}' WHERE role_id = 9 AND object_type = 'company' AND scope = 'others'`);
    const [{ rights: before }] = (await admin`SELECT rights FROM superoffice.role_rights WHERE role_id = 9 AND object_type = 'company' AND scope = 'others'`) as unknown as [{ rights: string }];
    try {
      await rolledBack(admin, async (tx) => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx.unsafe('SELECT superoffice.set_session(9)');
        expect(await ids(tx, companies)).toEqual([100, 101]);
        await grant('read');
        expect(await ids(tx, companies)).toEqual([100, 101, 102, 103, 104, 105]);
      });
    } finally {
      await grant(before);
    }
  });
});

describe('superoffice: kinds that override the matrix', () => {
  it('system users have every right on every row', async () => {
    await as(7, async (tx) => {
      expect((await tx`UPDATE superoffice.sales SET name = 'x'`).count).toBe(6);
      expect((await tx`INSERT INTO superoffice.contacts (id, name, owner_id, group_id) VALUES (290, 'n', 1, 1)`).count).toBe(1);
      expect((await tx`DELETE FROM superoffice.projects`).count).toBe(6);
    });
  });
  it('external users only read published companies and projects, whatever their role grants', async () => {
    await db.current.admin`UPDATE superoffice.users SET role_id = 1 WHERE id = 5`; // even as User level 0
    try {
      expect(await as(5, (tx) => ids(tx, 'SELECT id FROM superoffice.companies'))).toEqual([102, 103]);
      expect(await as(5, (tx) => ids(tx, 'SELECT id FROM superoffice.contacts'))).toEqual([]);
      expect(await as(5, async (tx) => (await tx`UPDATE superoffice.companies SET name = 'x'`).count)).toBe(0);
      expect(await sqlState(as(5, (tx) => tx`INSERT INTO superoffice.companies (id, name, owner_id, group_id, published) VALUES (190, 'n', 5, 3, true)`))).toBe('42501');
    } finally {
      await db.current.admin`UPDATE superoffice.users SET role_id = 10 WHERE id = 5`;
    }
  });
  it('anonymous users get nothing, even with a powerful role', async () => {
    await db.current.admin`UPDATE superoffice.users SET role_id = 1 WHERE id = 6`;
    try {
      expect(await as(6, (tx) => ids(tx, 'SELECT id FROM superoffice.companies'))).toEqual([]);
      expect(await sqlState(as(6, (tx) => tx`INSERT INTO superoffice.companies (id, name, owner_id, group_id) VALUES (190, 'n', 6, 3)`))).toBe('42501');
    } finally {
      await db.current.admin`UPDATE superoffice.users SET role_id = 11 WHERE id = 6`;
    }
  });
});

describe('superoffice: seed data and functional rights', () => {
  it('the predefined roles are shipped by the migration', async () => {
    const names = (await db.current.admin`SELECT name FROM superoffice.roles ORDER BY id`).map((r) => r.name);
    expect(names).toEqual([
      'User level 0', 'User level 1', 'User level 2', 'User level 3', 'User level 4', 'User level 5',
      'List administrator', 'User administrator', 'Local user', 'External user', 'Anonymous user', 'System user',
    ]);
    const [n] = await db.current.admin`SELECT count(*)::int AS n FROM superoffice.role_rights`;
    expect(n!.n).toBe(12 * 4 * 4);
  });
  it('can() answers for the acting user from the role\'s functional rights', async () => {
    const can = (user: number, fn: string) => as(user, async (tx) => (await tx`SELECT superoffice.can(${fn}) AS c`)[0]!.c as boolean);
    expect(await can(1, 'export')).toBe(true);
    expect(await can(1, 'bulk_update')).toBe(false);
    expect(await can(8, 'admin')).toBe(true);
    expect(await can(5, 'export')).toBe(false);
    expect(await can(7, 'user_admin')).toBe(true);
  });
});

describe('superoffice: the matrix is read once per statement', () => {
  it('a broad-rights user\'s query has no per-row SubPlan over role_rights', async () => {
    await db.current.admin
      .begin(async (tx) => {
        await tx`INSERT INTO superoffice.companies (id, name, owner_id, group_id) SELECT g, 'c' || g, 1 + g % 9, 1 + g % 3 FROM generate_series(10000, 15000) g`;
        await tx`ANALYZE superoffice.companies`;
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx`SELECT superoffice.set_session(8)`;
        const plan = (await tx.unsafe('EXPLAIN SELECT * FROM superoffice.companies')).map((r) => r['QUERY PLAN']).join('\n');
        expect(plan).not.toMatch(/SubPlan/);
        expect(plan).not.toMatch(/role_rights/);
        throw new Rollback();
      })
      .catch(ignoreRollback);
  });
});

class Rollback extends Error {}
function ignoreRollback(error: unknown): void {
  if (!(error instanceof Rollback)) throw error;
}

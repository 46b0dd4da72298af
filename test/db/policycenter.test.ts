// The PolicyCenter contract, rule by rule, as app_user with policycenter.set_session.
import { describe, expect, it } from 'vitest';
import { policycenterSample } from '../../generator/cli/samples/policycenter.ts';
import { asOwner, ids, savepointed, sqlState, useTestDatabase, type Tx } from '../support/db.ts';

const db = useTestDatabase(async (admin) => {
  await admin.unsafe(policycenterSample.sql);
});
const as = <T>(user: number | null, fn: (tx: Tx) => Promise<T>) => db.current.as('policycenter', user, fn);
const sel = (table: string) => `SELECT id FROM policycenter.${table} ORDER BY id`;

describe('policycenter: visibility by zones', () => {
  for (const persona of policycenterSample.personas) {
    it(`${persona.name} (user ${persona.id}) sees organizations ${JSON.stringify(persona.sees)}`, async () => {
      expect(await as(persona.id as number, (tx) => ids(tx, sel('organizations')))).toEqual([...persona.sees]);
    });
  }

  const cases: [string, number, string, number[]][] = [
    ['internal: groups in my zones and the groups I belong to', 1, 'groups', [100]],
    ['internal: a group without a zone is visible to its members only', 7, 'groups', [103]],
    ['internal: users of organizations in my zones, and myself', 1, 'users', [1, 2, 3, 5, 7]],
    ['internal with no zones: only myself', 6, 'users', [6]],
    ['internal: producer codes of organizations in my zones', 1, 'producer_codes', [1000, 1003, 1004]],
    ['internal: my own organization does not reveal its codes without its zone', 2, 'producer_codes', [1002]],
    ['View All Users: every group', 3, 'groups', [100, 101, 102, 103]],
    ['View All Users: every user', 3, 'users', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['View All Users: every producer code', 3, 'producer_codes', [1000, 1001, 1002, 1003, 1004]],
    ['external: the groups of my organization only', 4, 'groups', [101]],
    ['external: the users of my organization only', 4, 'users', [4]],
    ['external: the producer codes of my organization only', 4, 'producer_codes', [1001]],
    ['accounts follow the producer codes one can see', 1, 'accounts', [5000, 5003]],
    ['accounts: external', 4, 'accounts', [5001]],
    ['accounts: no zones, no accounts', 7, 'accounts', []],
  ];
  for (const [name, user, table, expected] of cases) {
    it(`${name} (user ${user}, ${table})`, async () => {
      expect(await as(user, (tx) => ids(tx, sel(table)))).toEqual(expected);
    });
  }

  it('group memberships: those of the groups one can see, and one\'s own, for every user', async () => {
    const all = await db.current.admin`SELECT group_id::int AS g, user_id::int AS u FROM policycenter.group_members ORDER BY 1, 2`;
    for (let user = 1; user <= 8; user++) {
      const seen = await as(user, async (tx) => {
        const groups = new Set(await ids(tx, sel('groups')));
        const members = await tx`SELECT group_id::int AS g, user_id::int AS u FROM policycenter.group_members ORDER BY 1, 2`;
        return { groups, members: members.map((r) => `${r.g}/${r.u}`) };
      });
      const expected = all.filter((r) => r.u === user || seen.groups.has(r.g)).map((r) => `${r.g}/${r.u}`);
      expect(seen.members, `user ${user}`).toEqual(expected);
    }
  });

  it('zone changes take effect in the next statement of the same transaction', async () => {
    await db.current.admin.begin(async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT policycenter.set_session(1)`;
      expect(await ids(tx as never, sel('organizations'))).toEqual([10]);
      await asOwner(tx, () => tx`INSERT INTO policycenter.group_members VALUES (102, 1)`); // Ivan joins the Central team
      expect(await ids(tx as never, sel('organizations'))).toEqual([10, 12]);
      await asOwner(tx, () => tx`UPDATE policycenter.groups SET security_zone_id = 2 WHERE id = 102`); // the group moves to West
      expect(await ids(tx as never, sel('organizations'))).toEqual([10, 11]);
      throw new Rollback();
    }).catch(ignoreRollback);
  });

  // A guard that is not true for the user gets a not-true mark at set_session, and the planner
  // drops the arms it guards; a write to a table the guards read retires the marks, so a grant
  // takes effect in the next statement without another set_session.
  it('a View All grant takes effect in the next statement of the same transaction', async () => {
    await db.current.admin.begin(async (tx) => {
      const every = await ids(tx as never, sel('producer_codes'));
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT policycenter.set_session(1)`;
      expect(await ids(tx as never, sel('producer_codes'))).toEqual([1000, 1003, 1004]);
      expect((await tx`SELECT policycenter.plan_fold_i_view_all() AS v`)[0]!.v).toBe(true);
      await asOwner(tx, () => tx`UPDATE policycenter.users SET view_all_users = true WHERE id = 1`);
      expect((await tx`SELECT policycenter.plan_fold_i_view_all() AS v`)[0]!.v).toBe(false);
      expect(await ids(tx as never, sel('producer_codes'))).toEqual(every);
      expect(await ids(tx as never, 'SELECT id FROM policycenter.users ORDER BY id')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      // The next set_session marks afresh: the guard is true now, so no not-true mark.
      await tx`SELECT policycenter.set_session(1)`;
      expect(await ids(tx as never, sel('producer_codes'))).toEqual(every);
      throw new Rollback();
    }).catch(ignoreRollback);
  });

  it('a grant committed by another session while the transaction is open takes effect in its next statement', async () => {
    const admin = db.current.admin;
    try {
      await admin.begin(async (tx) => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx`SELECT policycenter.set_session(1)`;
        expect(await ids(tx as never, sel('producer_codes'))).toEqual([1000, 1003, 1004]);
        // Another connection of the pool, in its own transaction, committed at once. Its write bumps
        // the sequence twice: at the statement, and again (deferred) at its commit, so that a
        // set_session in between cannot keep marks computed from the rows before the commit.
        const bumps = async () => Number((await admin`SELECT last_value FROM policycenter.rg_guards_changed`)[0]!.last_value);
        const before = await bumps();
        await admin`UPDATE policycenter.users SET view_all_users = true WHERE id = 1`;
        expect(await bumps()).toBe(before + 2);
        expect(await ids(tx as never, sel('producer_codes'))).toEqual([1000, 1001, 1002, 1003, 1004]);
        throw new Rollback();
      }).catch(ignoreRollback);
    } finally {
      await admin`UPDATE policycenter.users SET view_all_users = false WHERE id = 1`;
    }
  });

  it('no identity: nothing in any table', async () => {
    for (const table of ['security_zones', 'organizations', 'groups', 'users', 'group_members', 'producer_codes', 'producer_code_members', 'accounts']) {
      expect(await as(null, async (tx) => (await tx.unsafe(`SELECT count(*)::int AS n FROM policycenter.${table}`))[0]!.n), table).toBe(0);
    }
  });

  it('an unknown user id is refused', async () => {
    expect(await sqlState(as(999, async () => 0))).toBe('28000');
  });
});

describe('policycenter: writes', () => {
  it('internal users update the organizations and groups they see, nothing else', async () => {
    await as(1, async (tx) => {
      expect((await tx`UPDATE policycenter.organizations SET name = 'x' WHERE id IN (10, 12)`).count).toBe(1);
      expect((await tx`UPDATE policycenter.groups SET name = 'x'`).count).toBe(1);
      expect((await tx`UPDATE policycenter.groups SET security_zone_id = 3 WHERE id = 100`).count).toBe(1);
    });
  });

  it('external users update their own organization and its groups only', async () => {
    await as(4, async (tx) => {
      expect((await tx`UPDATE policycenter.organizations SET name = 'x'`).count).toBe(1);
      expect((await tx`UPDATE policycenter.groups SET name = 'x'`).count).toBe(1);
    });
  });

  it('external users can never change security_zone_id: the UPDATE fails and nothing changes', async () => {
    expect(await sqlState(as(4, (tx) => tx`UPDATE policycenter.organizations SET security_zone_id = 1 WHERE id = 11`))).toBe('42501');
    expect(await sqlState(as(4, (tx) => tx`UPDATE policycenter.groups SET security_zone_id = NULL WHERE id = 101`))).toBe('42501');
    const [org] = await db.current.admin`SELECT security_zone_id FROM policycenter.organizations WHERE id = 11`;
    const [group] = await db.current.admin`SELECT security_zone_id FROM policycenter.groups WHERE id = 101`;
    expect([Number(org!.security_zone_id), Number(group!.security_zone_id)]).toEqual([2, 2]);
    // Setting it to the value it already has is not a change.
    expect(await as(4, async (tx) => (await tx`UPDATE policycenter.organizations SET security_zone_id = 2 WHERE id = 11`).count)).toBe(1);
  });

  it('a user whose is_external is NULL is neither internal nor external: no zones, no View All, no agency, no zone changes', async () => {
    const seen = async (tx: Tx) => Object.fromEntries(
      await Promise.all(['organizations', 'groups', 'users', 'producer_codes', 'accounts'].map(async (t) => [t, await ids(tx, sel(t))] as const)),
    );
    // Wendy (2, internal, Central) and Vera (3, View All Users); Xena (4, external, Agency 11).
    for (const user of [2, 3, 4]) {
      await as(user, async (tx) => {
        const before = await seen(tx);
        await asOwner(tx, () => tx.unsafe('UPDATE policycenter.users SET is_external = NULL WHERE id = $1', [user]));
        await tx.unsafe('SELECT policycenter.set_session($1)', [user]);
        const nulled = await seen(tx);
        const [own] = await asOwner(tx, () => tx.unsafe('SELECT organization_id AS o FROM policycenter.users WHERE id = $1', [user]));
        // Her own organization and herself: what every identified user sees (the contract's first arms).
        expect(nulled.organizations, `user ${user}`).toEqual([Number(own!.o)]);
        expect(nulled.users, `user ${user}`).toEqual([user]);
        for (const table of ['groups', 'producer_codes', 'accounts']) {
          expect(before[table]!.length, `user ${user}, ${table} before`).toBeGreaterThan(0);
          expect(nulled[table], `user ${user}, ${table}`).toEqual([]);
        }
        const zone = await savepointed(tx)(`UPDATE policycenter.organizations SET security_zone_id = CASE WHEN security_zone_id = 1 THEN 2 ELSE 1 END WHERE id = ${Number(own!.o)}`);
        expect(zone, `user ${user}`).toEqual({ refused: '42501' });
      });
    }
  });

  const insert = (tx: Tx, code: number) => tx`INSERT INTO policycenter.accounts (id, name, producer_code_id, created_by) VALUES (6000, 'New', ${code}, 1)`;
  it('accounts: a visible producer code may be used when producer code security is off', async () => {
    expect(await as(1, async (tx) => (await insert(tx, 1004)).count)).toBe(1);
  });
  it('accounts: a producer code one cannot see is refused', async () => {
    expect(await sqlState(as(1, (tx) => insert(tx, 1002)))).toBe('42501');
    expect(await sqlState(as(4, (tx) => insert(tx, 1000)))).toBe('42501');
  });
  it('accounts: with producer code security, the code must be linked to the user or one of their groups', async () => {
    expect(await as(5, async (tx) => (await insert(tx, 1000)).count)).toBe(1); // linked to Paul
    expect(await as(5, async (tx) => (await insert(tx, 1003)).count)).toBe(1); // linked to his group
    expect(await as(5, (tx) => ids(tx, 'SELECT id FROM policycenter.producer_codes WHERE id = 1004'))).toEqual([1004]); // sees it…
    expect(await sqlState(as(5, (tx) => insert(tx, 1004)))).toBe('42501'); // …but may not use it
  });
  it('accounts: View All Users may use every code, unless producer code security restricts them to linked ones', async () => {
    expect(await as(3, async (tx) => (await insert(tx, 1002)).count)).toBe(1);
    await db.current.admin`UPDATE policycenter.users SET producer_code_security = true WHERE id = 3`;
    try {
      expect(await sqlState(as(3, (tx) => insert(tx, 1002)))).toBe('42501');
      expect(await as(3, async (tx) => (await tx`DELETE FROM policycenter.accounts WHERE id = 5002`).count)).toBe(0);
    } finally {
      await db.current.admin`UPDATE policycenter.users SET producer_code_security = false WHERE id = 3`;
    }
    expect(await as(3, async (tx) => (await tx`DELETE FROM policycenter.accounts WHERE id = 5002`).count)).toBe(1);
  });
  it('accounts: an account cannot be moved to a code one may see but not use', async () => {
    expect(await sqlState(as(5, (tx) => tx`UPDATE policycenter.accounts SET producer_code_id = 1004 WHERE id = 5000`))).toBe('42501');
    expect(await as(5, async (tx) => (await tx`UPDATE policycenter.accounts SET name = 'renamed' WHERE id = 5000`).count)).toBe(1);
  });
  it('accounts: deleting is an action, so it needs a code one may use', async () => {
    expect(await as(5, async (tx) => (await tx`DELETE FROM policycenter.accounts WHERE id = 5000`).count)).toBe(1);
    await db.current.admin`UPDATE policycenter.accounts SET producer_code_id = 1004 WHERE id = 5003`;
    try {
      expect(await as(5, async (tx) => (await tx`DELETE FROM policycenter.accounts WHERE id = 5003`).count)).toBe(0);
      expect(await as(1, async (tx) => (await tx`DELETE FROM policycenter.accounts WHERE id = 5003`).count)).toBe(1);
    } finally {
      await db.current.admin`UPDATE policycenter.accounts SET producer_code_id = 1003 WHERE id = 5003`;
    }
  });
  /** "Select for action", hand-written as the owner: a code I can find and view, and with producer code security on, linked to me or one of my groups. */
  const USABLE = `SELECT p.id FROM policycenter.producer_codes p, policycenter.users u WHERE u.id = $1 AND (
      (NOT u.is_external AND u.view_all_users)
      OR (NOT u.is_external AND p.organization_id IN (SELECT o.id FROM policycenter.organizations o JOIN policycenter.groups g ON g.security_zone_id = o.security_zone_id
                                                     JOIN policycenter.group_members gm ON gm.group_id = g.id WHERE gm.user_id = u.id))
      OR (u.is_external AND p.organization_id = u.organization_id))
    AND (NOT u.producer_code_security OR EXISTS (SELECT 1 FROM policycenter.producer_code_members pm WHERE pm.producer_code_id = p.id
      AND (pm.user_id = u.id OR pm.group_id IN (SELECT gm.group_id FROM policycenter.group_members gm WHERE gm.user_id = u.id))))
    ORDER BY p.id`;
  /**
   * For every user (and no identity), with producer code security as the sample has it, off, on
   * and NULL (which grants nothing, so counts as on): the codes an INSERT accepts, and those whose
   * accounts a DELETE removes, against USABLE.
   * Every refusal must be 42501.
   */
  const usableAgreement = async () => {
    const users = (await db.current.admin`SELECT id FROM policycenter.users ORDER BY id`).map((r) => Number(r.id));
    const codes = (await db.current.admin`SELECT id FROM policycenter.producer_codes ORDER BY id`).map((r) => Number(r.id));
    const accountsOn = new Map((await db.current.admin`SELECT producer_code_id, count(*)::int AS n FROM policycenter.accounts GROUP BY 1`).map((r) => [Number(r.producer_code_id), Number(r.n)]));
    const withAccounts = new Set(accountsOn.keys());
    const saved = await db.current.admin`SELECT id, producer_code_security FROM policycenter.users`;
    const expected: string[] = [];
    const found: string[] = [];
    const refusals = new Set<string>();
    try {
      for (const security of ['as is', false, true, null] as const) {
        if (security !== 'as is') await db.current.admin`UPDATE policycenter.users SET producer_code_security = ${security}`;
        for (const user of [null, ...users]) {
          const usable = user === null ? [] : (await db.current.admin.unsafe(USABLE, [user])).map((r) => Number(r.id));
          expected.push(`${security}/${user}: inserts ${usable.join(',')}; deletes ${usable.filter((c) => withAccounts.has(c)).join(',')}`);
          const [inserted, deleted] = await as(user, async (tx) => {
            const run = savepointed(tx);
            /** The statement's rows, or its SQLSTATE when refused; undone either way. */
            const undone = async (query: string) => {
              await tx.unsafe('SAVEPOINT undone');
              const r = await run(query);
              await tx.unsafe('ROLLBACK TO SAVEPOINT undone');
              if ('rows' in r) return r.rows;
              refusals.add(r.refused);
              return undefined;
            };
            const ins: number[] = [];
            const del: number[] = [];
            for (const code of codes) {
              if (await undone(`INSERT INTO policycenter.accounts (id, name, producer_code_id, created_by) VALUES (7000, 'New', ${code}, 1)`)) ins.push(code);
              // Every account of the code, or none of them.
              const gone = await undone(`WITH d AS (DELETE FROM policycenter.accounts WHERE producer_code_id = ${code} RETURNING id) SELECT count(*)::int AS n FROM d`);
              expect(gone, `a DELETE is never refused, only filtered (code ${code})`).toBeDefined();
              const n = Number(gone![0]!.n);
              expect([0, accountsOn.get(code) ?? 0], `the accounts of code ${code} deleted`).toContain(n);
              if (n > 0) del.push(code);
            }
            return [ins, del];
          });
          found.push(`${security}/${user}: inserts ${inserted.join(',')}; deletes ${deleted.join(',')}`);
        }
      }
    } finally {
      for (const r of saved) await db.current.admin`UPDATE policycenter.users SET producer_code_security = ${r.producer_code_security as boolean} WHERE id = ${r.id as number}`;
    }
    expect(found).toEqual(expected);
    expect([...refusals]).toEqual(['42501']);
    expect(expected.filter((e) => !e.includes(': inserts ;')).length, 'some users may use some codes').toBeGreaterThan(8);
  };
  describe('accounts: every user, with producer code security as is, off, on and NULL (which counts as on), inserts and deletes on exactly the codes they may use', () => {
    /** Kinds the sample lacks: a code of an unzoned organization, an external user with View All Users, an internal one in no group. */
    const extra = async <T>(fn: () => Promise<T>): Promise<T> => {
      await db.current.admin.unsafe(`
        INSERT INTO policycenter.producer_codes (id, organization_id, code) VALUES (1005, 13, 'U-1');
        INSERT INTO policycenter.accounts (id, name, producer_code_id, created_by) VALUES (5005, 'Unzoned', 1005, 6);
        INSERT INTO policycenter.users (id, organization_id, name, is_external, view_all_users, producer_code_security) VALUES
          (9, 11, 'external, View All Users and producer code security', true, true, true),
          (10, 13, 'internal, View All Users, no group', false, true, false);
        INSERT INTO policycenter.producer_code_members (producer_code_id, user_id, group_id) VALUES (1001, 9, NULL), (1005, 10, NULL);`);
      try {
        return await fn();
      } finally {
        await db.current.admin.unsafe(`
          DELETE FROM policycenter.producer_code_members WHERE user_id IN (9, 10);
          DELETE FROM policycenter.users WHERE id IN (9, 10);
          DELETE FROM policycenter.accounts WHERE id = 5005;
          DELETE FROM policycenter.producer_codes WHERE id = 1005;`);
      }
    };
    it('under the generated policies', () => extra(usableAgreement));
    // A policy added by hand that shows every producer code to app_user (reference data, say)
    // widens what one sees, never what one may use: the check is the generated facts' alone, with
    // an identity or without. (A check that read the row's code under the producer codes'
    // policies would widen here: bench/HISTORY.md, "Thirtieth round".)
    it('with a hand-written policy that shows every producer code to app_user', () =>
      extra(async () => {
        await db.current.admin.unsafe('CREATE POLICY hand_written_reference_data ON policycenter.producer_codes FOR SELECT TO app_user USING (true)');
        try {
          await usableAgreement();
        } finally {
          await db.current.admin.unsafe('DROP POLICY hand_written_reference_data ON policycenter.producer_codes');
        }
      }));
  });
  it('no identity: no writes', async () => {
    expect(await as(null, async (tx) => (await tx`UPDATE policycenter.organizations SET name = 'x'`).count)).toBe(0);
    expect(await sqlState(as(null, (tx) => insert(tx, 1000)))).toBe('42501');
  });
});

describe('policycenter: index plans for ordinary users', () => {
  it('the View All Users arm does not force a sequential scan on everyone', async () => {
    await db.current.admin.begin(async (tx) => {
      // Many zones, each holding a small share of the organizations, as in a real carrier.
      await tx`INSERT INTO policycenter.security_zones (id, name) SELECT g, 'zone ' || g FROM generate_series(100, 2099) g`;
      await tx`INSERT INTO policycenter.organizations (id, name, security_zone_id) SELECT g, 'org ' || g, 100 + g % 2000 FROM generate_series(100000, 120000) g`;
      await tx`INSERT INTO policycenter.producer_codes (id, organization_id, code) SELECT g, 100000 + g % 20000, 'P' || g FROM generate_series(200000, 240000) g`;
      await tx`ANALYZE policycenter.organizations`;
      await tx`ANALYZE policycenter.producer_codes`;
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT policycenter.set_session(6)`;
      const plan = (await tx.unsafe('EXPLAIN SELECT * FROM policycenter.organizations')).map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).not.toContain('Seq Scan');
      throw new Rollback();
    }).catch(ignoreRollback);
  });
});

class Rollback extends Error {}
function ignoreRollback(error: unknown): void {
  if (!(error instanceof Rollback)) throw error;
}

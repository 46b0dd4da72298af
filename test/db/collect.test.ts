// The Collect! contract, rule by rule, as app_user with collect.set_session.
import { describe, expect, it } from 'vitest';
import { collectSample } from '../../generator/cli/samples/collect.ts';
import { asOwner, ids, sqlState, useTestDatabase, type Tx } from '../support/db.ts';
import { planText } from '../support/plan.ts';

const db = useTestDatabase(async (admin) => {
  await admin.unsafe(collectSample.sql);
});
const S = 'collect';
const debtorIds = 'SELECT id FROM collect.debtors ORDER BY id';
const clientIds = 'SELECT id FROM collect.clients ORDER BY id';
const ALL_DEBTORS = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110];
const ALL_CLIENTS = [1, 2, 3, 4, 5, 6];
const as = <T>(operator: string | null, fn: (tx: Tx) => Promise<T>) => db.current.as(S, operator, fn);
const count = async (tx: Tx, query: string) => Number((await tx.unsafe(query))[0]!.n);
/** Sets operator flags as the superuser inside the test's own transaction (rolled back after). */
const setFlags = async (tx: Tx, operator: string, flags: string) => {
  await asOwner(tx, () => tx.unsafe(`UPDATE collect.operators SET ${flags} WHERE id = $1`, [operator]));
  await tx.unsafe('SELECT collect.set_session($1)', [operator]);
};

describe('collect: who sees which debtor', () => {
  for (const persona of collectSample.personas) {
    it(`${persona.name} (operator ${persona.id}) sees exactly ${JSON.stringify(persona.sees)}`, async () => {
      expect(await as(persona.id as string, (tx) => ids(tx, debtorIds))).toEqual([...persona.sees]);
    });
  }

  it('rule 1: security off sees every debtor, whatever the other switches say', async () => {
    await as('lou', async (tx) => {
      await setFlags(tx, 'lou', "security = false, strict = true, locked_out = true, client_id = 6, kind = 'client'");
      expect(await ids(tx, debtorIds)).toEqual(ALL_DEBTORS);
    });
  });

  it('rule 2: client access reaches every depth of the client tree and nothing else, before lock-out and teams', async () => {
    // Cara: Acme East (2) → Acme East Retail (3) → Acme East Retail Mall (4).
    expect(await as('cara', (tx) => ids(tx, 'SELECT id FROM collect.debtors WHERE client_id = 4'))).toEqual([103]);
    // Cole is named on 109 (client 1), but rule 2 shows exactly his client tree.
    expect(await as('cole', (tx) => ids(tx, 'SELECT id FROM collect.debtors WHERE id = 109'))).toEqual([]);
    // Nina keeps her teams only while she has no Client #.
    await as('nina', async (tx) => {
      await setFlags(tx, 'nina', 'client_id = 5');
      expect(await ids(tx, debtorIds)).toEqual([104, 105, 108]);
    });
  });

  it('rule 2: a client operator with no Client # sees nothing; with one, exactly its tree', async () => {
    expect(await as('cleo', (tx) => ids(tx, debtorIds))).toEqual([]);
    await as('cleo', async (tx) => {
      await setFlags(tx, 'cleo', 'client_id = 3');
      expect(await ids(tx, debtorIds)).toEqual([102, 103, 110]);
    });
  });

  it('rule 3: open accounts (no clerk, no access) are visible unless locked out by default', async () => {
    expect(await as('olga', (tx) => ids(tx, 'SELECT id FROM collect.debtors WHERE clerk_id IS NULL AND access_id IS NULL'))).toEqual([100, 101, 109]);
    await as('olga', async (tx) => {
      await setFlags(tx, 'olga', 'locked_out = true');
      expect(await ids(tx, debtorIds)).toEqual([107, 108]);
    });
  });

  it('rule 3: each of the four fields grants access to the operator named in it', async () => {
    const field = async (column: string) =>
      as('olga', async (tx) => {
        await setFlags(tx, 'olga', 'locked_out = true');
        await asOwner(tx, () => tx.unsafe(`UPDATE collect.debtors SET ${column} = 'olga' WHERE id = 104`));
        await tx.unsafe("SELECT collect.set_session('olga')");
        return ids(tx, 'SELECT id FROM collect.debtors WHERE id = 104');
      });
    for (const column of ['operator_id', 'sales_id', 'clerk_id', 'access_id']) expect(await field(column)).toEqual([104]);
  });

  it('rule 3: teams count at any depth (operator in EAST_CALLS ⊂ EAST ⊂ COLLECTIONS)', async () => {
    expect(await as('nina', (tx) => ids(tx, "SELECT id FROM collect.debtors WHERE access_id = 'EAST' OR clerk_id = 'COLLECTIONS'"))).toEqual([102, 103]);
  });

  it('rule 3: a cycle of teams (T1 ⊃ T2 ⊃ T3 ⊃ T1) neither hangs nor fails, and every team of the cycle counts', async () => {
    expect(await as('cyd', (tx) => ids(tx, 'SELECT id FROM collect.debtors WHERE id IN (106, 107, 110)'))).toEqual([106, 107, 110]);
    // The walker itself is only callable by the generated facts (and the owner); ask it as admin.
    const ancestors = (await db.current.admin`SELECT collect.team_tree_ancestors('cyd', false) AS a`)[0]!.a as string[];
    expect([...ancestors].sort()).toEqual(['T1', 'T2', 'T3']);
  });

  it('facts read the closure tables in place and get exactly what the walkers return, for every operator (NULL nodes and the team cycle included)', async () => {
    const operators = (await db.current.admin`SELECT id, client_id, security, kind FROM collect.operators ORDER BY id`).map((r) => r.id as string);
    expect(operators.length).toBeGreaterThan(5);
    const sorted = (a: unknown) => (a === null ? null : [...(a as string[])].map(String).sort());
    for (const operator of operators) {
      const [facts] = await as(operator, (tx) =>
        tx.unsafe(`SELECT collect.debtor_client_ids_for_me() AS clients, collect.client_account_ids_for_me() AS accounts, collect.my_principal_ids() AS principals`),
      );
      // The same sets through the walkers, called by the owner on the operator's own row.
      const [walked] = await db.current.admin.unsafe(
        `SELECT collect.client_tree_descendants(CASE WHEN o.security THEN o.client_id END, true) AS clients,
                CASE WHEN o.apply_to_client_accounts AND o.client_id IS NOT NULL THEN collect.client_tree_descendants(o.client_id, true) END AS accounts,
                CASE WHEN o.security AND o.client_id IS NULL AND o.kind IS DISTINCT FROM 'client' THEN ARRAY[o.id] || collect.team_tree_ancestors(o.id, false) END AS principals
           FROM collect.operators o WHERE o.id = $1`,
        [operator],
      );
      expect({ operator, clients: sorted(facts!.clients), accounts: sorted(facts!.accounts), principals: sorted(facts!.principals) }).toEqual({
        operator,
        clients: sorted(walked!.clients),
        accounts: sorted(walked!.accounts),
        principals: sorted(walked!.principals),
      });
    }
  });

  it('the team closure view is readable by operators and terminates on the cycle', async () => {
    await as('nina', async (tx) => {
      const rows = await tx`SELECT ancestor_id, descendant_id, depth FROM collect.team_tree ORDER BY 1, 2, 3`;
      const pairs = rows.map((r) => `${r.ancestor_id}>${r.descendant_id}@${r.depth}`);
      expect(pairs).toContain('COLLECTIONS>nina@3');
      expect(pairs).toContain('T1>cyd@3');
      expect(pairs).toContain('T3>T2@2');
      // Each team of the cycle reaches the two others and cyd; no path repeats a node.
      expect(rows.filter((r) => ['T1', 'T2', 'T3'].includes(r.ancestor_id)).length).toBe(3 * 3);
    });
    expect(await as(null, (tx) => count(tx, 'SELECT count(*) AS n FROM collect.team_tree'))).toBe(0);
  });

  it('team changes take effect in the next statement of the same transaction', async () => {
    await as('lou', async (tx) => {
      expect(await ids(tx, debtorIds)).toEqual([104, 105, 110]);
      await tx`SELECT collect.set_session('admin')`;
      expect((await tx`INSERT INTO collect.team_members (team_id, member_id) VALUES ('T2', 'lou')`).count).toBe(1);
      await tx`SELECT collect.set_session('lou')`;
      // Lou is now in T2, and through the cycle in T1 and T3 too.
      expect(await ids(tx, debtorIds)).toEqual([104, 105, 106, 107, 110]);
    });
    await as('nina', async (tx) => {
      await tx`SELECT collect.set_session('admin')`;
      expect((await tx`DELETE FROM collect.team_members WHERE team_id = 'EAST' AND member_id = 'EAST_CALLS'`).count).toBe(1);
      await tx`SELECT collect.set_session('nina')`;
      expect(await ids(tx, debtorIds)).toEqual([100, 101, 109]);
    });
  });

  it('flag changes take effect in the next statement of the same transaction', async () => {
    await as('nina', async (tx) => {
      await tx`SELECT collect.set_session('admin')`;
      expect((await tx`UPDATE collect.operators SET locked_out = true WHERE id = 'nina'`).count).toBe(1);
      await tx`SELECT collect.set_session('nina')`;
      expect(await ids(tx, debtorIds)).toEqual([101, 102, 103]);
    });
  });

  it('facts that test the operator\'s own row read it once, and say what a query of that row says, for every operator and once the row is gone (then no debtor)', async () => {
    // The facts' bodies read the operator's row into a record (generator/emit/expr.ts,
    // identityRowLookup); these are the sub-selects they were written as.
    const byQuery = `SELECT
        EXISTS (SELECT 1 FROM collect.operators WHERE id = $1 AND security IS DISTINCT FROM false AND client_id IS NULL AND kind = 'operator') AS restricted,
        EXISTS (SELECT 1 FROM collect.operators WHERE id = $1 AND security IS DISTINCT FROM false AND client_id IS NULL AND kind = 'operator' AND locked_out = false) AS open,
        (SELECT client_id FROM collect.operators WHERE id = $1 AND security IS DISTINCT FROM false) AS client,
        (SELECT client_id FROM collect.operators WHERE id = $1 AND apply_to_client_accounts IS DISTINCT FROM false) AS accounts_root`;
    const byFacts = `SELECT collect.i_am_account_restricted() AS restricted, collect.i_see_open_accounts() AS open,
        collect.my_restricting_client_id() AS client, collect.my_client_accounts_root() AS accounts_root`;
    const seen = new Set<string>();
    for (const { id } of collectSample.personas) {
      await as(id as string, async (tx) => {
        const facts = async () => (await tx.unsafe(byFacts))[0];
        const query = async () => (await asOwner(tx, () => tx.unsafe(byQuery, [id as string])))[0];
        const present = await facts();
        expect(present, String(id)).toEqual(await query());
        seen.add(JSON.stringify(present));
        // An administrator removes the operator while their transaction is open.
        await asOwner(tx, () => tx.unsafe('DELETE FROM collect.operators WHERE id = $1', [id as string]));
        expect(await facts(), `${id}, removed`).toEqual({ restricted: false, open: false, client: null, accounts_root: null });
        expect(await facts(), `${id}, removed`).toEqual(await query());
        // Nor does a removed operator's Security read as off (the sub-select of no row is NULL,
        // and so is security = false over a row of NULLs).
        expect(await tx.unsafe('SELECT collect.i_bypass_security() AS bypass'), `${id}, removed`).toEqual([{ bypass: null }]);
        expect(await ids(tx, debtorIds), `${id}, removed`).toEqual([]);
      });
    }
    // The personas take these facts through several values each.
    expect(seen.size).toBeGreaterThanOrEqual(4);
  });

  it('a NULL switch grants nothing: each reads as its stricter value (security on, strict, locked out, applied to client accounts, no operator kind)', async () => {
    const directory = 'SELECT id, restricted FROM collect.debtor_directory ORDER BY id';
    const seen = async (tx: Tx, operator: string, flags: string) => {
      await setFlags(tx, operator, flags);
      const [bypass] = await tx.unsafe('SELECT collect.i_bypass_security() IS TRUE AS b, collect.i_edit_every_client() IS TRUE AS e');
      return {
        debtors: await ids(tx, debtorIds),
        clients: await ids(tx, clientIds),
        directory: await tx.unsafe(directory),
        rights: bypass,
        writesOperators: (await tx.unsafe("UPDATE collect.operators SET name = name WHERE id = 'lou'")).count,
      };
    };
    const pairs: [string, string, string][] = [
      ['nina', 'security = NULL', 'security = true'],
      ['nina', 'strict = NULL', 'strict = true'],
      ['nina', 'locked_out = NULL', 'locked_out = true'],
      ['nina', 'kind = NULL', "kind = 'client'"],
      ['cara', 'apply_to_client_accounts = NULL', 'apply_to_client_accounts = true'],
      ['admin', 'security = NULL', 'security = true'],
    ];
    for (const [operator, withNull, stricter] of pairs) {
      await as(operator, async (tx) => {
        const nulled = await seen(tx, operator, withNull);
        expect(nulled, `${operator}: ${withNull}`).toEqual(await seen(tx, operator, stricter));
        expect(nulled.debtors.length, `${operator}: ${withNull}`).toBeLessThan(ALL_DEBTORS.length);
      });
    }
    // The stricter values make a difference for these operators (so the pairs above test something).
    expect(await as('nina', async (tx) => (await seen(tx, 'nina', 'strict = false')).directory.length)).toBe(ALL_DEBTORS.length);
    expect(await as('nina', async (tx) => (await seen(tx, 'nina', 'locked_out = false')).debtors)).toContain(109);
    expect(await as('cara', async (tx) => (await seen(tx, 'cara', 'apply_to_client_accounts = false')).clients)).toEqual(ALL_CLIENTS);
    expect(await as('admin', async (tx) => (await seen(tx, 'admin', 'security = false')).writesOperators)).toBe(1);
  });

  it('the facts are evaluated once per statement (InitPlans), not once per row', async () => {
    const plan = await as('nina', async (tx) => planText(tx, `(COSTS OFF) ${debtorIds}`));
    expect(plan).toMatch(/InitPlan/);
    expect(plan).not.toMatch(/SubPlan/);
  });
});

interface DirectoryRow {
  readonly id: number;
  readonly name: string | null;
  readonly restricted: boolean;
  readonly [column: string]: unknown;
}

describe('collect: the debtor directory (strict and non-strict)', () => {
  const directory = (operator: string) =>
    as(operator, async (tx) => (await tx`SELECT * FROM collect.debtor_directory ORDER BY id`).map((r) => ({ ...r, id: Number(r.id) }) as DirectoryRow));

  it('has the columns of debtors plus restricted', async () => {
    const columns = await as('admin', async (tx) =>
      (await tx`SELECT column_name FROM information_schema.columns WHERE table_schema = 'collect' AND table_name = 'debtor_directory' ORDER BY ordinal_position`).map((r) => r.column_name),
    );
    expect(columns).toEqual([
      'id', 'file_number', 'client_id', 'name', 'address', 'phone', 'operator_id', 'sales_id', 'clerk_id', 'access_id',
      'last_worked', 'owing', 'group_number', 'group_member_number', 'restricted',
    ]);
  });

  it('non-strict: every debtor, the hidden ones as placeholders with routing columns only', async () => {
    const rows = await directory('nina');
    expect(rows.map((r) => r.id)).toEqual(ALL_DEBTORS);
    expect(rows.filter((r) => r.restricted).map((r) => r.id)).toEqual([104, 105, 106, 107, 108, 110]);
    expect(rows.filter((r) => r.restricted === false).map((r) => r.id)).toEqual([100, 101, 102, 103, 109]);
    const placeholder = rows.find((r) => r.id === 105)!;
    expect(placeholder).toEqual({
      id: 105, file_number: 'F-105', client_id: null, name: 'N/A', address: null, phone: null, operator_id: null,
      sales_id: null, clerk_id: null, access_id: null, last_worked: placeholder.last_worked, owing: '105.00',
      group_number: 'G2', group_member_number: '2', restricted: true,
    });
    expect(placeholder.last_worked).toBeInstanceOf(Date);
    expect(rows.find((r) => r.id === 110)!.operator_id).toBe('lou');
    // A visible row is shown in full.
    expect(rows.find((r) => r.id === 101)).toMatchObject({ name: 'Eli Evans', address: '2 Main St', phone: '555-0101', client_id: '2', restricted: false });
  });

  it('strict: only the debtors the operator sees, none restricted', async () => {
    const rows = await directory('lou');
    expect(rows.map((r) => r.id)).toEqual([104, 105, 110]);
    expect(rows.every((r) => r.restricted === false && r.name !== 'N/A')).toBe(true);
  });

  it('security off: every debtor in full, none restricted', async () => {
    const rows = await directory('admin');
    expect(rows.map((r) => r.id)).toEqual(ALL_DEBTORS);
    expect(rows.some((r) => r.restricted)).toBe(false);
    // Security off with Strict off still shows no placeholders (there is nothing hidden).
    expect(rows.find((r) => r.id === 104)!.name).toBe('Hal Hughes');
  });

  it('client-restricted operators get placeholders too (non-strict); strict ones do not', async () => {
    const cara = await directory('cara');
    expect(cara.map((r) => r.id)).toEqual(ALL_DEBTORS);
    expect(cara.filter((r) => !r.restricted).map((r) => r.id)).toEqual([101, 102, 103, 107, 110]);
    expect(cara.find((r) => r.id === 100)!.name).toBe('N/A');
    expect((await directory('amy')).map((r) => r.id)).toEqual([102, 103, 110]);
    // A client operator without Client # (non-strict) sees only placeholders.
    const cleo = await directory('cleo');
    expect(cleo.length).toBe(ALL_DEBTORS.length);
    expect(cleo.every((r) => r.restricted && r.name === 'N/A')).toBe(true);
  });

  it('no identity: no rows', async () => {
    expect(await as(null, (tx) => count(tx, 'SELECT count(*) AS n FROM collect.debtor_directory'))).toBe(0);
  });

  it('cannot be written through the view', async () => {
    // PostgreSQL refuses before it even checks privileges: the view reads a computed, filtered
    // sub-select, so it is not automatically updatable (55000, "cannot update view"); app_user
    // also holds no INSERT/UPDATE/DELETE privilege on it.
    for (const operator of ['nina', 'admin']) {
      expect(await sqlState(as(operator, (tx) => tx`UPDATE collect.debtor_directory SET owing = 0 WHERE id = 104`))).toBe('55000');
      expect(await sqlState(as(operator, (tx) => tx`DELETE FROM collect.debtor_directory WHERE id = 104`))).toBe('55000');
      expect(await sqlState(as(operator, (tx) => tx`INSERT INTO collect.debtor_directory (id, file_number) VALUES (999, 'x')`))).toBe('55000');
    }
    expect(await sqlState(db.current.admin`UPDATE collect.debtor_directory SET owing = 0 WHERE id = 104`)).toBe('55000');
    const privileges = await as('nina', async (tx) =>
      (await tx`SELECT privilege_type FROM information_schema.role_table_grants WHERE table_schema = 'collect' AND table_name = 'debtor_directory' AND grantee = 'app_user'`).map((r) => r.privilege_type),
    );
    expect(privileges).toEqual(['SELECT']);
  });

  it('placeholders cannot be changed through the table either', async () => {
    await as('nina', async (tx) => {
      expect((await tx`UPDATE collect.debtors SET owing = 0 WHERE id = 104`).count).toBe(0);
      expect((await tx`DELETE FROM collect.debtors WHERE id = 104`).count).toBe(0);
      expect((await tx`UPDATE collect.debtors SET owing = 0`).count).toBe(5);
    });
  });
});

describe('collect: debtor writes', () => {
  it('update and delete what you see; an update must leave the debtor visible to you', async () => {
    await as('lou', async (tx) => {
      expect((await tx`UPDATE collect.debtors SET phone = 'x' WHERE id IN (104, 100, 101)`).count).toBe(1);
      expect((await tx`DELETE FROM collect.debtors WHERE id = 101`).count).toBe(0);
    });
    expect(await sqlState(as('lou', (tx) => tx`UPDATE collect.debtors SET access_id = 'cyd' WHERE id = 104`))).toBe('42501');
    expect(await sqlState(as('cara', (tx) => tx`UPDATE collect.debtors SET client_id = 5 WHERE id = 101`))).toBe('42501');
    expect(await as('admin', async (tx) => (await tx`UPDATE collect.debtors SET phone = 'x'`).count)).toBe(11);
  });

  it('insert only debtors you would see', async () => {
    const insert = (operator: string, values: string) => as(operator, (tx) => tx.unsafe(`INSERT INTO collect.debtors (id, file_number, client_id, operator_id, access_id) VALUES ${values}`));
    expect((await insert('lou', "(900, 'F-900', 1, 'lou', 'lou')")).count).toBe(1);
    expect(await sqlState(insert('lou', "(900, 'F-900', 1, 'nina', 'nina')"))).toBe('42501');
    expect((await insert('nina', "(900, 'F-900', 1, NULL, NULL)")).count).toBe(1);
    expect((await insert('cara', "(900, 'F-900', 4, NULL, 'x')")).count).toBe(1);
    expect(await sqlState(insert('cara', "(900, 'F-900', 5, NULL, NULL)"))).toBe('42501');
    expect(await sqlState(insert('cleo', "(900, 'F-900', 1, NULL, NULL)"))).toBe('42501');
    expect((await insert('admin', "(900, 'F-900', 6, NULL, 'x')")).count).toBe(1);
  });
});

describe('collect: clients', () => {
  it('Apply to Client Accounts with a Client #: only that client tree; otherwise every client', async () => {
    expect(await as('carl', (tx) => ids(tx, clientIds))).toEqual([1, 2, 3, 4]);
    expect(await as('amy', (tx) => ids(tx, clientIds))).toEqual([3, 4]);
    for (const operator of ['admin', 'nina', 'lou', 'cara', 'cole', 'cleo', 'kim']) {
      expect(await as(operator, (tx) => ids(tx, clientIds))).toEqual(ALL_CLIENTS);
    }
    // Apply without a Client # restricts nothing.
    await as('nina', async (tx) => {
      await setFlags(tx, 'nina', 'apply_to_client_accounts = true');
      expect(await ids(tx, clientIds)).toEqual(ALL_CLIENTS);
    });
  });

  it('a client added without owned_by is owned by the operator\'s Client #, and only inside the tree', async () => {
    await as('amy', async (tx) => {
      expect((await tx`INSERT INTO collect.clients (id, name) VALUES (7, 'New shop')`).count).toBe(1);
      expect((await tx`SELECT owned_by FROM collect.clients WHERE id = 7`)[0]!.owned_by).toBe('3');
      expect((await tx`INSERT INTO collect.clients (id, owned_by, name) VALUES (8, 7, 'Below the new shop')`).count).toBe(1);
      expect(await ids(tx, clientIds)).toEqual([3, 4, 7, 8]);
    });
    expect(await sqlState(as('amy', (tx) => tx`INSERT INTO collect.clients (id, owned_by, name) VALUES (7, 5, 'Elsewhere')`))).toBe('42501');
    expect(await sqlState(as('amy', (tx) => tx`INSERT INTO collect.clients (id, owned_by, name) VALUES (7, 2, 'Above me')`))).toBe('42501');
    // Without client restrictions the owner stays as given (NULL: a new root).
    expect(await as('admin', async (tx) => {
      await tx`INSERT INTO collect.clients (id, name) VALUES (7, 'New root')`;
      return (await tx`SELECT owned_by FROM collect.clients WHERE id = 7`)[0]!.owned_by;
    })).toBeNull();
  });

  it('restricted operators change clients of their tree only, and cannot move clients out of it or move its root', async () => {
    await as('amy', async (tx) => {
      expect((await tx`UPDATE collect.clients SET name = 'x' WHERE id IN (1, 3, 4, 5)`).count).toBe(2);
      expect((await tx`DELETE FROM collect.clients WHERE id = 1`).count).toBe(0);
    });
    expect(await sqlState(as('amy', (tx) => tx`UPDATE collect.clients SET owned_by = 5 WHERE id = 4`))).toBe('42501');
    expect(await sqlState(as('amy', (tx) => tx`UPDATE collect.clients SET owned_by = 1 WHERE id = 3`))).toBe('42501');
    await as('amy', async (tx) => {
      await tx`INSERT INTO collect.clients (id, name) VALUES (7, 'Short-lived')`;
      expect((await tx`DELETE FROM collect.clients WHERE id = 7`).count).toBe(1);
      // The root itself is not below the root.
      expect((await tx`DELETE FROM collect.clients WHERE id = 3`).count).toBe(0);
    });
  });

  it('operators with security on and no client restriction read clients but do not change them', async () => {
    expect(await sqlState(as('lou', (tx) => tx`INSERT INTO collect.clients (id, name) VALUES (7, 'x')`))).toBe('42501');
    expect(await as('lou', async (tx) => (await tx`UPDATE collect.clients SET name = 'x'`).count)).toBe(0);
    expect(await as('admin', async (tx) => (await tx`UPDATE collect.clients SET name = 'x'`).count)).toBe(6);
  });
});

describe('collect: operators, teams and team members', () => {
  it('every identified operator reads them', async () => {
    await as('cleo', async (tx) => {
      expect(await count(tx, 'SELECT count(*) AS n FROM collect.operators')).toBe(12);
      expect(await count(tx, 'SELECT count(*) AS n FROM collect.teams')).toBe(6);
      expect(await count(tx, 'SELECT count(*) AS n FROM collect.team_members')).toBe(7);
    });
  });

  it('only operators with security off change them; nobody switches their own security off', async () => {
    expect(await as('lou', async (tx) => (await tx`UPDATE collect.operators SET security = false WHERE id = 'lou'`).count)).toBe(0);
    expect(await sqlState(as('lou', (tx) => tx`INSERT INTO collect.operators (id, name) VALUES ('zed', 'x')`))).toBe('42501');
    expect(await sqlState(as('lou', (tx) => tx`INSERT INTO collect.team_members (team_id, member_id) VALUES ('T1', 'lou')`))).toBe('42501');
    expect(await sqlState(as('lou', (tx) => tx`INSERT INTO collect.teams (id, name) VALUES ('T9', 'x')`))).toBe('42501');
    expect(await as('lou', async (tx) => (await tx`DELETE FROM collect.team_members`).count)).toBe(0);
    expect(await as('kim', async (tx) => (await tx`UPDATE collect.operators SET strict = true WHERE id = 'lou'`).count)).toBe(1);
    expect(await as('admin', async (tx) => (await tx`INSERT INTO collect.teams (id, name) VALUES ('T9', 'x')`).count)).toBe(1);
  });
});

describe('collect: no identity, no rows, no writes', () => {
  for (const table of ['clients', 'operators', 'teams', 'team_members', 'debtors', 'debtor_directory', 'team_tree']) {
    it(`${table}: app_user without set_session reads nothing`, async () => {
      expect(await as(null, (tx) => count(tx, `SELECT count(*) AS n FROM collect.${table}`))).toBe(0);
    });
  }
  it('writes without an identity are refused or touch nothing', async () => {
    expect(await sqlState(as(null, (tx) => tx`INSERT INTO collect.debtors (id, file_number) VALUES (900, 'x')`))).toBe('42501');
    expect(await sqlState(as(null, (tx) => tx`INSERT INTO collect.clients (id, name) VALUES (900, 'x')`))).toBe('42501');
    expect(await sqlState(as(null, (tx) => tx`INSERT INTO collect.team_members (team_id, member_id) VALUES ('T1', 'x')`))).toBe('42501');
    expect(await sqlState(as(null, (tx) => tx`INSERT INTO collect.operators (id, name) VALUES ('x', 'x')`))).toBe('42501');
    for (const table of ['debtors', 'clients', 'operators', 'teams']) {
      expect(await as(null, async (tx) => (await tx.unsafe(`UPDATE collect.${table} SET name = 'x'`)).count)).toBe(0);
      expect(await as(null, async (tx) => (await tx.unsafe(`DELETE FROM collect.${table}`)).count)).toBe(0);
    }
    expect(await as(null, async (tx) => (await tx`DELETE FROM collect.team_members`).count)).toBe(0);
  });
});

describe('collect: set_session', () => {
  it('takes a text operator id and refuses an unknown one', async () => {
    expect(await sqlState(as('nobody', async () => undefined))).toBe('28000');
    const args = await as('nina', async (tx) => (await tx`SELECT pg_get_function_identity_arguments('collect.set_session(text)'::regprocedure) AS a`)[0]!.a);
    expect(args).toBe('operator_id text');
  });
  it('the identity ends with the transaction', async () => {
    const conn = await db.current.admin.reserve();
    try {
      await conn`BEGIN`;
      await conn`SET LOCAL ROLE app_user`;
      await conn`SELECT collect.set_session('lou')`;
      expect((await conn`SELECT count(*)::int AS n FROM collect.debtors`)[0]!.n).toBe(3);
      await conn`COMMIT`;
      await conn`BEGIN`;
      await conn`SET LOCAL ROLE app_user`;
      expect((await conn`SELECT count(*)::int AS n FROM collect.debtors`)[0]!.n).toBe(0);
      await conn`ROLLBACK`;
    } finally {
      conn.release();
    }
  });
});

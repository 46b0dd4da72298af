// Key lists against PostgreSQL: smartoffice.contacts.assignee_keys (m.keyList) holds one key of the
// contact's office and the assignee per contact_assignments row, follows every change to the
// assignments and to the contact's office, cannot be set or faked by app_user, survives TRUNCATE and
// concurrent writers (an office move racing an assignment, in either order), and rule 2 read
// through it shows every user exactly what the set of contact ids it replaced showed.
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smartofficeSample } from '../../generator/cli/samples/smartoffice.ts';
import { migrate } from '../../generator/db/migrate.ts';
import { listKey } from '../../generator/emit/expr.ts';
import { dropTestDatabase, ids, raceAsAppUsers, rolledBack, sqlState, useTestDatabase, type TestDatabase, type Tx } from '../support/db.ts';
import { databaseBefore, expectMaintained, functionCounts, migrationAdding, sampleAgain, staleThenFilled, upDoBlocks } from '../support/derived.ts';
import { blankDatabase, DSL, TempProject } from '../support/project.ts';
import { random } from '../support/random.ts';

const S = 'smartoffice';
const db = useTestDatabase(async (admin) => {
  await admin.unsafe(smartofficeSample.sql);
});
const as = <T>(user: number, fn: (tx: Tx) => Promise<T>) => db.current.as(S, user, fn);

interface Listed {
  id: number;
  keys: string[];
  expected: string[];
}
/** Each contact's list next to the keys its assignments and office give (read by the superuser unless a transaction is given), both sorted. */
async function lists(tx: Sql | Tx = db.current.admin): Promise<Listed[]> {
  const rows = await tx.unsafe(`
    SELECT c.id::int AS id,
           ARRAY(SELECT k FROM unnest(c.assignee_keys) AS k ORDER BY k) AS keys,
           ARRAY(SELECT c.office_id || ':' || a.user_id FROM smartoffice.contact_assignments a WHERE a.contact_id = c.id ORDER BY 1) AS expected
      FROM smartoffice.contacts c ORDER BY c.id`);
  return rows as unknown as Listed[];
}
const wrong = (rows: Listed[]) => rows.filter((r) => r.keys.join() !== r.expected.join());
const keysOf = async (tx: Tx, id: number) => ((await tx.unsafe('SELECT assignee_keys AS k FROM smartoffice.contacts WHERE id = $1', [id]))[0]?.k as string[] | undefined)?.sort();
const migrationFile = migrationAdding('assignee_keys');

describe('smartoffice.contacts.assignee_keys', () => {
  it('lists the office and assignee of every assignment of the sample', async () => {
    const rows = await lists();
    expect(wrong(rows)).toEqual([]);
    expect(rows.find((r) => r.id === 102)!.keys).toEqual(['3:11', '3:12']);
    expect(rows.find((r) => r.id === 103)!.keys).toEqual([]);
  });

  it('follows inserts and deletes made as app_user, in the next statement of the same transaction', async () => {
    // Carla (enterprise view over HQ and everything below) assigns and unassigns Branch A contacts.
    await as(10, async (tx) => {
      await tx`INSERT INTO smartoffice.contact_assignments (contact_id, user_id) VALUES (103, 11), (103, 12), (100, 12), (108, 11)`;
      expect([await keysOf(tx, 103), await keysOf(tx, 100), await keysOf(tx, 108)]).toEqual([['3:11', '3:12'], ['3:11', '3:12'], ['5:11', '5:19']]);
      expect((await tx`DELETE FROM smartoffice.contact_assignments WHERE contact_id IN (100, 102)`).count).toBe(4);
      expect([await keysOf(tx, 100), await keysOf(tx, 102), await keysOf(tx, 103)]).toEqual([[], [], ['3:11', '3:12']]);
      expect(wrong(await lists(tx))).toEqual([]);
      // John's rule 2 reads the list: 103 is assigned to him now, 100 and 102 to nobody, 101 still
      // to Tom, and 108 (assigned to him, but in the field office) is not his office's.
      await tx`SELECT smartoffice.set_session(11)`;
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts')).toEqual([100, 102, 103, 104]);
    });
  });

  it('follows an assignment moved to another contact or another user (UPDATE OF contact_id, user_id)', async () => {
    // app_user holds no UPDATE on contact_assignments in SmartOffice; the owner moves them here.
    await rolledBack(db.current.admin, async (tx) => {
      await tx`UPDATE smartoffice.contact_assignments SET contact_id = 108 WHERE contact_id = 100 AND user_id = 11`;
      await tx`UPDATE smartoffice.contact_assignments SET user_id = 13 WHERE contact_id = 101`;
      const rows = await lists(tx);
      expect(wrong(rows)).toEqual([]);
      expect(rows.filter((r) => [100, 101, 108].includes(r.id)).map((r) => r.keys)).toEqual([[], ['3:13'], ['5:11', '5:19']]);
    });
    expect(wrong(await lists())).toEqual([]);
  });

  it("rewrites the keys when the contact moves to another office, and the new office's assignees see it by rule 2", async () => {
    // Carla moves 102 (John and Tom's) from Branch A to the field office, then back.
    await as(10, async (tx) => {
      await tx`UPDATE smartoffice.contacts SET office_id = 5 WHERE id = 102`;
      expect(await keysOf(tx, 102)).toEqual(['5:11', '5:12']);
      await tx`UPDATE smartoffice.contacts SET name = 'renamed' WHERE id = 102`; // the office stays: no change
      expect(await keysOf(tx, 102)).toEqual(['5:11', '5:12']);
      // Finn (field office) is not assigned: he does not see it; 102 is assigned, so not "all users".
      await tx`SELECT smartoffice.set_session(19)`;
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts')).toEqual([108]);
      // John, whose office is Branch A, no longer sees it by rule 2.
      await tx`SELECT smartoffice.set_session(11)`;
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts')).toEqual([100, 103, 104]);
      await tx`SELECT smartoffice.set_session(10)`;
      await tx`UPDATE smartoffice.contacts SET office_id = 3 WHERE id = 102`;
      expect(await keysOf(tx, 102)).toEqual(['3:11', '3:12']);
      expect(wrong(await lists(tx))).toEqual([]);
    });
  });

  it('shares the counter\'s trigger: an assignment makes one new version of the contact, not one per column', async () => {
    // The counter and the list are kept from the same rows (contact_assignments by contact_id).
    const triggers = await db.current.admin`SELECT tgname FROM pg_trigger WHERE tgrelid = 'smartoffice.contact_assignments'::regclass AND NOT tgisinternal ORDER BY 1`;
    expect(triggers.map((t) => t.tgname)).toEqual(['maintain_contacts_assignment_count', 'maintain_contacts_assignment_count_on_truncate']);
    await rolledBack(db.current.admin, async (tx) => {
      const updates = async () => (await tx`SELECT n_tup_upd::int AS n FROM pg_stat_xact_user_tables WHERE relid = 'smartoffice.contacts'::regclass`)[0]!.n as number;
      const before = await updates();
      await tx`INSERT INTO smartoffice.contact_assignments VALUES (103, 11)`;
      expect(await updates()).toBe(before + 1);
      await tx`DELETE FROM smartoffice.contact_assignments WHERE contact_id = 102`;
      expect(await updates()).toBe(before + 3);
      const [row] = await tx`SELECT assignment_count AS n, assignee_keys AS k FROM smartoffice.contacts WHERE id = 103`;
      expect([row!.n, row!.k]).toEqual([1, ['3:11']]);
    });
  });

  it('cannot be set by app_user: UPDATE and upsert fail with 42501, INSERT starts empty', async () => {
    await expectMaintained(
      as,
      'assignee_keys',
      [
        "UPDATE smartoffice.contacts SET assignee_keys = '{3:14}' WHERE id = 103",
        "UPDATE smartoffice.contacts SET name = 'renamed', assignee_keys = assignee_keys || '3:14'::text WHERE id = 103",
        "INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (103, 3, 'again') ON CONFLICT (id) DO UPDATE SET assignee_keys = '{3:14}'",
      ],
      "UPDATE smartoffice.contacts SET assignee_keys = '{3:14}' WHERE id = 103",
    );
    // Moving the contact and setting the list in one statement (Carla may move 102 to the field
    // office): refused by the list's trigger, not rewritten.
    const moved = await as(10, (tx) =>
      tx.unsafe("UPDATE smartoffice.contacts SET office_id = 5, assignee_keys = '{5:19}' WHERE id = 102").then(
        () => 'no error',
        (e: { code: string; message: string }) => `${e.code} ${e.message}`,
      ),
    );
    expect(moved).toBe('42501 column assignee_keys of smartoffice.contacts is maintained by rowguard and cannot be set');
    await as(14, async (tx) => {
      const [row] = await tx.unsafe("INSERT INTO smartoffice.contacts (id, office_id, name, assignee_keys) VALUES (900, 3, 'new', '{3:14}') RETURNING assignee_keys AS k");
      expect(row!.k).toEqual([]);
    });
  });

  it('cannot be faked from a trigger app_user fires on its own temporary table', async () => {
    const state = await as(14, async (tx) => {
      await tx.unsafe('CREATE TEMP TABLE probe (x int)');
      await tx.unsafe(`CREATE FUNCTION pg_temp.fake() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE smartoffice.contacts SET assignee_keys = '{3:14}' WHERE id = 103; RETURN NEW; END $$`);
      await tx.unsafe('CREATE TRIGGER fake AFTER INSERT ON probe FOR EACH ROW EXECUTE FUNCTION pg_temp.fake()');
      return sqlState(tx.unsafe('INSERT INTO probe VALUES (1)'));
    });
    expect(state).toBe('42501');
  });

  it('is emptied by TRUNCATE, which fires no row triggers', async () => {
    await rolledBack(db.current.admin, async (tx) => {
      await tx`TRUNCATE smartoffice.contact_assignments`;
      expect((await lists(tx)).filter((r) => r.keys.length > 0)).toEqual([]);
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT smartoffice.set_session(11)`;
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts')).toEqual([100, 101, 102, 103, 104]);
    });
    expect(wrong(await lists())).toEqual([]);
  });

  it('stays exact when two connections insert and delete assignments of the same contacts and move them between offices at once', async () => {
    const contacts = [100, 101, 102, 103];
    // Carla and Rita both see these contacts through enterprise view; each assigns its own users,
    // so their rows never collide, but they change the same four lists all the time, and Carla
    // moves the contacts between Branch A and the field office as she goes.
    const worker = async (actor: number, users: number[], seed: number, moves: boolean) => {
      const mine = new Set<string>();
      const next = random(seed);
      for (let i = 0; i < 120; i++) {
        // In contact order: transactions that lock the same rows in opposite orders can deadlock.
        const pairs = Array.from({ length: 1 + next(3) }, () => [contacts[next(contacts.length)]!, users[next(users.length)]!] as const).sort((x, y) => x[0] - y[0]);
        await db.current.asCommitted(S, actor, async (tx) => {
          for (const [contact, user] of pairs) {
            const key = `${contact}:${user}`;
            if (moves && next(3) === 0) await tx`UPDATE smartoffice.contacts SET office_id = CASE office_id WHEN 3 THEN 5 ELSE 3 END WHERE id = ${contact}`;
            if (mine.has(key)) {
              await tx`DELETE FROM smartoffice.contact_assignments WHERE contact_id = ${contact} AND user_id = ${user}`;
              mine.delete(key);
            } else {
              await tx`INSERT INTO smartoffice.contact_assignments (contact_id, user_id) VALUES (${contact}, ${user})`;
              mine.add(key);
            }
          }
          if (next(2) === 0) await tx`SELECT pg_sleep(0.002)`;
        });
      }
      return mine;
    };
    await Promise.all([worker(10, [13, 14, 15], 1, true), worker(18, [16, 17, 19, 21], 2, false)]);
    expect(wrong(await lists())).toEqual([]);
    await db.current.admin.unsafe(
      'DELETE FROM smartoffice.contact_assignments WHERE user_id IN (13, 14, 15, 16, 17, 19, 21) AND contact_id IN (100, 101, 102, 103); UPDATE smartoffice.contacts SET office_id = 3 WHERE id IN (100, 101, 102, 103)',
    );
    expect(wrong(await lists())).toEqual([]);
  });

  it('an office move and an assignment racing for the contact, in either order, leave the key of the new office', async () => {
    // The second statement's trigger waits for the row lock the first holds on the contact, then
    // works on the row as committed: the assignment's key is made from the office the row has then,
    // and the move rewrites the keys the row holds then.
    const admin = db.current.admin;
    const race = (first: [number, string], second: [number, string]) => raceAsAppUsers(admin, S, first, second);
    const move = (office: number): [number, string] => [10, `UPDATE smartoffice.contacts SET office_id = ${office} WHERE id = 103`];
    // The move first: the assignment waits, then makes its key with the field office.
    await race(move(5), [18, 'INSERT INTO smartoffice.contact_assignments VALUES (103, 11)']);
    expect(await db.current.admin`SELECT assignee_keys AS k FROM smartoffice.contacts WHERE id = 103`.then((r) => r[0]!.k)).toEqual(['5:11']);
    // The assignment first: the move waits, then rewrites the key it added.
    await race([18, 'INSERT INTO smartoffice.contact_assignments VALUES (103, 12)'], move(3));
    expect((await db.current.admin`SELECT assignee_keys AS k FROM smartoffice.contacts WHERE id = 103`)[0]!.k.sort()).toEqual(['3:11', '3:12']);
    expect(wrong(await lists())).toEqual([]);
    // John and Tom see 103 as assigned to them.
    for (const user of [11, 12]) expect(await as(user, (tx) => ids(tx, 'SELECT id FROM smartoffice.contacts WHERE id = 103'))).toEqual([103]);
    await admin.unsafe('DELETE FROM smartoffice.contact_assignments WHERE contact_id = 103');
    expect(wrong(await lists())).toEqual([]);
  });

  it('the fill lists every row even when the migration role is subject to row-level security', async () => {
    const fill = upDoBlocks(migrationFile).find((d) => d.includes('"assignee_keys"'))!;
    expect(fill).toContain('SET LOCAL ROLE "rowguard_definer"');
    const stale = async (tx: Tx) => wrong(await lists(tx)).map((r) => r.id);
    expect(await staleThenFilled(db.current.admin, fill, stale)).toEqual({ before: [100, 103, 108], after: [], roleAfter: expect.stringMatching(/^derived_migrator_/) });
  });

  it('a key names one pair whatever the scope holds: a colon or percent sign in a text scope is encoded', async () => {
    const pairs = [
      ['a:b', 'c'],
      ['a', 'b:c'],
      ['a%3Ab', 'c'],
      ['a%', '3Ab:c'],
      ['', ':'],
      [':', ''],
      ['3', '11'],
      ['31', '1'],
    ];
    const [row] = await db.current.admin.unsafe(
      `SELECT ARRAY[${pairs.map(([s, v]) => listKey(`${JSON.stringify(s).replaceAll('"', "'")}::text`, `${JSON.stringify(v).replaceAll('"', "'")}::text`)).join(', ')}] AS keys`,
    );
    const keys = row!.keys as string[];
    expect(new Set(keys).size).toBe(pairs.length);
    expect(keys.at(-2)).toBe('3:11');
  });
});

describe("rule 2 read through the key list shows each user what the set of contact ids it replaced showed", () => {
  // The same data in a database migrated back to before the key list (the migration's own down):
  // after every change, every user of the sample sees and may change the same contacts in both.
  let old: TestDatabase;
  beforeAll(async () => {
    old = await databaseBefore(migrationFile);
  });
  afterAll(async () => {
    if (old) await dropTestDatabase(old);
  });

  const users = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  // Each in a transaction of its own, rolled back: reads, a first page, an update, a delete, and
  // moves of every contact the user may change to Branch A and to the field office (refused by
  // the guard or by WITH CHECK for most users: the error's state is what is compared then).
  const outcome = (database: TestDatabase, user: number, statement: string) =>
    database.as(S, user, (tx) => ids(tx, statement)).catch((e: { code?: string }) => `error ${e.code}`);
  const seen = async (database: TestDatabase, user: number) => [
    await outcome(database, user, 'SELECT id FROM smartoffice.contacts'),
    await outcome(database, user, 'SELECT id FROM smartoffice.contacts WHERE office_id = 3 ORDER BY id LIMIT 2'),
    await outcome(database, user, "UPDATE smartoffice.contacts SET phone = phone WHERE name <> '' RETURNING id"),
    await outcome(database, user, 'DELETE FROM smartoffice.contacts WHERE id NOT IN (SELECT contact_id FROM smartoffice.shared_contacts) AND id NOT IN (SELECT contact_id FROM smartoffice.contact_assignments) RETURNING id'),
    await outcome(database, user, 'UPDATE smartoffice.contacts SET office_id = 3 WHERE office_id <> 3 RETURNING id'),
    await outcome(database, user, 'UPDATE smartoffice.contacts SET office_id = 5 WHERE office_id = 3 RETURNING id'),
  ];
  const steps: [string, string][] = [
    ['the sample', 'SELECT 1'],
    ['103 assigned to Tom', 'INSERT INTO smartoffice.contact_assignments VALUES (103, 12)'],
    ['100 unassigned', 'DELETE FROM smartoffice.contact_assignments WHERE contact_id = 100'],
    ['John assigned a field-office contact', 'INSERT INTO smartoffice.contact_assignments VALUES (108, 11)'],
    ['a contact assigned to John and Tom moved to the field office', 'UPDATE smartoffice.contacts SET office_id = 5 WHERE id = 102'],
    ['John moved to the field office', 'UPDATE smartoffice.users SET office_id = 5 WHERE id = 11'],
    ['Ann no longer proxy for Tom', 'DELETE FROM smartoffice.proxies WHERE proxy_id = 13 AND agent_id = 12'],
    ['an assigned contact made private', 'UPDATE smartoffice.contacts SET is_private = true, private_owner_id = 12 WHERE id = 101'],
    ['Branch A opened (security off)', 'UPDATE smartoffice.offices SET office_security = false WHERE id = 3'],
    ['Branch A closed again, and a new contact assigned to Tom', "UPDATE smartoffice.offices SET office_security = true WHERE id = 3; INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (120, 3, 'new'); INSERT INTO smartoffice.contact_assignments VALUES (120, 12)"],
    ['every assignment truncated', 'TRUNCATE smartoffice.contact_assignments'],
  ];

  it('the old database really is the old model', async () => {
    expect(await functionCounts([db.current, old], 'my_office_contacts_assigned_to_me_or_my_agents')).toEqual([0, 1]);
  });

  it('after each change, for every user: reads, a first page, an update, a delete and moves to other offices', async () => {
    // This block owns the data from here on: start both from the sample.
    await sampleAgain([db.current, old]);
    let shown = 0;
    for (const [what, change] of steps) {
      await db.current.admin.unsafe(change);
      await old.admin.unsafe(change);
      expect(wrong(await lists()), what).toEqual([]);
      for (const user of users) {
        const now = await seen(db.current, user);
        expect(now, `${what}: user ${user}`).toEqual(await seen(old, user));
        shown += (now[0] as number[]).length;
      }
    }
    expect(shown).toBeGreaterThan(100);
  });

  it('migration 0184 itself, applied to the old database with its data, fills the lists and changes no user\'s rows', async () => {
    // The steps above ended with every assignment truncated: assign some again, before the migration.
    await old.admin.unsafe('INSERT INTO smartoffice.contact_assignments VALUES (100, 11), (102, 11), (102, 12), (103, 13), (108, 19)');
    const before = await Promise.all(users.map((user) => seen(old, user)));
    expect(await migrate(old.url, { dir: 'migrations' })).toContain(migrationFile.replace(/\.sql$/, ''));
    expect(wrong(await lists(old.admin))).toEqual([]);
    expect((await lists(old.admin)).some((r) => r.keys.length > 0)).toBe(true);
    expect(await Promise.all(users.map((user) => seen(old, user)))).toEqual(before);
  });
});

describe('a key list scoped by text, whose values hold colons and percent signs', () => {
  // A scratch model: stores in regions named by text, staffed by users named by text. Keys made
  // as `<region>:<user>` without encoding would take region "a" with user "b:c" for region "a:b"
  // with user "c".
  const model = `import { and, array, defineModel, scalarOf, t } from ${JSON.stringify(DSL)};

export default defineModel('shops', (m) => {
  const users = m.table('users', { id: t.text().primaryKey(), region: t.text().notNull() });
  const stores = m.table('stores', { id: t.bigint().primaryKey(), region: t.text().notNull(), open: t.boolean().notNull().default(true) });
  const staff = m.table('store_staff', { store_id: t.bigint().notNull().references(stores), user_id: t.text().notNull().references(users) }, { primaryKey: ['store_id', 'user_id'] });
  m.identity(users);
  const staffed = m.keyList(stores, 'staff_keys', { from: staff, key: 'store_id', value: 'user_id', scope: 'region' });
  const myRegion = m.fact('my_region', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.region }))));
  const myKeys = m.fact('my_staff_keys', staffed.keysOf(myRegion, array([m.me])));
  m.policy(users, 'users_select', { for: 'select', using: (u) => u.id.eq(m.me) });
  m.policy(stores, 'stores_select', { for: 'select', using: (s) => and(s.open.eq(true), staffed.of(s).in(myKeys)) });
  m.policy(staff, 'store_staff_select', { for: 'select', using: (x) => x.user_id.eq(m.me) });
});
`;
  const project = new TempProject();
  let blank: Awaited<ReturnType<typeof blankDatabase>>;
  const storesOf = async (user: string) =>
    blank.admin.begin(async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx.unsafe('SELECT shops.set_session($1)', [user]);
      return (await tx.unsafe('SELECT id::int AS id FROM shops.stores ORDER BY id')).map((r) => r.id as number);
    });
  const keys = async () => (await blank.admin.unsafe('SELECT id::int AS id, staff_keys AS k FROM shops.stores ORDER BY id')).map((r) => [r.id, [...(r.k as string[])].sort()]);

  beforeAll(async () => {
    blank = await blankDatabase();
    project.writePolicy('shops', model);
    const result = await project.cli('generate');
    expect(result.stderr).toBe('');
    await migrate(blank.url, { dir: `${project.root}/migrations` });
    await blank.admin.unsafe(`
      INSERT INTO shops.users VALUES ('c', 'a:b'), ('b:c', 'a'), ('%', '%3A');
      INSERT INTO shops.stores (id, region) VALUES (1, 'a:b'), (2, '%3A'), (3, ':');
      INSERT INTO shops.store_staff VALUES (1, 'c'), (1, 'b:c'), (2, '%'), (3, 'c');`);
  });
  afterAll(async () => {
    await blank?.drop();
    project.remove();
  });

  it('keys each pair exactly, and rewrites them when the region changes, to regions of other lengths too', async () => {
    expect(await keys()).toEqual([
      [1, ['a%3Ab:b:c', 'a%3Ab:c']],
      [2, ['%253A:%']],
      [3, ['%3A:c']],
    ]);
    expect(await storesOf('c')).toEqual([1]);
    expect(await storesOf('b:c')).toEqual([]);
    expect(await storesOf('%')).toEqual([2]);
    await blank.admin.unsafe("UPDATE shops.stores SET region = 'a' WHERE id = 1");
    expect((await keys())[0]).toEqual([1, ['a:b:c', 'a:c']]);
    expect(await storesOf('c')).toEqual([]);
    expect(await storesOf('b:c')).toEqual([1]);
    await blank.admin.unsafe("UPDATE shops.stores SET region = '%:%' WHERE id = 1; UPDATE shops.stores SET region = 'a:b' WHERE id = 3");
    expect(await keys()).toEqual([
      [1, ['%25%3A%25:b:c', '%25%3A%25:c']],
      [2, ['%253A:%']],
      [3, ['a%3Ab:c']],
    ]);
    expect(await storesOf('c')).toEqual([3]);
    // Every list is what the staff rows give, made again from scratch.
    const made = await blank.admin.unsafe(
      "SELECT s.id::int AS id, ARRAY(SELECT replace(replace(s.region, '%', '%25'), ':', '%3A') || ':' || x.user_id FROM shops.store_staff x WHERE x.store_id = s.id ORDER BY 1) AS k FROM shops.stores s ORDER BY s.id",
    );
    expect(await keys()).toEqual(made.map((r) => [r.id, r.k]));
  });
});

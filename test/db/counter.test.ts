// Counter columns against PostgreSQL: smartoffice.contacts.assignment_count (m.counter) follows
// every change to contact_assignments, cannot be set or faked by app_user, survives TRUNCATE and
// concurrent writers, and "assigned to nobody" shows every user exactly what the anti-join fact it
// replaced did. A scratch model adds a counter to a table that already has rows, migrated by a
// role that is not a superuser, and moves counted rows as app_user.
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { smartofficeSample } from '../../generator/cli/samples/smartoffice.ts';
import { migrate } from '../../generator/db/migrate.ts';
import { dropTestDatabase, ids, raceAsAppUsers, rolledBack, sqlState, urlAs, useTestDatabase, type TestDatabase, type Tx } from '../support/db.ts';
import { blankDatabase, DSL, idsAs, TempProject } from '../support/project.ts';
import { databaseBefore, expectMaintained, functionCounts, migrationAdding, sampleAgain, staleThenFilled, upDoBlocks } from '../support/derived.ts';
import { random } from '../support/random.ts';

const S = 'smartoffice';
const db = useTestDatabase(async (admin) => {
  await admin.unsafe(smartofficeSample.sql);
});
const as = <T>(user: number, fn: (tx: Tx) => Promise<T>) => db.current.as(S, user, fn);

/** Each contact's counter next to the number of its assignments (read by the superuser unless a transaction is given). */
async function counters(tx: Sql | Tx = db.current.admin): Promise<{ id: number; counter: number; actual: number }[]> {
  const rows = await tx.unsafe(`
    SELECT c.id::int AS id, c.assignment_count AS counter,
           (SELECT count(*)::int FROM smartoffice.contact_assignments a WHERE a.contact_id = c.id) AS actual
      FROM smartoffice.contacts c ORDER BY c.id`);
  return rows as unknown as { id: number; counter: number; actual: number }[];
}
const wrong = (rows: { id: number; counter: number; actual: number }[]) => rows.filter((r) => r.counter !== r.actual);
const counterOf = async (tx: Tx, id: number) => (await tx.unsafe('SELECT assignment_count AS n FROM smartoffice.contacts WHERE id = $1', [id]))[0]?.n as number | undefined;

describe('smartoffice.contacts.assignment_count', () => {
  it('counts the assignments of every contact of the sample', async () => {
    const rows = await counters();
    expect(wrong(rows)).toEqual([]);
    expect(rows.find((r) => r.id === 102)).toEqual({ id: 102, counter: 2, actual: 2 });
    expect(rows.find((r) => r.id === 103)).toEqual({ id: 103, counter: 0, actual: 0 });
  });

  it('follows inserts and deletes made as app_user, in the next statement of the same transaction', async () => {
    // Carla (enterprise view over HQ and everything below) assigns and unassigns Branch A contacts.
    await as(10, async (tx) => {
      expect(await counterOf(tx, 103)).toBe(0);
      await tx`INSERT INTO smartoffice.contact_assignments (contact_id, user_id) VALUES (103, 11), (103, 12), (100, 12)`;
      expect([await counterOf(tx, 103), await counterOf(tx, 100)]).toEqual([2, 2]);
      expect((await tx`DELETE FROM smartoffice.contact_assignments WHERE contact_id IN (100, 102)`).count).toBe(4);
      expect([await counterOf(tx, 100), await counterOf(tx, 102), await counterOf(tx, 103)]).toEqual([0, 0, 2]);
      expect(wrong(await counters(tx))).toEqual([]);
    });
  });

  it('follows the key when an assignment moves to another contact (UPDATE OF contact_id)', async () => {
    // app_user holds no UPDATE on contact_assignments in SmartOffice; the owner moves one here
    // (the scratch model below moves rows as app_user).
    await rolledBack(db.current.admin, async (tx) => {
      await tx`UPDATE smartoffice.contact_assignments SET contact_id = 103 WHERE contact_id = 100 AND user_id = 11`;
      await tx`UPDATE smartoffice.contact_assignments SET user_id = 13 WHERE contact_id = 101`; // not the key: no change
      const rows = await counters(tx);
      expect(wrong(rows)).toEqual([]);
      expect(rows.filter((r) => [100, 101, 103].includes(r.id)).map((r) => r.counter)).toEqual([0, 1, 1]);
    });
    expect(wrong(await counters())).toEqual([]);
  });

  it('cannot be set by app_user: UPDATE and upsert fail with 42501, INSERT starts at 0', async () => {
    await expectMaintained(
      as,
      'assignment_count',
      [
        'UPDATE smartoffice.contacts SET assignment_count = 1 WHERE id = 103',
        "UPDATE smartoffice.contacts SET name = 'renamed', assignment_count = assignment_count + 5 WHERE id = 103",
        "INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (103, 3, 'again') ON CONFLICT (id) DO UPDATE SET assignment_count = 7",
      ],
      'UPDATE smartoffice.contacts SET assignment_count = 1 WHERE id = 103',
    );
    // Writing the value it already has is no change; other columns stay writable.
    expect(await as(14, async (tx) => (await tx.unsafe("UPDATE smartoffice.contacts SET name = 'renamed', assignment_count = assignment_count WHERE id = 103")).count)).toBe(1);

    await as(14, async (tx) => {
      const [row] = await tx.unsafe("INSERT INTO smartoffice.contacts (id, office_id, name, assignment_count) VALUES (900, 3, 'new', 5) RETURNING assignment_count AS n");
      expect(row!.n).toBe(0);
      // Counted as unassigned, so the whole office sees it.
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts WHERE id = 900')).toEqual([900]);
    });
  });

  it('cannot be faked from a trigger app_user fires on its own temporary table', async () => {
    // pg_trigger_depth() is 2 inside such a trigger, just as in the maintenance trigger, which is
    // why the guard admits only changes made as rowguard_definer.
    const state = await as(14, async (tx) => {
      await tx.unsafe('CREATE TEMP TABLE probe (x int)');
      await tx.unsafe(`CREATE FUNCTION pg_temp.fake() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE smartoffice.contacts SET assignment_count = 5 WHERE id = 103; RETURN NEW; END $$`);
      await tx.unsafe('CREATE TRIGGER fake AFTER INSERT ON probe FOR EACH ROW EXECUTE FUNCTION pg_temp.fake()');
      return sqlState(tx.unsafe('INSERT INTO probe VALUES (1)'));
    });
    expect(state).toBe('42501');
  });

  it('is set back to 0 by TRUNCATE, which fires no row triggers', async () => {
    await rolledBack(db.current.admin, async (tx) => {
      await tx`TRUNCATE smartoffice.contact_assignments`;
      const rows = await counters(tx);
      expect(rows.map((r) => r.counter)).toEqual(rows.map(() => 0));
      // With nobody assigned, John sees every non-private contact of his office, and his own private one.
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT smartoffice.set_session(11)`;
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts')).toEqual([100, 101, 102, 103, 104]);
    });
    expect(wrong(await counters())).toEqual([]);
  });

  it('stays exact when two connections insert and delete assignments of the same contacts at once', async () => {
    const contacts = [100, 101, 102, 103];
    // Carla and Rita both see these contacts through enterprise view; each assigns its own users,
    // so their rows never collide, but they change the same four counters all the time.
    const worker = async (actor: number, users: number[], seed: number) => {
      const mine = new Set<string>();
      const next = random(seed);
      for (let i = 0; i < 150; i++) {
        // In contact order: transactions that lock the same rows in opposite orders can deadlock
        // (PostgreSQL aborts one of them), with counters as with any other row update.
        const pairs = Array.from({ length: 1 + next(3) }, () => [contacts[next(contacts.length)]!, users[next(users.length)]!] as const).sort((x, y) => x[0] - y[0]);
        await db.current.asCommitted(S, actor, async (tx) => {
          for (const [contact, user] of pairs) {
            const key = `${contact}:${user}`;
            if (mine.has(key)) {
              await tx`DELETE FROM smartoffice.contact_assignments WHERE contact_id = ${contact} AND user_id = ${user}`;
              mine.delete(key);
            } else {
              await tx`INSERT INTO smartoffice.contact_assignments (contact_id, user_id) VALUES (${contact}, ${user})`;
              mine.add(key);
            }
          }
          // Hold the row locks a moment now and then, so the connections often wait for each other.
          if (next(2) === 0) await tx`SELECT pg_sleep(0.002)`;
        });
      }
      return mine;
    };
    const before = await counters();
    const [a, b] = await Promise.all([worker(10, [13, 14, 15], 1), worker(18, [16, 17, 19, 21], 2)]);
    const after = await counters();
    expect(wrong(after)).toEqual([]);
    // The workers' bookkeeping agrees with the table.
    const added = (id: number) => [...a, ...b].filter((k) => k.startsWith(`${id}:`)).length;
    for (const id of contacts) expect(after.find((r) => r.id === id)!.counter).toBe(before.find((r) => r.id === id)!.counter + added(id));
    await db.current.admin.unsafe('DELETE FROM smartoffice.contact_assignments WHERE user_id IN (13, 14, 15, 16, 17, 19, 21) AND contact_id IN (100, 101, 102, 103)');
    expect(wrong(await counters())).toEqual([]);
  });

  it('is right where a recount would be wrong: concurrent deletes of the last two rows, concurrent inserts', async () => {
    // Two connections as app_user. The second one's trigger waits for the row lock the first one
    // holds on the contact; a recount would then run against a snapshot taken before the first
    // commit and write a stale number. n = n ± 1 is applied to the row as committed.
    const admin = db.current.admin;
    const race = (first: string, second: string) => raceAsAppUsers(admin, S, [10, first], [18, second]);
    // 102 is assigned to John and Tom: both assignments go at once.
    await race('DELETE FROM smartoffice.contact_assignments WHERE contact_id = 102 AND user_id = 11', 'DELETE FROM smartoffice.contact_assignments WHERE contact_id = 102 AND user_id = 12');
    // 103 is assigned to nobody: two users at once.
    await race('INSERT INTO smartoffice.contact_assignments VALUES (103, 11)', 'INSERT INTO smartoffice.contact_assignments VALUES (103, 12)');
    const rows = await counters();
    expect(wrong(rows)).toEqual([]);
    expect(rows.filter((r) => r.id === 102 || r.id === 103)).toEqual([
      { id: 102, counter: 0, actual: 0 },
      { id: 103, counter: 2, actual: 2 },
    ]);
    // Ada, who sees only unassigned contacts of Branch A, now sees 102 and no longer 103.
    expect(await as(14, (tx) => ids(tx, 'SELECT id FROM smartoffice.contacts'))).toEqual([102]);
    await admin.unsafe('DELETE FROM smartoffice.contact_assignments WHERE contact_id = 103; INSERT INTO smartoffice.contact_assignments VALUES (102, 11), (102, 12)');
    expect(wrong(await counters())).toEqual([]);
  });

  it('the backfill counts every row even when the migration role is subject to row-level security', async () => {
    // The row trigger's statement recounts as rowguard_definer. Run that recount as a role that
    // may act as rowguard_definer but bypasses nothing itself, over counters made stale on purpose.
    const backfill = upDoBlocks(migrationAdding('assignment_count'))[0]!;
    expect(backfill).toContain('SET LOCAL ROLE "rowguard_definer"');
    const stale = async (tx: Tx) => wrong(await counters(tx)).map((r) => r.id);
    // The role is restored after the recount.
    expect(await staleThenFilled(db.current.admin, backfill, stale)).toEqual({ before: [100, 103, 108], after: [], roleAfter: expect.stringMatching(/^derived_migrator_/) });
  });
});

describe('"assigned to nobody" shows each user what the replaced anti-join fact showed', () => {
  // The same data in a database migrated back to before the counter (the migration's own down):
  // after every change, every user of the sample sees the same contacts in both.
  let old: TestDatabase;
  beforeAll(async () => {
    old = await databaseBefore(migrationAdding('assignment_count'));
  });
  afterAll(async () => {
    if (old) await dropTestDatabase(old);
  });

  const users = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  const visible = (database: TestDatabase, user: number, table: string) => database.as(S, user, (tx) => ids(tx, `SELECT ${table === 'contacts' ? 'id' : 'contact_id AS id'} FROM smartoffice.${table}`));
  const steps: [string, string][] = [
    ['the sample', 'SELECT 1'],
    ['103 assigned to Tom', 'INSERT INTO smartoffice.contact_assignments VALUES (103, 12)'],
    ['100 unassigned', 'DELETE FROM smartoffice.contact_assignments WHERE contact_id = 100'],
    ['every Branch A assignment moved to 108', 'DELETE FROM smartoffice.contact_assignments WHERE contact_id IN (101, 102); INSERT INTO smartoffice.contact_assignments VALUES (108, 11)'],
    ['an unassigned contact made private', 'UPDATE smartoffice.contacts SET is_private = true, private_owner_id = 12 WHERE id = 101'],
    ['an unassigned contact moved to the field office', 'UPDATE smartoffice.contacts SET office_id = 5 WHERE id = 100'],
    ['a new, unassigned contact in Branch B', "INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (120, 4, 'new')"],
    ['every assignment truncated', 'TRUNCATE smartoffice.contact_assignments'],
  ];

  it('the old database really is the old model', async () => {
    expect(await functionCounts([db.current, old], 'unassigned_contacts_in_my_office')).toEqual([0, 1]);
  });

  it('after each change, for every user, contacts and assignments', async () => {
    // This block owns the data from here on: start both from the sample.
    await sampleAgain([db.current, old]);
    for (const [what, change] of steps) {
      await db.current.admin.unsafe(change);
      await old.admin.unsafe(change);
      expect(wrong(await counters()), what).toEqual([]);
      for (const user of users) {
        for (const table of ['contacts', 'contact_assignments']) {
          expect(await visible(db.current, user, table), `${what}: user ${user}, ${table}`).toEqual(await visible(old, user, table));
        }
      }
    }
  });
});

describe('a counter added to a table that has rows, migrated by a role that is not a superuser', () => {
  const model = (withCounter: boolean) => `import { defineModel, or, t } from ${JSON.stringify(DSL)};

export default defineModel('blog', (m) => {
  const users = m.table('users', { id: t.bigint().primaryKey() });
  const posts = m.table('posts', { id: t.bigint().primaryKey(), author_id: t.bigint().notNull().references(users), title: t.text() });
  const comments = m.table('comments', { id: t.bigint().primaryKey(), post_id: t.bigint().references(posts), author_id: t.bigint().notNull().references(users) });
  m.identity(users);
  m.policy(users, 'users_select', { for: 'select', using: (u) => u.id.eq(m.me) });
  // Authors see and edit only their own posts; commenters only their own comments.
  m.policy(posts, 'posts_select', { for: 'select', using: (p) => p.author_id.eq(m.me) });
  m.policy(posts, 'posts_update', { for: 'update', using: (p) => p.author_id.eq(m.me), check: (p) => p.author_id.eq(m.me) });
  m.policy(comments, 'comments_all', { for: 'all', using: (c) => c.author_id.eq(m.me), check: (c) => c.author_id.eq(m.me) });
  ${withCounter ? "m.counter(posts, 'comment_count', { from: comments, key: 'post_id', description: 'Comments on the post.' });" : ''}
});
`;
  const project = new TempProject();
  const role = `blog_owner_${process.pid}`;
  let blank: Awaited<ReturnType<typeof blankDatabase>>;
  let ownerUrl: string;
  const up = () => migrate(ownerUrl, { dir: `${project.root}/migrations` });
  const down = () => migrate(ownerUrl, { dir: `${project.root}/migrations`, direction: 'down', count: 1 });
  const postCounters = async () =>
    (await blank.admin.unsafe(`SELECT p.id::int AS id, p.comment_count AS counter, (SELECT count(*)::int FROM blog.comments c WHERE c.post_id = p.id) AS actual FROM blog.posts p ORDER BY p.id`)) as unknown as {
      id: number;
      counter: number;
      actual: number;
    }[];

  beforeAll(async () => {
    blank = await blankDatabase();
    const name = new URL(blank.url).pathname.slice(1);
    // Owns the database and everything the migrations create; may act as rowguard_definer (as
    // ALTER … OWNER TO rowguard_definer requires); skips no row-level security.
    await blank.admin.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'x' NOSUPERUSER NOBYPASSRLS; GRANT rowguard_definer TO ${role}; ALTER DATABASE ${name} OWNER TO ${role}`);
    ownerUrl = urlAs(blank.url, role, 'x');
    project.writePolicy('blog', model(false));
    expect((await project.cli('generate')).code).toBe(0);
    // The core migration still needs a superuser (rowguard_definer has no CREATE on schema
    // rowguard, which ALTER FUNCTION … OWNER TO requires); the model's migrations do not.
    expect(await migrate(blank.url, { dir: `${project.root}/migrations`, count: 1 })).toEqual(['0001_rowguard_core']);
    await blank.admin.unsafe(`ALTER TABLE public.rowguard_migrations OWNER TO ${role}`);
    expect(await up()).toEqual(['0002_blog']);
    await blank.admin.unsafe(`
      INSERT INTO blog.users VALUES (1), (2), (3);
      INSERT INTO blog.posts (id, author_id, title) VALUES (10, 1, 'a'), (11, 1, 'b'), (12, 3, 'c');
      INSERT INTO blog.comments (id, post_id, author_id) VALUES (100, 10, 2), (101, 10, 3), (102, 11, 2), (103, NULL, 2);`);
  });
  afterAll(async () => {
    await blank?.drop();
    const m = postgres(inject('serverUrl'), { max: 1, onnotice: () => {} });
    await m.unsafe(`DROP ROLE IF EXISTS ${role}`).finally(() => m.end());
    project.remove();
  });

  it('the new migration adds the column and counts the existing rows', async () => {
    project.writePolicy('blog', model(true));
    const result = await project.cli('generate');
    expect(result.stderr).toBe('');
    const [file] = project.migrations().filter((f) => f.startsWith('0003_'));
    expect(file).toBeDefined();
    expect(await up()).toEqual([file!.replace(/\.sql$/, '')]);
    expect(await postCounters()).toEqual([
      { id: 10, counter: 2, actual: 2 },
      { id: 11, counter: 1, actual: 1 },
      { id: 12, counter: 0, actual: 0 },
    ]);
  });

  it('moving, adding and removing comments as app_user keeps counts of posts the commenter cannot see', async () => {
    // User 2 sees no post at all; the counters of user 1's posts follow anyway.
    expect(await idsAs(blank.admin, 'blog', 2, 'SELECT id FROM blog.posts')).toEqual([]);
    expect(await idsAs(blank.admin, 'blog', 2, 'UPDATE blog.comments SET post_id = 11 WHERE id = 100 RETURNING id')).toEqual([100]);
    await blank.admin.begin(async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT blog.set_session(2)`;
      await tx`UPDATE blog.comments SET post_id = 11 WHERE id = 100`;
      await tx`UPDATE blog.comments SET post_id = 12 WHERE id = 103`;
      await tx`UPDATE blog.comments SET post_id = NULL WHERE id = 102`;
      await tx`INSERT INTO blog.comments (id, post_id, author_id) VALUES (104, 12, 2), (105, 12, 2)`;
      await tx`DELETE FROM blog.comments WHERE id = 105`;
    });
    expect(await postCounters()).toEqual([
      { id: 10, counter: 1, actual: 1 },
      { id: 11, counter: 1, actual: 1 },
      { id: 12, counter: 2, actual: 2 },
    ]);
    // The author may edit the post, not its counter.
    const refused = await blank.admin
      .begin(async (tx) => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx`SELECT blog.set_session(1)`;
        await tx`UPDATE blog.posts SET comment_count = 0 WHERE id = 10`;
      })
      .catch((e: { code?: string }) => e.code);
    expect(refused).toBe('42501');
  });

  it('down drops the column, its triggers and functions; up counts again', async () => {
    await down();
    const leftovers = async () =>
      (
        await blank.admin`SELECT (SELECT count(*)::int FROM information_schema.columns WHERE table_schema = 'blog' AND column_name = 'comment_count')
                               + (SELECT count(*)::int FROM pg_trigger WHERE tgname LIKE '%comment_count%')
                               + (SELECT count(*)::int FROM pg_proc WHERE proname LIKE '%comment_count%') AS n`
      )[0]!.n;
    expect(await leftovers()).toBe(0);
    await blank.admin`INSERT INTO blog.comments (id, post_id, author_id) VALUES (106, 10, 3)`;
    await up();
    expect(await leftovers()).toBe(6);
    expect((await postCounters()).map((r) => r.counter)).toEqual([2, 1, 2]);
  });
});

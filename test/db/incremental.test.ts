// Incremental migrations, end to end: a throwaway project whose policy file changes step by step.
// Each step runs `rowguard generate` (a new migration, committed ones untouched), applies it with
// node-pg-migrate, checks behaviour as app_user, reverts it, checks the old behaviour is back,
// and applies it again for the next step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../generator/db/migrate.ts';
import { lintDatabase } from '../../generator/lint/index.ts';
import { blankDatabase, DSL, idsAs, TempProject } from '../support/project.ts';

interface Variant {
  /** notes_select's name and predicate. */
  readonly notesPolicy?: { name: string; predicate: string };
  /** users gets a `disabled` column and my_team_id ignores disabled users. */
  readonly disabledUsers?: boolean;
  /** Adds the tags table; drops the i_am_lead fact (notes_delete no longer needs it). */
  readonly tags?: boolean;
  /** A NOT NULL column without default: fails on a table that has rows. */
  readonly requiredEmail?: boolean;
  /** Declare notes_select after notes_delete (order alone must not produce a migration). */
  readonly reorder?: boolean;
  /** Changes the primary key of teams: refused at generate time. */
  readonly compositeTeamKey?: boolean;
  /** my_team_id's description. */
  readonly teamDescription?: string;
}

function model(v: Variant = {}): string {
  const notes = v.notesPolicy ?? { name: 'notes_select', predicate: 'n.team_id.eq(myTeam)' };
  const select = `m.policy(notes, '${notes.name}', { for: 'select', using: (n) => ${notes.predicate} });`;
  const del = v.tags
    ? `m.policy(notes, 'notes_delete', { for: 'delete', using: (n) => n.author_id.eq(me) });`
    : `m.policy(notes, 'notes_delete', { for: 'delete', using: (n) => and(n.team_id.eq(myTeam), iAmLead) });`;
  return `import { and, defineModel, scalarOf, t } from ${JSON.stringify(DSL)};

export default defineModel('inc', (m) => {
  const teams = m.table('teams', { id: t.bigint().primaryKey(), name: t.text()${v.compositeTeamKey ? ', region: t.text().notNull()' : ''} }${v.compositeTeamKey ? ", { primaryKey: ['id', 'region'] }" : ''});
  const users = m.table('users', {
    id: t.bigint().primaryKey(),
    team_id: t.bigint().references(teams),
    is_lead: t.boolean().notNull().default(false),${v.disabledUsers ? '\n    disabled: t.boolean().notNull().default(false),' : ''}${v.requiredEmail ? '\n    email: t.text().notNull(),' : ''}
  });
  const notes = m.table('notes', {
    id: t.bigint().primaryKey(),
    team_id: t.bigint().notNull().references(teams),
    author_id: t.bigint().references(users),
    secret: t.boolean().notNull().default(false),
  });
  m.identity(users);
  const me = m.me;
  const myTeam = m.fact('my_team_id', scalarOf(m.from(users, (u) => ({ where: ${v.disabledUsers ? 'and(u.id.eq(me), u.disabled.eq(false))' : 'u.id.eq(me)'}, select: u.team_id }))), { description: ${JSON.stringify(v.teamDescription ?? 'The team I am in.')} });
  ${v.tags ? '' : "const iAmLead = m.fact('i_am_lead', scalarOf(m.from(users, (u) => ({ where: u.id.eq(me), select: u.is_lead.isTrue() }))), { type: 'boolean' });"}
  m.policy(users, 'users_select', { for: 'select', using: (u) => u.id.eq(me) });
  m.maskedView('notes_overview', { table: notes, keep: ['id', 'team_id'], showMaskedWhen: me.isNotNull() });
  m.policy(teams, 'teams_select', { for: 'select', using: (tm) => tm.id.eq(myTeam) });
  ${v.reorder ? del : select}
  ${v.reorder ? select : del}
  ${
    v.tags
      ? `const tags = m.table('tags', { id: t.bigint().primaryKey(), team_id: t.bigint().notNull().references(teams), label: t.text() });
  m.policy(tags, 'tags_select', { for: 'select', using: (g) => g.team_id.eq(myTeam) });`
      : ''
  }
});
`;
}

const project = new TempProject();
let db: Awaited<ReturnType<typeof blankDatabase>>;
const dir = () => `${project.root}/migrations`;
const up = () => migrate(db.url, { dir: dir() });
const down = () => migrate(db.url, { dir: dir(), direction: 'down', count: 1 });
const notesOf = (user: number) => idsAs(db.admin, 'inc', user, 'SELECT id FROM inc.notes');

async function generateStep(variant: Variant): Promise<string> {
  const before = project.migrations();
  const committed = Object.fromEntries(before.map((f) => [f, project.read(`migrations/${f}`)]));
  project.writePolicy('inc', model(variant));
  const check = await project.cli('generate', '--check');
  expect(check.code).toBe(1);
  expect(check.stderr).toContain('pending:');
  const result = await project.cli('generate');
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const added = project.migrations().filter((f) => !before.includes(f));
  expect(added).toHaveLength(1);
  // Committed migrations are never rewritten.
  for (const [f, content] of Object.entries(committed)) expect(project.read(`migrations/${f}`)).toBe(content);
  // A second run writes nothing; --check is clean.
  expect((await project.cli('generate')).stdout).toContain(' 0 file(s) written');
  expect((await project.cli('generate', '--check')).code).toBe(0);
  return added[0]!;
}

beforeAll(async () => {
  db = await blankDatabase();
  project.writePolicy('inc', model());
  const first = await project.cli('generate');
  expect(first.stderr).toBe('');
  expect(project.migrations()).toEqual(['0001_rowguard_core.sql', '0002_inc.sql']);
  await up();
  await db.admin.unsafe(`
    INSERT INTO inc.teams VALUES (1, 'red'), (2, 'blue');
    INSERT INTO inc.users (id, team_id, is_lead) VALUES (10, 1, true), (11, 1, false), (20, 2, false);
    INSERT INTO inc.notes (id, team_id, author_id, secret) VALUES (100, 1, 10, false), (101, 1, 11, true), (200, 2, 20, false);
  `);
});

afterAll(async () => {
  await db?.drop();
  project.remove();
});

describe('incremental migrations', () => {
  it('the first generate writes the snapshots; the initial state behaves as written', async () => {
    expect(project.read('migrations/.rowguard/inc.json')).toContain('"policy inc.notes.notes_select"');
    expect(await notesOf(11)).toEqual([100, 101]);
    expect(await notesOf(20)).toEqual([200]);
  });

  it('a policy whose predicate changed under the same name is re-created; down restores it', async () => {
    const file = await generateStep({ notesPolicy: { name: 'notes_select', predicate: 'and(n.team_id.eq(myTeam), n.secret.eq(false))' } });
    // The masked view re-prints the select predicate, so it changes with it; the new arm
    // (team_id = my team AND NOT secret) gets a partial index on team_id WHERE secret = false.
    expect(file).toBe('0003_inc_change_policy_notes_notes_select_and_2_more.sql');
    const sql = project.read(`migrations/${file}`);
    expect(sql).toContain('DROP POLICY "notes_select" ON "inc"."notes";');
    expect(sql).not.toContain('DROP TABLE');
    expect(sql).toMatch(/CREATE INDEX "notes_team_id_arm_\w+_idx" ON "inc"."notes" \("team_id"\)\n  WHERE "secret" = false;/);
    expect(await up()).toEqual(['0003_inc_change_policy_notes_notes_select_and_2_more']);
    expect(await notesOf(11)).toEqual([100]);
    await down();
    expect(await notesOf(11)).toEqual([100, 101]);
    await up();
    expect(await notesOf(11)).toEqual([100]);
  });

  it('moving a declaration changes nothing; a renamed policy with the same predicate is dropped and created under its new name', async () => {
    project.writePolicy('inc', model({ notesPolicy: { name: 'notes_select', predicate: 'and(n.team_id.eq(myTeam), n.secret.eq(false))' }, reorder: true }));
    const before = project.migrations();
    const moved = await project.cli('generate');
    // The reviewable script and the snapshot follow the new order; no migration is needed.
    expect(moved.stdout).not.toContain('pending');
    expect(project.migrations()).toEqual(before);
    expect((await project.cli('generate', '--check')).code).toBe(0);

    const file = await generateStep({ notesPolicy: { name: 'notes_read', predicate: 'and(n.team_id.eq(myTeam), n.secret.eq(false))' }, reorder: true });
    expect(file).toMatch(/^0004_inc_drop_policy_notes_notes_select_and_1_more\.sql$/);
    await up();
    const names = async () => (await db.admin`SELECT policyname FROM pg_policies WHERE schemaname = 'inc' AND tablename = 'notes' ORDER BY 1`).map((r) => r.policyname);
    expect(await names()).toEqual(['notes_delete', 'notes_read']);
    expect(await notesOf(11)).toEqual([100]);
    await down();
    expect(await names()).toEqual(['notes_delete', 'notes_select']);
    expect(await notesOf(11)).toEqual([100]);
    await up();
  });

  it('a changed fact re-creates the policies that call it; a new column is added with ALTER TABLE and rows survive', async () => {
    const file = await generateStep({ notesPolicy: { name: 'notes_read', predicate: 'and(n.team_id.eq(myTeam), n.secret.eq(false))' }, disabledUsers: true });
    const sql = project.read(`migrations/${file}`);
    expect(sql).toContain('ALTER TABLE "inc"."users" ADD COLUMN "disabled" boolean NOT NULL DEFAULT false;');
    // The policies that use my_team_id are dropped before the function and created after it.
    const upPart = sql.slice(0, sql.indexOf('-- Down Migration'));
    expect(upPart.indexOf('DROP POLICY "teams_select"')).toBeLessThan(upPart.indexOf('DROP FUNCTION "inc"."my_team_id"()'));
    expect(upPart.indexOf('CREATE FUNCTION "inc"."my_team_id"()')).toBeLessThan(upPart.indexOf('CREATE POLICY "teams_select"'));
    await up();
    await db.admin`UPDATE inc.users SET disabled = true WHERE id = 11`;
    expect(await notesOf(11)).toEqual([]);
    expect(await notesOf(10)).toEqual([100]);
    await down();
    expect(await notesOf(11)).toEqual([100]);
    expect((await db.admin`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'inc' AND column_name = 'disabled'`)[0]!.n).toBe(0);
    expect((await db.admin`SELECT count(*)::int AS n FROM inc.users`)[0]!.n).toBe(3);
    await up();
  });

  it('adding a table and removing a fact: created and dropped, and back again on down', async () => {
    const file = await generateStep({ notesPolicy: { name: 'notes_read', predicate: 'and(n.team_id.eq(myTeam), n.secret.eq(false))' }, disabledUsers: true, tags: true });
    const sql = project.read(`migrations/${file}`);
    expect(sql).toContain('DROP FUNCTION "inc"."i_am_lead"();');
    expect(sql).toContain('CREATE TABLE "inc"."tags"');
    await db.admin`INSERT INTO inc.notes (id, team_id, author_id) VALUES (102, 1, 11)`;
    const deletes = (user: number) => idsAs(db.admin, 'inc', user, 'DELETE FROM inc.notes WHERE id = 102 RETURNING id');
    expect([await deletes(10), await deletes(11)]).toEqual([[102], []]);
    await up();
    await db.admin.unsafe(`INSERT INTO inc.tags VALUES (1, 1, 'red tag'), (2, 2, 'blue tag')`);
    expect(await idsAs(db.admin, 'inc', 10, 'SELECT id FROM inc.tags')).toEqual([1]);
    const fn = async () => (await db.admin`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'i_am_lead'`)[0]!.n;
    expect(await fn()).toBe(0);
    // notes_delete was "leads of the team" and is now "authors delete their own notes".
    expect([await deletes(10), await deletes(11)]).toEqual([[], [102]]);
    await db.admin`DELETE FROM inc.tags`;
    await down();
    expect(await fn()).toBe(1);
    expect([await deletes(10), await deletes(11)]).toEqual([[102], []]);
    expect((await db.admin`SELECT to_regclass('inc.tags') AS t`)[0]!.t).toBeNull();
    await up();
  });

  it("a fact whose description alone changed gets a COMMENT: nothing is dropped, and down sets the old text back", async () => {
    const file = await generateStep({ notesPolicy: { name: 'notes_read', predicate: 'and(n.team_id.eq(myTeam), n.secret.eq(false))' }, disabledUsers: true, tags: true, teamDescription: "The team I'm in, unless I am disabled." });
    const sql = project.read(`migrations/${file}`);
    expect(sql).not.toMatch(/DROP |CREATE /);
    expect(sql).toContain(`COMMENT ON FUNCTION "inc"."my_team_id"() IS 'The team I''m in, unless I am disabled.';`);
    const description = async () => (await db.admin`SELECT obj_description('inc.my_team_id()'::regprocedure, 'pg_proc') AS d`)[0]!.d;
    expect(await description()).toBe('The team I am in.');
    const seen = await notesOf(10);
    await up();
    expect(await description()).toBe("The team I'm in, unless I am disabled.");
    expect(await notesOf(10)).toEqual(seen);
    await down();
    expect(await description()).toBe('The team I am in.');
    await up();
  });

  it('applying all migrations again is a no-op', async () => {
    const count = async () => (await db.admin`SELECT count(*)::int AS n FROM rowguard_migrations`)[0]!.n;
    const before = await count();
    expect(await up()).toEqual([]);
    expect(await count()).toBe(before);
  });

  it('the migrated project lints clean (its masked view runs as the definer and filters by the caller)', async () => {
    expect(await lintDatabase(db.admin, { schemas: ['inc'] })).toEqual([]);
    expect(await idsAs(db.admin, 'inc', 10, 'SELECT id FROM inc.notes_overview')).toEqual([100, 101, 102, 200]);
  });

  it('a failing migration leaves the database unchanged (one transaction)', async () => {
    // email NOT NULL without a default cannot be added to a table that has rows.
    const file = await generateStep({ notesPolicy: { name: 'notes_read', predicate: 'and(n.team_id.eq(myTeam), n.secret.eq(false))' }, disabledUsers: true, tags: true, teamDescription: "The team I'm in, unless I am disabled.", requiredEmail: true });
    expect(project.read(`migrations/${file}`)).toContain('ADD COLUMN "email" text NOT NULL');
    const applied = async () => (await db.admin`SELECT name FROM rowguard_migrations ORDER BY id`).map((r) => r.name);
    const before = await applied();
    await expect(up()).rejects.toThrow();
    expect(await applied()).toEqual(before);
    expect((await db.admin`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'inc' AND column_name = 'email'`)[0]!.n).toBe(0);
  });

  it('a change rowguard cannot make in place is refused at generate time, naming what to write by hand', async () => {
    const before = project.migrations();
    project.writePolicy('inc', model({ notesPolicy: { name: 'notes_read', predicate: 'and(n.team_id.eq(myTeam), n.secret.eq(false))' }, disabledUsers: true, tags: true, teamDescription: "The team I'm in, unless I am disabled.", requiredEmail: true, compositeTeamKey: true }));
    const result = await project.cli('generate');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the primary key of "inc"."teams" changed');
    expect(result.stderr).toContain('fix:');
    expect(project.migrations()).toEqual(before);

    // The user writes the primary key change by hand; --accept-manual records the new state and
    // emits everything else.
    const accepted = await project.cli('generate', '--accept-manual');
    expect(accepted.code).toBe(0);
    const added = project.migrations().filter((f) => !before.includes(f));
    expect(added).toHaveLength(1);
    const sql = project.read(`migrations/${added[0]}`);
    expect(sql).toContain('written by hand, not here: table inc.teams');
    expect(sql).toContain('ALTER TABLE "inc"."teams" ADD COLUMN "region" text NOT NULL;');
    expect(sql).not.toContain('PRIMARY KEY');
    expect((await project.cli('generate', '--check')).code).toBe(0);
  });

  it('a model whose policy file is gone is refused, not dropped', async () => {
    const { renameSync } = await import('node:fs');
    renameSync(`${project.root}/policies/inc.ts`, `${project.root}/policies/_inc.ts`);
    project.writePolicy('other', model().replace("defineModel('inc'", "defineModel('other'"));
    const before = project.migrations();
    const result = await project.cli('generate');
    expect(project.migrations()).toEqual(before);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no policy file defines it any more');
  });
});

describe('snapshot bootstrap', () => {
  it('an initial migration without a snapshot is adopted only when it is current', async () => {
    const p = new TempProject();
    try {
      p.writePolicy('inc', model());
      await p.cli('generate');
      const { rmSync, writeFileSync } = await import('node:fs');
      const snapshot = p.read('migrations/.rowguard/inc.json');
      rmSync(`${p.root}/migrations/.rowguard/inc.json`);
      const check = await p.cli('generate', '--check');
      expect(check.code).toBe(1);
      expect(check.stderr).toContain('missing: migrations/.rowguard/inc.json');
      expect((await p.cli('generate')).code).toBe(0);
      expect(p.read('migrations/.rowguard/inc.json')).toBe(snapshot);

      rmSync(`${p.root}/migrations/.rowguard/inc.json`);
      writeFileSync(`${p.root}/migrations/0002_inc.sql`, `${p.read('migrations/0002_inc.sql')}\n-- edited\n`);
      const stale = await p.cli('generate');
      expect(stale.code).toBe(1);
      expect(stale.stderr).toContain('the migration is not what the policies generate now');

      writeFileSync(`${p.root}/migrations/.rowguard/inc.json`, snapshot);
      const edited = await p.cli('generate', '--check');
      expect(edited.code).toBe(1);
      expect(edited.stderr).toContain('committed migrations are never rewritten');
    } finally {
      p.remove();
    }
  });
});

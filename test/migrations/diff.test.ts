// The snapshot diff and ALTER TABLE planning, as exact SQL (no database needed; the DB tests in
// test/db/incremental.test.ts apply the results).
import { describe, expect, it } from 'vitest';
import { statement, type Section } from '../../generator/emit/statement.ts';
import { alterTable } from '../../generator/migrations/alter-table.ts';
import { canonicalAliases, describeChanges, diffStates } from '../../generator/migrations/diff.ts';

const table = (lines: string[]) => `CREATE TABLE "s"."t" (\n${lines.map((l) => `  ${l}`).join(',\n')}\n);`;
const fn = (name: string, body: string) => statement(`function s.${name}`, `CREATE FUNCTION "s"."${name}"() ${body};`, `DROP FUNCTION "s"."${name}"();`);
const policy = (name: string, using: string) => statement(`policy s.t.${name}`, `CREATE POLICY "${name}" ON "s"."t" USING (${using});`, `DROP POLICY "${name}" ON "s"."t";`);
const tableStmt = (lines: string[]) => statement('table s.t', table(lines), 'DROP TABLE "s"."t";');
const state = (...statements: ReturnType<typeof statement>[]): Section[] => [{ title: 'all', statements }];
const ids = (s: Section | undefined) => s?.statements.map((x) => x.id);

describe('alterTable', () => {
  const base = ['"id" bigint', '"name" text', '"n" integer NOT NULL DEFAULT 0', 'PRIMARY KEY ("id")', 'CONSTRAINT "t_n_positive" CHECK ("n" >= 0)'];

  it('adds and drops columns and named checks, with the reverse for down', () => {
    const after = ['"id" bigint', '"n" integer NOT NULL DEFAULT 0', '"label" text DEFAULT \'x\'', 'PRIMARY KEY ("id")', 'CONSTRAINT "t_n_positive" CHECK ("n" > 0)'];
    const alter = alterTable(table(base), table(after));
    expect(alter.refusals).toEqual([]);
    expect(alter.steps).toEqual([
      { up: 'ALTER TABLE "s"."t" DROP CONSTRAINT "t_n_positive";', down: 'ALTER TABLE "s"."t" ADD CONSTRAINT "t_n_positive" CHECK ("n" >= 0);' },
      { up: 'ALTER TABLE "s"."t" DROP COLUMN "name";', down: 'ALTER TABLE "s"."t" ADD COLUMN "name" text;' },
      { up: 'ALTER TABLE "s"."t" ADD COLUMN "label" text DEFAULT \'x\';', down: 'ALTER TABLE "s"."t" DROP COLUMN "label";' },
      { up: 'ALTER TABLE "s"."t" ADD CONSTRAINT "t_n_positive" CHECK ("n" > 0);', down: 'ALTER TABLE "s"."t" DROP CONSTRAINT "t_n_positive";' },
    ]);
  });

  it('changes a column type, default and nullability in place', () => {
    const after = ['"id" bigint', '"name" text NOT NULL', '"n" bigint DEFAULT 1', 'PRIMARY KEY ("id")', 'CONSTRAINT "t_n_positive" CHECK ("n" >= 0)'];
    const alter = alterTable(table(base), table(after));
    expect(alter.typeChanged).toBe(true);
    expect(alter.steps.map((s) => s.up)).toEqual([
      'ALTER TABLE "s"."t" ALTER COLUMN "name" SET NOT NULL;',
      'ALTER TABLE "s"."t" ALTER COLUMN "n" TYPE bigint USING "n"::bigint;',
      'ALTER TABLE "s"."t" ALTER COLUMN "n" SET DEFAULT 1;',
      'ALTER TABLE "s"."t" ALTER COLUMN "n" DROP NOT NULL;',
    ]);
    expect(alter.steps.map((s) => s.down)).toEqual([
      'ALTER TABLE "s"."t" ALTER COLUMN "name" DROP NOT NULL;',
      'ALTER TABLE "s"."t" ALTER COLUMN "n" TYPE integer USING "n"::integer;',
      'ALTER TABLE "s"."t" ALTER COLUMN "n" SET DEFAULT 0;',
      'ALTER TABLE "s"."t" ALTER COLUMN "n" SET NOT NULL;',
    ]);
  });

  it('refuses primary key and inline constraint changes, saying what to write by hand', () => {
    const after = ['"id" bigint', '"name" text UNIQUE', '"n" integer NOT NULL DEFAULT 0', 'PRIMARY KEY ("id", "n")', 'CONSTRAINT "t_n_positive" CHECK ("n" >= 0)'];
    const alter = alterTable(table(base), table(after));
    expect(alter.refusals.map((r) => r.message)).toEqual([
      'the primary key of "s"."t" changed from "PRIMARY KEY ("id")" to "PRIMARY KEY ("id", "n")"',
      'column "name" of "s"."t" changed its inline UNIQUE/CHECK ("text" → "text UNIQUE")',
    ]);
    expect(alter.refusals[0]!.fix).toContain('ALTER TABLE "s"."t" DROP CONSTRAINT');
  });
});

describe('diffStates', () => {
  const t = tableStmt(['"id" bigint', '"team" bigint', 'PRIMARY KEY ("id")']);
  const myTeam = fn('my_team', 'RETURNS bigint AS $$ v1 $$');
  const other = fn('other', 'RETURNS bigint AS $$ (select "s"."my_team"()) $$');
  const p = policy('p', '"team" = (select "s"."my_team"())');
  const q = policy('q', 'true');

  it('an unchanged state is no change', () => {
    expect(diffStates(state(t, myTeam, p, q), state(t, myTeam, p, q))).toEqual({ changes: [], sections: [], refusals: [] });
  });

  it('a changed function is dropped after, and created before, everything that names it', () => {
    const myTeam2 = fn('my_team', 'RETURNS bigint AS $$ v2 $$');
    const diff = diffStates(state(t, myTeam, other, p, q), state(t, myTeam2, other, p, q));
    expect(diff.changes).toEqual([
      { kind: 'changed', id: 'function s.my_team' },
      { kind: 'rebuilt', id: 'function s.other' },
      { kind: 'rebuilt', id: 'policy s.t.p' },
    ]);
    expect(diff.sections.map((s) => [s.title, ids(s)])).toEqual([
      ['Drop what changed or was removed (old definitions, dependents first)', ['policy s.t.p', 'function s.other', 'function s.my_team']],
      ['Create what changed or was added (new definitions)', ['function s.my_team', 'function s.other', 'policy s.t.p']],
    ]);
    expect(diff.sections[0]!.statements[2]!.up).toBe('DROP FUNCTION "s"."my_team"();');
    expect(diff.sections[0]!.statements[2]!.down).toBe(myTeam.up);
    expect(describeChanges(diff.changes)).toBe('change_function_my_team');
  });

  it('a definition whose COMMENT alone changed gets the new COMMENT, and nothing that names it is re-created', () => {
    const described = (text: string) =>
      statement('function s.my_team', `CREATE FUNCTION "s"."my_team"() RETURNS bigint AS $$ v1 $$;\nCOMMENT ON FUNCTION "s"."my_team"() IS '${text}';`, 'DROP FUNCTION "s"."my_team"();');
    const diff = diffStates(state(t, described('My team.'), other, p), state(t, described("My team''s id,\nor NULL."), other, p));
    expect(diff.changes).toEqual([{ kind: 'changed', id: 'function s.my_team' }]);
    expect(diff.sections).toEqual([
      {
        title: 'Set the comments and parallel labels that changed (nothing else of their definitions did)',
        statements: [
          {
            id: 'function s.my_team',
            up: `COMMENT ON FUNCTION "s"."my_team"() IS 'My team''s id,\nor NULL.';`,
            down: `COMMENT ON FUNCTION "s"."my_team"() IS 'My team.';`,
            comment: 'comment changed in place: function s.my_team',
          },
        ],
      },
    ]);
    // A comment added where there was none is removed again on down.
    const added = diffStates(state(t, myTeam), state(t, described('Mine.')));
    expect(added.sections[0]!.statements[0]).toMatchObject({ up: `COMMENT ON FUNCTION "s"."my_team"() IS 'Mine.';`, down: 'COMMENT ON FUNCTION "s"."my_team"() IS NULL;' });
    // The body and the comment changed: re-created as before, with its dependents, and no separate COMMENT.
    const both = diffStates(state(t, described('My team.'), other), state(t, statement('function s.my_team', `CREATE FUNCTION "s"."my_team"() RETURNS bigint AS $$ v2 $$;\nCOMMENT ON FUNCTION "s"."my_team"() IS 'New.';`, 'DROP FUNCTION "s"."my_team"();'), other));
    expect(both.sections.map((x) => x.title)).toEqual(['Drop what changed or was removed (old definitions, dependents first)', 'Create what changed or was added (new definitions)']);
    expect(both.changes.map((c) => c.kind)).toEqual(['changed', 'rebuilt']);
  });

  it('only the COMMENTs a definition ends with count: a body line that looks like one is the body, and a policy\'s description is its header and its COMMENT', () => {
    const body = (text: string) => statement('function s.f', `CREATE FUNCTION "s"."f"() RETURNS void AS $$\nCOMMENT ON TABLE "s"."t" IS '${text}';\n$$;\nCOMMENT ON FUNCTION "s"."f"() IS 'F.';`, 'DROP FUNCTION "s"."f"();');
    const changedBody = diffStates(state(t, body('a')), state(t, body('b')));
    expect(changedBody.sections.map((x) => x.title)).toEqual(['Drop what changed or was removed (old definitions, dependents first)', 'Create what changed or was added (new definitions)']);
    const described = (text: string) =>
      statement('policy s.t.p', `-- t.select[0] "p": ${text}\nCREATE POLICY "p" ON "s"."t" USING (true);\nCOMMENT ON POLICY "p" ON "s"."t" IS '${text}';`, 'DROP POLICY "p" ON "s"."t";');
    const reworded = diffStates(state(t, described('Old.')), state(t, described('New.')));
    expect(reworded.sections.map((x) => x.statements.map((st) => st.up))).toEqual([[`COMMENT ON POLICY "p" ON "s"."t" IS 'New.';`]]);
  });

  it('a definition re-created because something it names is takes its new comment with it, and gets no COMMENT of its own', () => {
    const g = (v: string) => fn('g', `RETURNS bigint AS $$ ${v} $$`);
    const f = (text: string) => statement('function s.f', `CREATE FUNCTION "s"."f"() RETURNS bigint AS $$ (select "s"."g"()) $$;\nCOMMENT ON FUNCTION "s"."f"() IS '${text}';`, 'DROP FUNCTION "s"."f"();');
    const diff = diffStates(state(t, g('v1'), f('Old.')), state(t, g('v2'), f('New.')));
    expect(diff.sections.map((x) => x.title)).toEqual(['Drop what changed or was removed (old definitions, dependents first)', 'Create what changed or was added (new definitions)']);
    expect(diff.sections[1]!.statements.find((st) => st.id === 'function s.f')!.up).toContain(`IS 'New.';`);
    expect(diff.sections[0]!.statements.find((st) => st.id === 'function s.f')!.down).toContain(`IS 'Old.';`);
  });

  it('a function whose PARALLEL label alone changed (with its comment or not) is altered in place; a label beside a new body is re-created', () => {
    const labelled = (label: string, text: string, body = 'v1') =>
      statement(
        'function s.my_team',
        `CREATE FUNCTION "s"."my_team"(bigint) RETURNS bigint\n  LANGUAGE plpgsql STABLE SECURITY DEFINER${label}\n  SET search_path = pg_catalog, pg_temp\nAS $$ ${body} $$;\nCOMMENT ON FUNCTION "s"."my_team"(bigint) IS '${text}';`,
        'DROP FUNCTION "s"."my_team"(bigint);',
      );
    const diff = diffStates(state(t, labelled('', 'Mine.'), other, p), state(t, labelled(' PARALLEL RESTRICTED', 'Mine.'), other, p));
    expect(diff.changes).toEqual([{ kind: 'changed', id: 'function s.my_team' }]);
    expect(diff.sections).toEqual([
      {
        title: 'Set the comments and parallel labels that changed (nothing else of their definitions did)',
        statements: [
          {
            id: 'function s.my_team',
            // No label is PostgreSQL's UNSAFE, which down sets back.
            up: 'ALTER FUNCTION "s"."my_team"(bigint) PARALLEL RESTRICTED;',
            down: 'ALTER FUNCTION "s"."my_team"(bigint) PARALLEL UNSAFE;',
            comment: 'PARALLEL label changed in place: function s.my_team',
          },
        ],
      },
    ]);
    const both = diffStates(state(t, labelled(' PARALLEL RESTRICTED', 'Mine.')), state(t, labelled(' PARALLEL SAFE', 'Ours.')));
    expect(both.sections[0]!.statements[0]).toMatchObject({
      up: `ALTER FUNCTION "s"."my_team"(bigint) PARALLEL SAFE;\nCOMMENT ON FUNCTION "s"."my_team"(bigint) IS 'Ours.';`,
      down: `COMMENT ON FUNCTION "s"."my_team"(bigint) IS 'Mine.';\nALTER FUNCTION "s"."my_team"(bigint) PARALLEL RESTRICTED;`,
      comment: 'PARALLEL label and comment changed in place: function s.my_team',
    });
    const rebuilt = diffStates(state(t, labelled('', 'Mine.')), state(t, labelled(' PARALLEL RESTRICTED', 'Mine.', 'v2')));
    expect(rebuilt.sections.map((x) => x.title)).toEqual(['Drop what changed or was removed (old definitions, dependents first)', 'Create what changed or was added (new definitions)']);
    // A policy has no label: a change elsewhere in it is a change.
    expect(diffStates(state(t, p), state(t, policy('p', '"team" = (select "s"."my_team"()) AND true'))).sections.map((x) => x.title)[0]).toMatch(/^Drop/);
  });

  it('same name, new predicate: re-created; new name, same predicate: dropped and added', () => {
    const changed = diffStates(state(t, p), state(t, policy('p', '"team" IS NULL')));
    expect(changed.changes).toEqual([{ kind: 'changed', id: 'policy s.t.p' }]);
    const renamed = diffStates(state(t, p), state(t, policy('p2', '"team" = (select "s"."my_team"())')));
    expect(renamed.changes).toEqual([
      { kind: 'removed', id: 'policy s.t.p' },
      { kind: 'added', id: 'policy s.t.p2' },
    ]);
    expect(describeChanges(renamed.changes)).toBe('drop_policy_t_p_and_1_more');
  });

  it('a column type change re-creates what reads the table around the ALTER', () => {
    const t2 = tableStmt(['"id" bigint', '"team" integer', 'PRIMARY KEY ("id")']);
    const diff = diffStates(state(t, p, q), state(t2, p, q));
    expect(diff.sections.map(ids)).toEqual([['policy s.t.q', 'policy s.t.p'], ['table s.t'], ['policy s.t.p', 'policy s.t.q']]);
    expect(diff.changes.map((c) => `${c.kind} ${c.id}`)).toEqual(['changed table s.t', 'rebuilt policy s.t.p', 'rebuilt policy s.t.q']);
  });

  it('sub-select aliases renumbered by a declaration removed earlier in the file are no change', () => {
    const exists = (a: string, b: string) => policy('p', `EXISTS (SELECT 1 FROM "s"."u" AS "${a}" WHERE "${a}"."id" = "t"."team" AND EXISTS (SELECT 1 FROM "s"."v" AS "${b}" WHERE "${b}"."u" = "${a}"."id"))`);
    expect(diffStates(state(t, exists('q9', 'q10')), state(t, exists('q7', 'q8'))).changes).toEqual([]);
    // Swapping which alias names which table is a different statement.
    const swapped = policy('p', 'EXISTS (SELECT 1 FROM "s"."u" AS "q8" WHERE "q7"."id" = "t"."team" AND EXISTS (SELECT 1 FROM "s"."v" AS "q7" WHERE "q7"."u" = "q8"."id"))');
    expect(diffStates(state(t, exists('q7', 'q8')), state(t, swapped)).changes).toEqual([{ kind: 'changed', id: 'policy s.t.p' }]);
  });

  it('canonicalAliases touches only names the text declares as aliases', () => {
    expect(canonicalAliases('SELECT "q12"."q3" FROM "s"."q4" AS "q12" WHERE "q3" > 0 AND "q12"."n" = "u1"."n"')).toBe(
      'SELECT "q#1"."q3" FROM "s"."q4" AS "q#1" WHERE "q3" > 0 AND "q#1"."n" = "u1"."n"',
    );
    expect(canonicalAliases('UPDATE "s"."offices" AS "u7" SET "x" = 1 WHERE "u7"."id" = NEW."office_id"')).toBe('UPDATE "s"."offices" AS "u#1" SET "x" = 1 WHERE "u#1"."id" = NEW."office_id"');
  });

  it('a removed table is refused, never dropped', () => {
    const diff = diffStates(state(t, q), state());
    expect(diff.refusals.map((r) => r.id)).toEqual(['table s.t']);
    expect(diff.refusals[0]!.fix).toContain('--accept-manual');
  });
});

// Bad policy input: every problem at once, each with the file, the policy path and a fix; and
// through the real CLI, a non-zero exit with nothing written.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { defineModel, lit, scalarOf, t, type E } from '../../generator/dsl/index.ts';
import { validateModel } from '../../generator/validate/index.ts';

const run = promisify(execFile);
const CLI = resolve('bin/rowguard.js');

function problemsOf(build: Parameters<typeof defineModel>[1]) {
  return validateModel({ ...defineModel('crm', build), file: 'policies/crm.ts' }).problems;
}

describe('validation', () => {
  it('reports an unknown column with the policy path and the columns that exist', () => {
    const problems = problemsOf((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      m.identity(users);
      // What a plain-JavaScript policy file (or one run without type-checking) can do.
      m.policy(users, 'users_select', { for: 'select', using: (u) => (u as unknown as Record<string, E>)['team_id']! });
    });
    expect(problems).toEqual([
      expect.objectContaining({ code: 'unknown-column', file: 'policies/crm.ts', path: 'users.select[0] "users_select"', message: 'table "users" has no column "team_id"' }),
    ]);
    expect(problems[0]!.fix).toContain('use one of: id');
  });

  it('collects every problem at once: WITH CHECK on SELECT, USING on INSERT, duplicate names, long names', () => {
    const long = `p_${'x'.repeat(70)}`;
    const problems = problemsOf((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      m.identity(users);
      m.policy(users, 'users_select', { for: 'select', using: (u) => u.id.eq(m.me), check: (u) => u.id.eq(m.me) });
      m.policy(users, 'users_select', { for: 'select', using: (u) => u.id.eq(m.me) });
      m.policy(users, 'users_insert', { for: 'insert', using: (u) => u.id.eq(m.me) });
      m.policy(users, long, { for: 'delete', using: (u) => u.id.eq(m.me) });
    });
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['check-on-select', 'users.select[0] "users_select"'],
      ['duplicate-policy', 'users.select[1] "users_select"'],
      ['using-on-insert', 'users.insert[0] "users_insert"'],
      ['name-too-long', `users.delete[0] "${long}"`],
    ]);
    for (const p of problems) expect(p.fix.length).toBeGreaterThan(5);
  });

  it('reports unknown tables, facts used in the wrong place, type mismatches and fact cycles', () => {
    const problems = problemsOf((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), name: t.text(), boss_id: t.bigint().references('bosses') });
      m.identity(users);
      m.policy(users, 'users_select', { for: 'select', using: (u) => u.name.eq(m.me) });
      let a = m.me;
      a = m.fact('a', m.me.eq(m.me));
      m.policy(users, 'users_delete', { for: 'delete', using: (u) => u.id.in(a) });
    });
    expect(problems.map((p) => p.code).sort()).toEqual(['not-a-set', 'type-mismatch', 'unknown-table']);
  });
});

describe('comparisons', () => {
  it('a plain string against a uuid column is refused with the typed literal that fixes it; typed, it is accepted', () => {
    const id = '6f1c1a52-0d8e-4b53-9d61-2f0a4f6c9a01';
    const build = (typed: boolean) => (m: Parameters<Parameters<typeof defineModel>[1]>[0]) => {
      const users = m.table('users', { id: t.uuid().primaryKey() });
      const notes = m.table('notes', { id: t.bigint().primaryKey(), owner_id: t.uuid() });
      m.identity(users);
      m.policy(notes, 'notes_select', { for: 'select', using: (n) => n.owner_id.eq(typed ? lit(id, 'uuid') : id) });
    };
    expect(problemsOf(build(false)).map((p) => [p.code, p.path, p.message, p.fix])).toEqual([
      ['type-mismatch', 'notes.select[0] "notes_select"', 'comparing uuid with text', `give the string its type: lit('${id}', 'uuid')`],
    ]);
    expect(problemsOf(build(true))).toEqual([]);
  });
});

describe('hierarchy nodes', () => {
  it('a node of another kind than the hierarchy holds is refused: text for bigint, and numeric for whole numbers (it would be rounded to another node)', () => {
    const problems = problemsOf((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey(), name: t.text(), score: t.numeric(10, 2), team_id: t.integer() });
      const teams = m.table('teams', { id: t.bigint().primaryKey(), parent_id: t.bigint() });
      m.identity(users);
      const tree = m.hierarchy('team_tree', { table: teams, child: 'id', parent: 'parent_id' });
      const row = (column: 'name' | 'score' | 'team_id') => m.from(users, (u) => ({ where: u.id.eq(m.me), select: u[column] }));
      m.fact('by_name', tree.descendantsOf(scalarOf(row('name'))));
      m.fact('by_score', tree.descendantsOf(scalarOf(row('score'))));
      m.fact('by_team', tree.descendantsOf(scalarOf(row('team_id'))));
    });
    expect(problems.map((p) => [p.code, p.path, p.message])).toEqual([
      ['type-mismatch', 'facts.by_name', 'a text node is looked up in hierarchy "team_tree" of bigint nodes'],
      ['type-mismatch', 'facts.by_score', 'a numeric(10,2) node is looked up in hierarchy "team_tree" of bigint nodes'],
    ]);
  });
});

describe('rowguard generate with bad policies', () => {
  it('prints every problem with file, path and fix, exits 1 and writes nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rowguard-bad-'));
    mkdirSync(join(root, 'policies'));
    const dsl = resolve('generator/dsl/index.ts');
    writeFileSync(
      join(root, 'policies', 'shop.ts'),
      `import { defineModel, t } from ${JSON.stringify(dsl)};
export default defineModel('shop', (m) => {
  const users = m.table('users', { id: t.bigint().primaryKey() });
  const orders = m.table('orders', { id: t.bigint().primaryKey(), user_id: t.bigint() });
  m.identity(users);
  m.policy(orders, 'orders_select', { for: 'select', using: (o) => o.customer_id.eq(m.me), check: (o) => o.user_id.eq(m.me) });
  m.policy(orders, 'orders_select', { for: 'select', using: (o) => o.user_id.eq(m.me) });
});
`,
    );
    const result = await run('node', [CLI, 'generate'], { cwd: root }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('3 problem(s); nothing was written');
    expect(result.stderr).toContain('policies/shop.ts: orders.select[0] "orders_select": table "orders" has no column "customer_id" [unknown-column]');
    expect(result.stderr).toContain('policies/shop.ts: orders.select[0] "orders_select": policy "orders_select" is FOR SELECT but has a WITH CHECK clause');
    expect(result.stderr).toContain('policies/shop.ts: orders.select[1] "orders_select": two policies on "orders" are named "orders_select" [duplicate-policy]');
    expect(result.stderr).toMatch(/fix: use one of: id, user_id/);
    expect(existsSync(join(root, 'sql'))).toBe(false);
    expect(existsSync(join(root, 'migrations')) ? readdirSync(join(root, 'migrations')) : []).toEqual([]);
  });
});

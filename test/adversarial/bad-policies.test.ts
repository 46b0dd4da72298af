// Bad policy input, through the real command line: `rowguard generate` in a scratch project prints
// every problem with its file and policy path, exits non-zero and writes nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DSL = join(ROOT, 'generator/dsl/index.ts');
const BIN = join(ROOT, 'bin/rowguard.js');
const scratch: string[] = [];
afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

function generate(files: Record<string, string>): { status: number | null; stderr: string; stdout: string; wrote: string[] } {
  const root = mkdtempSync(join(tmpdir(), 'rowguard-bad-'));
  scratch.push(root);
  mkdirSync(join(root, 'policies'));
  // Policy files are ES modules, as in any project whose package.json says so.
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  for (const [name, body] of Object.entries(files)) writeFileSync(join(root, 'policies', name), body.replaceAll('$DSL', DSL));
  const run = spawnSync(process.execPath, [BIN, 'generate', '--policies', 'policies'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  const wrote = readdirSync(root).filter((f) => f !== 'policies' && f !== 'package.json');
  return { status: run.status, stderr: run.stderr, stdout: run.stdout, wrote };
}

const header = `import { defineModel, t, E, raw, scalarOf, and } from '$DSL';`;
const tables = `
  const users = m.table('users', { id: t.bigint().primaryKey(), name: t.text(), team: t.text() });
  const docs = m.table('docs', { id: t.bigint().primaryKey(), owner_id: t.bigint().references(users), title: t.text() });
  m.identity(users);`;

/** One mistake per entry: what to write inside defineModel, the code and the path it must report. */
const mistakes: readonly { name: string; body: string; code: string; path: string }[] = [
  { name: 'unknown table', body: `m.policy({ name: 'ghosts', columns: {} } as never, 'p', { for: 'select', using: () => m.me.isNotNull() });`, code: 'unknown-table', path: 'policies "p"' },
  { name: 'unknown column', body: `m.policy(docs, 'docs_sel', { for: 'select', using: (d) => (d as any).ownr.eq(m.me) });`, code: 'unknown-column', path: 'docs.select[0] "docs_sel"' },
  { name: 'unknown fact', body: `m.policy(docs, 'docs_sel', { for: 'select', using: (d) => d.owner_id.eq(new E({ kind: 'fact', name: 'nobody_declared_me' })) });`, code: 'unknown-fact', path: 'docs.select[0] "docs_sel"' },
  { name: 'unknown hierarchy', body: `m.policy(docs, 'docs_sel', { for: 'select', using: (d) => d.owner_id.in(new E({ kind: 'hierarchy-set', hierarchy: 'nowhere', direction: 'descendants', of: { kind: 'session-user' }, includeSelf: true })) });`, code: 'unknown-hierarchy', path: 'docs.select[0] "docs_sel"' },
  { name: 'WITH CHECK on SELECT', body: `m.policy(docs, 'docs_sel', { for: 'select', using: (d) => d.owner_id.eq(m.me), check: (d) => d.owner_id.eq(m.me) });`, code: 'check-on-select', path: 'docs.select[0] "docs_sel"' },
  { name: 'USING on INSERT', body: `m.policy(docs, 'docs_ins', { for: 'insert', using: (d) => d.owner_id.eq(m.me), check: (d) => d.owner_id.eq(m.me) });`, code: 'using-on-insert', path: 'docs.insert[0] "docs_ins"' },
  { name: 'WITH CHECK on DELETE', body: `m.policy(docs, 'docs_del', { for: 'delete', using: (d) => d.owner_id.eq(m.me), check: (d) => d.owner_id.eq(m.me) });`, code: 'check-on-delete', path: 'docs.delete[0] "docs_del"' },
  { name: 'a policy with no condition', body: `m.policy(docs, 'docs_sel', { for: 'select' });`, code: 'empty-policy', path: 'docs.select[0] "docs_sel"' },
  {
    name: 'duplicate policy names',
    body: `m.policy(docs, 'docs_rule', { for: 'select', using: (d) => d.owner_id.eq(m.me) }); m.policy(docs, 'docs_rule', { for: 'update', using: (d) => d.owner_id.eq(m.me) });`,
    code: 'duplicate-policy',
    path: 'docs.update[0] "docs_rule"',
  },
  { name: 'a name over 63 bytes', body: `m.policy(docs, '${'d'.repeat(64)}', { for: 'select', using: (d) => d.owner_id.eq(m.me) });`, code: 'name-too-long', path: `docs.select[0] "${'d'.repeat(64)}"` },
  { name: 'a multi-byte name over 63 bytes', body: `m.policy(docs, 'docs_${'é'.repeat(30)}', { for: 'select', using: (d) => d.owner_id.eq(m.me) });`, code: 'name-too-long', path: 'docs.select[0]' },
  { name: 'a type mismatch', body: `m.policy(docs, 'docs_sel', { for: 'select', using: (d) => d.title.eq(m.me) });`, code: 'type-mismatch', path: 'docs.select[0] "docs_sel"' },
  { name: 'a set test on a non-set', body: `m.policy(docs, 'docs_sel', { for: 'select', using: (d) => d.owner_id.in(m.me) });`, code: 'not-a-set', path: 'docs.select[0] "docs_sel"' },
  {
    name: 'a fact reading the policy row',
    body: `m.policy(docs, 'docs_sel', { for: 'select', using: (d) => d.id.eq(m.fact('row_peeking_fact', d.owner_id, { type: 'bigint' })) });`,
    code: 'row-out-of-scope',
    path: 'facts.row_peeking_fact',
  },
  {
    name: 'a fact cycle',
    body: `const a = m.fact('fact_a', new E({ kind: 'fact', name: 'fact_b' }), { type: 'bigint' }); m.fact('fact_b', a, { type: 'bigint' }); m.policy(docs, 'docs_sel', { for: 'select', using: (d) => d.owner_id.eq(a) });`,
    code: 'fact-cycle',
    path: 'facts.fact_a',
  },
  { name: 'raw SQL without a reason', body: `m.policy(docs, 'docs_sel', { for: 'select', using: () => raw('true', { type: 'boolean', reason: '  ' }) });`, code: 'raw-without-reason', path: 'docs.select[0] "docs_sel"' },
  { name: 'a reserved function name', body: `m.fact('set_session', scalarOf(m.from(users, (u) => ({ where: u.id.eq(m.me), select: u.id }))));`, code: 'reserved-name', path: 'facts.set_session' },
  { name: 'a name that is not an SQL identifier', body: `m.policy(docs, 'Docs Select', { for: 'select', using: (d) => d.owner_id.eq(m.me) });`, code: 'bad-name', path: 'docs.select[0] "Docs Select"' },
  { name: 'an unknown identity column', body: `m.identity(users, { column: 'uid' });`, code: 'unknown-column', path: 'identity' },
  { name: 'an identity column that may repeat', body: `m.identity(users, { column: 'name' });`, code: 'identity-not-unique', path: 'identity' },
];

const model = (schema: string, body: string) => `${header}\nexport default defineModel('${schema}', (m) => {${tables}\n  ${body}\n});\n`;

describe('rowguard generate refuses bad policies', () => {
  for (const mistake of mistakes) {
    it(`${mistake.name}: ${mistake.code} at ${mistake.path}, exit 1, nothing written`, () => {
      const run = generate({ 'shop.ts': model('shop', mistake.body) });
      expect(run.status, run.stdout + run.stderr).toBe(1);
      expect(run.wrote).toEqual([]);
      const line = run.stderr.split('\n').find((l) => l.includes(`[${mistake.code}]`));
      expect(line, run.stderr).toBeDefined();
      expect(line).toContain('policies/shop.ts: ');
      expect(line).toContain(mistake.path);
      // Every problem comes with a fix.
      expect(run.stderr.split('\n').filter((l) => l.trim().startsWith('fix:')).length).toBe(run.stderr.split('\n').filter((l) => /\[[a-z-]+\]$/.test(l)).length);
    });
  }

  it('prints every problem of every file at once', () => {
    const run = generate({
      'a_shop.ts': model('shop', mistakes.slice(4, 8).map((m) => m.body).join('\n  ')),
      'b_crm.ts': model('crm', [mistakes[11]!.body, mistakes[15]!.body].join('\n  ')),
      'c_broken.ts': `export default 42;\n`,
      'd_throws.ts': `throw new Error('boom');\n`,
    });
    expect(run.status).toBe(1);
    expect(run.wrote).toEqual([]);
    for (const code of ['check-on-select', 'using-on-insert', 'check-on-delete', 'empty-policy', 'type-mismatch', 'raw-without-reason', 'no-model', 'load-failed']) {
      expect(run.stderr, code).toContain(`[${code}]`);
    }
    expect(run.stderr).toContain('policies/a_shop.ts: ');
    expect(run.stderr).toContain('policies/b_crm.ts: ');
    expect(run.stderr).toContain('policies/c_broken.ts: ');
    expect(run.stderr).toContain('policies/d_throws.ts: ');
    expect(run.stderr).toMatch(/rowguard generate: \d+ problem\(s\); nothing was written/);
  });

  it('two files claiming one schema, and an empty policies folder, are refused', () => {
    const twice = generate({ 'a.ts': model('shop', ''), 'b.ts': model('shop', '') });
    expect(twice.status).toBe(1);
    expect(twice.stderr).toContain('[duplicate-schema]');
    expect(twice.wrote).toEqual([]);
    const none = generate({});
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('[no-policies]');
  });

  it('the same scratch project with the mistakes fixed generates (the harness is not what fails)', () => {
    const run = generate({ 'shop.ts': model('shop', `m.policy(docs, 'docs_sel', { for: 'select', using: (d) => d.owner_id.eq(m.me) });`) });
    expect(run.status, run.stderr).toBe(0);
    expect(run.wrote.sort()).toEqual(['migrations', 'runtime', 'sql']); // runtime/generated.ts: the typed module
  });
});

it('leaves no scratch project behind in the repository', () => {
  expect(existsSync(join(ROOT, 'policies', 'shop.ts'))).toBe(false);
});

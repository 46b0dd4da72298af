// The CLI in a user's own project: folders from rowguard.config.json or flags, --check for drift.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = resolve('bin/rowguard.js');
const DSL = resolve('generator/dsl/index.ts');

function project(policyDir: string): string {
  const root = mkdtempSync(join(tmpdir(), 'rowguard-project-'));
  mkdirSync(join(root, policyDir), { recursive: true });
  writeFileSync(
    join(root, policyDir, 'shop.ts'),
    `import { defineModel, t } from ${JSON.stringify(DSL)};
export default defineModel('shop', (m) => {
  const users = m.table('users', { id: t.bigint().primaryKey() });
  const orders = m.table('orders', { id: t.bigint().primaryKey(), user_id: t.bigint().notNull().references(users) });
  m.identity(users);
  m.policy(orders, 'orders_select', { for: 'select', using: (o) => o.user_id.eq(m.me) });
});
`,
  );
  return root;
}

async function cli(root: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('node', [CLI, ...args], { cwd: root }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe('rowguard generate in a user project', () => {
  it('reads its folders from rowguard.config.json, and --check detects drift', async () => {
    const root = project('db/policies');
    writeFileSync(join(root, 'rowguard.config.json'), JSON.stringify({ policies: 'db/policies', sql: 'db/sql', migrations: 'db/migrations' }));
    expect((await cli(root, 'generate', '--check')).code).toBe(1);
    const generated = await cli(root, 'generate');
    expect(generated.code).toBe(0);
    expect(existsSync(join(root, 'db/sql/shop.sql'))).toBe(true);
    expect(existsSync(join(root, 'db/migrations/0002_shop.sql'))).toBe(true);
    expect(readFileSync(join(root, 'db/sql/shop.sql'), 'utf8')).toContain('CREATE POLICY "orders_select" ON "shop"."orders"');
    expect(await cli(root, 'generate', '--check')).toMatchObject({ code: 0 });
    // Same policies, same bytes: a second run writes nothing.
    expect((await cli(root, 'generate')).stdout).toContain('0 file(s) written');

    writeFileSync(join(root, 'db/sql/shop.sql'), 'edited by hand');
    const drift = await cli(root, 'generate', '--check');
    expect(drift.code).toBe(1);
    expect(drift.stderr).toContain('changed: db/sql/shop.sql');
  });

  it('takes the folders from flags too, and rejects unknown config keys with the file named', async () => {
    const root = project('rules');
    expect((await cli(root, 'generate', '--policies', 'rules', '--sql', 'out/sql', '--migrations', 'out/migrations')).code).toBe(0);
    expect(existsSync(join(root, 'out/migrations/0001_rowguard_core.sql'))).toBe(true);
    writeFileSync(join(root, 'rowguard.config.json'), JSON.stringify({ polices: 'rules' }));
    const bad = await cli(root, 'generate');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('rowguard.config.json: unknown key "polices"');
  });
});

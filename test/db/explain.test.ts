// `rowguard explain` on the SmartOffice sample: what it says, in words and as data.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { smartofficeSample } from '../../generator/cli/samples/smartoffice.ts';
import { loadModels } from '../../generator/load.ts';
import { ExplainError, explainRow, type ExplainRequest } from '../../generator/explain/explain.ts';
import { formatExplanation } from '../../generator/explain/format.ts';
import { urlAs, useTestDatabase } from '../support/db.ts';

const db = useTestDatabase(async (admin) => {
  await admin.unsafe(smartofficeSample.sql);
});
const { models } = await loadModels(process.cwd(), 'policies');
const explain = (r: Omit<ExplainRequest, 'schema' | 'command'> & { command?: ExplainRequest['command'] }) =>
  explainRow(db.current.admin, models, { schema: 'smartoffice', command: 'select', ...r });

describe('explain: SELECT', () => {
  it('a denied row: every arm of contacts_select with the conditions that failed, their SQL and the facts they read', async () => {
    const x = await explain({ user: '11', table: 'contacts', id: '101' });
    expect(x.allowed).toBe(false);
    expect(x.visibleToUser).toBe(false);
    expect(x.summary).toBe('DENIED: user 11 (John (agent)) may not SELECT smartoffice.contacts row id = 101: no SELECT policy admits it.');
    const policy = x.stages[0]!.policies[0]!;
    expect(policy.name).toBe('contacts_select');
    expect(policy.arms).toHaveLength(6);
    // Arm 3: his office, but assigned to Tom, not to John.
    const arm3 = policy.arms[2]!;
    expect(arm3.conditions.map((c) => [c.words, c.result])).toEqual([
      ['is_private is false', true],
      ['a key of assignee_keys is one of my_office_assignee_keys', false],
    ]);
    expect(arm3.conditions[1]!.sql).toBe('"contacts"."assignee_keys" && (select "smartoffice"."my_office_assignee_keys"())::text[]');
    const fact = (name: string) => x.facts.find((f) => f.name === name)?.value;
    expect(fact('my_office_id')).toBe('3');
    expect(fact('my_office_assignee_keys')).toBe('{3:11}'); // office 3, John himself (he stands in for no one)
    expect(fact('enterprise_office_ids')).toBeNull();
    expect(x.facts.find((f) => f.name === 'enterprise_office_ids')?.description).toMatch(/With enterprise view/);

    const text = formatExplanation(x);
    expect(text).toContain('✗ a key of assignee_keys is one of my_office_assignee_keys   (false)');
    expect(text).toContain('with: row.assignee_keys = ["3:12"], my_office_assignee_keys = {3:11}'); // Tom is user 12
    expect(text).toContain('∅ office_id is one of enterprise_office_ids   (NULL: counts as false)');
    expect(text).toContain('SQL:  "contacts"."office_id" = any((select "smartoffice"."enterprise_office_ids"())::bigint[])');
    expect(x.warnings).toEqual([]);
  });

  it('an allowed row names the policy and the arm that grants it', async () => {
    const x = await explain({ user: '10', table: 'contacts', id: '108' });
    expect(x.allowed).toBe(true);
    expect(x.summary).toBe('ALLOWED: user 10 (Carla (CEO, enterprise view)) may SELECT smartoffice.contacts row id = 108; granted SELECT by contacts_select.');
    const granting = x.stages[0]!.policies[0]!.arms.filter((a) => a.result === true);
    expect(granting.map((a) => a.conditions.map((c) => c.words))).toEqual([['is_private is false', 'office_id is one of enterprise_office_ids']]);
    expect(x.facts.find((f) => f.name === 'enterprise_office_ids')?.value).toBe('{1,2,3,4,5}');
    expect(formatExplanation(x)).toContain('✓ office_id is one of enterprise_office_ids   (row.office_id = 5, enterprise_office_ids = {1,2,3,4,5})');
  });

  it('a private contact: only rule 1 can reveal it', async () => {
    const x = await explain({ user: '10', table: 'contacts', id: '104' });
    expect(x.allowed).toBe(false);
    const arm1 = x.stages[0]!.policies[0]!.arms[0]!;
    expect(arm1.conditions.map((c) => c.result)).toEqual([true, false]);
    expect(arm1.conditions[1]!.columns).toEqual([{ name: 'private_owner_id', value: 11 }]);
  });

  it('a composite key, given in key order or by name; the EXISTS runs under the contacts policies', async () => {
    const byOrder = await explain({ user: '13', table: 'contact_assignments', id: '100,11' });
    const byName = await explain({ user: '13', table: 'contact_assignments', id: 'user_id=11,contact_id=100' });
    expect(byOrder.allowed).toBe(true);
    expect(byName.key).toEqual({ contact_id: '100', user_id: '11' });
    expect(byName.allowed).toBe(true);
    const hidden = await explain({ user: '19', table: 'contact_assignments', id: '100,11' });
    expect(hidden.allowed).toBe(false);
    expect(hidden.stages[0]!.policies[0]!.arms[0]!.conditions[0]!.words).toBe('there is a contacts row I can see where contacts.id is contact_id');
  });
});

describe('explain: UPDATE and DELETE', () => {
  it('a shared contact is visible to its receiver but the UPDATE policy refuses it', async () => {
    const x = await explain({ user: '17', table: 'contacts', id: '110', command: 'update' });
    expect(x.visibleToUser).toBe(true);
    expect(x.allowed).toBe(false);
    expect(x.stages.map((s) => [s.command, s.clause, s.admitted])).toEqual([
      ['select', 'using', true],
      ['update', 'using', false],
      ['update', 'check', false],
    ]);
    expect(x.stages[0]!.grantedBy).toEqual(['contacts_select']);
    const text = formatExplanation(x);
    expect(text).toContain('UPDATE USING: refused');
    expect(text).toContain('UPDATE WITH CHECK: not reached');
  });

  it('an update allowed by USING and WITH CHECK', async () => {
    const x = await explain({ user: '11', table: 'contacts', id: '104', command: 'update' });
    expect(x.allowed).toBe(true);
    expect(x.summary).toContain('granted SELECT by contacts_select; UPDATE by contacts_update; UPDATE WITH CHECK by contacts_update');
  });

  it('a missing table privilege is reported before any policy', async () => {
    const x = await explain({ user: '14', table: 'users', id: '11', command: 'delete' });
    expect(x.allowed).toBe(false);
    expect(x.privileges.missing).toEqual(['DELETE']);
    expect(x.summary).toBe('DENIED: user 14 (Ada (office administrator)) may not DELETE smartoffice.users row id = 11: app_user has no DELETE privilege on the table.');
  });

  it('a delete: the SELECT policies and the DELETE policies both apply', async () => {
    const ok = await explain({ user: '14', table: 'proxies', id: '13,11', command: 'delete' });
    expect(ok.allowed).toBe(true);
    expect(ok.stages.map((s) => s.grantedBy)).toEqual([['proxies_select'], ['proxies_delete']]);
    const no = await explain({ user: '11', table: 'proxies', id: '13,11', command: 'delete' });
    expect(no.allowed).toBe(false);
    expect(no.stages.map((s) => s.admitted)).toEqual([true, false]);
    expect(no.stages[1]!.policies[0]!.arms[0]!.conditions[0]!.words).toBe('agent_id is one of users_i_administer');
  });
});

describe('explain: mistakes and drift', () => {
  it('an unknown user, table, key or schema is an ExplainError with a hint', async () => {
    await expect(explain({ user: '999', table: 'contacts', id: '100' })).rejects.toThrow(/no smartoffice.users row has id = 999/);
    await expect(explain({ user: '11', table: 'nope', id: '100' })).rejects.toThrow(ExplainError);
    await expect(explain({ user: '11', table: 'contact_assignments', id: '100' })).rejects.toThrow(/needs 2 value\(s\), one per key column contact_id, user_id/);
    await expect(explainRow(db.current.admin, models, { schema: 'nope', table: 'x', user: '1', id: '1', command: 'select' })).rejects.toThrow(/no model has schema "nope"/);
  });

  it('no such row', async () => {
    const x = await explain({ user: '11', table: 'contacts', id: '999' });
    expect(x.row).toBeNull();
    expect(x.summary).toBe('DENIED: smartoffice.contacts has no row with id = 999.');
  });

  it('a database whose installed policy differs from policies/: the verdict follows the database, with a warning', async () => {
    const admin = db.current.admin;
    const [{ qual }] = (await admin`SELECT qual FROM pg_policies WHERE schemaname = 'smartoffice' AND policyname = 'contacts_select'`) as unknown as [{ qual: string }];
    await admin.unsafe('ALTER POLICY contacts_select ON smartoffice.contacts USING (true)');
    try {
      const x = await explain({ user: '11', table: 'contacts', id: '101' });
      expect(x.visibleToUser).toBe(true);
      expect(x.allowed).toBe(true);
      expect(x.stages[0]!.policies[0]!.admits).toBe(false);
      expect(x.stages[0]!.policies[0]!.installed).toEqual({ admits: true, sql: 'true' });
      expect(x.warnings.join('\n')).toMatch(/not migrated to the current policies/);
    } finally {
      await admin.unsafe(`ALTER POLICY contacts_select ON smartoffice.contacts USING (${qual})`);
    }
    expect((await explain({ user: '11', table: 'contacts', id: '101' })).warnings).toEqual([]);
  });
});

describe('explain: the connecting role', () => {
  it('works for a role that is only a member of rowguard_definer and app_user; refuses others with the GRANT to run', async () => {
    const admin = db.current.admin;
    const role = `rg_explainer_${db.current.name.slice(-12)}`;
    const weak = `${role}_weak`;
    await admin.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'x' NOSUPERUSER NOBYPASSRLS; GRANT rowguard_definer, app_user TO ${role}`);
    await admin.unsafe(`CREATE ROLE ${weak} LOGIN PASSWORD 'x' NOSUPERUSER NOBYPASSRLS; GRANT app_user TO ${weak}`);
    const connect = (user: string) => postgres(urlAs(db.current.url, user, 'x'), { max: 1, onnotice: () => {} });
    const member = connect(role);
    const other = connect(weak);
    try {
      const x = await explainRow(member, models, { schema: 'smartoffice', table: 'contacts', user: '11', id: '104', command: 'select' });
      expect(x.allowed).toBe(true);
      expect(x.row).toMatchObject({ id: 104, private_owner_id: 11 });
      await expect(explainRow(other, models, { schema: 'smartoffice', table: 'contacts', user: '11', id: '104', command: 'select' })).rejects.toThrow(
        /must connect as a superuser, a BYPASSRLS role or a member of rowguard_definer/,
      );
    } finally {
      await member.end();
      await other.end();
      await admin.unsafe(`DROP ROLE ${role}; DROP ROLE ${weak}`);
    }
  });
});

describe('rowguard explain (command line)', () => {
  const run = promisify(execFile);
  const cli = async (...args: string[]) => {
    try {
      const { stdout } = await run('node', ['bin/rowguard.js', 'explain', ...args], { env: { ...process.env, DATABASE_URL: db.current.url } });
      return { code: 0, stdout };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('--json gives the explanation as data; exit 1 when denied, 0 when allowed', async () => {
    const denied = await cli('--schema', 'smartoffice', '--user', '11', '--table', 'contacts', '--id', '101', '--json');
    expect(denied.code).toBe(1);
    const data = JSON.parse(denied.stdout) as { allowed: boolean; stages: { policies: { name: string }[] }[] };
    expect(data.allowed).toBe(false);
    expect(data.stages[0]!.policies[0]!.name).toBe('contacts_select');
    const allowed = await cli('--schema', 'smartoffice', '--user', '11', '--table', 'contacts', '--id', '100');
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/^ALLOWED: user 11 \(John \(agent\)\) may SELECT smartoffice.contacts row id = 100/);
  });

  it('usage mistakes exit 2 with a hint', async () => {
    const r = await cli('--schema', 'smartoffice', '--user', '11', '--table', 'contacts');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing --id/);
  });
});

// `rowguard lint` on a real database: the migrated models lint clean; then each finding is
// provoked by breaking the database on purpose, and where the break leaks rows that is shown as
// app_user too.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { columnArrays, functionCalls, matchedColumns, overlappedColumnArrays } from '../../generator/lint/predicates.ts';
import { hasErrors, lintDatabase, type Finding } from '../../generator/lint/index.ts';
import { ids, useTestDatabase } from '../support/db.ts';
import { TempProject } from '../support/project.ts';

const db = useTestDatabase();
const suffix = randomBytes(4).toString('hex');
const alice = `lint_alice_${suffix}`;
const bob = `lint_bob_${suffix}`;

afterAll(async () => {
  // Roles are cluster-wide: leave none behind for other test files.
  await db.current.admin.unsafe(`DROP OWNED BY ${bob}; DROP ROLE IF EXISTS ${alice}; DROP ROLE IF EXISTS ${bob}`).catch(() => {});
});

// Roles are cluster-wide: test/adversarial/identity makes logins (rg_app_…, rg_report_…) that hold
// pg_write_all_data for a moment, which lint would report while another file runs beside this one.
const lint = async (schemas?: string[]) => (await lintDatabase(db.current.admin, { schemas })).filter((f) => !/^role rg_(app|report)_/.test(f.object));
const find = (findings: Finding[], code: string, object: string) => findings.find((f) => f.code === code && f.object === object);

describe('policy predicates as PostgreSQL prints them', () => {
  it('finds calls and whether a sub-select wraps them', () => {
    const text = "((office_id = ( SELECT s.my_office_id() AS my_office_id)) OR (lower(name) = s.label(id, 'x(y)')) OR (id = ANY (( SELECT s.ids() AS ids)::bigint[])))";
    expect(functionCalls(text)).toEqual([
      { name: 's.my_office_id', schema: 's', wrapped: true },
      { name: 'lower', schema: undefined, wrapped: false },
      { name: 's.label', schema: 's', wrapped: false },
      { name: 's.ids', schema: 's', wrapped: true },
    ]);
    expect(matchedColumns(text).sort()).toEqual(['id', 'office_id']);
  });
  it('finds the column arrays an anyOf arm matches with &&, and those a GIN index is built on', () => {
    const text = '((ARRAY[operator_id, "Sales Id"] && ( SELECT s.my_principal_ids() AS my_principal_ids)) OR (ARRAY[a, b] && ARRAY[c]) OR (ARRAY[(x)::text, y] && ( SELECT s.f() AS f)))';
    expect(overlappedColumnArrays(text)).toEqual([['operator_id', 'Sales Id']]);
    expect(columnArrays('CREATE INDEX i ON s.t USING gin ((ARRAY[operator_id, sales_id, clerk_id]))')).toEqual([['operator_id', 'sales_id', 'clerk_id']]);
  });
});

describe('rowguard lint', () => {
  it('a database migrated from the models lints clean', async () => {
    const findings = await lint();
    expect(findings).toEqual([]);
  });

  it('reports each way RLS is defeated, with a fix, and errors make the exit code non-zero', async () => {
    const admin = db.current.admin;
    await admin.unsafe(`
      INSERT INTO smartoffice.offices (id, name) VALUES (1, 'HQ');
      INSERT INTO smartoffice.users (id, office_id) VALUES (10, 1);
      INSERT INTO smartoffice.proxies VALUES (10, 10);
      INSERT INTO smartoffice.contacts (id, office_id) VALUES (100, 1);
      -- 1. policies without RLS, RLS not forced, and an unprotected table in a secured schema
      ALTER TABLE smartoffice.proxies DISABLE ROW LEVEL SECURITY;
      ALTER TABLE smartoffice.private_proxies NO FORCE ROW LEVEL SECURITY;
      CREATE TABLE smartoffice.audit_log (id bigint PRIMARY KEY, note text);
      -- 2. roles that act as app_user / reporting_user but skip RLS or own tables
      CREATE ROLE ${alice} LOGIN BYPASSRLS IN ROLE app_user;
      CREATE ROLE ${bob} LOGIN IN ROLE reporting_user;
      ALTER TABLE smartoffice.shared_contacts OWNER TO ${bob};
      -- 3. a view over an RLS table with the (superuser) owner's rights, and one that filters
      CREATE VIEW smartoffice.all_contacts AS SELECT id, name FROM smartoffice.contacts;
      GRANT SELECT ON smartoffice.all_contacts TO app_user;
      CREATE VIEW smartoffice.my_contacts AS SELECT c.id FROM smartoffice.contacts c
        WHERE c.private_owner_id = (SELECT smartoffice.current_user_id());
      -- 4. a SECURITY DEFINER function without search_path
      CREATE FUNCTION smartoffice.count_contacts() RETURNS bigint LANGUAGE sql SECURITY DEFINER
        AS 'SELECT count(*) FROM smartoffice.contacts';
      -- 5 and 6. a per-row call, and a matched column without an index
      CREATE POLICY per_row ON smartoffice.contacts FOR SELECT TO app_user USING (office_id = smartoffice.my_office_id());
      CREATE POLICY by_phone ON smartoffice.contacts FOR SELECT TO app_user USING (phone = (SELECT smartoffice.current_user_id()::text));
      -- 7. a read policy calling a function declared without a PARALLEL label (wrapped, once per statement)
      CREATE FUNCTION smartoffice.region_office_ids() RETURNS bigint[] LANGUAGE sql STABLE AS 'SELECT ARRAY[1::bigint]';
      CREATE POLICY by_region ON smartoffice.contacts FOR SELECT TO app_user USING (office_id = ANY ((SELECT smartoffice.region_office_ids())::bigint[]));
      -- 8. an anyOf arm (ARRAY[cols] && set) with no GIN index over that array
      CREATE POLICY by_labels ON smartoffice.contacts FOR SELECT TO app_user USING (ARRAY[name, phone] && (SELECT ARRAY[smartoffice.current_user_id()::text]));
    `);

    // The breaks are real: app_user with no identity reads every proxy and, through the view, every contact.
    const leaked = await db.current.as('smartoffice', null, async (tx) => [await ids(tx, 'SELECT proxy_id AS id FROM smartoffice.proxies'), await ids(tx, 'SELECT id FROM smartoffice.all_contacts')]);
    expect(leaked).toEqual([[10], [100]]);

    const findings = await lint();
    const expected: [string, string, Finding['severity']][] = [
      ['rls-disabled', 'table smartoffice.proxies', 'error'],
      ['rls-not-forced', 'table smartoffice.private_proxies', 'warning'],
      ['table-without-rls', 'table smartoffice.audit_log', 'error'],
      ['role-bypassrls', `role ${alice}`, 'error'],
      ['role-owns-tables', `role ${bob}`, 'error'],
      ['view-owner-rights', 'view smartoffice.all_contacts', 'error'],
      ['definer-search-path', 'function smartoffice.count_contacts()', 'error'],
      ['policy-per-row-call', 'policy per_row on smartoffice.contacts', 'warning'],
      ['policy-column-unindexed', 'column smartoffice.contacts.phone', 'warning'],
      ['policy-parallel-unsafe', 'policy by_region on smartoffice.contacts', 'warning'],
      ['policy-array-unindexed', 'columns smartoffice.contacts (name, phone)', 'warning'],
    ];
    for (const [code, object, severity] of expected) {
      const f = find(findings, code, object);
      expect(f, `${code} on ${object}`).toBeDefined();
      expect(f!.severity).toBe(severity);
      expect(f!.fix.length).toBeGreaterThan(10);
    }
    expect(find(findings, 'view-owner-rights', 'view smartoffice.my_contacts')).toBeUndefined();
    expect(findings).toHaveLength(expected.length);
    expect(find(findings, 'rls-disabled', 'table smartoffice.proxies')!.fix).toContain('ENABLE ROW LEVEL SECURITY');
    expect(find(findings, 'view-owner-rights', 'view smartoffice.all_contacts')!.fix).toBe('ALTER VIEW "smartoffice"."all_contacts" SET (security_invoker = true);');
    expect(find(findings, 'policy-parallel-unsafe', 'policy by_region on smartoffice.contacts')!.fix).toContain('ALTER FUNCTION smartoffice.region_office_ids(…) PARALLEL RESTRICTED;');
    expect(find(findings, 'policy-array-unindexed', 'columns smartoffice.contacts (name, phone)')!.fix).toBe(
      'CREATE INDEX ON "smartoffice"."contacts" USING gin ((ARRAY["name", "phone"])) WITH (fastupdate = off);',
    );
    expect(hasErrors(findings)).toBe(true);

    // --schema limits the objects (roles stay checked: they act in every schema).
    const core = await lint(['rowguard']);
    expect(core.map((f) => f.code).sort()).toEqual(['role-bypassrls']);

    // The command line: text, --json, exit codes.
    const project = new TempProject();
    try {
      const env = { DATABASE_URL: db.current.url };
      const text = await project.cliWithEnv(env, 'lint');
      expect(text.code).toBe(1);
      expect(text.stdout).toContain('ERROR   table smartoffice.proxies');
      expect(text.stdout).toContain('fix: ALTER TABLE "smartoffice"."proxies" ENABLE ROW LEVEL SECURITY;');
      const json = await project.cliWithEnv(env, 'lint', '--json');
      expect(json.code).toBe(1);
      const report = JSON.parse(json.stdout) as { errors: number; warnings: number; findings: Finding[] };
      expect([report.errors, report.warnings]).toEqual([6, 5]);

      // Fixing what lint says brings it back to clean.
      for (const f of findings.filter((x) => ['rls-disabled', 'rls-not-forced', 'view-owner-rights', 'policy-array-unindexed'].includes(x.code))) await db.current.admin.unsafe(f.fix);
      await db.current.admin.unsafe(`
        DROP TABLE smartoffice.audit_log; DROP VIEW smartoffice.all_contacts, smartoffice.my_contacts;
        DROP POLICY per_row ON smartoffice.contacts; DROP POLICY by_phone ON smartoffice.contacts;
        ALTER TABLE smartoffice.shared_contacts OWNER TO CURRENT_USER; DROP ROLE ${alice}; DROP ROLE ${bob};
        DROP FUNCTION smartoffice.count_contacts();
        -- The labelled function keeps its policy, which lint then accepts.
        ALTER FUNCTION smartoffice.region_office_ids() PARALLEL RESTRICTED;`);
      const clean = await project.cliWithEnv(env, 'lint', '--json');
      expect(JSON.parse(clean.stdout)).toEqual({ errors: 0, warnings: 0, findings: [] });
      expect(clean.code).toBe(0);
      expect((await project.cliWithEnv({ DATABASE_URL: '' }, 'lint')).code).toBe(2);
    } finally {
      project.remove();
    }
  });

  it('a planner-hint mark whose marker view or grant is gone: statements on its tables fail to plan, lint says which, and its fix restores them', async () => {
    const admin = db.current.admin;
    const [view, grant] = ['rg_plan_smartoffice_few_enterprise_office_ids', 'rg_plan_smartoffice_not_i_have_enterprise_view'];
    const count = () => db.current.as('smartoffice', null, (tx) => tx.unsafe('SELECT count(*)::int AS n FROM smartoffice.contacts'));
    const before = await count();
    await admin.unsafe(`DROP VIEW "${view}"."${view}"; REVOKE USAGE ON SCHEMA "${grant}" FROM PUBLIC`);
    await expect(count()).rejects.toThrow(/does not exist|permission denied for schema/);
    const findings = (await lint()).filter((f) => f.code === 'hint-marker-broken');
    expect(findings.map((f) => [f.object, f.severity])).toEqual([
      [`schema ${view}`, 'error'],
      [`schema ${grant}`, 'error'],
    ]);
    expect(findings[0]!.message).toContain('has lost its marker view: smartoffice.plan_hint_enterprise_office_ids()');
    expect(findings[0]!.fix).toBe(`CREATE VIEW "${view}"."${view}" AS SELECT;`);
    expect(findings[1]!.fix).toBe(`GRANT USAGE ON SCHEMA "${grant}" TO PUBLIC;`);
    for (const f of findings) await admin.unsafe(f.fix);
    expect(await count()).toEqual(before);
    expect(await lint()).toEqual([]);
  });

  it('a pattern operator marked LEAKPROOF (README, "Text searches on a large table"): ILIKE then runs on rows the policies hide, its estimates read their statistics, and lint says so', async () => {
    const admin = db.current.admin;
    // Contacts the user may not see: one whose name is a malformed LIKE pattern (a lone escape
    // character), and 2,000 of one name, which ANALYZE puts among the column's most common values.
    await admin.unsafe(`
      INSERT INTO smartoffice.offices (id, name) VALUES (901, 'theirs'), (902, 'mine');
      INSERT INTO smartoffice.users (id, office_id) VALUES (9020, 902);
      INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (9010, 901, '\\'), (9020, 902, 'visible');
      INSERT INTO smartoffice.contacts (id, office_id, name) SELECT 100000 + k, 901, 'hidden name' FROM generate_series(1, 2000) k;
      ANALYZE smartoffice.contacts`);
    // A sequential scan, which the user may ask for: every row reaches the filter.
    const probe = () =>
      db.current.as('smartoffice', 9020, async (tx) => {
        await tx.unsafe('SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off');
        return ids(tx, "SELECT id FROM smartoffice.contacts WHERE 'x' ILIKE name");
      });
    // The planner's estimates for two patterns of one shape, one matching the hidden names.
    const estimates = () =>
      db.current.as('smartoffice', 9020, async (tx) => {
        const rows = async (pattern: string) => {
          const [plan] = (await tx.unsafe(`EXPLAIN (FORMAT JSON) SELECT id FROM smartoffice.contacts WHERE name ILIKE '${pattern}'`)) as unknown as { 'QUERY PLAN': { Plan: { 'Plan Rows': number } }[] }[];
          return plan!['QUERY PLAN'][0]!.Plan['Plan Rows'];
        };
        return [await rows('hidden%'), await rows('zzzzzz%')] as const;
      });
    try {
      expect(await probe()).toEqual([]);
      const [hidden, other] = await estimates();
      expect(hidden).toBe(other);
      await admin.unsafe('ALTER FUNCTION pg_catalog.texticlike(text, text) LEAKPROOF');
      // The hidden row's name reaches ILIKE before the policy: its error tells the user it is there.
      await expect(probe()).rejects.toThrow(/must not end with escape character/);
      // And the estimate now tells a pattern that hidden rows match from one that none does.
      const [hiddenMarked, otherMarked] = await estimates();
      expect(hiddenMarked).toBeGreaterThan(10 * otherMarked);
      const findings = (await lint()).filter((f) => f.code === 'pattern-operator-leakproof');
      expect(findings.map((f) => [f.object, f.severity, f.fix])).toEqual([
        ['function texticlike(text,text)', 'warning', 'ALTER FUNCTION texticlike(text,text) NOT LEAKPROOF;'],
      ]);
      expect(findings[0]!.message).toContain('the function of ~~* is LEAKPROOF');
      await admin.unsafe(findings[0]!.fix);
      expect(await probe()).toEqual([]);
      expect(await estimates()).toEqual([hidden, other]);
    } finally {
      await admin.unsafe(`
        ALTER FUNCTION pg_catalog.texticlike(text, text) NOT LEAKPROOF;
        DELETE FROM smartoffice.contacts WHERE id IN (9010, 9020) OR id > 100000;
        DELETE FROM smartoffice.users WHERE id = 9020;
        DELETE FROM smartoffice.offices WHERE id IN (901, 902)`);
    }
    expect(await lint()).toEqual([]);
  });

  it("a grant on the identity record's sequences (which turns the record off, test/adversarial/identity): lint names each sequence, and its fix revokes the grant", async () => {
    const admin = db.current.admin;
    // A schema-wide grant on the model's sequences (for serial columns) does not reach the record.
    // (To reporting_user, which holds no grant of its own there to be revoked after.)
    await admin.unsafe('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA policycenter TO reporting_user');
    expect((await lint()).filter((f) => f.code === 'identity-record-granted')).toEqual([]);
    await admin.unsafe('REVOKE ALL ON ALL SEQUENCES IN SCHEMA policycenter FROM reporting_user');
    // A grant on the record's own sequences does.
    await admin.unsafe('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA rg_record_policycenter TO app_user');
    try {
      const findings = (await lint()).filter((f) => f.code === 'identity-record-granted');
      expect(findings.map((f) => [f.object, f.severity, f.fix])).toEqual([
        ['sequence "rg_record_policycenter"."rg_acting_since"', 'error', 'REVOKE ALL ON SEQUENCE "rg_record_policycenter"."rg_acting_since" FROM app_user;'],
        ['sequence "rg_record_policycenter"."rg_acting_user"', 'error', 'REVOKE ALL ON SEQUENCE "rg_record_policycenter"."rg_acting_user" FROM app_user;'],
      ]);
      expect(findings[0]!.message).toContain('policycenter.set_session records no identity');
      expect(findings[0]!.message).toContain('can write a record by hand');
      for (const f of findings) await admin.unsafe(f.fix);
      // SELECT alone reads the record: a warning.
      await admin.unsafe('GRANT SELECT ON SEQUENCE rg_record_policycenter.rg_acting_user TO reporting_user');
      expect((await lint()).filter((f) => f.code === 'identity-record-granted').map((f) => [f.object, f.severity])).toEqual([
        ['sequence "rg_record_policycenter"."rg_acting_user"', 'warning'],
      ]);
      await admin.unsafe('REVOKE SELECT ON SEQUENCE rg_record_policycenter.rg_acting_user FROM reporting_user');
      // A database not yet migrated past 0149 keeps the record in the model's schema: still checked.
      await admin.unsafe('CREATE SEQUENCE policycenter.rg_acting_user; GRANT USAGE ON SEQUENCE policycenter.rg_acting_user TO app_user');
      try {
        const old = (await lint()).filter((f) => f.code === 'identity-record-granted');
        expect(old.map((f) => [f.object, f.severity])).toEqual([['sequence "policycenter"."rg_acting_user"', 'error']]);
        expect(old[0]!.message).toContain('policycenter.set_session records no identity');
      } finally {
        await admin.unsafe('DROP SEQUENCE policycenter.rg_acting_user');
      }
      // An application login in pg_write_all_data, which no ACL shows.
      await admin.unsafe(`CREATE ROLE ${alice} LOGIN IN ROLE app_user, pg_write_all_data`);
      const member = (await lint()).filter((f) => f.code === 'identity-record-granted');
      expect(member.map((f) => [f.object, f.severity, f.fix])).toEqual([[`role ${alice}`, 'error', `REVOKE "pg_write_all_data" FROM "${alice}";`]]);
      await admin.unsafe(member[0]!.fix);
      await admin.unsafe(`DROP ROLE ${alice}`);
    } finally {
      await admin.unsafe('REVOKE ALL ON ALL SEQUENCES IN SCHEMA rg_record_policycenter FROM app_user');
      await admin.unsafe(`DROP ROLE IF EXISTS ${alice}`);
    }
    expect(await lint()).toEqual([]);
  });
});

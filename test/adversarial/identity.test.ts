// Identity and bypass: the identity lives exactly as long as the transaction on the connection
// that set it, only set_session can set it, and the application path never runs as a role that
// skips row-level security.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { closureNames } from '../../generator/emit/closure.ts';
import { actingSequences, identitySettings, recordedIdSql, recordSequences, TRANSACTION_START_US } from '../../generator/emit/functions.ts';
import { sessionTokenSql } from '../../generator/emit/roles.ts';
import { ident } from '../../generator/sql/print.ts';
import { rolledBack, sqlState, urlAs, useTestDatabase } from '../support/db.ts';
import { loadSamples, models, personasOf, sampleOf, tableSql, unknownId } from '../support/models.ts';

const db = useTestDatabase(loadSamples);

for (const model of models) {
  const S = ident(model.schema);
  const persona = personasOf(model.schema)[0];
  const setting = `rowguard.${model.schema}_user_id`;
  const someTable = tableSql(model, model.tables[0]!.name);

  describe.runIf(model.identity && persona !== undefined)(`${model.schema}: identity`, () => {
    const whoAmI = `SELECT ${S}.current_user_id()::text AS id`;

    it('is gone after COMMIT and after ROLLBACK on the same connection, and after ROLLBACK TO SAVEPOINT', async () => {
      const conn = await db.current.admin.reserve();
      try {
        for (const end of ['COMMIT', 'ROLLBACK']) {
          await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
          await conn.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
          expect((await conn.unsafe(whoAmI))[0]!.id).toBe(String(persona));
          await conn.unsafe(end);
          await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
          expect((await conn.unsafe(whoAmI))[0]!.id, `after ${end}`).toBeNull();
          // On a reused connection the setting reads '' rather than NULL: still nobody.
          expect((await conn.unsafe(`SELECT current_setting($1, true) AS v`, [setting]))[0]!.v).toBe('');
          await conn.unsafe('ROLLBACK');
        }
        await conn.unsafe('BEGIN; SET LOCAL ROLE app_user; SAVEPOINT s');
        await conn.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
        await conn.unsafe('ROLLBACK TO SAVEPOINT s');
        expect((await conn.unsafe(whoAmI))[0]!.id).toBeNull();
        await conn.unsafe('ROLLBACK');
      } finally {
        conn.release();
      }
    });

    it('survives the application changing TimeZone, DateStyle or IntervalStyle after set_session', async () => {
      const answer = async (settings: string): Promise<[unknown, unknown]> =>
        db.current.as(model.schema, persona!, async (tx) => {
          if (settings) await tx.unsafe(settings);
          const id = (await tx.unsafe(whoAmI))[0]!.id;
          const n = (await tx.unsafe(`SELECT count(*)::int AS n FROM ${someTable}`))[0]!.n;
          return [id, n];
        });
      const plain = await answer('');
      expect(plain[0]).toBe(String(persona));
      for (const settings of [
        "SET LOCAL TimeZone = 'Pacific/Kiritimati'",
        "SET LOCAL DateStyle = 'German, DMY'",
        "SET LOCAL IntervalStyle = 'sql_standard'; SET LOCAL TimeZone = 'America/St_Johns'",
      ]) {
        expect(await answer(settings), settings).toEqual(plain);
      }
    });

    it("'' and NULL settings, and a session-level SET, are no identity", async () => {
      for (const value of ['', ' ', String(persona)]) {
        for (const local of [true, false]) {
          const conn = await db.current.admin.reserve();
          try {
            await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
            await conn.unsafe(`SELECT set_config($1, $2, ${local})`, [setting, value]);
            expect((await conn.unsafe(whoAmI))[0]!.id, JSON.stringify({ value, local })).toBeNull();
            await conn.unsafe('COMMIT');
            await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
            expect((await conn.unsafe(whoAmI))[0]!.id).toBeNull();
            await conn.unsafe('ROLLBACK');
          } finally {
            await conn.unsafe('RESET ALL').catch(() => {});
            conn.release();
          }
        }
      }
    });

    it('never crosses connections, and a copied signature does not replay elsewhere or later', async () => {
      const a = await db.current.admin.reserve();
      const b = await db.current.admin.reserve();
      try {
        await a.unsafe('BEGIN; SET LOCAL ROLE app_user');
        await a.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
        const [stolen] = await a.unsafe(`SELECT current_setting($1) AS id, current_setting($2) AS token`, [setting, `rowguard.${model.schema}_token`]);
        await b.unsafe('BEGIN; SET LOCAL ROLE app_user');
        expect((await b.unsafe(whoAmI))[0]!.id).toBeNull();
        // Same values on another backend: the signature binds pid and transaction start.
        await b.unsafe(`SELECT set_config($1, $2, true), set_config($3, $4, true)`, [setting, stolen!.id, `rowguard.${model.schema}_token`, stolen!.token]);
        expect((await b.unsafe(whoAmI))[0]!.id).toBeNull();
        expect((await b.unsafe(`SELECT count(*)::int AS n FROM ${someTable}`).catch(() => [{ n: 0 }]))[0]!.n).toBe(0);
        await b.unsafe('ROLLBACK');
        await a.unsafe('COMMIT');
        // Same backend, a later transaction.
        await a.unsafe('BEGIN; SET LOCAL ROLE app_user');
        await a.unsafe(`SELECT set_config($1, $2, true), set_config($3, $4, true)`, [setting, stolen!.id, `rowguard.${model.schema}_token`, stolen!.token]);
        expect((await a.unsafe(whoAmI))[0]!.id).toBeNull();
        await a.unsafe('ROLLBACK');
      } finally {
        a.release();
        b.release();
      }
    });

    // An integer id is recorded as itself; another (Collect!'s text ids) as its digest under a nonce.
    const acting = actingSequences(model);
    if (acting) it('the identity is also recorded in definer-only sequences, and counts only in its transaction and for logins that may call set_session', async () => {
      const names = identitySettings(model.schema);
      const second = personasOf(model.schema).find((p) => String(p) !== String(persona));
      const conn = await db.current.admin.reserve();
      const who = async () => (await conn.unsafe(whoAmI))[0]!.id as string | null;
      const actingSetting = async () => (await conn.unsafe('SELECT current_setting($1, true) AS v', [names.acting]))[0]!.v as string | null;
      // What set_session writes into the setting: this transaction's start, in microseconds.
      const started = `${TRANSACTION_START_US}::text`;
      try {
        await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
        await conn.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
        expect(await actingSetting()).toBe((await conn.unsafe(`SELECT ${started} AS v`))[0]!.v);
        // With the signature cleared, the record alone answers, for the id set_session set.
        await conn.unsafe(`SELECT set_config($1, '', true)`, [names.token]);
        expect(await who()).toBe(String(persona));
        // Another id claimed by hand: the record does not vouch for it, and it carries no signature.
        await conn.unsafe('SELECT set_config($1, $2, true)', [setting, String(unknownId(model))]);
        expect(await who()).toBeNull();
        // app_user may neither read nor write the record, nor may reporting_user.
        for (const role of ['app_user', 'reporting_user']) {
          for (const seq of recordSequences(acting)) {
            const [row] = await db.current.admin.unsafe(`SELECT has_sequence_privilege($1, $2, 'SELECT, UPDATE, USAGE') AS any`, [role, seq]);
            expect(row!.any, `${role} on ${seq}`).toBe(false);
          }
        }
        // By name (the record's schema is closed to app_user) and by OID (the sequences themselves are).
        const oids = Object.fromEntries(
          await Promise.all(recordSequences(acting).map(async (seq) => [seq, (await db.current.admin.unsafe(`SELECT $1::regclass::oid AS oid`, [seq]))[0]!.oid])),
        ) as Record<string, number>;
        const sequenceCalls = [`SELECT currval('${acting.user}')`, `SELECT setval('${acting.user}', 1)`, `SELECT nextval('${acting.since}')`];
        sequenceCalls.push(`SELECT currval(${oids[acting.user]})`, `SELECT setval(${oids[acting.user]}, 1)`, `SELECT nextval(${oids[acting.since]})`);
        if (acting.nonce) sequenceCalls.push(`SELECT currval('${acting.nonce}')`, `SELECT currval(${oids[acting.nonce]})`, `SELECT last_value FROM ${acting.nonce}`);
        for (const q of sequenceCalls) {
          await conn.unsafe('SAVEPOINT p');
          expect(await sqlState(conn.unsafe(q)), q).toBe('42501');
          await conn.unsafe('ROLLBACK TO SAVEPOINT p');
        }
        await conn.unsafe('COMMIT');
        // A later transaction on the same connection: the id and the setting written by hand (with
        // this transaction's start) count for nothing, the record being of the transaction before.
        await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
        await conn.unsafe(`SELECT set_config($1, $2, true), set_config($3, ${started}, true)`, [setting, String(persona), names.acting]);
        expect(await who()).toBeNull();
        await conn.unsafe('ROLLBACK');
        // A stale setting left at session level (a pooled client's SET) is skipped: no identity, no error.
        await conn.unsafe(`SELECT set_config($1, $2, false), set_config($3, 'on', false)`, [setting, String(persona), names.acting]);
        await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
        expect(await who()).toBeNull();
        await conn.unsafe('ROLLBACK');
        await conn.unsafe('RESET ALL');
        // A set_session undone by ROLLBACK TO SAVEPOINT: the one before it acts again (setval is
        // not undone, the settings are, and the record then vouches for neither).
        if (second !== undefined) {
          await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
          await conn.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
          await conn.unsafe('SAVEPOINT s');
          await conn.unsafe(`SELECT ${S}.set_session($1)`, [second]);
          expect(await who()).toBe(String(second));
          await conn.unsafe('ROLLBACK TO SAVEPOINT s');
          expect(await who()).toBe(String(persona));
          await conn.unsafe('ROLLBACK');
        }
        // A read-only transaction may not setval: there the signature alone serves.
        await conn.unsafe('BEGIN READ ONLY; SET LOCAL ROLE app_user');
        await conn.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
        expect(await actingSetting()).toBe('');
        expect(await who()).toBe(String(persona));
        await conn.unsafe(`SELECT set_config($1, '', true)`, [names.token]);
        expect(await who()).toBeNull();
        await conn.unsafe('ROLLBACK');
      } finally {
        await conn.unsafe('ROLLBACK').catch(() => {}); // a failed step leaves its transaction open
        conn.release();
      }
      // On a connection where set_session never ran there is no record to read: a setting forged
      // with this transaction's start is an error (currval "not yet defined in this session") for
      // the forger, never an identity.
      const fresh = postgres(db.current.url, { max: 1, onnotice: () => {} });
      try {
        const forged = fresh.begin(async (tx) => {
          await tx.unsafe('SET LOCAL ROLE app_user');
          await tx.unsafe(`SELECT set_config($1, $2, true), set_config($3, ${started}, true)`, [setting, String(persona), names.acting]);
          return tx.unsafe(whoAmI);
        });
        expect(await sqlState(forged)).toBe('55000');
      } finally {
        await fresh.end();
      }
      // A login that is not a member of app_user (a reporting login) cannot call set_session, so the
      // record does not count for it, even where a DBA's grant (pg_write_all_data) lets it write the
      // sequences: it writes them, claims the id, and is still nobody.
      const login = `rg_report_${randomBytes(4).toString('hex')}`;
      await db.current.admin.unsafe(`CREATE ROLE ${login} LOGIN PASSWORD 'pw' IN ROLE reporting_user, pg_write_all_data`);
      const report = postgres(urlAs(db.current.url, login, 'pw'), { max: 1, onnotice: () => {} });
      try {
        const id = await report.begin(async (tx) => {
          // The record as set_session writes it (for a digest, under a nonce of the forger's choosing).
          const record = acting.nonce
            ? `setval('${acting.nonce}', 7), setval('${acting.user}', ${recordedIdSql('7::bigint', '$1::text')})`
            : `setval('${acting.user}', $1)`;
          await tx.unsafe(`SELECT ${record}, setval('${acting.since}', ${TRANSACTION_START_US})`, [persona!]);
          await tx.unsafe(`SELECT set_config($1, $2, true), set_config($3, ${started}, true)`, [setting, String(persona), names.acting]);
          return (await tx.unsafe(whoAmI))[0]!.id as string | null;
        });
        expect(id).toBeNull();
      } finally {
        await report.end();
        await db.current.admin.unsafe(`DROP ROLE ${login}`);
      }
    });

    if (acting?.nonce) it('an id that is not an integer is recorded as its digest under a nonce each set_session draws anew', async () => {
      const conn = await db.current.admin.reserve();
      try {
        const recorded: { nonce: string; user: string; digest: string }[] = [];
        for (let i = 0; i < 2; i++) {
          await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
          await conn.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
          await conn.unsafe('RESET ROLE');
          const [row] = await conn.unsafe(
            `SELECT currval('${acting.nonce}')::text AS nonce, currval('${acting.user}')::text AS user, ${recordedIdSql(`currval('${acting.nonce}')`, '$1::text')}::text AS digest`,
            [String(persona)],
          );
          recorded.push(row as unknown as { nonce: string; user: string; digest: string });
          await conn.unsafe('ROLLBACK');
        }
        for (const r of recorded) expect(r.user).toBe(r.digest);
        expect(recorded[0]!.nonce).not.toBe(recorded[1]!.nonce);
        expect(recorded[0]!.user).not.toBe(recorded[1]!.user);
      } finally {
        await conn.unsafe('ROLLBACK').catch(() => {});
        conn.release();
      }
    });

    if (acting) it("a DBA's grant on the record's sequences, to any role, or pg_write_all_data or pg_read_all_data for the login, turns the record off: the signature alone serves", async () => {
      const names = identitySettings(model.schema);
      const app = `rg_app_${randomBytes(4).toString('hex')}`;
      await db.current.admin.unsafe(`CREATE ROLE ${app} LOGIN PASSWORD 'pw' IN ROLE app_user`);
      const login = postgres(urlAs(db.current.url, app, 'pw'), { max: 1, onnotice: () => {} });
      /** set_session as the login: what it recorded (the acting setting), who acts, and who acts with the signature cleared. */
      const session = () =>
        login.begin(async (tx) => {
          await tx.unsafe('SET LOCAL ROLE app_user');
          await tx.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
          const [row] = await tx.unsafe(`SELECT current_setting($1, true) AS acting, ${S}.current_user_id()::text AS id`, [names.acting]);
          await tx.unsafe(`SELECT set_config($1, '', true)`, [names.token]);
          const [bare] = await tx.unsafe(`SELECT ${S}.current_user_id()::text AS id`);
          return [row!.acting === '' ? 'not recorded' : 'recorded', row!.id, bare!.id];
        });
      const [{ oid }] = (await db.current.admin.unsafe(`SELECT $1::regclass::oid AS oid`, [acting.user])) as unknown as [{ oid: number }];
      // With USAGE a caller could nextval() the id sequence and claim the number: so no record.
      const forged = () =>
        login.begin(async (tx) => {
          await tx.unsafe('SET LOCAL ROLE app_user');
          await tx.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
          // By OID: app_user may not use the record's schema, so not its sequences by name.
          const [{ next }] = (await tx.unsafe(`SELECT nextval(${oid})::text AS next`)) as unknown as [{ next: string }];
          await tx.unsafe('SELECT set_config($1, $2, true)', [setting, next]);
          return (await tx.unsafe(whoAmI))[0]!.id as string | null;
        });
      const grants = [
        [`GRANT USAGE ON SEQUENCE ${acting.user} TO app_user`, `REVOKE USAGE ON SEQUENCE ${acting.user} FROM app_user`],
        [`GRANT SELECT ON SEQUENCE ${acting.nonce ?? acting.since} TO ${app}`, `REVOKE SELECT ON SEQUENCE ${acting.nonce ?? acting.since} FROM ${app}`],
        [`GRANT pg_write_all_data TO ${app}`, `REVOKE pg_write_all_data FROM ${app}`],
        [`GRANT pg_read_all_data TO ${app}`, `REVOKE pg_read_all_data FROM ${app}`],
        // Any grantee counts, one this login could reach only by SET ROLE included.
        [`GRANT UPDATE ON SEQUENCE ${acting.since} TO reporting_user`, `REVOKE UPDATE ON SEQUENCE ${acting.since} FROM reporting_user`],
      ];
      try {
        expect(await session(), 'no grant').toEqual(['recorded', String(persona), String(persona)]);
        // A grant on every sequence of the model's schema (for serial columns, say) does not reach
        // the record's, which are in a schema of their own (default privileges: uuid-identity).
        // (To this login only: app_user holds grants of its own on the model's other sequences.)
        await db.current.admin.unsafe(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${S} TO ${app}`);
        try {
          expect(await session(), 'every sequence of the model schema').toEqual(['recorded', String(persona), String(persona)]);
        } finally {
          await db.current.admin.unsafe(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${S} FROM ${app}`);
        }
        for (const [grant, revoke] of grants) {
          await db.current.admin.unsafe(grant!);
          try {
            expect(await session(), grant).toEqual(['not recorded', String(persona), null]);
            if (grant!.includes('USAGE')) expect(await forged(), 'a number from nextval claimed').toBeNull();
          } finally {
            await db.current.admin.unsafe(revoke!);
          }
        }
        expect(await session(), 'grants revoked').toEqual(['recorded', String(persona), String(persona)]);
      } finally {
        await login.end();
        await db.current.admin.unsafe(`DROP ROLE ${app}`);
      }
    });

    it('a new signing key retires signatures made with the old one, and with no key nobody is acting', async () => {
      const [{ key: old }] = (await db.current.admin.unsafe('SELECT key FROM rowguard.session_key')) as unknown as [{ key: Buffer }];
      /**
       * On a new connection (where the token setting reads NULL, not ''): sets the persona's id
       * and, unless `key` is null, signs it with `key` as set_session would; asks who is acting.
       */
      const actingWith = async (key: Buffer | null): Promise<string | null> => {
        const fresh = postgres(db.current.url, { max: 1, onnotice: () => {} });
        try {
          return await fresh.begin(async (tx) => {
            await tx.unsafe('SELECT set_config($1, $2, true)', [setting, String(persona)]);
            if (key) {
              await tx.unsafe(
                `SELECT set_config($1, ${sessionTokenSql('k', '$3', '$4', '')}, true) FROM (SELECT $2::bytea AS key) AS k`,
                [`rowguard.${model.schema}_token`, key, model.schema, String(persona)],
              );
            }
            await tx.unsafe('SET LOCAL ROLE app_user');
            return (await tx.unsafe(whoAmI))[0]!.id as string | null;
          });
        } finally {
          await fresh.end();
        }
      };
      try {
        // Signed with the real key, by hand: it counts (so each refusal below is the key's doing).
        expect(await actingWith(old)).toBe(String(persona));
        expect(await actingWith(null), 'an id with no token').toBeNull();
        await db.current.admin.unsafe('UPDATE rowguard.session_key SET key = $1', [randomBytes(32)]);
        expect(await actingWith(old), 'the old key, after the change').toBeNull();
        expect(await db.current.as(model.schema, persona!, async (tx) => (await tx.unsafe(whoAmI))[0]!.id), 'set_session signs with the new key').toBe(String(persona));
        // No key: its signature is NULL, which must not match a missing token (NULL) either.
        await db.current.admin.unsafe('DELETE FROM rowguard.session_key');
        expect(await actingWith(null), 'no key, an id with no token').toBeNull();
        expect(await db.current.as(model.schema, persona!, async (tx) => (await tx.unsafe(whoAmI))[0]!.id), 'no key, set_session').toBeNull();
        expect(await actingWith(old), 'no key, the old signature').toBeNull();
      } finally {
        await db.current.admin.unsafe('DELETE FROM rowguard.session_key');
        await db.current.admin.unsafe('INSERT INTO rowguard.session_key (key) VALUES ($1)', [old]);
      }
    });

    it('a prepared statement, generic plan or not, answers for the identity of each execution', async () => {
      const personas = personasOf(model.schema);
      // The sample's main table: its personas see different rows by construction.
      const table = model.tables.find((t) => t.name === sampleOf(model.schema)?.table);
      if (!table) return;
      const q = `SELECT count(*)::int AS n FROM ${tableSql(model, table.name)}`;
      const expected = new Map<string, number>();
      for (const id of personas) expected.set(String(id), await db.current.as(model.schema, id, async (tx) => (await tx.unsafe(q))[0]!.n as number));
      expect(new Set(expected.values()).size, 'personas that see different row counts').toBeGreaterThan(1);
      const conn = await db.current.admin.reserve();
      try {
        for (const mode of ['force_generic_plan', 'force_custom_plan', 'auto']) {
          await conn.unsafe(`SET plan_cache_mode = ${mode}`);
          await conn.unsafe(`PREPARE rg_probe AS ${q}`);
          for (const id of [...personas, ...personas].reverse()) {
            await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
            await conn.unsafe(`SELECT ${S}.set_session($1)`, [id]);
            expect((await conn.unsafe('EXECUTE rg_probe'))[0]!.n, `${mode} as ${id}`).toBe(expected.get(String(id)));
            await conn.unsafe('COMMIT');
          }
          await conn.unsafe('BEGIN; SET LOCAL ROLE app_user');
          expect((await conn.unsafe('EXECUTE rg_probe'))[0]!.n, `${mode} with no identity`).toBe(0);
          await conn.unsafe('COMMIT');
          await conn.unsafe('DEALLOCATE rg_probe');
        }
      } finally {
        await conn.unsafe('RESET plan_cache_mode').catch(() => {});
        conn.release();
      }
    });

    it("facts still answer when the acting user's own row is gone mid-transaction (its columns read as NULL)", async () => {
      // Facts read the columns they need of the acting user's row once, into a record (emit/expr
      // identityRowRead). With no row the record's fields are NULL, as the sub-selects were.
      const id = model.identity!;
      await rolledBack(db.current.admin, async (tx) => {
        await tx.unsafe('SET LOCAL ROLE app_user');
        await tx.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
        await tx.unsafe('RESET ROLE');
        await tx.unsafe('SET LOCAL session_replication_role = replica'); // past the foreign keys
        const gone = await tx.unsafe(`DELETE FROM ${tableSql(model, id.table)} WHERE ${ident(id.column)} = $1`, [persona!]);
        expect(gone.count).toBe(1);
        await tx.unsafe('SET LOCAL ROLE app_user');
        expect((await tx.unsafe(whoAmI))[0]!.id).toBe(String(persona));
        for (const fact of model.facts) {
          const [row] = await tx.unsafe(`SELECT ${S}.${ident(fact.name)}()::text AS v`);
          expect(row, fact.name).toBeDefined();
        }
        if (model.schema === 'smartoffice') expect((await tx.unsafe(`SELECT smartoffice.my_office_id() AS v`))[0]!.v).toBeNull();
      });
    });

    it('refuses an unknown id (28000) and NULL (22004)', async () => {
      expect(await sqlState(db.current.as(model.schema, unknownId(model), async () => undefined))).toBe('28000');
      expect(await sqlState(db.current.as(model.schema, null, (tx) => tx.unsafe(`SELECT ${S}.set_session(NULL)`)))).toBe('22004');
    });

    it('refuses an identity of the wrong type', async () => {
      const numeric = /int|numeric/.test(model.identity!.type);
      const wrong = numeric ? [`'not-a-number'`, `1.5::numeric`, `true`, `'11'::bytea`, `now()`] : [`42::bigint`, `true`, `now()`, `'{}'::jsonb`];
      for (const arg of wrong) {
        const state = await sqlState(db.current.as(model.schema, null, (tx) => tx.unsafe(`SELECT ${S}.set_session(${arg})`)));
        // 22P02 bad text for the type; 42883 no set_session takes that type.
        expect(['22P02', '42883'], `set_session(${arg})`).toContain(state);
      }
    });

    it('an identity of one model opens no table of another', async () => {
      for (const other of models.filter((m) => m.schema !== model.schema)) {
        await db.current.as(model.schema, persona!, async (tx) => {
          for (const t of other.tables) {
            const n = await tx.unsafe(`SELECT count(*)::int AS n FROM ${tableSql(other, t.name)}`).then((r) => r[0]!.n as number, (e: { code?: string }) => (e.code === '42501' ? 0 : -1));
            expect(n, `${other.schema}.${t.name}`).toBe(0);
          }
        });
      }
    });
  });

  describe.runIf(model.identity && persona !== undefined)(`${model.schema}: bypass`, () => {
    it('set_session refuses a superuser and a BYPASSRLS role (42501)', async () => {
      expect(await sqlState(db.current.admin.begin((tx) => tx.unsafe(`SELECT ${S}.set_session($1)`, [persona!])))).toBe('42501');
      const role = `rg_bypass_${randomBytes(4).toString('hex')}`;
      await db.current.admin.unsafe(`CREATE ROLE ${role} NOLOGIN BYPASSRLS; GRANT app_user TO ${role}`);
      try {
        const state = await sqlState(db.current.admin.begin(async (tx) => {
          await tx.unsafe(`SET LOCAL ROLE ${role}`);
          await tx.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
        }));
        expect(state).toBe('42501');
      } finally {
        await db.current.admin.unsafe(`DROP ROLE ${role}`);
      }
    });

    it("with row-level security turned off on login_bindings (which set_session asks whether a role bypasses it), set_session refuses everyone (55000) and says how to turn it back on", async () => {
      const table = `${S}.login_bindings`;
      const attempt = () =>
        db.current.admin.begin(async (tx) => {
          await tx.unsafe('SET LOCAL ROLE app_user');
          await tx.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
        });
      for (const off of ['NO FORCE ROW LEVEL SECURITY', 'DISABLE ROW LEVEL SECURITY']) {
        await db.current.admin.unsafe(`ALTER TABLE ${table} ${off}`);
        try {
          const error = (await attempt().then(() => undefined, (e: unknown) => e)) as { code?: string; message?: string; hint?: string } | undefined;
          // NO FORCE alone keeps RLS active for app_user, which does not own the table.
          if (off.startsWith('NO FORCE')) expect(error, off).toBeUndefined();
          else {
            expect(error?.code, off).toBe('55000');
            expect(error?.message).toContain(`row-level security is not enabled and forced on ${model.schema}.login_bindings`);
            expect(error?.hint).toBe(`ALTER TABLE ${S}."login_bindings" ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`);
          }
        } finally {
          await db.current.admin.unsafe(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`);
        }
      }
      await attempt();
    });

    it('app_user and reporting_user are not superusers, do not bypass RLS, own nothing and cannot become a role that does', async () => {
      const roles = await db.current.admin`
        SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcanlogin,
               EXISTS (SELECT 1 FROM pg_roles s WHERE (s.rolsuper OR s.rolbypassrls) AND s.rolname <> r.rolname AND pg_has_role(r.oid, s.oid, 'MEMBER')) AS reaches_bypass
        FROM pg_roles r WHERE r.rolname IN ('app_user', 'reporting_user') ORDER BY 1`;
      expect(roles.map((r) => ({ ...r }))).toEqual([
        { rolname: 'app_user', rolsuper: false, rolbypassrls: false, rolcanlogin: false, reaches_bypass: false },
        { rolname: 'reporting_user', rolsuper: false, rolbypassrls: false, rolcanlogin: false, reaches_bypass: false },
      ]);
      const owned = await db.current.admin`
        SELECT c.oid::regclass::text AS name FROM pg_class c WHERE pg_get_userbyid(c.relowner) IN ('app_user', 'reporting_user')
        UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p WHERE pg_get_userbyid(p.proowner) IN ('app_user', 'reporting_user')
        UNION ALL SELECT n.nspname FROM pg_namespace n WHERE pg_get_userbyid(n.nspowner) IN ('app_user', 'reporting_user')`;
      expect(owned.map((r) => r.name)).toEqual([]);
      // The application's own login (a member of app_user, not a superuser session that could
      // SET ROLE anywhere) cannot become the definer or read the signing key.
      const login = `rg_app_${randomBytes(4).toString('hex')}`;
      await db.current.admin.unsafe(`CREATE ROLE ${login} LOGIN PASSWORD 'pw' IN ROLE app_user`);
      const app = postgres(urlAs(db.current.url, login, 'pw'), { max: 1, onnotice: () => {} });
      try {
        expect(await sqlState(app.begin((tx) => tx.unsafe('SET LOCAL ROLE rowguard_definer')))).toBe('42501');
        expect(await sqlState(app.begin((tx) => tx.unsafe('SET LOCAL ROLE postgres')))).toBe('42501');
        expect(await sqlState(app.begin((tx) => tx.unsafe('SELECT * FROM rowguard.session_key')))).toBe('42501');
        // Acting through the login works like SET ROLE app_user.
        const n = await app.begin(async (tx) => {
          await tx.unsafe('SET LOCAL ROLE app_user');
          await tx.unsafe(`SELECT ${S}.set_session($1)`, [persona!]);
          return (await tx.unsafe(`SELECT ${S}.current_user_id()::text AS id`))[0]!.id;
        });
        expect(n).toBe(String(persona));
      } finally {
        await app.end();
        await db.current.admin.unsafe(`DROP ROLE ${login}`);
      }
    });

    it('every table has RLS enabled and forced; every view filters by the caller', async () => {
      const tables = await db.current.admin`
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ${model.schema} AND c.relkind IN ('r', 'p') ORDER BY 1`;
      // The model's tables plus rowguard's own: login_bindings (reporting logins) and each
      // hierarchy's closure table and its state row.
      const own = ['login_bindings', ...model.hierarchies.flatMap((h) => [closureNames(h).table, closureNames(h).state])];
      expect(tables.map((t) => t.relname).sort()).toEqual([...model.tables.map((t) => t.name), ...own].sort());
      for (const t of tables) expect({ ...t }).toEqual({ relname: t.relname, relrowsecurity: true, relforcerowsecurity: true });
      // A view runs with its owner's rights unless security_invoker; the only other safe shape is a
      // security_barrier view owned by the definer that filters by the identity itself (masked views).
      const views = await db.current.admin`
        SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, coalesce(c.reloptions, '{}') AS options
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${model.schema} AND c.relkind IN ('v', 'm')`;
      for (const v of views) {
        const options = v.options as string[];
        const invoker = options.includes('security_invoker=true');
        const masked = v.owner === 'rowguard_definer' && options.includes('security_barrier=true');
        expect(invoker || masked, `view ${v.relname} (owner ${v.owner}, ${options.join(',')})`).toBe(true);
      }
    });

    it('SECURITY DEFINER functions are owned by rowguard_definer and pin search_path', async () => {
      const fns = await db.current.admin`
        SELECT p.oid::regprocedure::text AS sig, pg_get_userbyid(p.proowner) AS owner, coalesce(p.proconfig, '{}') AS config
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN (${model.schema}, 'rowguard') AND p.prosecdef`;
      expect(fns.length).toBeGreaterThan(0);
      for (const f of fns) {
        expect(f.owner, f.sig).toBe('rowguard_definer');
        expect((f.config as string[]).some((c) => c.startsWith('search_path=')), f.sig).toBe(true);
      }
      const definer = await db.current.admin`SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'rowguard_definer'`;
      expect({ ...definer[0] }).toEqual({ rolcanlogin: false, rolsuper: false });
    });
  });
}

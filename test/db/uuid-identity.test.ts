// A model whose users are identified by uuid: set_session records the id as its digest under a
// nonce (as for Collect!'s text ids), current_user_id reads it back as a uuid, and the policies
// answer for it. Another uuid claimed by hand is nobody, recorded or signed.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { defineModel, t } from '../../generator/dsl/index.ts';
import { actingSequences, identitySettings, recordSchemaOf, recordSequences } from '../../generator/emit/functions.ts';
import { installModel, useTestDatabase } from '../support/db.ts';

const SCHEMA = 'rg_uuid_identity';
const [ALICE, BOB, NOBODY] = ['6f1c1a52-0d8e-4b53-9d61-2f0a4f6c9a01', 'a3b2f9e0-77c4-4d0e-8a1b-5c6d7e8f9012', '00000000-0000-4000-8000-000000000000'];

const model = {
  ...defineModel(SCHEMA, (m) => {
    const users = m.table('users', { id: t.uuid().primaryKey(), name: t.text() });
    const notes = m.table('notes', { id: t.bigint().primaryKey(), owner_id: t.uuid().notNull().references(users), body: t.text() });
    m.identity(users);
    m.policy(notes, 'notes_own', { for: 'all', using: (n) => n.owner_id.eq(m.me), check: (n) => n.owner_id.eq(m.me) });
    m.policy(users, 'users_read', { for: 'select', using: () => m.me.isNotNull() });
  }),
  file: 'test/db/uuid-identity.test.ts',
};

// A login that default privileges for every schema and sequence reach, as a DBA might set them up
// for serial columns, in place while the model is installed.
const WEB = `rg_app_${randomBytes(4).toString('hex')}`;

const db = useTestDatabase(async (admin) => {
  await admin.unsafe(`CREATE ROLE ${WEB} LOGIN`);
  await admin.unsafe(`ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO ${WEB}`);
  await admin.unsafe(`ALTER DEFAULT PRIVILEGES GRANT USAGE, CREATE ON SCHEMAS TO ${WEB}`);
  try {
    await installModel(admin, model);
  } finally {
    await admin.unsafe(`ALTER DEFAULT PRIVILEGES REVOKE ALL ON SEQUENCES FROM ${WEB}`);
    await admin.unsafe(`ALTER DEFAULT PRIVILEGES REVOKE ALL ON SCHEMAS FROM ${WEB}`);
  }
  await admin.unsafe(`
    INSERT INTO ${SCHEMA}.users (id, name) VALUES ('${ALICE}', 'alice'), ('${BOB}', 'bob');
    INSERT INTO ${SCHEMA}.notes (id, owner_id, body) VALUES (1, '${ALICE}', 'a'), (2, '${ALICE}', 'b'), (3, '${BOB}', 'c');`);
});

afterAll(async () => {
  await db.current.admin.unsafe(`DROP OWNED BY ${WEB}`);
  await db.current.admin.unsafe(`DROP ROLE ${WEB}`);
});

describe('a uuid identity', () => {
  const names = identitySettings(SCHEMA);

  it("the record's schema and sequences hold no privilege that default privileges granted as they were created (the migration revokes it)", async () => {
    const acting = actingSequences(model)!;
    const [row] = await db.current.admin.unsafe(
      `SELECT has_schema_privilege($1, $2, 'USAGE, CREATE') AS schema, bool_or(has_sequence_privilege($1, s, 'SELECT, UPDATE, USAGE')) AS sequences,
              has_schema_privilege($1, $3, 'USAGE') AS model_schema
       FROM unnest($4::text[]) s`,
      [WEB, recordSchemaOf(SCHEMA), SCHEMA, recordSequences(acting)],
    );
    // The model's own schema keeps what the DBA's default privileges give: only the record is cleared.
    expect(row).toEqual({ schema: false, sequences: false, model_schema: true });
  });

  it('is recorded, read back as a uuid without its signature, and answers for exactly its rows', async () => {
    const seen = await db.current.as(SCHEMA, ALICE, async (tx) => {
      const [row] = await tx.unsafe(`SELECT current_setting($1, true) <> '' AS recorded, ${SCHEMA}.current_user_id() AS id, pg_typeof(${SCHEMA}.current_user_id())::text AS type`, [names.acting]);
      // The signature cleared: the record alone answers.
      await tx.unsafe(`SELECT set_config($1, '', true)`, [names.token]);
      const notes = (await tx.unsafe(`SELECT id FROM ${SCHEMA}.notes ORDER BY id`)).map((r) => Number(r.id));
      return { ...row, notes };
    });
    expect(seen).toEqual({ recorded: true, id: ALICE, type: 'uuid', notes: [1, 2] });
  });

  it('another uuid written into the setting by hand is nobody: the record vouches only for the one set_session set', async () => {
    for (const claimed of [BOB, NOBODY, ALICE.toUpperCase()]) {
      const seen = await db.current.as(SCHEMA, ALICE, async (tx) => {
        await tx.unsafe(`SELECT set_config($1, $2, true)`, [`rowguard.${SCHEMA}_user_id`, claimed]);
        const [row] = await tx.unsafe(`SELECT ${SCHEMA}.current_user_id()::text AS id, (SELECT count(*)::int FROM ${SCHEMA}.notes) AS n`);
        return row;
      });
      expect(seen, claimed).toEqual({ id: null, n: 0 });
    }
  });
});

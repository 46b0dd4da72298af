// Cluster-wide roles and the rowguard schema shared by every model. Roles are global to the
// cluster, so they are created idempotently and dropped only when nothing else uses them.
import { dollarQuote, ident, literal, qualified } from '../sql/print.ts';
import { statement, type Section } from './statement.ts';

/** What applications use (SET ROLE app_user): NOLOGIN, no BYPASSRLS, owns nothing. */
export const APP_ROLE = 'app_user';
/** Group role of direct-login reporting roles bound to a model user. */
export const REPORTING_ROLE = 'reporting_user';
/** Owns the SECURITY DEFINER helpers. BYPASSRLS so identity lookups are not themselves filtered by
 *  the policies they serve (which would recurse); NOLOGIN and owns no table, so nobody can act as it. */
export const DEFINER_ROLE = 'rowguard_definer';

export const CORE_SCHEMA = 'rowguard';
/** The table of the one signing key, and the function that signs with it (set_session's establish_session calls it). */
export const KEY_TABLE = qualified(CORE_SCHEMA, 'session_key');
export const SESSION_TOKEN = qualified(CORE_SCHEMA, 'session_token');

/**
 * The identity signature over a row `key` of rowguard.session_key: bound to the model, this backend
 * and this transaction. session_token and each model's current_user_id print it from here;
 * `indent` starts its second line.
 *
 * The transaction's start enters as its 8 binary bytes (timestamptz_send), never as text: text
 * follows TimeZone and DateStyle, so an application that set either after set_session would
 * have lost its identity (and seen no rows) for the rest of the transaction. The fixed-length
 * bytes come before the text, so the signed message still reads back one way only.
 */
export function sessionTokenSql(key: string, model: string, claimed: string, indent: string): string {
  return [
    `encode(sha256(${key}.${ident('key')} || timestamptz_send(transaction_timestamp()) || convert_to(`,
    `${indent}${model} || '|' || pg_backend_pid()::text || '|' || ${claimed}, 'UTF8')), 'hex')`,
  ].join('\n');
}

function createRole(name: string, attributes: string): string {
  return `DO ${dollarQuote(
    [
      'BEGIN',
      `  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${literal(name)}) THEN`,
      `    CREATE ROLE ${ident(name)} ${attributes};`,
      '  END IF;',
      'END',
    ].join('\n'),
  )};`;
}

function dropRoleIfUnused(name: string): string {
  return `DO ${dollarQuote(
    [
      'BEGIN',
      `  DROP ROLE IF EXISTS ${ident(name)};`,
      'EXCEPTION WHEN dependent_objects_still_exist THEN',
      `  RAISE NOTICE 'role ${name} is still used elsewhere in the cluster; kept';`,
      'END',
    ].join('\n'),
  )};`;
}

export function coreSections(): Section[] {
  const roles = [
    statement(`role ${APP_ROLE}`, createRole(APP_ROLE, 'NOLOGIN NOSUPERUSER NOBYPASSRLS'), dropRoleIfUnused(APP_ROLE), 'applications: SET ROLE app_user, then <schema>.set_session(id)'),
    statement(`role ${REPORTING_ROLE}`, createRole(REPORTING_ROLE, 'NOLOGIN NOSUPERUSER NOBYPASSRLS'), dropRoleIfUnused(REPORTING_ROLE), 'group of direct-login reporting roles (read only)'),
    statement(`role ${DEFINER_ROLE}`, createRole(DEFINER_ROLE, 'NOLOGIN NOSUPERUSER BYPASSRLS'), dropRoleIfUnused(DEFINER_ROLE), 'owner of the SECURITY DEFINER helpers'),
  ];
  const key = [
    statement(
      `schema ${CORE_SCHEMA}`,
      [
        `CREATE SCHEMA ${ident(CORE_SCHEMA)};`,
        `REVOKE ALL ON SCHEMA ${ident(CORE_SCHEMA)} FROM PUBLIC;`,
        `GRANT USAGE ON SCHEMA ${ident(CORE_SCHEMA)} TO ${ident(DEFINER_ROLE)};`,
      ].join('\n'),
      `DROP SCHEMA ${ident(CORE_SCHEMA)};`,
    ),
    statement(
      `table ${CORE_SCHEMA}.session_key`,
      [
        `-- A per-database secret. set_session signs the identity it sets with it, so a role that`,
        `-- calls set_config() itself cannot claim an identity: unsigned settings count as no identity.`,
        `CREATE TABLE ${KEY_TABLE} (`,
        `  ${ident('key')} bytea NOT NULL,`,
        `  ${ident('singleton')} boolean PRIMARY KEY DEFAULT true CHECK (${ident('singleton')})`,
        ');',
        `INSERT INTO ${KEY_TABLE} (${ident('key')})`,
        `  SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');`,
        `REVOKE ALL ON ${KEY_TABLE} FROM PUBLIC;`,
        `GRANT SELECT ON ${KEY_TABLE} TO ${ident(DEFINER_ROLE)};`,
      ].join('\n'),
      `DROP TABLE ${KEY_TABLE};`,
    ),
    statement(
      `function ${CORE_SCHEMA}.session_token`,
      [
        `-- The signature binds the identity to this backend and this transaction, so it cannot be`,
        `-- replayed from another connection or a later transaction on a pooled connection.`,
        `CREATE FUNCTION ${SESSION_TOKEN}(model text, claimed text) RETURNS text`,
        '  LANGUAGE sql STABLE SECURITY DEFINER',
        '  SET search_path = pg_catalog, pg_temp',
        `AS ${dollarQuote(
          [`  SELECT ${sessionTokenSql('k', 'model', 'claimed', '    ')}`, `  FROM ${KEY_TABLE} AS k`].join('\n'),
        )};`,
        `ALTER FUNCTION ${SESSION_TOKEN}(text, text) OWNER TO ${ident(DEFINER_ROLE)};`,
        `REVOKE ALL ON FUNCTION ${SESSION_TOKEN}(text, text) FROM PUBLIC;`,
      ].join('\n'),
      `DROP FUNCTION ${SESSION_TOKEN}(text, text);`,
    ),
  ];
  return [
    { title: 'Roles (cluster-wide, created idempotently)', statements: roles },
    { title: 'Identity signing key', statements: key },
  ];
}

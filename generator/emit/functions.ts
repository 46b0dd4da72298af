// Generated functions: the session pair, one function per fact, and the hierarchy walkers.
//
// All are plpgsql (their plans are cached per backend; SQL-language helpers behind InitPlans were
// measured re-planning on every statement), SECURITY DEFINER owned by the BYPASSRLS definer role
// (so a lookup is never filtered by the very policies it serves), and pin search_path so a caller
// cannot redirect the names they use.
//
// Read-only functions are PARALLEL RESTRICTED. PostgreSQL takes an unlabelled function for
// PARALLEL UNSAFE, and one such call anywhere in a statement (a policy's fact included) rules out
// every parallel plan for it: a reporting tool's count or search over a large table that the
// owner's statement answers with parallel workers ran on one core as app_user. Restricted is the
// true label, not safe: the identity check signs with pg_backend_pid(), which a parallel worker
// answers with its own process id (PostgreSQL labels it restricted for that reason), so a worker
// would find no identity. Restricted functions run only in the leader; the facts are InitPlans,
// computed there once and handed to the workers as parameters. VOLATILE functions (set_session,
// the DBA's functions, triggers) stay unlabelled: they change settings or rows. So do facts whose
// body holds raw SQL, which may too (see factBody); `rowguard lint` then names the policies that
// call them (policy-parallel-unsafe).
import type { Expr, HierarchyNode, ModelNode } from '../model/nodes.ts';
import { dollarQuote, ident, lineComment, literal, qualified } from '../sql/print.ts';
import { exprContext, printExpr, reaches, sessionUserCall, visit, type ExprContext } from './expr.ts';
import { closureNames, closureStatements, closureWalk } from './closure.ts';
import { APP_ROLE, DEFINER_ROLE, KEY_TABLE, REPORTING_ROLE, SESSION_TOKEN, sessionTokenSql } from './roles.ts';
import { statement, type Section, type Statement } from './statement.ts';
import { fitName, hintSearchPathSql } from './hints.ts';

export interface FunctionSpec {
  readonly schema: string;
  readonly name: string;
  /** e.g. [['root', 'bigint']] */
  readonly args: readonly (readonly [string, string])[];
  readonly returns: string;
  readonly volatility: 'IMMUTABLE' | 'STABLE' | 'VOLATILE';
  /**
   * SAFE for a function a parallel worker may run as well as the leader (it reads nothing the
   * worker lacks); UNSAFE (no label) for one whose body holds raw SQL, which may do what parallel
   * mode forbids. Otherwise read-only functions are RESTRICTED and VOLATILE ones unlabelled
   * (UNSAFE); see the file comment.
   */
  readonly parallel?: 'SAFE' | 'UNSAFE';
  readonly securityDefiner: boolean;
  /** Pin search_path (the default). Only invoker functions whose every name is qualified may opt out. */
  readonly pinSearchPath?: boolean;
  readonly body: string;
  readonly comment?: string;
  /** Roles given EXECUTE; everyone else is refused. */
  readonly grantTo: readonly string[];
}

export function signature(spec: Pick<FunctionSpec, 'schema' | 'name' | 'args'>): string {
  return `${qualified(spec.schema, spec.name)}(${spec.args.map(([, t]) => t).join(', ')})`;
}

export function createFunction(spec: FunctionSpec): Statement {
  const sig = signature(spec);
  const up = [
    `CREATE FUNCTION ${qualified(spec.schema, spec.name)}(${spec.args.map(([n, t]) => `${ident(n)} ${t}`).join(', ')}) RETURNS ${spec.returns}`,
    `  LANGUAGE plpgsql ${spec.volatility}${spec.securityDefiner ? ' SECURITY DEFINER' : ''}${parallelLabel(spec)}`,
    ...(spec.pinSearchPath === false ? [] : ['  SET search_path = pg_catalog, pg_temp']),
    // Read-only functions (facts, walkers) run their lookups through plpgsql's plan cache with the
    // identity as a parameter. Left to choose, the cache compares the generic plan's estimate with
    // the custom plans' and, when the acting user's value is rarer than average (a receiver of no
    // shares), keeps re-planning on every call: 130-250 µs instead of 20-35 µs per fact, measured.
    // Their lookups are index probes on equality, which a generic plan serves as well.
    ...(spec.volatility === 'STABLE' ? ['  SET plan_cache_mode = force_generic_plan'] : []),
    `AS ${dollarQuote(spec.body)};`,
    ...(spec.securityDefiner ? [`ALTER FUNCTION ${sig} OWNER TO ${ident(DEFINER_ROLE)};`] : []),
    `REVOKE ALL ON FUNCTION ${sig} FROM PUBLIC;`,
    ...(spec.grantTo.length > 0 ? [`GRANT EXECUTE ON FUNCTION ${sig} TO ${spec.grantTo.map(ident).join(', ')};`] : []),
    ...(spec.comment ? [`COMMENT ON FUNCTION ${sig} IS ${literal(spec.comment)};`] : []),
  ].join('\n');
  return statement(`function ${spec.schema}.${spec.name}`, up, `DROP FUNCTION ${sig};`);
}

function parallelLabel(spec: FunctionSpec): string {
  if (spec.parallel === 'SAFE') return ' PARALLEL SAFE';
  return spec.volatility === 'VOLATILE' || spec.parallel === 'UNSAFE' ? '' : ' PARALLEL RESTRICTED';
}

/**
 * The custom settings that carry the identity. Only set_session writes them: the id, its signature,
 * and `acting` (the transaction's start, once it has recorded the id in the sequences of
 * `actingSequences`; '' where it recorded none).
 */
export function identitySettings(schema: string): { user: string; token: string; acting: string } {
  return { user: `rowguard.${schema}_user_id`, token: `rowguard.${schema}_token`, acting: `rowguard.${schema}_acting` };
}

/** The sequences of an identity's record (actingSequences), qualified. */
export interface ActingSequences {
  /** The id itself where it is an integer; otherwise its digest (recordedIdSql) under `nonce`. */
  readonly user: string;
  readonly since: string;
  /** Where the id is not an integer: a random key for the digest, drawn by each set_session. */
  readonly nonce: string | null;
}

/** The record's sequences by what they hold, as named in every model's record schema (lint finds them by these names). */
export const ACTING_SEQUENCE_NAMES = { user: 'rg_acting_user', since: 'rg_acting_since', nonce: 'rg_acting_nonce' } as const;

/** The beginning of every record schema's name, which a model's own schema may not take. */
export const RECORD_SCHEMA_PREFIX = 'rg_record_';

/**
 * The schema of a model's identity record, `rg_record_<schema>`: the model migration creates it,
 * and no application role may use it (rowguard_definer may, as may its owner, superusers and the
 * members of pg_read_all_data and pg_write_all_data). So a grant on every sequence of the model's
 * schema (`GRANT … ON ALL SEQUENCES IN SCHEMA`, common for serial columns) does not reach the
 * record, and what default privileges grant as it is created is revoked (revokeStrangers).
 * (Until migrations 0150–0153 the sequences were in the model's schema.)
 */
export function recordSchemaOf(schema: string): string {
  return fitName(`${RECORD_SCHEMA_PREFIX}${schema}`);
}

/** An ACL entry `a` (of aclexplode) held by a role other than `owner` and rowguard_definer. */
function strangerSql(owner: string): string {
  return `a.grantee <> ${owner} AND a.grantee <> ${literal(DEFINER_ROLE)}::pg_catalog.regrole`;
}

/**
 * A DO block that revokes every privilege on the record's schema and sequences held by a role
 * other than their owner and rowguard_definer: what default privileges a DBA set for every schema
 * or sequence (`ALTER DEFAULT PRIVILEGES … GRANT … ON SEQUENCES TO <login>`) granted them as they
 * were created. The owner recorded as grantor, which is who runs the migration, may revoke them.
 */
function revokeStrangers(home: string, acting: ActingSequences): string {
  const grantee = `CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END`;
  return `DO ${dollarQuote(
    [
      'DECLARE',
      '  r record;',
      'BEGIN',
      `  FOR r IN SELECT 'SCHEMA ' || pg_catalog.quote_ident(n.nspname) AS what, ${grantee} AS who`,
      '      FROM pg_catalog.pg_namespace AS n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) AS a',
      `      WHERE n.nspname = ${literal(home)} AND ${strangerSql('n.nspowner')}`,
      `    UNION SELECT 'SEQUENCE ' || c.oid::pg_catalog.regclass::text, ${grantee}`,
      '      FROM pg_catalog.pg_class AS c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a',
      `      WHERE c.oid = ANY (ARRAY[${recordSequences(acting).map(regclass).join(', ')}]::pg_catalog.oid[]) AND ${strangerSql('c.relowner')}`,
      '    ORDER BY 1, 2',
      '  LOOP',
      "    EXECUTE 'REVOKE ALL ON ' || r.what || ' FROM ' || r.who;",
      '  END LOOP;',
      'END',
    ].join('\n'),
  )};`;
}

/** Identity types that the acting sequences can hold. */
const INTEGER_TYPES = new Set(['smallint', 'int2', 'integer', 'int', 'int4', 'bigint', 'int8']);

/**
 * Where set_session records the identity for current_user_id to read back without checking its
 * signature: the id, and the transaction's start in microseconds, as this session's currval() of
 * two sequences. A session's currval() changes only by its own setval() or nextval(), which need
 * UPDATE or USAGE on the sequence. rowguard_definer has them; so may roles a DBA grants more (the
 * owner, pg_write_all_data, a grant on them: the schema of their own, recordSchemaOf, keeps a grant
 * on every sequence of the model's schema off them), which is why current_user_id reads the record only
 * for a login that is a member of app_user, and so may call set_session for any id anyway, and why
 * set_session records nothing while a grant reaches the sequences (recordUnreachableSql).
 * An id that is not an integer (text, uuid) is recorded as a 64-bit digest keyed by a third
 * sequence's currval(), a random nonce each set_session draws: the caller, who cannot read the
 * nonce, cannot compute the digest of another id.
 * The signature costs a read of the key and a hash in every fact of every statement (~25% of a
 * one-fact point lookup's server time, measured); these reads cost a few microseconds.
 * Null for a model without identity.
 */
export function actingSequences(model: ModelNode): ActingSequences | null {
  return model.identity ? sequencesOf(model.schema, model.identity.type) : null;
}

function sequencesOf(schema: string, idType: string): ActingSequences {
  const home = recordSchemaOf(schema);
  return {
    user: qualified(home, ACTING_SEQUENCE_NAMES.user),
    since: qualified(home, ACTING_SEQUENCE_NAMES.since),
    nonce: INTEGER_TYPES.has(idType.toLowerCase()) ? null : qualified(home, ACTING_SEQUENCE_NAMES.nonce),
  };
}

/** Every sequence of the record, the nonce's last where there is one. */
export function recordSequences(acting: ActingSequences): string[] {
  return [acting.user, acting.since, ...(acting.nonce ? [acting.nonce] : [])];
}

/** A sequence's name as a regclass constant, which PostgreSQL resolves once when it plans the call. */
function regclass(sequence: string): string {
  return `${literal(sequence)}::pg_catalog.regclass`;
}

/** The first 16 hex digits that `hex` (an SQL text expression) yields, as a bigint: 64 bits. */
function first64Bits(hex: string): string {
  return `('x' || pg_catalog.left(${hex}, 16))::pg_catalog.bit(64)::bigint`;
}

/**
 * What rg_acting_user holds for an id that is not an integer: the first 64 bits of SHA-256 over
 * the nonce's 8 bytes and the id's text, as a bigint. Both arguments are SQL expressions.
 */
export function recordedIdSql(nonce: string, claimed: string): string {
  const hash = `pg_catalog.sha256(pg_catalog.int8send(${nonce}) || pg_catalog.convert_to(${claimed}, 'UTF8'))`;
  return first64Bits(`pg_catalog.encode(${hash}, 'hex')`);
}

/** 60 random bits (a version-4 uuid's first 64, from the server's strong random source), as a bigint. */
const RANDOM_NONCE = first64Bits(`pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '')`);

/**
 * The transaction's start in whole microseconds since 1970. A later transaction of this backend has
 * another, unless it began in the same microsecond, as transactions sent in one simple-query message
 * do (the signature, over the same start, shares that).
 */
export const TRANSACTION_START_US = `(pg_catalog.date_part('epoch', pg_catalog.transaction_timestamp()) * 1000000)::bigint`;

/** The record's sequences: of the roles rowguard creates, only rowguard_definer may read or set them. */
function actingSequenceStatement(model: ModelNode, acting: ActingSequences): Statement {
  const create = (name: string, what: string) => [
    // Unlogged: nothing is kept but the session's own currval(), so no WAL and no transaction id
    // for set_session. Any bigint, negative ids included.
    `CREATE UNLOGGED SEQUENCE ${name} AS bigint MINVALUE -9223372036854775808;`,
    // Named too: default privileges a DBA set for every schema would otherwise reach them.
    `REVOKE ALL ON SEQUENCE ${name} FROM PUBLIC, ${ident(APP_ROLE)}, ${ident(REPORTING_ROLE)};`,
    `GRANT SELECT, UPDATE ON SEQUENCE ${name} TO ${ident(DEFINER_ROLE)};`,
    `COMMENT ON SEQUENCE ${name} IS ${literal(`Internal: currval() is ${what} that a read-write ${model.schema}.set_session last recorded on this connection; read by ${model.schema}.current_user_id.`)};`,
  ];
  const recordSchema = recordSchemaOf(model.schema);
  const home = ident(recordSchema);
  return statement(
    `sequences ${recordSchema}.rg_acting`,
    [
      `-- set_session records the identity here too, so current_user_id need not check its signature (see its comment).`,
      // A schema of their own, which no application role may use (see recordSchemaOf). What
      // default privileges grant the schema and the sequences as they are created is revoked
      // after them (revokeStrangers).
      `CREATE SCHEMA ${home};`,
      `REVOKE ALL ON SCHEMA ${home} FROM PUBLIC, ${ident(APP_ROLE)}, ${ident(REPORTING_ROLE)};`,
      `GRANT USAGE ON SCHEMA ${home} TO ${ident(DEFINER_ROLE)};`,
      `COMMENT ON SCHEMA ${home} IS ${literal(`Internal: the identity record of ${model.schema}.set_session, read by ${model.schema}.current_user_id. Grant nothing here.`)};`,
      ...create(acting.user, acting.nonce ? 'the digest of the id (recorded with the nonce)' : 'the id'),
      ...create(acting.since, "the transaction start, in microseconds since 1970,"),
      ...(acting.nonce ? create(acting.nonce, 'the random key of the digest') : []),
      revokeStrangers(recordSchema, acting),
    ].join('\n'),
    [...recordSequences(acting).reverse().map((seq) => `DROP SEQUENCE ${seq};`), `DROP SCHEMA ${home};`].join('\n'),
  );
}

/**
 * current_user_id's first test: the record read back. Declares nothing; the body declares
 * `started` (TRANSACTION_START_US) and `claimed`.
 */
function recordReadLines(settings: ReturnType<typeof identitySettings>, acting: ActingSequences, idType: string): string[] {
  return [
    '    -- First, what set_session recorded in this transaction (see the acting sequences): no',
    '    -- signature to check. Only for a login that may call set_session itself: a role a DBA',
    '    -- granted more on the sequences (pg_write_all_data, a GRANT on them) could write them.',
    '    -- The setting holds the start of the transaction that recorded, so a stale or forged one',
    '    -- skips currval(), which fails where this connection has recorded nothing (AND stops at',
    ...(acting.nonce
      ? [
          '    -- false). The id is recorded as its digest under a nonce the caller cannot read, so',
          '    -- another id claimed by hand does not match it.',
        ]
      : ['    -- false). The id compared as text, so any claimed value compares without an error.']),
    `    IF current_setting(${literal(settings.acting)}, true) IS NOT DISTINCT FROM started::text`,
    `        AND pg_catalog.pg_has_role(session_user, ${literal(APP_ROLE)}, 'MEMBER')`,
    ...(acting.nonce
      ? [
          `        AND pg_catalog.currval(${regclass(acting.since)}) = started`,
          `        AND pg_catalog.currval(${regclass(acting.user)}) = ${recordedIdSql(`pg_catalog.currval(${regclass(acting.nonce)})`, 'claimed')} THEN`,
        ]
      : [
          `        AND pg_catalog.currval(${regclass(acting.user)})::text = claimed`,
          `        AND pg_catalog.currval(${regclass(acting.since)}) = started THEN`,
        ]),
    `      RETURN claimed::${idType};`,
    '    END IF;',
  ];
}

/**
 * True while no grant reaches the record's sequences: no role but their owner and rowguard_definer
 * holds a privilege on them (a GRANT on them, to app_user or to a login, to PUBLIC),
 * and the login is no member of pg_write_all_data or pg_read_all_data. With UPDATE or USAGE
 * (nextval) a caller could write the record, with SELECT read the nonce, and so claim an id
 * set_session was never asked for. Read from the sequences' ACLs, so a grant that reaches a login
 * only through a role it must SET ROLE to counts too. A login that owns the sequences (or may act
 * as their owner, a superuser included) may change the policies themselves, and counts as true.
 * A SQL condition, for establish_session (search_path pinned).
 */
function recordUnreachableSql(acting: ActingSequences): string {
  const owner = `(SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = ${regclass(acting.user)})`;
  return [
    `(pg_catalog.pg_has_role(session_user, ${owner}, 'MEMBER')`,
    `  OR (NOT pg_catalog.pg_has_role(session_user, 'pg_write_all_data', 'MEMBER') AND NOT pg_catalog.pg_has_role(session_user, 'pg_read_all_data', 'MEMBER')`,
    `    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class AS c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a`,
    `      WHERE c.oid = ANY (ARRAY[${recordSequences(acting).map(regclass).join(', ')}]::pg_catalog.oid[])`,
    `        AND ${strangerSql('c.relowner')})))`,
  ].join('\n        ');
}

/** establish_session's signature and record; the body declares `token`, `started` and, for a digest, `nonce`. */
function recordWriteLines(schema: string, settings: ReturnType<typeof identitySettings>, acting: ActingSequences): string[] {
  return [
    `  token := ${SESSION_TOKEN}(${literal(schema)}, $1::text);`,
    `  PERFORM set_config(${literal(settings.token)}, token, true);`,
    "  -- Also in this session's currval() of the acting sequences, for current_user_id to read back.",
    '  -- Not without a key (no token: nobody is acting), and not in a read-only transaction or on',
    '  -- a standby, which may not setval: there the signature alone serves. Nor where a grant lets',
    '  -- the login (or app_user) read or write the sequences itself: it could forge the record.',
    "  IF token IS NOT NULL AND current_setting('transaction_read_only') = 'off'",
    `      AND ${recordUnreachableSql(acting)} THEN`,
    ...(acting.nonce
      ? [
          `    nonce := ${RANDOM_NONCE};`,
          `    PERFORM pg_catalog.setval(${regclass(acting.nonce)}, nonce), pg_catalog.setval(${regclass(acting.since)}, started),`,
          `      pg_catalog.setval(${regclass(acting.user)}, ${recordedIdSql('nonce', '$1::text')});`,
        ]
      : [`    PERFORM pg_catalog.setval(${regclass(acting.user)}, $1), pg_catalog.setval(${regclass(acting.since)}, started);`]),
    `    PERFORM set_config(${literal(settings.acting)}, started::text, true);`,
    '  ELSE',
    `    PERFORM set_config(${literal(settings.acting)}, '', true);`,
    '  END IF;',
  ];
}

const READERS = [APP_ROLE, REPORTING_ROLE];

export function sessionSection(model: ModelNode): Section {
  const identity = model.identity;
  if (!identity) return { title: 'Session', statements: [] };
  const { schema } = model;
  const settings = identitySettings(schema);
  const idType = identity.type;
  const acting = sequencesOf(schema, idType);

  const currentUser = createFunction({
    schema,
    name: 'current_user_id',
    args: [],
    returns: idType,
    volatility: 'STABLE',
    securityDefiner: true,
    grantTo: READERS,
    comment: `The acting ${identity.table}.${identity.column} set by ${schema}.set_session in this transaction, or NULL (no identity: no rows).`,
    body: [
      'DECLARE',
      // On a connection that ever ran set_config(…, true), the setting reads as '' (not NULL) in
      // later transactions; both mean "no identity".
      `  claimed text := nullif(current_setting(${literal(settings.user)}, true), '');`,
      `  started bigint := ${TRANSACTION_START_US};`,
      '  k record;',
      'BEGIN',
      '  -- A value set with set_config() by anything but set_session carries no valid signature,',
      '  -- and counts for nothing. (The signature is rowguard.session_token, computed here without',
      '  -- a second function call: every fact of every statement reads the identity.) Compared with',
      '  -- =, so a missing token, or a missing key (whose signature is NULL), is no identity.',
      '  IF claimed IS NOT NULL THEN',
      ...recordReadLines(settings, acting, idType),
      `    SELECT s.${ident('key')} INTO k FROM ${KEY_TABLE} AS s;`,
      `    IF current_setting(${literal(settings.token)}, true) = ${sessionTokenSql('k', literal(schema), 'claimed', '        ')} THEN`,
      `      RETURN claimed::${idType};`,
      '    END IF;',
      '  END IF;',
      '  -- A reporting login acts as the user a DBA bound it to (bind_login), whatever it sets.',
      `  RETURN (SELECT b.${ident('user_id')} FROM ${qualified(schema, LOGIN_BINDINGS)} AS b WHERE b.${ident('role_name')} = session_user);`,
      'END',
    ].join('\n'),
  });

  const establish = createFunction({
    schema,
    name: 'establish_session',
    args: [[identity.argument, idType]],
    returns: 'void',
    volatility: 'VOLATILE',
    securityDefiner: true,
    grantTo: [APP_ROLE],
    comment: `Internal: records a verified identity for this transaction. Call ${schema}.set_session instead.`,
    body: [
      'DECLARE',
      '  token text;',
      `  started bigint := ${TRANSACTION_START_US};`,
      ...(acting.nonce ? ['  nonce bigint;'] : []),
      'BEGIN',
      `  IF NOT EXISTS (SELECT 1 FROM ${qualified(schema, identity.table)} AS u WHERE u.${ident(identity.column)} = $1) THEN`,
      `    RAISE EXCEPTION '${schema}.set_session: no ${identity.table} row with ${identity.column} = %', $1`,
      `      USING ERRCODE = 'invalid_authorization_specification',`,
      `            HINT = 'Pass the ${identity.column} of an existing row of ${schema}.${identity.table}.';`,
      '  END IF;',
      '  -- is_local = true: the identity ends with the transaction and never reaches the next user',
      '  -- of a pooled connection.',
      `  PERFORM set_config(${literal(settings.user)}, $1::text, true);`,
      ...recordWriteLines(schema, settings, acting),
      'END',
    ].join('\n'),
  });

  // With planner hints, set_session ends by changing the transaction's search_path, which a
  // function-level SET would undo on return: its body then names everything with its schema.
  const hints = hintSearchPathSql(model);
  const setSession = createFunction({
    schema,
    name: 'set_session',
    args: [[identity.argument, idType]],
    returns: 'void',
    volatility: 'VOLATILE',
    // Invoker rights, so the checks below see the caller's role rather than the definer's.
    securityDefiner: false,
    ...(hints.length > 0 ? { pinSearchPath: false } : {}),
    // Reporting roles may call it only to be told, clearly, that they cannot.
    grantTo: [APP_ROLE, REPORTING_ROLE],
    comment: `Sets who is acting for the rest of the current transaction. Raises for an unknown id and for roles that bypass row-level security.`,
    body: [
      'BEGIN',
      `  IF NOT pg_catalog.pg_has_role(current_user, ${literal(APP_ROLE)}, 'MEMBER') THEN`,
      `    RAISE EXCEPTION '${schema}.set_session: role % may not assert an identity', current_user`,
      `      USING ERRCODE = 'insufficient_privilege',`,
      `            DETAIL = 'Only members of ${APP_ROLE} may call set_session. A reporting login acts as the user a DBA bound it to with ${schema}.bind_login.';`,
      '  END IF;',
      '  IF $1 IS NULL THEN',
      `    RAISE EXCEPTION '${schema}.set_session: the ${identity.argument} must not be NULL'`,
      `      USING ERRCODE = 'null_value_not_allowed',`,
      `            HINT = 'To act as nobody, end the transaction: the identity does not outlive it.';`,
      '  END IF;',
      // login_bindings has row-level security enabled and forced, so it is active there for
      // every role but a superuser or a BYPASSRLS one: the question, asked of the role caches
      // (about 1 µs) instead of a query of pg_roles (13-17 µs, a scan of pg_authid).
      `  IF NOT pg_catalog.row_security_active(${literal(qualified(schema, LOGIN_BINDINGS))}::pg_catalog.regclass) THEN`,
      // Only on the way to an error: whether the role bypasses RLS, or the table lost its RLS.
      '    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user AND (r.rolsuper OR r.rolbypassrls)) THEN',
      `      RAISE EXCEPTION '${schema}.set_session: row-level security is not enabled and forced on ${schema}.${LOGIN_BINDINGS}, which set_session reads to tell whether a role bypasses it'`,
      `        USING ERRCODE = 'object_not_in_prerequisite_state',`,
      `              HINT = 'ALTER TABLE ${qualified(schema, LOGIN_BINDINGS)} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;';`,
      '    END IF;',
      `    RAISE EXCEPTION '${schema}.set_session: role % bypasses row-level security, so no identity would be enforced', current_user`,
      `      USING ERRCODE = 'insufficient_privilege',`,
      `            HINT = 'Run SET ROLE ${APP_ROLE} first (or connect as a login role that is a member of ${APP_ROLE}, not a superuser).';`,
      '  END IF;',
      `  PERFORM ${qualified(schema, 'establish_session')}($1);`,
      ...hints,
      'END',
    ].join('\n'),
  });

  return {
    title: 'Session: who is acting',
    statements: [loginBindings(model), actingSequenceStatement(model, acting), currentUser, establish, setSession, bindLogin(model), unbindLogin(model)],
  };
}

/** Direct-login reporting roles bound to a model user by a DBA. */
export const LOGIN_BINDINGS = 'login_bindings';

function loginBindings(model: ModelNode): Statement {
  const identity = model.identity!;
  const table = qualified(model.schema, LOGIN_BINDINGS);
  return statement(
    `table ${model.schema}.${LOGIN_BINDINGS}`,
    [
      `-- Which LOGIN role acts as which ${identity.table} row when it connects directly (a BI tool, psql).`,
      `-- Nobody reads it but the definer-owned current_user_id(): RLS on, forced, and no policy.`,
      `CREATE TABLE ${table} (`,
      `  ${ident('role_name')} name PRIMARY KEY,`,
      `  ${ident('user_id')} ${identity.type} NOT NULL REFERENCES ${qualified(model.schema, identity.table)} (${ident(identity.column)}) ON DELETE CASCADE`,
      ');',
      `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;`,
      `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY;`,
      `REVOKE ALL ON ${table} FROM PUBLIC;`,
      `GRANT SELECT ON ${table} TO ${ident(DEFINER_ROLE)};`,
    ].join('\n'),
    `DROP TABLE ${table};`,
  );
}

function bindLogin(model: ModelNode): Statement {
  const identity = model.identity!;
  const table = qualified(model.schema, LOGIN_BINDINGS);
  return createFunction({
    schema: model.schema,
    name: 'bind_login',
    args: [['role_name', 'text'], [identity.argument, identity.type]],
    returns: 'void',
    volatility: 'VOLATILE',
    // Invoker rights: granting reporting_user needs the DBA's own privileges. No EXECUTE for anyone
    // else; the function's owner and superusers run it.
    securityDefiner: false,
    grantTo: [],
    comment: `DBA: lets LOGIN role role_name connect directly and see exactly what ${identity.table} ${identity.argument} sees.`,
    body: [
      // The arguments share names with the table's columns; in SQL statements the columns win.
      '#variable_conflict use_column',
      'DECLARE',
      '  r pg_catalog.pg_roles;',
      'BEGIN',
      '  SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname = $1;',
      '  IF NOT FOUND OR NOT r.rolcanlogin THEN',
      `    RAISE EXCEPTION '${model.schema}.bind_login: % is not an existing LOGIN role', $1 USING ERRCODE = 'undefined_object', HINT = 'CREATE ROLE … LOGIN PASSWORD … first.';`,
      '  END IF;',
      `  IF r.rolsuper OR r.rolbypassrls OR pg_catalog.pg_has_role($1, ${literal(APP_ROLE)}, 'MEMBER') THEN`,
      `    RAISE EXCEPTION '${model.schema}.bind_login: % bypasses row-level security or may assert identities (${APP_ROLE})', $1`,
      `      USING ERRCODE = 'insufficient_privilege', HINT = 'Bind a plain LOGIN role: not a superuser, not BYPASSRLS, not a member of ${APP_ROLE}.';`,
      '  END IF;',
      '  BEGIN',
      `    INSERT INTO ${table} (${ident('role_name')}, ${ident('user_id')}) VALUES ($1, $2)`,
      `      ON CONFLICT (${ident('role_name')}) DO UPDATE SET ${ident('user_id')} = EXCLUDED.${ident('user_id')};`,
      '  EXCEPTION WHEN foreign_key_violation THEN',
      `    RAISE EXCEPTION '${model.schema}.bind_login: no ${identity.table} row with ${identity.column} = %', $2 USING ERRCODE = 'invalid_authorization_specification';`,
      '  END;',
      `  EXECUTE pg_catalog.format('GRANT ${REPORTING_ROLE} TO %I', $1);`,
      'END',
    ].join('\n'),
  });
}

function unbindLogin(model: ModelNode): Statement {
  return createFunction({
    schema: model.schema,
    name: 'unbind_login',
    args: [['role_name', 'text']],
    returns: 'boolean',
    volatility: 'VOLATILE',
    securityDefiner: false,
    grantTo: [],
    comment: 'DBA: removes the binding of a reporting login; it then sees nothing in this model. Returns whether a binding existed.',
    body: [
      '#variable_conflict use_column',
      'BEGIN',
      `  DELETE FROM ${qualified(model.schema, LOGIN_BINDINGS)} AS b WHERE b.${ident('role_name')} = $1;`,
      '  RETURN FOUND;',
      'END',
    ].join('\n'),
  });
}

/** Each fact's expression and the type its function returns, by name. */
export type FactDefinitions = ReadonlyMap<string, { readonly expr: Expr; readonly type: string }>;

export function factDefinitions(model: ModelNode, factTypes: ReadonlyMap<string, string>): FactDefinitions {
  return new Map(model.facts.map((f) => [f.name, { expr: f.expr, type: factTypes.get(f.name) ?? f.type }]));
}

export function factsSection(model: ModelNode, factTypes: ReadonlyMap<string, string>): Section {
  const facts = factDefinitions(model, factTypes);
  return {
    title: 'Facts: values about the acting user, computed once per statement',
    statements: model.facts.map((f) => factFunction(model, facts, { name: f.name, type: facts.get(f.name)!.type, expr: f.expr, comment: f.description })),
  };
}

/** The block label that qualifies a fact body's own variables, so no column name can shadow them. */
const FACT_BLOCK = 'rg_fact';

/** A variable of a fact body, as its expressions name it (qualified by the block's label). */
export function localVariable(name: string): string {
  return `${FACT_BLOCK}.${name}`;
}

/**
 * What `render` gives factBody besides the expression it returns: variables the body assigns
 * first, in order (a later value may read an earlier one), each said what it holds.
 */
export interface FactBodyParts {
  readonly locals?: readonly { readonly name: string; readonly type: string; readonly value: string; readonly says: string }[];
  readonly expr: string;
}

/** A definer function of no arguments that returns `expr` about the acting user: a fact's, or a combined policy value's (combined.ts). */
export function factFunction(model: ModelNode, facts: FactDefinitions, value: { name: string; type: string; expr: Expr; comment?: string | undefined }): Statement {
  return createFunction({
    schema: model.schema,
    name: value.name,
    args: [],
    returns: value.type,
    volatility: 'STABLE',
    securityDefiner: true,
    grantTo: READERS,
    ...(value.comment ? { comment: value.comment } : {}),
    ...factBody(model, facts, (ctx) => printExpr(value.expr, ctx)),
  });
}

/**
 * The body of a definer function that returns one expression about the acting user, printed by
 * `render` in a fact's context: a fact's, and the planner hints' marks (hints.ts). With raw SQL
 * in it (the fact's own or one it inlines) it is also PARALLEL UNSAFE: raw SQL may write, take a
 * sequence value or change a setting, which PostgreSQL refuses in the leader of a parallel plan
 * too, and would then refuse only when the planner happened to choose one.
 */
export function factBody(model: ModelNode, facts: FactDefinitions, render: (ctx: ExprContext) => string | FactBodyParts): Pick<FunctionSpec, 'body' | 'parallel'> {
  // The identity is read once per fact call, into a variable the expression uses: each reading
  // checks the signature, and a fact that names the user twice would otherwise pay twice.
  const me = model.identity ? `${FACT_BLOCK}.me` : undefined;
  // The facts it reads are inlined (their expressions, not their functions): nested definer calls
  // each re-read the identity and cost ~10–20 µs (SmartOffice's my_open_office_id called
  // my_office_id twice; Collect!'s my_principal_ids called i_am_account_restricted).
  // The acting user's own row is read once, into a record, for every column the fact needs of it
  // (identityRowRead collects them; only in a model with an identity).
  // Rendered again with the row's tested lookups read from the record where the first rendering
  // reads the record anyway (ExprContext.identityRow.readsTested).
  const renderWith = (readsTested: boolean) => {
    const identityRow = { variable: localVariable('me_row'), columns: new Set<string>(), readsTested };
    // The RETURN is evaluated once per call: fact and identity calls in it are plain (see
    // ExprContext.evaluatedOnce). Walks read the closure tables in place (ExprContext.readsClosures):
    // the body runs as the definer.
    const ctx = { ...exprContext(model, undefined, me), inlineFacts: facts, identityRow, evaluatedOnce: true, readsClosures: true };
    const rendered = render(ctx);
    return { ctx, identityRow, ...(typeof rendered === 'string' ? { expr: rendered } : rendered) };
  };
  const plain = renderWith(false);
  const { ctx, identityRow, locals = [], expr } = plain.identityRow.columns.size > 0 ? renderWith(true) : plain;
  const raw = ctx.rawReasons.map((r) => lineComment(`raw SQL (escape hatch): ${r}`, '  '));
  const id = model.identity;
  const rowColumns = [...identityRow.columns].sort().map((c) => `u.${ident(c)}`);
  const readsRow = id !== undefined && rowColumns.length > 0;
  const localDeclarations = locals.map((l) => `  ${l.name} ${l.type};`);
  const declare = id
    ? [`<<${FACT_BLOCK}>>`, 'DECLARE', `  me ${id.type} := ${sessionUserCall(model.schema)};`, ...(readsRow ? ['  me_row record;'] : []), ...localDeclarations]
    : localDeclarations.length > 0 ? [`<<${FACT_BLOCK}>>`, 'DECLARE', ...localDeclarations] : [];
  // Policies call facts with the caller's rights, so app_user may also call them directly. A fact
  // is about the acting user: with no identity it is NULL, whatever its expression would read, so
  // no fact reveals anything before set_session and no rule can admit a row without an identity.
  const noIdentity = id ? [`  IF ${me} IS NULL THEN`, '    RETURN NULL;', '  END IF;'] : [];
  const readRow = readsRow
    ? [`  SELECT ${rowColumns.join(', ')} INTO ${identityRow.variable} FROM ${qualified(model.schema, id.table)} AS u WHERE u.${ident(id.column)} = ${me};`]
    : [];
  const assign = locals.flatMap((l) => [lineComment(l.says, '  '), `  ${localVariable(l.name)} := ${l.value};`]);
  const body = [...declare, 'BEGIN', ...raw, ...noIdentity, ...readRow, ...assign, `  RETURN ${expr};`, 'END'].join('\n');
  return { body, ...(raw.length > 0 ? { parallel: 'UNSAFE' as const } : {}) };
}

/** Does `e` hold raw SQL, itself or in a fact it reads (at any depth)? */
export function holdsRawSql(model: ModelNode, e: Expr): boolean {
  return reaches(e, new Map(model.facts.map((f) => [f.name, f])), (n) => n.kind === 'raw');
}

/**
 * Hierarchies whose walkers are called from SQL that runs with the caller's rights: policies and
 * masked views (a view's function calls are checked against its user). Facts read the closure
 * tables themselves, as the definer; other walkers are not granted to anyone, because a walker
 * takes any node and would otherwise show the shape of the whole hierarchy to every caller.
 */
export function walkersCalledByReaders(model: ModelNode): Set<string> {
  const used = new Set<string>();
  const scan = (e: Expr | undefined) =>
    e &&
    visit(e, (n) => {
      if (n.kind === 'hierarchy-set') used.add(n.hierarchy);
    });
  for (const p of model.policies) {
    scan(p.using);
    scan(p.check);
  }
  for (const v of model.maskedViews) {
    scan(v.showMaskedWhen);
    v.masks.forEach((m) => scan(m.value));
  }
  return used;
}

export function hierarchySection(model: ModelNode, nodeType: (h: HierarchyNode) => string): Section {
  const statements: Statement[] = [];
  const byReaders = walkersCalledByReaders(model);
  for (const h of model.hierarchies) {
    const type = nodeType(h);
    const table = qualified(model.schema, h.table);
    const child = ident(h.child);
    const parent = ident(h.parent);
    statements.push(...closureStatements(model, h, type));
    const walk = (direction: 'descendants' | 'ancestors') =>
      createFunction({
        schema: model.schema,
        name: `${h.name}_${direction}`,
        args: [['node', type], ['include_self', 'boolean']],
        returns: `${type}[]`,
        volatility: 'STABLE',
        securityDefiner: true,
        grantTo: byReaders.has(h.name) ? READERS : [],
        comment: `Every node ${direction === 'descendants' ? 'below' : 'above'} the given one in ${h.name} (${h.table}.${h.child} -> ${h.parent}), at any depth, read from ${model.schema}.${closureNames(h).table}.`,
        body: [
          'BEGIN',
          // Callable by app_user only when a policy needs it; even then, no identity, no nodes.
          `  IF $1 IS NULL${byReaders.has(h.name) && model.identity ? ` OR ${sessionUserCall(model.schema)} IS NULL` : ''} THEN`,
          `    RETURN '{}'::${type}[];`,
          '  END IF;',
          closureWalk(model, h, direction),
          'END',
        ].join('\n'),
      });
    statements.push(walk('descendants'), walk('ancestors'));
    statements.push(
      statement(
        `view ${model.schema}.${h.name}`,
        [
          `-- Every (ancestor, descendant) pair of ${h.name}, once, with its shortest distance.`,
          `-- Cycles end because no simple path is longer than the table has rows (a path array as the`,
          `-- guard costs O(depth) per row: 9 s instead of about 1 s for a chain 1,000 deep), and UNION`,
          `-- keeps converging paths (diamonds) from multiplying.`,
          `-- security_invoker: the caller's own row-level security on ${h.table} applies.`,
          `CREATE VIEW ${qualified(model.schema, h.name)} WITH (security_invoker = true) AS`,
          `WITH RECURSIVE walk(ancestor_id, descendant_id, depth) AS (`,
          `  SELECT e.${parent}, e.${child}, 1`,
          `  FROM ${table} AS e WHERE e.${parent} IS NOT NULL AND e.${child} IS NOT NULL`,
          '  UNION',
          `  SELECT w.ancestor_id, e.${child}, w.depth + 1`,
          `  FROM walk AS w JOIN ${table} AS e ON e.${parent} = w.descendant_id`,
          `  WHERE e.${child} IS NOT NULL AND e.${child} <> w.ancestor_id`,
          `    AND w.depth < (SELECT count(*) FROM ${table})`,
          ')',
          'SELECT walk.ancestor_id, walk.descendant_id, min(walk.depth) AS depth FROM walk GROUP BY walk.ancestor_id, walk.descendant_id;',
          `GRANT SELECT ON ${qualified(model.schema, h.name)} TO ${READERS.map(ident).join(', ')};`,
        ].join('\n'),
        `DROP VIEW ${qualified(model.schema, h.name)};`,
      ),
    );
  }
  return { title: 'Hierarchies: closure tables kept by triggers, walkers, and closure views', statements };
}

// The read queries every scenario asks of its large table (count, pages, primary-key lookups,
// an equality and an ILIKE search), with their B1 and B2 forms built from one description of the
// table and the expert's condition. Joins, writes and the visible-set query stay with each
// scenario: they are what differs between the models.
import { firstInvisible, type QueryContext, type ReadQuery, type Statement, type WriteQuery } from './harness.ts';

export interface ReadTable {
  /** Schema-qualified large table, e.g. `collect.debtors`. */
  readonly table: string;
  /** The alias the expert condition uses for it. */
  readonly alias: string;
  /** Columns a page or lookup returns, `id` first. */
  readonly columns: string;
  /** The expert's visibility condition over `alias`, with the acting user as `$1`. */
  readonly expert: string;
  /** A column searched by equality, and the value to search for given a visible row's id. */
  readonly equality: { readonly column: string; readonly value: (id: string) => string };
  /** A text column searched with ILIKE. */
  readonly ilike: string;
}

/** The persona's sample rows the standard reads use, for scenarios that build more queries on them. */
export interface Sample {
  /** A visible row from the middle of the visible set. */
  readonly middle: string;
  /** The first page of visible ids (ORDER BY id LIMIT 50). */
  readonly page1: readonly string[];
}

export function sample(visible: readonly string[]): Sample {
  return { middle: visible[Math.floor(visible.length / 2)] ?? '1', page1: visible.slice(0, 50) };
}

/** Count, first and keyset pages, visible and invisible primary keys, equality and ILIKE searches. */
export function standardReads(t: ReadTable, userId: string, ctx: Omit<QueryContext, 'persona'>): ReadQuery[] {
  const { visible, owner } = ctx;
  const { middle, page1 } = sample(visible);
  const { table, alias: a, columns } = t;
  const byIds = (list: readonly string[]): Statement => ({ text: `SELECT ${columns} FROM ${table} WHERE id = ANY ($1::bigint[]) ORDER BY id`, params: [list] });
  /** B1 of a search: the visible rows that match, found untimed by the owner, then read by key. */
  const matching = async (where: string, value: string, limit?: number): Promise<Statement> =>
    byIds(
      (await owner.unsafe(`SELECT id FROM ${table} WHERE id = ANY ($1::bigint[]) AND ${where} ORDER BY id ${limit ? `LIMIT ${limit}` : ''}`, [visible, value] as never[])).map(
        (r) => String(r.id),
      ),
    );
  /** B2: the same statement over the expert's condition, the user as $1 and `params` from $2. */
  const expert = (where: string, tail: string, params: readonly unknown[] = []): Statement => ({
    text: `SELECT ${columns} FROM ${table} ${a} WHERE ${where ? `${where} AND ` : ''}${t.expert} ${tail}`,
    params: [userId, ...params],
  });
  const last = page1[page1.length - 1] ?? '0';
  const invisible = firstInvisible(visible);
  const value = t.equality.value(middle);
  const pattern = `%${middle.slice(-3)}7%`;
  return [
    {
      kind: 'read',
      name: 'count',
      secured: { text: `SELECT count(*) FROM ${table}` },
      b1: () => ({ text: `SELECT count(*) FROM ${table} WHERE id = ANY ($1::bigint[])`, params: [visible] }),
      b2: { text: `SELECT count(*) FROM ${table} ${a} WHERE ${t.expert}`, params: [userId] },
    },
    {
      kind: 'read',
      name: 'first page',
      secured: { text: `SELECT ${columns} FROM ${table} ORDER BY id LIMIT 50` },
      b1: () => byIds(page1),
      b2: expert('', 'ORDER BY id LIMIT 50'),
    },
    {
      kind: 'read',
      name: 'keyset page 2',
      secured: { text: `SELECT ${columns} FROM ${table} WHERE id > $1 ORDER BY id LIMIT 50`, params: [last] },
      b1: () => byIds(visible.slice(50, 100)),
      b2: expert(`${a}.id > $2`, 'ORDER BY id LIMIT 50', [last]),
    },
    {
      kind: 'read',
      name: 'pk visible',
      secured: { text: `SELECT ${columns} FROM ${table} WHERE id = $1`, params: [middle] },
      b1: () => byIds([middle]),
      b2: expert(`${a}.id = $2`, '', [middle]),
    },
    {
      kind: 'read',
      name: 'pk invisible',
      secured: { text: `SELECT ${columns} FROM ${table} WHERE id = $1`, params: [invisible] },
      b1: () => byIds([]),
      b2: expert(`${a}.id = $2`, '', [invisible]),
    },
    {
      kind: 'read',
      name: 'equality search',
      secured: { text: `SELECT ${columns} FROM ${table} WHERE ${t.equality.column} = $1 ORDER BY id`, params: [value] },
      b1: () => matching(`${t.equality.column} = $2`, value),
      b2: expert(`${a}.${t.equality.column} = $2`, 'ORDER BY id', [value]),
    },
    {
      kind: 'read',
      name: 'ILIKE search',
      secured: { text: `SELECT ${columns} FROM ${table} WHERE ${t.ilike} ILIKE $1 ORDER BY id LIMIT 50`, params: [pattern] },
      b1: () => matching(`${t.ilike} ILIKE $2`, pattern, 50),
      b2: expert(`${a}.${t.ilike} ILIKE $2`, 'ORDER BY id LIMIT 50', [pattern]),
    },
  ];
}

/** A write S runs as app_user and B0 as the owner (the same statement), B2 guarded by the expert's condition. */
export function write(name: string, statement: Statement, b2: Statement): WriteQuery {
  return { kind: 'write', name, secured: statement, b0: statement, b2 };
}

/** Rows of the bulk insert: what RLS adds per row once the facts are computed. */
export const BULK_ROWS = 1_000;

/**
 * `INSERT INTO <table> (id, <columns>) SELECT 2000000000 + n, <values> FROM generate_series(1,
 * BULK_ROWS) n`: the single insert's row BULK_ROWS times over, new keys only. S checks each row
 * against the policy; B2 checks the shared values once, as an expert writing this import would
 * (`where` may not name `n`); B0 checks nothing.
 */
export function bulkInsert(into: { table: string; columns: string; values: string; params: unknown[] }, expert: { where: string; params: unknown[] }): WriteQuery {
  const insert = `INSERT INTO ${into.table} (id, ${into.columns}) SELECT 2000000000 + n, ${into.values} FROM generate_series(1, ${BULK_ROWS}) n`;
  return {
    kind: 'write',
    name: `insert ${BULK_ROWS.toLocaleString('en-US')} rows`,
    rows: BULK_ROWS,
    secured: { text: insert, params: into.params },
    b0: { text: insert, params: into.params },
    b2: { text: `${insert} WHERE (${expert.where})`, params: expert.params },
  };
}

/**
 * The expert's bypass flag: every row when `flag` holds, written as a range on the bigint key
 * `id` whose lower bound is NULL (no rows) otherwise, as someone who knows that a flag OR'd into a
 * predicate forces a sequential scan would write it.
 */
export function everyRowWhen(id: string, flag: string): string {
  return `(${id} >= (SELECT CASE WHEN ${flag} THEN '-9223372036854775808'::bigint END) AND ${id} <= '9223372036854775807'::bigint)`;
}

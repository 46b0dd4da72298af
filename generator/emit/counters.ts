// Counter columns (m.counter): `contacts.assignment_count` = how many contact_assignments rows name
// the contact, kept current by triggers, so "assigned to nobody" is `assignment_count = 0` (a
// partial index answers it) instead of an anti-join computed on every statement.
//
// Why these triggers, and not a flag recomputed per statement:
// - Each changed row of the counted table runs `UPDATE parent SET n = n ± 1 WHERE pk = key`. The row
//   lock that UPDATE takes makes concurrent changes to the same parent wait for each other, and
//   READ COMMITTED re-reads the row before applying `n + 1`, so no change is lost. A flag set from
//   `exists(…)` would be wrong: two transactions deleting the last two rows each still see the
//   other's row and both leave the flag set.
// - TRUNCATE fires no row triggers, so a statement trigger sets every count back to 0.
// - The maintenance function is SECURITY DEFINER, owned by the BYPASSRLS definer role: the caller's
//   policies on the parent table must neither refuse nor silently skip the update.
// - A BEFORE trigger on the parent refuses every other change to the column (42501) and makes a new
//   row start at 0. It runs with the caller's rights and lets a change through only when the
//   current role is rowguard_definer, which app_user can never become. pg_trigger_depth() alone
//   would not do: any role may fire its own trigger on a temporary table and update from there.
//
// Key lists (m.keyList): `contacts.assignee_keys` holds one key per contact_assignments row of the
// contact, made of the contact's office and the row's user (expr.ts, listKey), so "my office, and
// assigned to me or an agent I stand in for" is `assignee_keys && <my keys>`: one condition that
// one GIN index answers. The same triggers as a counter's, with these differences:
// - A row of the listed table adds its key with `array_append(list, <key>)`, the key computed from
//   the parent row inside the UPDATE: if a concurrent change of the scope commits first, READ
//   COMMITTED re-reads the row and the key is made with the new scope.
// - A removed row takes its key out with array_remove: (key, value) is the listed table's primary
//   key (validation), so the list holds each key once.
// - A change of the parent's scope column rewrites the prefix of every key in the BEFORE trigger,
//   under the row lock its UPDATE holds, with no read of the listed table: the caller's policies
//   could hide some of its rows, and a row added concurrently is added by its own UPDATE, which
//   waits for this one and then sees the new scope.
//
// - Counters and key lists of one table kept from the same rows (SmartOffice's assignment_count and
//   assignee_keys, both from contact_assignments by contact_id) share one maintenance function and
//   trigger, named after the first declared, which sets every column in one UPDATE: one new
//   version of the parent row per changed row instead of one per column (for a load of a million
//   assignments, a million dead row versions fewer for VACUUM, and a smaller table).
import type { CounterNode, ModelNode } from '../model/nodes.ts';
import { dollarQuote, ident, literal, qualified } from '../sql/print.ts';
import { listKey, listKeyPrefix } from './expr.ts';
import { createFunction } from './functions.ts';
import { DEFINER_ROLE } from './roles.ts';
import { statement, type Section, type Statement } from './statement.ts';
import { primaryKeyOf } from './tables.ts';

/** The generated names of one counter: two functions, and the triggers that call them. */
export function counterNames(counter: Pick<CounterNode, 'table' | 'column'>): { maintain: string; onTruncate: string; protect: string } {
  const base = `${counter.table}_${counter.column}`;
  return { maintain: `maintain_${base}`, onTruncate: `maintain_${base}_on_truncate`, protect: `protect_${base}` };
}

/** The key list (m.keyList) that is column `column` of `table`, if there is one. */
export function keyListOf(model: ModelNode, table: string, column: string): (CounterNode & { readonly list: NonNullable<CounterNode['list']> }) | undefined {
  const found = model.counters.find((c) => c.list && c.table === table && c.column === column);
  return found?.list ? { ...found, list: found.list } : undefined;
}

export function countersSection(model: ModelNode): Section {
  // Grouped by the rows they are kept from, in declaration order.
  const groups = new Map<string, CounterNode[]>();
  for (const c of model.counters) {
    const id = `${c.table}\u0000${c.from}\u0000${c.key}`;
    groups.set(id, [...(groups.get(id) ?? []), c]);
  }
  return { title: 'Counters: columns kept current by triggers', statements: [...groups.values()].flatMap((group) => derivedColumns(model, group)) };
}

/** How one counter or key list changes its column when a row of `from` comes, goes or is truncated. */
interface Derived {
  readonly column: string;
  /** The columns of `from` whose change moves the row's contribution. */
  readonly watched: readonly string[];
  add(row: 'NEW' | 'OLD'): string;
  remove(row: 'NEW' | 'OLD'): string;
  /** SET and WHERE of the statement TRUNCATE runs. */
  readonly cleared: string;
  readonly notCleared: string;
  /** What the column holds, for comments. */
  readonly holds: string;
  /** Why the fill runs as it does (SQL comment lines), and the statement that derives the column for the rows already there (run in a DO block as the definer). */
  readonly fillComment: readonly string[];
  readonly fill: readonly string[];
}

function derivedOf(model: ModelNode, c: CounterNode): Derived {
  const parent = qualified(model.schema, c.table);
  const from = qualified(model.schema, c.from);
  const pkName = primaryKeyOf(model, c.table)[0]!;
  const pk = ident(pkName);
  const col = ident(c.column);
  const key = ident(c.key);
  const rows = `${model.schema}.${c.from} rows whose ${c.key} is the row's ${pkName}`;
  if (!c.list) {
    const count = `(SELECT count(*) FROM ${from} AS c WHERE c.${key} = p.${pk})`;
    return {
      column: c.column,
      watched: [c.key],
      add: () => `${col} = ${col} + 1`,
      remove: () => `${col} = ${col} - 1`,
      cleared: `${col} = 0`,
      notCleared: `${col} <> 0`,
      holds: `the number of ${rows}`,
      fillComment: [
        `-- Count the rows that are there already, as ${DEFINER_ROLE}: row-level security is forced on`,
        `-- both tables, so the migration role itself would count only what policies show it. CREATE`,
        `-- TRIGGER keeps writers of ${c.from} waiting until this migration commits, so no row is missed`,
        `-- between this count and the trigger.`,
      ],
      fill: [
        `  UPDATE ${parent} AS p`,
        `    SET ${col} = ${count}`,
        `    WHERE p.${col} IS DISTINCT FROM ${count};`,
      ],
    };
  }
  const value = ident(c.list.value);
  const rowKey = (row: 'NEW' | 'OLD') => listKey(`${parent}.${ident(c.list!.scope)}`, `${row}.${value}`);
  const fill = `ARRAY(SELECT ${listKey(`p.${ident(c.list.scope)}`, `c.${value}`)} FROM ${from} AS c WHERE c.${key} = p.${pk} ORDER BY c.${value})`;
  return {
    column: c.column,
    watched: [c.key, c.list.value],
    // The key is made from the parent row as the UPDATE finds it, after any concurrent change of its scope.
    add: (row) => `${col} = pg_catalog.array_append(${col}, ${rowKey(row)})`,
    // (key, value) is the primary key of `from` (validation): the list holds the key once.
    remove: (row) => `${col} = pg_catalog.array_remove(${col}, ${rowKey(row)})`,
    cleared: `${col} = '{}'`,
    notCleared: `${col} <> '{}'`,
    holds: `one key (the row's ${c.list.scope}, ${c.from}.${c.list.value}) for each of the ${rows}`,
    fillComment: [
      `-- Fill the lists from the rows that are there already, as ${DEFINER_ROLE}: row-level security`,
      `-- is forced on both tables, so the migration role itself would read only what policies show it.`,
      `-- CREATE TRIGGER keeps writers of ${c.from} waiting until this migration commits, so no row is`,
      `-- missed between this fill and the trigger.`,
    ],
    fill: [
      `  UPDATE ${parent} AS p`,
      `    SET ${col} = ${fill}`,
      `    WHERE p.${col} IS DISTINCT FROM ${fill};`,
    ],
  };
}

/**
 * The counters and key lists of one table kept from the same rows (one group of countersSection):
 * one maintenance function and its triggers, named after the first, and a protecting trigger each.
 */
function derivedColumns(model: ModelNode, group: readonly CounterNode[]): Statement[] {
  const first = group[0]!;
  const names = counterNames(first);
  const parent = qualified(model.schema, first.table);
  const from = qualified(model.schema, first.from);
  const pk = ident(primaryKeyOf(model, first.table)[0]!);
  const key = ident(first.key);
  const parts = group.map((c) => derivedOf(model, c));
  const update = (change: 'add' | 'remove', row: 'NEW' | 'OLD') => `UPDATE ${parent} SET ${parts.map((d) => d[change](row)).join(', ')} WHERE ${pk} = ${row}.${key};`;
  const watched = [...new Set(parts.flatMap((d) => d.watched))];
  const lists = group.filter((c) => c.list);
  const keeps = (c: CounterNode, i: number) => `${what(model, c)} ${c.list ? 'holding' : 'equal to'} ${parts[i]!.holds}`;

  const maintain = createFunction({
    schema: model.schema,
    name: names.maintain,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    securityDefiner: true,
    grantTo: [],
    comment:
      group.length === 1
        ? `${first.origin.path}: keeps ${keeps(first, 0)}${first.description ? `. ${first.description}` : ''}`
        : `${group.map((c) => c.origin.path).join(', ')}: keeps ${group.map((c, i) => `${keeps(c, i)}${c.description ? ` (${c.description.replace(/\.$/, '')})` : ''}`).join('; and ')}, in one UPDATE of the row.`,
    body: [
      'BEGIN',
      lists.length === 0
        ? `  -- The row lock of each UPDATE serializes concurrent changes to one ${first.table} row: none is lost.`
        : [
            `  -- The row lock of each UPDATE serializes concurrent changes to one ${first.table} row: none is lost,`,
            `  -- and each key is made from the ${[...new Set(lists.map((c) => c.list!.scope))].join(' and ')} the row has when the UPDATE applies.`,
          ].join('\n'),
      '  CASE TG_OP',
      `    WHEN 'INSERT' THEN`,
      `      ${update('add', 'NEW')}`,
      `    WHEN 'DELETE' THEN`,
      `      ${update('remove', 'OLD')}`,
      `    WHEN 'UPDATE' THEN`,
      `      IF ${watched.map((c) => `NEW.${ident(c)} IS DISTINCT FROM OLD.${ident(c)}`).join(' OR ')} THEN`,
      `        ${update('remove', 'OLD')}`,
      `        ${update('add', 'NEW')}`,
      '      END IF;',
      `    WHEN 'TRUNCATE' THEN`,
      `      UPDATE ${parent} SET ${parts.map((d) => d.cleared).join(', ')} WHERE ${parts.map((d) => d.notCleared).join(' OR ')};`,
      '  END CASE;',
      '  RETURN NULL;',
      'END',
    ].join('\n'),
  });

  const maintainTrigger = statement(
    `trigger ${model.schema}.${first.from}.${names.maintain}`,
    [
      `CREATE TRIGGER ${ident(names.maintain)} AFTER INSERT OR DELETE OR UPDATE OF ${watched.map(ident).join(', ')} ON ${from}`,
      `  FOR EACH ROW EXECUTE FUNCTION ${qualified(model.schema, names.maintain)}();`,
      ...parts.flatMap((d) => [
        ...d.fillComment,
        `DO ${dollarQuote(
          [
            'DECLARE',
            `  previous_role text := current_setting('role');`,
            'BEGIN',
            `  SET LOCAL ROLE ${ident(DEFINER_ROLE)};`,
            ...d.fill,
            `  PERFORM set_config('role', previous_role, true);`,
            'END',
          ].join('\n'),
        )};`,
      ]),
    ].join('\n'),
    `DROP TRIGGER ${ident(names.maintain)} ON ${from};`,
  );

  const truncateTrigger = statement(
    `trigger ${model.schema}.${first.from}.${names.onTruncate}`,
    [
      `CREATE TRIGGER ${ident(names.onTruncate)} AFTER TRUNCATE ON ${from}`,
      `  FOR EACH STATEMENT EXECUTE FUNCTION ${qualified(model.schema, names.maintain)}();`,
    ].join('\n'),
    `DROP TRIGGER ${ident(names.onTruncate)} ON ${from};`,
  );

  return [maintain, maintainTrigger, truncateTrigger, ...group.flatMap((c, i) => protect(model, c, parts[i]!))];
}

/** The BEFORE trigger that keeps a counter's or key list's column for rowguard (and rewrites a list's keys when its scope changes). */
function protect(model: ModelNode, c: CounterNode, d: Derived): Statement[] {
  const names = counterNames(c);
  const parent = qualified(model.schema, c.table);
  const col = ident(c.column);
  const scope = c.list && ident(c.list.scope);
  const listed = d.holds.replace(/^(the number of|one key \([^)]*\) for each of the) /, '');
  const fn = createFunction({
    schema: model.schema,
    name: names.protect,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    // Invoker rights: current_user is then the role whose statement changed the row.
    securityDefiner: false,
    grantTo: [],
    comment: c.list
      ? `${c.origin.path}: ${what(model, c)} is maintained by rowguard; refuses any other change, starts new rows empty and rewrites the keys when ${c.list.scope} changes.`
      : `${c.origin.path}: ${what(model, c)} is maintained by rowguard; refuses any other change and starts new rows at 0.`,
    body: [
      'BEGIN',
      `  IF TG_OP = 'INSERT' THEN`,
      `    -- No ${c.from} row can name a row that does not exist yet (the foreign key is checked at once).`,
      `    NEW.${col} := ${c.list ? "'{}'" : '0'};`,
      `  ELSIF NEW.${col} IS DISTINCT FROM OLD.${col} AND current_user <> ${literal(DEFINER_ROLE)} THEN`,
      `    RAISE EXCEPTION ${literal(`column ${c.column} of ${model.schema}.${c.table} is maintained by rowguard and cannot be set`)}`,
      `      USING ERRCODE = 'insufficient_privilege',`,
      `            DETAIL = ${literal(`It ${c.list ? 'lists' : 'counts'} the ${listed}; triggers on ${model.schema}.${c.from} keep it current.`)},`,
      `            HINT = ${literal(`Leave ${c.column} out of the statement; insert or delete ${model.schema}.${c.from} rows instead.`)};`,
      ...(c.list
        ? [
            `  ELSIF NEW.${scope} IS DISTINCT FROM OLD.${scope} THEN`,
            `    -- Every key is <${c.list.scope}>:<${c.list.value}>, and an encoded ${c.list.scope} holds no colon: keep what follows`,
            `    -- the first colon, in order.`,
            `    NEW.${col} := ARRAY(`,
            `      SELECT ${listKeyPrefix(`NEW.${scope}`)} || pg_catalog.substr(k.key, pg_catalog.strpos(k.key, ':') + 1)`,
            `        FROM pg_catalog.unnest(NEW.${col}) WITH ORDINALITY AS k(key, n)`,
            '        ORDER BY k.n);',
          ]
        : []),
      '  END IF;',
      '  RETURN NEW;',
      'END',
    ].join('\n'),
  });
  const trigger = statement(
    `trigger ${model.schema}.${c.table}.${names.protect}`,
    [`CREATE TRIGGER ${ident(names.protect)} BEFORE INSERT OR UPDATE ON ${parent}`, `  FOR EACH ROW EXECUTE FUNCTION ${qualified(model.schema, names.protect)}();`].join('\n'),
    `DROP TRIGGER ${ident(names.protect)} ON ${parent};`,
  );
  return [fn, trigger];
}

function what(model: ModelNode, c: CounterNode): string {
  return `${model.schema}.${c.table}.${c.column}`;
}

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

export function countersSection(model: ModelNode): Section {
  return { title: 'Counters: columns kept current by triggers', statements: model.counters.flatMap((c) => (c.list ? keyList(model, c, c.list) : counter(model, c))) };
}

function counter(model: ModelNode, c: CounterNode): Statement[] {
  const names = counterNames(c);
  const parent = qualified(model.schema, c.table);
  const from = qualified(model.schema, c.from);
  const pk = ident(primaryKeyOf(model, c.table)[0]!);
  const n = ident(c.column);
  const key = ident(c.key);
  const what = `${model.schema}.${c.table}.${c.column}`;
  const counted = `${model.schema}.${c.from} rows whose ${c.key} is the row's ${primaryKeyOf(model, c.table)[0]}`;
  const add = (delta: '+' | '-', row: 'NEW' | 'OLD') => `UPDATE ${parent} SET ${n} = ${n} ${delta} 1 WHERE ${pk} = ${row}.${key};`;

  const maintain = createFunction({
    schema: model.schema,
    name: names.maintain,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    securityDefiner: true,
    grantTo: [],
    comment: `${c.origin.path}: keeps ${what} equal to the number of ${counted}${c.description ? `. ${c.description}` : ''}`,
    body: [
      'BEGIN',
      `  -- The row lock of each UPDATE serializes concurrent changes to one ${c.table} row: none is lost.`,
      '  CASE TG_OP',
      `    WHEN 'INSERT' THEN`,
      `      ${add('+', 'NEW')}`,
      `    WHEN 'DELETE' THEN`,
      `      ${add('-', 'OLD')}`,
      `    WHEN 'UPDATE' THEN`,
      `      IF NEW.${key} IS DISTINCT FROM OLD.${key} THEN`,
      `        ${add('-', 'OLD')}`,
      `        ${add('+', 'NEW')}`,
      '      END IF;',
      `    WHEN 'TRUNCATE' THEN`,
      `      UPDATE ${parent} SET ${n} = 0 WHERE ${n} <> 0;`,
      '  END CASE;',
      '  RETURN NULL;',
      'END',
    ].join('\n'),
  });

  const maintainTrigger = statement(
    `trigger ${model.schema}.${c.from}.${names.maintain}`,
    [
      `CREATE TRIGGER ${ident(names.maintain)} AFTER INSERT OR DELETE OR UPDATE OF ${key} ON ${from}`,
      `  FOR EACH ROW EXECUTE FUNCTION ${qualified(model.schema, names.maintain)}();`,
      `-- Count the rows that are there already, as ${DEFINER_ROLE}: row-level security is forced on`,
      `-- both tables, so the migration role itself would count only what policies show it. CREATE`,
      `-- TRIGGER keeps writers of ${c.from} waiting until this migration commits, so no row is missed`,
      `-- between this count and the trigger.`,
      `DO ${dollarQuote(
        [
          'DECLARE',
          `  previous_role text := current_setting('role');`,
          'BEGIN',
          `  SET LOCAL ROLE ${ident(DEFINER_ROLE)};`,
          `  UPDATE ${parent} AS p`,
          `    SET ${n} = (SELECT count(*) FROM ${from} AS c WHERE c.${key} = p.${pk})`,
          `    WHERE p.${n} IS DISTINCT FROM (SELECT count(*) FROM ${from} AS c WHERE c.${key} = p.${pk});`,
          `  PERFORM set_config('role', previous_role, true);`,
          'END',
        ].join('\n'),
      )};`,
    ].join('\n'),
    `DROP TRIGGER ${ident(names.maintain)} ON ${from};`,
  );

  const truncateTrigger = statement(
    `trigger ${model.schema}.${c.from}.${names.onTruncate}`,
    [
      `CREATE TRIGGER ${ident(names.onTruncate)} AFTER TRUNCATE ON ${from}`,
      `  FOR EACH STATEMENT EXECUTE FUNCTION ${qualified(model.schema, names.maintain)}();`,
    ].join('\n'),
    `DROP TRIGGER ${ident(names.onTruncate)} ON ${from};`,
  );

  const protect = createFunction({
    schema: model.schema,
    name: names.protect,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    // Invoker rights: current_user is then the role whose statement changed the row.
    securityDefiner: false,
    grantTo: [],
    comment: `${c.origin.path}: ${what} is maintained by rowguard; refuses any other change and starts new rows at 0.`,
    body: [
      'BEGIN',
      `  IF TG_OP = 'INSERT' THEN`,
      `    -- No ${c.from} row can name a row that does not exist yet (the foreign key is checked at once).`,
      `    NEW.${n} := 0;`,
      `  ELSIF NEW.${n} IS DISTINCT FROM OLD.${n} AND current_user <> ${literal(DEFINER_ROLE)} THEN`,
      `    RAISE EXCEPTION ${literal(`column ${c.column} of ${model.schema}.${c.table} is maintained by rowguard and cannot be set`)}`,
      `      USING ERRCODE = 'insufficient_privilege',`,
      `            DETAIL = ${literal(`It counts the ${counted}; triggers on ${model.schema}.${c.from} keep it current.`)},`,
      `            HINT = ${literal(`Leave ${c.column} out of the statement; insert or delete ${model.schema}.${c.from} rows instead.`)};`,
      '  END IF;',
      '  RETURN NEW;',
      'END',
    ].join('\n'),
  });

  const protectTrigger = statement(
    `trigger ${model.schema}.${c.table}.${names.protect}`,
    [`CREATE TRIGGER ${ident(names.protect)} BEFORE INSERT OR UPDATE ON ${parent}`, `  FOR EACH ROW EXECUTE FUNCTION ${qualified(model.schema, names.protect)}();`].join('\n'),
    `DROP TRIGGER ${ident(names.protect)} ON ${parent};`,
  );

  return [maintain, maintainTrigger, truncateTrigger, protect, protectTrigger];
}

// Key lists (m.keyList): `contacts.assignee_keys` holds one key per contact_assignments row of the
// contact, made of the contact's office and the row's user (expr.ts, listKey), so "my office, and
// assigned to me or an agent I stand in for" is `assignee_keys && <my keys>`: one condition that
// one GIN index answers. The same triggers as a counter's, with these differences:
// - A row of the listed table adds its key with `array_append(list, <key of the row's scope>)`
//   computed from the parent row inside the UPDATE: if a concurrent change of the scope commits
//   first, READ COMMITTED re-reads the row and the key is made with the new scope.
// - A removed row takes its key out with array_remove: (key, value) is the listed table's primary
//   key (validation), so the list holds each key once.
// - A change of the parent's scope column rewrites the prefix of every key in the BEFORE trigger,
//   under the row lock its UPDATE holds, with no read of the listed table: the caller's policies
//   could hide some of its rows, and a row added concurrently is added by its own UPDATE, which
//   waits for this one and then sees the new scope.
function keyList(model: ModelNode, c: CounterNode, list: NonNullable<CounterNode['list']>): Statement[] {
  const names = counterNames(c);
  const parent = qualified(model.schema, c.table);
  const from = qualified(model.schema, c.from);
  const pkName = primaryKeyOf(model, c.table)[0]!;
  const pk = ident(pkName);
  const keys = ident(c.column);
  const key = ident(c.key);
  const value = ident(list.value);
  const scope = ident(list.scope);
  const what = `${model.schema}.${c.table}.${c.column}`;
  const listed = `${model.schema}.${c.from} rows whose ${c.key} is the row's ${pkName}`;
  const rowKey = (row: 'NEW' | 'OLD') => listKey(`${parent}.${scope}`, `${row}.${value}`);
  const add = (row: 'NEW' | 'OLD') => `UPDATE ${parent} SET ${keys} = pg_catalog.array_append(${keys}, ${rowKey(row)}) WHERE ${pk} = ${row}.${key};`;
  const remove = (row: 'NEW' | 'OLD') => `UPDATE ${parent} SET ${keys} = pg_catalog.array_remove(${keys}, ${rowKey(row)}) WHERE ${pk} = ${row}.${key};`;

  const maintain = createFunction({
    schema: model.schema,
    name: names.maintain,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    securityDefiner: true,
    grantTo: [],
    comment: `${c.origin.path}: keeps ${what} holding one key (the row's ${list.scope}, ${c.from}.${list.value}) for each of the ${listed}${c.description ? `. ${c.description}` : ''}`,
    body: [
      'BEGIN',
      `  -- The row lock of each UPDATE serializes concurrent changes to one ${c.table} row: none is lost,`,
      `  -- and each key is made from the ${list.scope} the row has when the UPDATE applies.`,
      '  CASE TG_OP',
      `    WHEN 'INSERT' THEN`,
      `      ${add('NEW')}`,
      `    WHEN 'DELETE' THEN`,
      `      ${remove('OLD')}`,
      `    WHEN 'UPDATE' THEN`,
      `      IF NEW.${key} IS DISTINCT FROM OLD.${key} OR NEW.${value} IS DISTINCT FROM OLD.${value} THEN`,
      `        ${remove('OLD')}`,
      `        ${add('NEW')}`,
      '      END IF;',
      `    WHEN 'TRUNCATE' THEN`,
      `      UPDATE ${parent} SET ${keys} = '{}' WHERE ${keys} <> '{}';`,
      '  END CASE;',
      '  RETURN NULL;',
      'END',
    ].join('\n'),
  });

  const fill = `ARRAY(SELECT ${listKey(`p.${scope}`, `c.${value}`)} FROM ${from} AS c WHERE c.${key} = p.${pk} ORDER BY c.${value})`;
  const maintainTrigger = statement(
    `trigger ${model.schema}.${c.from}.${names.maintain}`,
    [
      `CREATE TRIGGER ${ident(names.maintain)} AFTER INSERT OR DELETE OR UPDATE OF ${key}, ${value} ON ${from}`,
      `  FOR EACH ROW EXECUTE FUNCTION ${qualified(model.schema, names.maintain)}();`,
      `-- Fill the lists from the rows that are there already, as ${DEFINER_ROLE}: row-level security`,
      `-- is forced on both tables, so the migration role itself would read only what policies show it.`,
      `-- CREATE TRIGGER keeps writers of ${c.from} waiting until this migration commits, so no row is`,
      `-- missed between this fill and the trigger.`,
      `DO ${dollarQuote(
        [
          'DECLARE',
          `  previous_role text := current_setting('role');`,
          'BEGIN',
          `  SET LOCAL ROLE ${ident(DEFINER_ROLE)};`,
          `  UPDATE ${parent} AS p`,
          `    SET ${keys} = ${fill}`,
          `    WHERE p.${keys} IS DISTINCT FROM ${fill};`,
          `  PERFORM set_config('role', previous_role, true);`,
          'END',
        ].join('\n'),
      )};`,
    ].join('\n'),
    `DROP TRIGGER ${ident(names.maintain)} ON ${from};`,
  );

  const truncateTrigger = statement(
    `trigger ${model.schema}.${c.from}.${names.onTruncate}`,
    [
      `CREATE TRIGGER ${ident(names.onTruncate)} AFTER TRUNCATE ON ${from}`,
      `  FOR EACH STATEMENT EXECUTE FUNCTION ${qualified(model.schema, names.maintain)}();`,
    ].join('\n'),
    `DROP TRIGGER ${ident(names.onTruncate)} ON ${from};`,
  );

  const protect = createFunction({
    schema: model.schema,
    name: names.protect,
    args: [],
    returns: 'trigger',
    volatility: 'VOLATILE',
    // Invoker rights: current_user is then the role whose statement changed the row.
    securityDefiner: false,
    grantTo: [],
    comment: `${c.origin.path}: ${what} is maintained by rowguard; refuses any other change, starts new rows empty and rewrites the keys when ${list.scope} changes.`,
    body: [
      'BEGIN',
      `  IF TG_OP = 'INSERT' THEN`,
      `    -- No ${c.from} row can name a row that does not exist yet (the foreign key is checked at once).`,
      `    NEW.${keys} := '{}';`,
      `  ELSIF NEW.${keys} IS DISTINCT FROM OLD.${keys} AND current_user <> ${literal(DEFINER_ROLE)} THEN`,
      `    RAISE EXCEPTION ${literal(`column ${c.column} of ${model.schema}.${c.table} is maintained by rowguard and cannot be set`)}`,
      `      USING ERRCODE = 'insufficient_privilege',`,
      `            DETAIL = ${literal(`It lists the ${listed}; triggers on ${model.schema}.${c.from} keep it current.`)},`,
      `            HINT = ${literal(`Leave ${c.column} out of the statement; insert or delete ${model.schema}.${c.from} rows instead.`)};`,
      `  ELSIF NEW.${scope} IS DISTINCT FROM OLD.${scope} THEN`,
      `    -- Every key begins with the old ${list.scope}; keep what follows it (the ${list.value}) in order.`,
      `    NEW.${keys} := ARRAY(`,
      `      SELECT ${listKeyPrefix(`NEW.${scope}`)} || pg_catalog.substr(k.key, pg_catalog.length(${listKeyPrefix(`OLD.${scope}`)}) + 1)`,
      `        FROM pg_catalog.unnest(NEW.${keys}) WITH ORDINALITY AS k(key, n)`,
      '        ORDER BY k.n);',
      '  END IF;',
      '  RETURN NEW;',
      'END',
    ].join('\n'),
  });

  const protectTrigger = statement(
    `trigger ${model.schema}.${c.table}.${names.protect}`,
    [`CREATE TRIGGER ${ident(names.protect)} BEFORE INSERT OR UPDATE ON ${parent}`, `  FOR EACH ROW EXECUTE FUNCTION ${qualified(model.schema, names.protect)}();`].join('\n'),
    `DROP TRIGGER ${ident(names.protect)} ON ${parent};`,
  );

  return [maintain, maintainTrigger, truncateTrigger, protect, protectTrigger];
}

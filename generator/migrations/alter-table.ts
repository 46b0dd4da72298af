// A changed CREATE TABLE becomes ALTER TABLE steps. Tables hold the application's data, so an
// incremental migration never drops and re-creates one: it adds and drops columns and named
// constraints, and changes a column's type, default and nullability in place. Anything else
// (primary keys, inline UNIQUE/CHECK) is refused with the SQL to write by hand.
//
// The input is the text rowguard itself emits (generator/emit/tables.ts): one column or
// constraint per line, lines separated by ",\n". Text that does not have that shape is refused
// rather than guessed at.

export interface AlterStep {
  readonly up: string;
  readonly down: string;
}

export interface TableAlter {
  readonly steps: AlterStep[];
  /** Column types changed: objects that read the table must be re-created around the ALTER. */
  readonly typeChanged: boolean;
  /** Why the change cannot be made in place, each with the SQL to write by hand. */
  readonly refusals: { message: string; fix: string }[];
}

interface TableShape {
  readonly name: string;
  readonly columns: Map<string, string>;
  readonly primaryKey: string | undefined;
  readonly constraints: Map<string, string>;
  readonly other: string[];
}

const IDENT = '"(?:[^"]|"")+"';
const CREATE_TABLE = new RegExp(`^CREATE TABLE (${IDENT}\\.${IDENT}) \\(\\n([\\s\\S]*)\\n\\);$`);
const COLUMN_LINE = new RegExp(`^(${IDENT}) (.+)$`);
const CONSTRAINT_LINE = new RegExp(`^CONSTRAINT (${IDENT}) `);
const COLUMN_DEF = /^(.+?)( NOT NULL)?(?: DEFAULT (.+?))?( UNIQUE)?( CHECK \(.*\))?$/;

export function parseCreateTable(sql: string): TableShape | undefined {
  const match = CREATE_TABLE.exec(sql);
  if (!match) return undefined;
  const shape: TableShape = { name: match[1]!, columns: new Map(), primaryKey: undefined, constraints: new Map(), other: [] };
  let primaryKey: string | undefined;
  for (const raw of match[2]!.split(',\n')) {
    const line = raw.replace(/^ {2}/, '');
    const constraint = CONSTRAINT_LINE.exec(line);
    if (line.startsWith('PRIMARY KEY ')) primaryKey = line;
    else if (constraint) shape.constraints.set(constraint[1]!, line);
    else {
      const column = COLUMN_LINE.exec(line);
      if (column) shape.columns.set(column[1]!, column[2]!);
      else shape.other.push(line);
    }
  }
  return { ...shape, primaryKey };
}

interface ColumnDef {
  readonly type: string;
  readonly notNull: boolean;
  readonly default: string | undefined;
  /** Inline UNIQUE and CHECK: constraints PostgreSQL names itself. */
  readonly inline: string;
}

function parseColumn(def: string): ColumnDef {
  const m = COLUMN_DEF.exec(def)!;
  return { type: m[1]!, notNull: Boolean(m[2]), default: m[3], inline: `${m[4] ?? ''}${m[5] ?? ''}` };
}

/** The ALTER TABLE steps that turn table `before` into `after`, or why they cannot. */
export function alterTable(before: string, after: string): TableAlter {
  const old = parseCreateTable(before);
  const next = parseCreateTable(after);
  if (!old || !next || old.name !== next.name) {
    return {
      steps: [],
      typeChanged: false,
      refusals: [{ message: 'the table definition changed in a way rowguard cannot read', fix: 'write the ALTER TABLE statements by hand in a migration (see README, "For DBAs")' }],
    };
  }
  const table = next.name;
  const alter = (clause: string) => `ALTER TABLE ${table} ${clause};`;
  const steps: AlterStep[] = [];
  const refusals: { message: string; fix: string }[] = [];
  let typeChanged = false;

  if (old.primaryKey !== next.primaryKey) {
    refusals.push({
      message: `the primary key of ${table} changed from "${old.primaryKey ?? 'none'}" to "${next.primaryKey ?? 'none'}"`,
      fix: `rowguard does not rebuild primary keys (foreign keys depend on them); write by hand: ALTER TABLE ${table} DROP CONSTRAINT <old pkey>, ADD ${next.primaryKey ?? '…'};`,
    });
  }
  if (old.other.join('\n') !== next.other.join('\n')) {
    refusals.push({ message: `unrecognised lines in the definition of ${table} changed`, fix: 'write the ALTER TABLE statements by hand in a migration' });
  }

  for (const [name, line] of old.constraints) {
    if (next.constraints.get(name) !== line) steps.push({ up: alter(`DROP CONSTRAINT ${name}`), down: alter(`ADD ${line}`) });
  }
  for (const [column, def] of old.columns) {
    if (!next.columns.has(column)) steps.push({ up: alter(`DROP COLUMN ${column}`), down: alter(`ADD COLUMN ${column} ${def}`) });
  }
  for (const [column, def] of next.columns) {
    const was = old.columns.get(column);
    if (was === undefined) {
      steps.push({ up: alter(`ADD COLUMN ${column} ${def}`), down: alter(`DROP COLUMN ${column}`) });
      continue;
    }
    if (was === def) continue;
    const a = parseColumn(was);
    const b = parseColumn(def);
    if (a.inline !== b.inline) {
      refusals.push({
        message: `column ${column} of ${table} changed its inline UNIQUE/CHECK ("${was}" → "${def}")`,
        fix: `write by hand: ALTER TABLE ${table} DROP CONSTRAINT <its generated name>, ADD …; or declare the rule as a named table check, which rowguard adds and drops itself`,
      });
      continue;
    }
    if (a.type !== b.type) {
      typeChanged = true;
      steps.push({
        up: alter(`ALTER COLUMN ${column} TYPE ${b.type} USING ${column}::${b.type}`),
        down: alter(`ALTER COLUMN ${column} TYPE ${a.type} USING ${column}::${a.type}`),
      });
    }
    if (a.default !== b.default) {
      const set = (d: string | undefined) => alter(d === undefined ? `ALTER COLUMN ${column} DROP DEFAULT` : `ALTER COLUMN ${column} SET DEFAULT ${d}`);
      steps.push({ up: set(b.default), down: set(a.default) });
    }
    if (a.notNull !== b.notNull) {
      const set = (notNull: boolean) => alter(`ALTER COLUMN ${column} ${notNull ? 'SET' : 'DROP'} NOT NULL`);
      steps.push({ up: set(b.notNull), down: set(a.notNull) });
    }
  }
  for (const [name, line] of next.constraints) {
    if (old.constraints.get(name) !== line) steps.push({ up: alter(`ADD ${line}`), down: alter(`DROP CONSTRAINT ${name}`) });
  }
  return { steps, typeChanged, refusals };
}

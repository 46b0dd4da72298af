// The step from the last generated state (a snapshot) to the current one, computed without a
// database. Statements are compared by meaning: their stable id and the SQL text they run, so a
// policy whose predicate changed under the same name is re-created, and one that only moved in
// the file is left alone.
//
// Sub-select aliases (q1, q2 …, u1 …) are numbered per model in declaration order, so removing a
// fact near the top of a policy file renumbers the aliases of everything declared after it. Such
// statements mean exactly what they meant, so they are compared with their aliases renumbered in
// order of appearance and are not re-created; the snapshot simply records the new text.
//
// A statement whose SQL changed is dropped with its old `down` and created with its new `up`.
// Dropping a function or view fails while policies, views or triggers still use it, so every
// statement that names a re-created function or view is re-created around it (transitively).
// Tables are never dropped and re-created: their changes become ALTER TABLE (alter-table.ts).
// A definition whose COMMENT ON statements are all that changed (a fact's or a policy's
// description) gets those COMMENTs instead: re-creating it would re-create everything that names
// it too, and a hierarchy's closure table would be dropped and derived again.
import { qualified } from '../sql/print.ts';
import type { Section, Statement } from '../emit/statement.ts';
import { alterTable, type AlterStep } from './alter-table.ts';

export interface Change {
  readonly kind: 'added' | 'changed' | 'removed' | 'rebuilt';
  readonly id: string;
}

export interface Refusal {
  readonly id: string;
  readonly message: string;
  readonly fix: string;
}

export interface StateDiff {
  readonly changes: Change[];
  /** The migration: drops (old definitions), table ALTERs, creates (new definitions), comments set in place. */
  readonly sections: Section[];
  readonly refusals: Refusal[];
}

/** Kinds whose objects hold data or contain everything else: altered in place, never re-created. */
const IN_PLACE = new Set(['table', 'schema']);
/** Kinds other statements can depend on by name. */
const REFERENCED = new Set(['function', 'view', 'closure']);

const kindOf = (id: string) => id.slice(0, id.indexOf(' '));

/** `function s.name` → `"s"."name"`, the way every emitter prints it. */
function objectName(id: string): string {
  const [schema, ...rest] = id.slice(id.indexOf(' ') + 1).split('.');
  return qualified(schema!, rest.join('.'));
}

/**
 * The SQL with the DSL's sub-select aliases renumbered in order of appearance: `AS "q12"` and the
 * `"q12".` qualifiers that refer to it. Only names the text itself declares as aliases are touched,
 * so a column or table that happens to be called q12 keeps its name.
 */
export function canonicalAliases(sql: string): string {
  const declared = new Set([...sql.matchAll(/ AS "([qu]\d+)"/g)].map((m) => m[1]!));
  if (declared.size === 0) return sql;
  const renamed = new Map<string, string>();
  return sql.replace(/(?<= AS )"([qu]\d+)"|(?<![.\w"])"([qu]\d+)"(?=\.)/g, (whole, defined: string | undefined, qualifier: string | undefined) => {
    const name = (defined ?? qualifier)!;
    if (!declared.has(name)) return whole;
    if (!renamed.has(name)) renamed.set(name, `${name[0]}#${renamed.size + 1}`);
    return `"${renamed.get(name)}"`;
  });
}

/**
 * One `COMMENT ON <kind> <target> IS '<text>';` (the text may span lines; quotes are doubled in
 * it). Only the run of them a definition ends with counts: every emitter prints its COMMENTs last,
 * after the GRANTs, so no line of a function body or a view's query can be taken for one.
 */
const ONE_COMMENT = String.raw`\nCOMMENT ON ((?:FUNCTION|POLICY|VIEW|TABLE|SCHEMA) [^\n]+?) IS ('(?:[^']|'')*'|NULL);`;
const TRAILING_COMMENTS = new RegExp(`(?:${ONE_COMMENT})+$`);

/**
 * A definition as what it runs before its comments (without the `-- <path>: <description>` lines
 * it starts with, which run nothing) and the comments it sets, by target.
 */
function splitComments(up: string): { rest: string; comments: Map<string, string> } {
  const run = TRAILING_COMMENTS.exec(up)?.[0] ?? '';
  const rest = canonicalAliases(up.slice(0, up.length - run.length).replace(/^(?:--[^\n]*\n)+/, ''));
  return { rest, comments: new Map([...run.matchAll(new RegExp(ONE_COMMENT, 'g'))].map((m) => [m[1]!, m[2]!])) };
}

/**
 * A function's PARALLEL label, read from its LANGUAGE line (UNSAFE without one, as PostgreSQL
 * takes it), and the definition without the label.
 */
function splitParallelLabel(rest: string): { rest: string; label: string } {
  const line = /^( {2}LANGUAGE [^\n]*?)(?: PARALLEL (SAFE|RESTRICTED|UNSAFE))?$/m.exec(rest);
  if (!line) return { rest, label: 'UNSAFE' };
  return { rest: rest.slice(0, line.index) + line[1] + rest.slice(line.index + line[0].length), label: line[2] ?? 'UNSAFE' };
}

/**
 * When a definition changed in its comments (its COMMENT statements, and the description in its
 * header line) or, for a function, its PARALLEL label, and in nothing else: the statements that
 * change those in place (`ALTER FUNCTION … PARALLEL …`, then the COMMENTs; down sets the old ones
 * back); otherwise undefined. A definition sets comments on what it creates, nothing else, so no
 * other statement's COMMENT can undo these.
 */
export function inPlaceChange(before: Statement, after: Statement): { up: string; down: string; what: string } | undefined {
  const [was, now] = [splitComments(before.up), splitComments(after.up)];
  if (canonicalAliases(before.down) !== canonicalAliases(after.down)) return undefined;
  const fn = kindOf(before.id) === 'function' ? /^DROP FUNCTION (.+);$/.exec(before.down)?.[1] : undefined;
  const [wasLabel, nowLabel] = fn ? [splitParallelLabel(was.rest), splitParallelLabel(now.rest)] : [{ rest: was.rest, label: '' }, { rest: now.rest, label: '' }];
  if (wasLabel.rest !== nowLabel.rest) return undefined;
  const steps: { up: string; down: string }[] = [];
  if (wasLabel.label !== nowLabel.label) steps.push({ up: `ALTER FUNCTION ${fn} PARALLEL ${nowLabel.label};`, down: `ALTER FUNCTION ${fn} PARALLEL ${wasLabel.label};` });
  const targets = [...new Set([...was.comments.keys(), ...now.comments.keys()])].filter((t) => was.comments.get(t) !== now.comments.get(t));
  const set = (target: string, text: string | undefined) => `COMMENT ON ${target} IS ${text ?? 'NULL'};`;
  for (const t of targets) steps.push({ up: set(t, now.comments.get(t)), down: set(t, was.comments.get(t)) });
  if (steps.length === 0) return undefined;
  const what = [...(wasLabel.label !== nowLabel.label ? ['PARALLEL label'] : []), ...(targets.length > 0 ? ['comment'] : [])].join(' and ');
  return { up: steps.map((x) => x.up).join('\n'), down: [...steps].reverse().map((x) => x.down).join('\n'), what };
}

const sameMeaning = (a: Statement, b: Statement) => canonicalAliases(a.up) === canonicalAliases(b.up) && canonicalAliases(a.down) === canonicalAliases(b.down);

export function flatten(sections: readonly Section[]): Statement[] {
  return sections.flatMap((s) => s.statements);
}

export function diffStates(before: readonly Section[], after: readonly Section[]): StateDiff {
  const old = flatten(before);
  const next = flatten(after);
  const oldById = new Map(old.map((s) => [s.id, s]));
  const nextById = new Map(next.map((s) => [s.id, s]));
  const refusals: Refusal[] = [];
  const changes: Change[] = [];

  const rebuild = new Set<string>();
  const alters = new Map<string, AlterStep[]>();
  const inPlace = new Map<string, { up: string; down: string; what: string }>();
  const tablesReadAround = new Set<string>();

  for (const s of old) {
    const now = nextById.get(s.id);
    if (now && sameMeaning(now, s)) continue;
    changes.push({ kind: now ? 'changed' : 'removed', id: s.id });
    const kind = kindOf(s.id);
    const small = now && !IN_PLACE.has(kind) ? inPlaceChange(s, now) : undefined;
    if (small) {
      inPlace.set(s.id, small);
    } else if (!IN_PLACE.has(kind)) {
      rebuild.add(s.id);
    } else if (!now) {
      refusals.push({
        id: s.id,
        message: `${s.id} was removed from the model; rowguard never drops a ${kind} in a generated migration (its rows would be lost)`,
        fix: `keep it in the model, or drop it in a hand-written migration (${s.down}) and run \`rowguard generate --accept-manual\` to record the new state`,
      });
    } else if (kind === 'table') {
      const alter = alterTable(s.up, now.up);
      for (const r of alter.refusals) refusals.push({ id: s.id, ...r });
      alters.set(s.id, alter.steps);
      if (alter.typeChanged) tablesReadAround.add(objectName(s.id));
    } else {
      refusals.push({ id: s.id, message: `the definition of ${s.id} changed`, fix: 'write the change by hand in a migration and run `rowguard generate --accept-manual` to record the new state' });
    }
  }
  for (const s of next) if (!oldById.has(s.id)) changes.push({ kind: 'added', id: s.id });

  const rebuildAlso = (id: string) => {
    rebuild.add(id);
    if (nextById.has(id) && !changes.some((c) => c.id === id)) changes.push({ kind: 'rebuilt', id });
  };
  // A column type cannot change under a view or policy that reads it.
  for (const s of old) {
    if (rebuild.has(s.id) || IN_PLACE.has(kindOf(s.id))) continue;
    if ([...tablesReadAround].some((t) => s.up.includes(`ON ${t}`) || s.up.includes(`FROM ${t}`) || s.up.includes(`JOIN ${t}`))) rebuildAlso(s.id);
  }
  // Whatever names a re-created function or view is re-created with it, until nothing more is.
  for (let grew = true; grew; ) {
    grew = false;
    const names = [...rebuild].filter((id) => REFERENCED.has(kindOf(id))).map(objectName);
    for (const s of old) {
      if (rebuild.has(s.id) || IN_PLACE.has(kindOf(s.id))) continue;
      if (names.some((n) => s.up.includes(n))) {
        rebuildAlso(s.id);
        grew = true;
      }
    }
  }

  const drops: Statement[] = [...old]
    .reverse()
    .filter((s) => rebuild.has(s.id))
    .map((s) => ({ id: s.id, up: s.down, down: s.up, comment: `${nextById.has(s.id) ? 'drop the old definition' : 'removed'}: ${s.id}` }));
  const altered: Statement[] = next
    .filter((s) => (alters.get(s.id)?.length ?? 0) > 0)
    .map((s) => {
      const steps = alters.get(s.id)!;
      return { id: s.id, up: steps.map((a) => a.up).join('\n'), down: [...steps].reverse().map((a) => a.down).join('\n'), comment: `altered in place: ${s.id}` };
    });
  // Unless a dependency re-creates it anyway, with its new comments and label.
  const changedInPlace: Statement[] = next
    .filter((s) => inPlace.has(s.id) && !rebuild.has(s.id))
    .map((s) => {
      const { up, down, what } = inPlace.get(s.id)!;
      return { id: s.id, up, down, comment: `${what} changed in place: ${s.id}` };
    });
  const creates: Statement[] = next
    .filter((s) => rebuild.has(s.id) || !oldById.has(s.id))
    .map((s) => ({ id: s.id, up: s.up, down: s.down, comment: `${oldById.has(s.id) ? 'new definition' : 'added'}: ${s.id}${s.comment ? ` (${s.comment})` : ''}` }));

  const sections: Section[] = [
    { title: 'Drop what changed or was removed (old definitions, dependents first)', statements: drops },
    { title: 'Alter tables in place (tables are never dropped and re-created)', statements: altered },
    { title: 'Create what changed or was added (new definitions)', statements: creates },
    { title: 'Set the comments and parallel labels that changed (nothing else of their definitions did)', statements: changedInPlace },
  ].filter((s) => s.statements.length > 0);
  const order = (c: Change) => ['removed', 'changed', 'added', 'rebuilt'].indexOf(c.kind);
  changes.sort((a, b) => order(a) - order(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { changes, sections, refusals };
}

/** A short, file-name-safe description of the changes, e.g. `change_policy_contacts_select_and_2_more`. */
export function describeChanges(changes: readonly Change[]): string {
  const primary = changes.filter((c) => c.kind !== 'rebuilt');
  const first = primary[0] ?? changes[0];
  if (!first) return 'no_changes';
  const verb = { added: 'add', changed: 'change', removed: 'drop', rebuilt: 'rebuild' }[first.kind];
  const name = first.id.slice(first.id.indexOf(' ') + 1).split('.').slice(1).join('_') || first.id;
  const base = `${verb}_${kindOf(first.id).replaceAll(' ', '_')}_${name}`
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .slice(0, 48)
    .replace(/_$/, '');
  return primary.length > 1 ? `${base}_and_${primary.length - 1}_more` : base;
}

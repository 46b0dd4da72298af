// Committed migrations are never rewritten. Each unit (the core, and each model) keeps its last
// generated state in a committed snapshot, `migrations/.rowguard/<name>.json`; when the policies
// change, a NEW migration `NNNN_<name>_<what-changed>.sql` moves the database from the snapshot's
// state to the current one. node-pg-migrate only reads files, so the hidden folder is ignored by it.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Section } from '../emit/statement.ts';
import type { Problem } from '../model/nodes.ts';
import { describeChanges, diffStates } from './diff.ts';
import { renderMigration, type RenderHeader } from './render.ts';

export const SNAPSHOT_DIR = '.rowguard';
const FORMAT = 'rowguard-snapshot/1';

export interface Snapshot {
  readonly format: string;
  readonly name: string;
  readonly note: string;
  /** The migrations that built this state, oldest first, with the sha256 of their bytes. */
  readonly migrations: { readonly file: string; readonly sha256: string }[];
  readonly sections: Section[];
}

/** One thing that gets its own chain of migrations: the core or one model. */
export interface MigrationUnit {
  readonly name: string;
  readonly header: RenderHeader;
  readonly sections: Section[];
}

export interface UnitPlan {
  readonly files: { path: string; content: string; pending?: boolean }[];
  readonly problems: Problem[];
}

export interface IncrementalOptions {
  /** The user wrote the refused table changes by hand: record the new state without emitting them. */
  readonly acceptManual?: boolean;
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export function snapshotPath(migrationsDir: string, name: string): string {
  return join(migrationsDir, SNAPSHOT_DIR, `${name}.json`);
}

/** Deterministic JSON: fixed key order, two-space indent, final newline. */
export function renderSnapshot(name: string, migrations: Snapshot['migrations'], sections: readonly Section[]): string {
  const snapshot: Snapshot = {
    format: FORMAT,
    name,
    note: 'The state the migrations below leave the database in. Written by `rowguard generate`; commit it, never edit it.',
    migrations: migrations.map((m) => ({ file: m.file, sha256: m.sha256 })),
    sections: sections.map((s) => ({
      title: s.title,
      statements: s.statements.map((st) => ({ id: st.id, ...(st.comment ? { comment: st.comment } : {}), up: st.up, down: st.down })),
    })),
  };
  return `${JSON.stringify(snapshot, null, 2)}\n`;
}

/** Hands out migration numbers after the highest one on disk, in the order asked. */
export class MigrationNumbers {
  private next: number;
  readonly existing: string[];
  constructor(dir: string) {
    this.existing = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+_.+\.sql$/.test(f)).sort() : [];
    this.next = this.existing.reduce((max, f) => Math.max(max, Number(/^(\d+)/.exec(f)![1])), 0) + 1;
  }
  take(suffix: string): string {
    return `${String(this.next++).padStart(4, '0')}_${suffix}.sql`;
  }
}

/** Snapshots of models whose policy file is gone: their schema is still in every database. */
export function orphanedSnapshots(root: string, migrationsDir: string, names: readonly string[]): Problem[] {
  const dir = resolve(root, migrationsDir, SNAPSHOT_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !names.includes(f.slice(0, -'.json'.length)))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.json'.length);
      const path = join(migrationsDir, SNAPSHOT_DIR, f);
      return {
        code: 'model-removed',
        file: path,
        path: `model ${name}`,
        message: `${path} records model "${name}", but no policy file defines it any more; rowguard never drops a schema with its tables (their rows would be lost)`,
        fix: `restore the policy file that defines "${name}"; or drop schema ${name} in a hand-written migration and delete ${path}`,
      };
    });
}

export function planUnit(root: string, migrationsDir: string, unit: MigrationUnit, numbers: MigrationNumbers, options: IncrementalOptions = {}): UnitPlan {
  const abs = (p: string) => resolve(root, p);
  const snapPath = snapshotPath(migrationsDir, unit.name);
  const problem = (code: string, message: string, fix: string, path = `migrations ${unit.name}`): Problem => ({ code, file: unit.header.source ?? snapPath, path, message, fix });
  const full = renderMigration(unit.header, unit.sections);
  const initial = numbers.existing.find((f) => f.replace(/^\d+_/, '') === `${unit.name}.sql`);

  if (!existsSync(abs(snapPath))) {
    if (!initial) {
      // A new model: its first migration creates everything.
      const file = numbers.take(unit.name);
      return {
        files: [
          { path: join(migrationsDir, file), content: full, pending: true },
          { path: snapPath, content: renderSnapshot(unit.name, [{ file, sha256: sha256(full) }], unit.sections) },
        ],
        problems: [],
      };
    }
    // Bootstrap: only a migration that is exactly what would be generated now describes the state.
    const onDisk = readFileSync(abs(join(migrationsDir, initial)), 'utf8');
    if (onDisk !== full) {
      return {
        files: [],
        problems: [
          problem(
            'snapshot-missing',
            `${join(migrationsDir, initial)} exists but ${snapPath} does not, and the migration is not what the policies generate now, so rowguard cannot tell which state the database is in`,
            `either restore ${snapPath} from version control, or (if no database has applied the committed ${initial} yet, e.g. right after merging a branch that rewrote it) run \`rowguard generate\` once with the policies that produced ${initial}, commit the snapshot, then change the policies`,
          ),
        ],
      };
    }
    return { files: [{ path: snapPath, content: renderSnapshot(unit.name, [{ file: initial, sha256: sha256(full) }], unit.sections) }], problems: [] };
  }

  let snapshot: Snapshot;
  try {
    snapshot = JSON.parse(readFileSync(abs(snapPath), 'utf8')) as Snapshot;
    if (snapshot.format !== FORMAT || !Array.isArray(snapshot.sections) || !Array.isArray(snapshot.migrations)) throw new Error(`not a ${FORMAT} file`);
  } catch (error) {
    return { files: [], problems: [problem('snapshot-unreadable', `${snapPath} cannot be read: ${(error as Error).message}`, `restore ${snapPath} from version control`)] };
  }
  const problems: Problem[] = [];
  for (const m of snapshot.migrations) {
    const path = join(migrationsDir, m.file);
    if (!existsSync(abs(path))) {
      problems.push(problem('migration-missing', `${path} is listed in ${snapPath} but does not exist`, `restore ${path} from version control: committed migrations are never deleted`));
    } else if (sha256(readFileSync(abs(path), 'utf8')) !== m.sha256) {
      problems.push(
        problem(
          'migration-edited',
          `${path} changed after ${snapPath} recorded it; committed migrations are never rewritten`,
          `restore ${path} from version control and put the change in the policies; if a merge rewrote it and no database has applied it yet, delete ${snapPath} and regenerate (bootstrap)`,
        ),
      );
    }
  }
  if (problems.length > 0) return { files: [], problems };

  const diff = diffStates(snapshot.sections, unit.sections);
  if (diff.refusals.length > 0 && !options.acceptManual) {
    return { files: [], problems: diff.refusals.map((r) => problem('migration-needs-hand-edit', r.message, r.fix, r.id)) };
  }
  const current = renderSnapshot(unit.name, snapshot.migrations, unit.sections);
  if (diff.changes.length === 0) return { files: [{ path: snapPath, content: current }], problems: [] };

  const description = describeChanges(diff.changes);
  const file = numbers.take(`${unit.name}_${description}`);
  if (diff.sections.length === 0) return { files: [{ path: snapPath, content: current }], problems: [] };
  const manual = options.acceptManual && diff.refusals.length > 0 ? `; written by hand, not here: ${diff.refusals.map((r) => r.id).join(', ')}` : '';
  const title = `${unit.header.title}: ${description} (${diff.changes.length} change(s), listed above each statement${manual})`;
  const content = renderMigration({ title, source: unit.header.source }, diff.sections);
  return {
    files: [
      { path: join(migrationsDir, file), content, pending: true },
      { path: snapPath, content: renderSnapshot(unit.name, [...snapshot.migrations, { file, sha256: sha256(content) }], unit.sections) },
    ],
    problems: [],
  };
}

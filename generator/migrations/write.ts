// `rowguard generate`: policies → the files a project commits. Everything is computed in memory
// first; nothing is written when any policy has a problem, and `--check` writes nothing at all.
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { RowguardConfig } from '../config.ts';
import { compileModel } from '../emit/index.ts';
import { coreSections } from '../emit/roles.ts';
import { loadModels } from '../load.ts';
import type { Problem } from '../model/nodes.ts';
import { byCodePoint } from '../sql/print.ts';
import { validateModel, type ValidatedModel } from '../validate/index.ts';
import { GENERATED_MARK, renderMigration, renderScript } from './render.ts';

export const CORE_NAME = 'rowguard_core';

export interface PlannedFile {
  /** Relative to the project root. */
  readonly path: string;
  readonly content: string;
}

export interface GenerationPlan {
  readonly problems: Problem[];
  readonly files: PlannedFile[];
  /** Generated files on disk that no model produces any more (sql/ only; migrations are never deleted). */
  readonly stale: string[];
  readonly models: ValidatedModel[];
}

export async function planGeneration(config: RowguardConfig): Promise<GenerationPlan> {
  const loaded = await loadModels(config.root, config.policies);
  const problems: Problem[] = [...loaded.problems];
  const models: ValidatedModel[] = [];
  for (const m of loaded.models) {
    const { result, problems: found } = validateModel(m);
    problems.push(...found);
    if (result) models.push(result);
  }
  if (problems.length > 0) return { problems, files: [], stale: [], models };
  return { problems, ...planFiles(config, models), models };
}

/** The files for already validated models (also used by tests on models built in memory). */
export function planFiles(config: RowguardConfig, models: readonly ValidatedModel[]): { files: PlannedFile[]; stale: string[] } {
  const sorted = [...models].sort((a, b) => byCodePoint(a.model.schema, b.model.schema));
  const files: PlannedFile[] = [];
  const core = coreSections();
  files.push({ path: join(config.sql, `${CORE_NAME}.sql`), content: renderScript({ title: 'rowguard core: roles and identity signing' }, core) });
  const migrationNames = assignMigrationNames(resolve(config.root, config.migrations), [CORE_NAME, ...sorted.map((m) => m.model.schema)]);
  files.push({ path: join(config.migrations, migrationNames.get(CORE_NAME)!), content: renderMigration({ title: 'rowguard core: roles and identity signing' }, core) });
  for (const v of sorted) {
    const sections = compileModel(v);
    const header = { title: `rowguard model "${v.model.schema}"${v.model.description ? `: ${v.model.description}` : ''}`, source: v.model.file };
    files.push({ path: join(config.sql, `${v.model.schema}.sql`), content: renderScript(header, sections) });
    files.push({ path: join(config.migrations, migrationNames.get(v.model.schema)!), content: renderMigration(header, sections) });
  }
  const produced = new Set(files.map((f) => f.path));
  const sqlDir = resolve(config.root, config.sql);
  const stale = existsSync(sqlDir)
    ? readdirSync(sqlDir)
        .filter((f) => f.endsWith('.sql'))
        .map((f) => join(config.sql, f))
        .filter((p) => !produced.has(p) && readFileSync(resolve(config.root, p), 'utf8').includes(GENERATED_MARK))
    : [];
  return { files, stale };
}

/**
 * A model keeps the migration file it already has (found by its `_<name>.sql` suffix); a new model
 * gets the next number after the highest one present, so existing files never move.
 */
function assignMigrationNames(dir: string, names: readonly string[]): Map<string, string> {
  const existing = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+_.+\.sql$/.test(f)) : [];
  let next = existing.reduce((max, f) => Math.max(max, Number(/^(\d+)/.exec(f)![1])), 0) + 1;
  const result = new Map<string, string>();
  for (const name of names) {
    const found = existing.find((f) => f.replace(/^\d+_/, '') === `${name}.sql`);
    result.set(name, found ?? `${String(next++).padStart(4, '0')}_${name}.sql`);
  }
  return result;
}

export interface Drift {
  readonly changed: string[];
  readonly missing: string[];
  readonly stale: string[];
}

export function driftOf(config: RowguardConfig, plan: GenerationPlan): Drift {
  const changed: string[] = [];
  const missing: string[] = [];
  for (const f of plan.files) {
    const abs = resolve(config.root, f.path);
    if (!existsSync(abs)) missing.push(f.path);
    else if (readFileSync(abs, 'utf8') !== f.content) changed.push(f.path);
  }
  return { changed, missing, stale: plan.stale };
}

/** Writes only files whose bytes differ; returns what it wrote and removed. */
export function applyPlan(config: RowguardConfig, plan: GenerationPlan): { written: string[]; removed: string[] } {
  const drift = driftOf(config, plan);
  const toWrite = new Set([...drift.changed, ...drift.missing]);
  for (const f of plan.files) {
    if (!toWrite.has(f.path)) continue;
    const abs = resolve(config.root, f.path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, f.content);
  }
  for (const p of plan.stale) unlinkSync(resolve(config.root, p));
  return { written: [...toWrite], removed: plan.stale };
}

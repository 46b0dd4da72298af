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
import { MigrationNumbers, orphanedSnapshots, planUnit, type IncrementalOptions, type MigrationUnit } from './incremental.ts';
import { renderTypesModule } from '../typescript/module.ts';
import { GENERATED_MARK, renderScript } from './render.ts';

export const CORE_NAME = 'rowguard_core';

export interface PlannedFile {
  /** Relative to the project root. */
  readonly path: string;
  readonly content: string;
  /** A migration that does not exist yet: the policies changed and no migration was generated. */
  readonly pending?: boolean;
}

export interface GenerationPlan {
  readonly problems: Problem[];
  readonly files: PlannedFile[];
  /** Generated files on disk that no model produces any more (sql/ only; migrations are never deleted). */
  readonly stale: string[];
  readonly models: ValidatedModel[];
}

export async function planGeneration(config: RowguardConfig, options: IncrementalOptions = {}): Promise<GenerationPlan> {
  const loaded = await loadModels(config.root, config.policies);
  const problems: Problem[] = [...loaded.problems];
  const models: ValidatedModel[] = [];
  for (const m of loaded.models) {
    const { result, problems: found } = validateModel(m);
    problems.push(...found);
    if (result) models.push(result);
  }
  if (problems.length > 0) return { problems, files: [], stale: [], models };
  const planned = planFiles(config, models, options);
  return { problems: planned.problems, files: planned.files, stale: planned.stale, models };
}

/** The files for already validated models (also used by tests on models built in memory). */
export function planFiles(
  config: RowguardConfig,
  models: readonly ValidatedModel[],
  options: IncrementalOptions = {},
): { files: PlannedFile[]; stale: string[]; problems: Problem[] } {
  const sorted = [...models].sort((a, b) => byCodePoint(a.model.schema, b.model.schema));
  const files: PlannedFile[] = [];
  const problems: Problem[] = [];
  const core = coreSections();
  const coreHeader = { title: 'rowguard core: roles and identity signing' };
  files.push({ path: join(config.sql, `${CORE_NAME}.sql`), content: renderScript(coreHeader, core) });
  // Migrations: a new unit gets its first migration, a changed one a new incremental migration
  // (incremental.ts); committed migration files are never rewritten.
  const numbers = new MigrationNumbers(resolve(config.root, config.migrations));
  const units: MigrationUnit[] = [{ name: CORE_NAME, header: coreHeader, sections: core }];
  for (const v of sorted) {
    const sections = compileModel(v);
    const header = { title: `rowguard model "${v.model.schema}"${v.model.description ? `: ${v.model.description}` : ''}`, source: v.model.file };
    files.push({ path: join(config.sql, `${v.model.schema}.sql`), content: renderScript(header, sections) });
    units.push({ name: v.model.schema, header, sections });
  }
  problems.push(...orphanedSnapshots(config.root, config.migrations, units.map((u) => u.name)));
  for (const unit of units) {
    const planned = planUnit(config.root, config.migrations, unit, numbers, options);
    files.push(...planned.files);
    problems.push(...planned.problems);
  }
  files.push({ path: config.generated, content: renderTypesModule(sorted.map((v) => v.model)) });
  const produced = new Set(files.map((f) => f.path));
  const sqlDir = resolve(config.root, config.sql);
  const stale = existsSync(sqlDir)
    ? readdirSync(sqlDir)
        .filter((f) => f.endsWith('.sql'))
        .map((f) => join(config.sql, f))
        .filter((p) => !produced.has(p) && readFileSync(resolve(config.root, p), 'utf8').includes(GENERATED_MARK))
    : [];
  if (problems.length > 0) return { files: [], stale: [], problems };
  return { files, stale, problems };
}

export interface Drift {
  readonly changed: string[];
  readonly missing: string[];
  /** New migrations the current policies need (listed in `missing` too). */
  readonly pending: string[];
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
  const pending = plan.files.filter((f) => f.pending && missing.includes(f.path)).map((f) => f.path);
  return { changed, missing, pending, stale: plan.stale };
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

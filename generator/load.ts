// Finding and importing policy files. Each `policies/*.ts` default-exports one defineModel(...).
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { isModel } from './dsl/model.ts';
import type { ModelNode, Problem } from './model/nodes.ts';

export interface LoadedModels {
  readonly models: ModelNode[];
  readonly problems: Problem[];
}

export function policyFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((f) => /\.(ts|mts|js|mjs)$/.test(f) && !f.endsWith('.d.ts') && !f.startsWith('_') && !f.includes('.test.'))
    .sort()
    .map((f) => join(dir, f));
}

export async function loadModels(root: string, policiesDir: string): Promise<LoadedModels> {
  const dir = resolve(root, policiesDir);
  const models: ModelNode[] = [];
  const problems: Problem[] = [];
  const files = policyFiles(dir);
  if (files.length === 0) {
    problems.push({ code: 'no-policies', file: relative(root, dir) || '.', path: '-', message: `no policy files found in ${dir}`, fix: 'add a policies/<name>.ts that default-exports defineModel(...), or point --policies at your folder' });
  }
  for (const file of files) {
    const shown = relative(root, file);
    let mod: Record<string, unknown>;
    try {
      // tsImport loads the file as an ES module whatever the surrounding package.json says, so a
      // project without "type": "module" can keep its policies in plain .ts files.
      mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
    } catch (error) {
      problems.push({ code: 'load-failed', file: shown, path: '-', message: `could not load: ${(error as Error).message}`, fix: 'fix the error in the file (it is imported as an ES module)' });
      continue;
    }
    // A file compiled as CommonJS (no "type": "module" nearby) arrives with its default export
    // one level down.
    const value = isModel(mod.default) ? mod.default : (mod.default as { default?: unknown } | undefined)?.default;
    if (!isModel(value)) {
      problems.push({ code: 'no-model', file: shown, path: '-', message: 'the file has no default export made by defineModel()', fix: "end the file with `export default defineModel('schema', (m) => { … })`; helper modules start with _" });
      continue;
    }
    models.push({ ...value, file: shown });
  }
  const seen = new Map<string, string>();
  for (const m of models) {
    const other = seen.get(m.schema);
    if (other) problems.push({ code: 'duplicate-schema', file: m.file, path: 'model', message: `schema "${m.schema}" is also defined by ${other}`, fix: 'give each model its own schema' });
    seen.set(m.schema, m.file);
  }
  return { models, problems };
}

// Where a project keeps its policies and generated files: `rowguard.config.json` at the project
// root (all keys optional), overridden by command-line flags.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface RowguardConfig {
  /** Project root: every other path is relative to it. */
  readonly root: string;
  readonly policies: string;
  readonly sql: string;
  readonly migrations: string;
  /** Where the typed TypeScript module for applications is written. */
  readonly generated: string;
}

export const CONFIG_FILE = 'rowguard.config.json';

const DEFAULTS = { policies: 'policies', sql: 'sql', migrations: 'migrations', generated: 'runtime/generated.ts' };

export function loadConfig(root: string, overrides: Partial<Omit<RowguardConfig, 'root'>> = {}, configFile?: string): RowguardConfig {
  const file = resolve(root, configFile ?? CONFIG_FILE);
  let fromFile: Partial<typeof DEFAULTS> = {};
  if (existsSync(file)) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Partial<typeof DEFAULTS>;
    } catch (error) {
      throw new Error(`${file}: not valid JSON (${(error as Error).message}); fix the file or remove it to use the defaults`);
    }
    for (const key of Object.keys(fromFile)) {
      if (!(key in DEFAULTS)) throw new Error(`${file}: unknown key "${key}"; known keys: ${Object.keys(DEFAULTS).join(', ')}`);
    }
  } else if (configFile) {
    throw new Error(`${file}: config file not found`);
  }
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return { root, ...DEFAULTS, ...fromFile, ...defined };
}

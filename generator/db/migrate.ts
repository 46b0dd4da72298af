// Applying the generated migrations with node-pg-migrate's own runner: the same code path as
// `npm run migrate up`, all pending files in one transaction.
import { resolve } from 'node:path';
import { runner } from 'node-pg-migrate';

export const MIGRATIONS_TABLE = 'rowguard_migrations';

export async function migrate(databaseUrl: string, options: { dir: string; direction?: 'up' | 'down'; count?: number; log?: (m: string) => void }): Promise<string[]> {
  const log = options.log ?? (() => {});
  const ran = await runner({
    databaseUrl,
    dir: resolve(options.dir),
    direction: options.direction ?? 'up',
    count: options.count ?? Infinity,
    migrationsTable: MIGRATIONS_TABLE,
    singleTransaction: true,
    checkOrder: true,
    log,
    logger: { debug: () => {}, info: log, warn: log, error: log },
  });
  return ran.map((m) => m.name);
}

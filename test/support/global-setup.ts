// Starts one PostgreSQL server for the run (DATABASE_URL, else testcontainers, else embedded),
// applies the committed migrations to a template database, and hands its URL to the test files.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../generator/db/migrate.ts';
import { startDatabase, withDatabase, type DatabaseServer } from '../../generator/db/server.ts';

export const TEMPLATE_DB = 'rowguard_test_template';

let server: DatabaseServer | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  server = await startDatabase({ dataDir: join(tmpdir(), `rowguard-test-${process.pid}`), persistent: false });
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
    await admin.unsafe(`CREATE DATABASE ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  await migrate(withDatabase(server.url, TEMPLATE_DB), { dir: 'migrations' });
  project.provide('serverUrl', server.url);
  project.provide('templateDb', TEMPLATE_DB);
  return async () => {
    await server?.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    serverUrl: string;
    templateDb: string;
  }
}

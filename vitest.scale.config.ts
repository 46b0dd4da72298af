import { defineConfig } from 'vitest/config';

// Scale-out checks (PgBouncer, hot standby): each file starts its own PostgreSQL and helpers on
// 127.0.0.1. Run with `npm run test:scale`; not part of `npm test`.
export default defineConfig({
  test: {
    include: ['test/scale/**/*.scale.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});

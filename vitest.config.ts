import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { defineConfig } from 'vitest/config';

// Node loads graphql's CommonJS build for the packages in node_modules (Apollo, graphql-tools); the hub's own
// sources must use the same module, or schema objects built by one are foreign to the other (instanceof).
const graphqlDir = dirname(createRequire(import.meta.url).resolve('graphql'));

/** Test files that measure latency under load. */
const alone = ['tests/security/query-limits.test.ts', 'tests/database/start-up.test.ts'];

export default defineConfig({
  resolve: {
    alias: [
      { find: /^graphql$/, replacement: `${graphqlDir}/index.js` },
      { find: /^graphql\/(.*)$/, replacement: `${graphqlDir}/$1.js` },
    ],
  },
  test: {
    // One throwaway FerretDB for the run (or MONGODB_URI); each test file works in its own database.
    globalSetup: ['tests/support/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: 'suite', include: ['tests/**/*.test.ts'], exclude: alone, sequence: { groupOrder: 0 } } },
      // Tests that measure latency under load run after the others, one file at a time, on a machine nobody
      // else is loading (CI has two cores; a Synthea import beside them would be what they measure).
      { extends: true, test: { name: 'alone', include: alone, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});

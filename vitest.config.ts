import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { defineConfig } from 'vitest/config';

// Node loads graphql's CommonJS build for the packages in node_modules (Apollo, graphql-tools); the hub's own
// sources must use the same module, or schema objects built by one are foreign to the other (instanceof).
const graphqlDir = dirname(createRequire(import.meta.url).resolve('graphql'));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^graphql$/, replacement: `${graphqlDir}/index.js` },
      { find: /^graphql\/(.*)$/, replacement: `${graphqlDir}/$1.js` },
    ],
  },
  test: {
    include: ['tests/**/*.test.ts'],
    // One throwaway FerretDB for the run (or MONGODB_URI); each test file works in its own database.
    globalSetup: ['tests/support/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});

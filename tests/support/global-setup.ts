/**
 * Starts one throwaway embedded database for the test run — the hub's default, FerretDB on PostgreSQL (SQLite
 * with TEST_DB_BACKEND=sqlite or where PostgreSQL is absent) — unless MONGODB_URI names a database to use (so
 * the same suite runs against a real MongoDB). Its data lives in .test-data/ and is removed afterwards.
 */
import { mkdtempSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { projectRoot } from '../../src/config.ts';
import { startEmbeddedDatabase } from '../../src/database/embedded-database.ts';
import { ensureFerretDbBinary } from '../../src/database/embedded-ferretdb.ts';
import { freePort } from './ports.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mongodbUri: string;
    /** FerretDB's PostgreSQL database, when the run's database is FerretDB on PostgreSQL */
    postgresUrl: string;
    /** Whether the database is the run's own FerretDB (tests that stop a server start their own anyway). */
    ownFerretDb: boolean;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureFerretDbBinary(undefined, (message) => console.log(message));
  if (process.env.MONGODB_URI) {
    project.provide('mongodbUri', process.env.MONGODB_URI);
    project.provide('postgresUrl', process.env.FERRETDB_POSTGRESQL_URL ?? '');
    project.provide('ownFerretDb', false);
    return async () => {};
  }
  mkdirSync(join(projectRoot, '.test-data'), { recursive: true });
  const dataDir = mkdtempSync(join(projectRoot, '.test-data', 'run-'));
  const database = await startEmbeddedDatabase({
    dataDir,
    ferretdbPort: await freePort(),
    postgresPort: await freePort(),
    backend: (process.env.TEST_DB_BACKEND as 'postgresql' | 'sqlite' | undefined) ?? 'auto',
    warn: (message) => console.warn(message),
  });
  console.log(`test database: ${database.description}`);
  project.provide('mongodbUri', database.uri);
  project.provide('postgresUrl', database.postgresUrl ?? '');
  project.provide('ownFerretDb', true);
  return async () => {
    await database.remove();
  };
}

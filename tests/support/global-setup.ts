/**
 * Starts one throwaway FerretDB for the test run, unless MONGODB_URI names a database to use (so the same
 * suite runs against a real MongoDB). Its data lives in .test-data/ and is removed afterwards.
 */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { projectRoot } from '../../src/config.ts';
import { EmbeddedFerretDb, ensureFerretDbBinary } from '../../src/database/embedded-ferretdb.ts';
import { freePort } from './ports.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mongodbUri: string;
    /** Whether the database is the run's own FerretDB (tests that stop a server start their own anyway). */
    ownFerretDb: boolean;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureFerretDbBinary(undefined, (message) => console.log(message));
  if (process.env.MONGODB_URI) {
    project.provide('mongodbUri', process.env.MONGODB_URI);
    project.provide('ownFerretDb', false);
    return async () => {};
  }
  mkdirSync(join(projectRoot, '.test-data'), { recursive: true });
  const dataDir = mkdtempSync(join(projectRoot, '.test-data', 'run-'));
  const server = new EmbeddedFerretDb({ dataDir, port: await freePort() });
  await server.start();
  project.provide('mongodbUri', server.uri);
  project.provide('ownFerretDb', true);
  return async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
}

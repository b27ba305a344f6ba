/** Test helpers: a fresh database per test file, an in-process hub on a free port, and a GraphQL client. */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { startHub, type Hub } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { openDatabase, type DatabaseConnection } from '../../src/database/connection.ts';
import { seedDemoConsortium } from '../../src/demo/seed.ts';
import { SideCollections } from '../../src/fhir/side-collections.ts';
import type { StoreMaintenance } from '../../src/fhir/storage/maintenance.ts';
import type { FhirStore } from '../../src/fhir/store.ts';
import { createHubStore } from '../../src/hub-store.ts';
import { createLogger } from '../../src/log.ts';

export const mongodbUri = (): string => inject('mongodbUri');
/** FerretDB's PostgreSQL database of the run, when there is one (the hub creates its GIN indexes there). */
export const postgresUrl = (): string | undefined => inject('postgresUrl') || undefined;

export function uniqueDatabaseName(label: string): string {
  return `test_${label}_${randomBytes(4).toString('hex')}`;
}

export interface TestDatabase {
  name: string;
  connection: DatabaseConnection;
  store: FhirStore;
  maintenance: StoreMaintenance;
  /** The domains' own collections (fhir/side-collections.ts) in this database. */
  collections: SideCollections;
  /** Drops the database and closes the connection. */
  drop(): Promise<void>;
}

export async function freshDatabase(label: string, options: { uri?: string; listMaxResults?: number } = {}): Promise<TestDatabase> {
  const name = uniqueDatabaseName(label);
  const uri = options.uri ?? mongodbUri();
  const postgres = uri === mongodbUri() ? postgresUrl() : undefined;
  const connection = openDatabase(uri, name, 5000, undefined, postgres ? { url: postgres } : undefined);
  const { store, maintenance } = createHubStore(connection.db, { listMaxResults: options.listMaxResults ?? 1000 });
  await maintenance.ensureIndexes();
  return {
    name,
    connection,
    store,
    maintenance,
    collections: new SideCollections(connection.db),
    drop: async () => {
      await connection.db.dropDatabase().catch(() => undefined);
      await connection.close();
    },
  };
}

/**
 * Test hubs run with AUTH_REQUIRED=false unless a test asks for authentication (tests/auth/ does): the
 * other suites test search, identity and the store, not tokens.
 */
/** TEST_LOG_LEVEL=error (or debug) shows the test hubs' logs, e.g. the cause of an INTERNAL error. */
const testLogLevel = (process.env.TEST_LOG_LEVEL ?? 'silent') as Config['LOG_LEVEL'];

export function testConfig(overrides: Record<string, string> = {}): Config {
  // The minute's maintenance (cut-off writes, no-show sweep) runs at start only: its queries would otherwise land
  // in the middle of tests that count round trips.
  return loadConfig({ PORT: '0', LOG_LEVEL: testLogLevel, DB_TIMEOUT_MS: '5000', SHUTDOWN_GRACE_MS: '2000', AUTH_REQUIRED: 'false', MAINTENANCE_INTERVAL_MS: '3600000', JOB_INTERVAL_MS: '3600000', ...overrides });
}

export async function startTestHub(databaseName: string, overrides: Record<string, string> = {}, uri = mongodbUri()): Promise<Hub> {
  const hub = await startHub(testConfig({ MONGODB_DB: databaseName, ...overrides }), uri, createLogger(testLogLevel), undefined, uri === mongodbUri() ? postgresUrl() : undefined);
  // The start-up's own database work (indexes, the recovery of cut-off writes, the no-show sweep) is done before
  // a test counts round trips.
  await Promise.all([hub.recovered, hub.indexesReady]);
  return hub;
}

/** A fresh database holding the demo consortium, and a hub on it. */
export async function demoHub(label: string, overrides: Record<string, string> = {}): Promise<{ database: TestDatabase; hub: Hub }> {
  const database = await freshDatabase(label);
  await seedDemoConsortium(database.store);
  return { database, hub: await startTestHub(database.name, overrides) };
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; resource?: { resourceType: string; issue: unknown[] } } & Record<string, unknown> }[];
}

export async function graphql<T = Record<string, any>>(hubUrl: string, query: string, variables?: Record<string, unknown>, token?: string): Promise<GraphQLResponse<T>> {
  const response = await fetch(`${hubUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, ...((await response.json()) as object) };
}

/**
 * npm run seed: loads the demo consortium into the database of MONGODB_URI, or into the embedded FerretDB
 * (started for the run) when MONGODB_URI is not set. Running it again changes nothing.
 */
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/database/connection.ts';
import { EmbeddedFerretDb } from '../src/database/embedded-ferretdb.ts';
import { seedDemoConsortium } from '../src/demo/seed.ts';
import { FhirStore } from '../src/fhir/store.ts';

const config = loadConfig();
let embedded: EmbeddedFerretDb | undefined;
let uri = config.MONGODB_URI;
if (!uri) {
  embedded = new EmbeddedFerretDb({ binary: config.FERRETDB_BIN, dataDir: join(config.DATA_DIR, 'ferretdb'), port: config.EMBEDDED_DB_PORT, log: console.log });
  // A running hub's embedded database is shared; otherwise one is started for this run.
  if (!(await embedded.attachOrStart())) embedded = undefined;
  uri = `mongodb://127.0.0.1:${config.EMBEDDED_DB_PORT}/`;
}
const database = openDatabase(uri, config.MONGODB_DB, config.DB_TIMEOUT_MS, config.DB_OPERATION_TIMEOUT_MS);
try {
  const store = new FhirStore(database.db, { listMaxResults: config.LIST_MAX_RESULTS });
  await store.ensureIndexes();
  const started = Date.now();
  const summary = await seedDemoConsortium(store);
  console.log(`demo consortium loaded into ${config.MONGODB_DB} in ${Date.now() - started} ms:`, summary);
} finally {
  await database.close();
  await embedded?.stop();
}

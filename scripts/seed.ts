/**
 * npm run seed: loads the demo consortium into the database of MONGODB_URI, or into the embedded FerretDB
 * (started for the run) when MONGODB_URI is not set. Running it again changes nothing.
 */
import { ClientRegistry } from '../src/auth/clients.ts';
import { loadConfig } from '../src/config.ts';
import { seedDemoClients } from '../src/demo/clients.ts';
import { openConfiguredDatabase } from '../src/database/configured-database.ts';
import { seedDemoReadings } from '../src/demo/readings.ts';
import { seedDemoDecisions, seedDemoRecognition } from '../src/demo/recognition.ts';
import { seedDemoReferrals } from '../src/demo/referrals.ts';
import { seedDemoConsortium } from '../src/demo/seed.ts';
import { createHubStore, hubStoreOptions } from '../src/hub-store.ts';
import { SideCollections } from '../src/fhir/side-collections.ts';

const config = loadConfig();
const { database, close } = await openConfiguredDatabase(config, console.log);
try {
  const { store, maintenance } = createHubStore(database.db, hubStoreOptions(config));
  await maintenance.ensureIndexes();
  const started = Date.now();
  const summary = await seedDemoConsortium(store);
  await database.refreshStatistics();
  console.log(`demo consortium loaded into ${config.MONGODB_DB} in ${Date.now() - started} ms:`, summary);
  console.log(`demo API clients registered: ${await seedDemoClients(new ClientRegistry(database.db))} new`);
  console.log(`demo recognition: ${await seedDemoRecognition(store)} resources (catalog, QC records, code map, results)`);
  console.log(`demo recognition decisions of a year: ${await seedDemoDecisions(store, new SideCollections(database.db), new Date(), config.RECOGNITION_MARK)}`);
  console.log(`demo remote readings of a year: ${await seedDemoReadings(store, new SideCollections(database.db))}`);
  const referrals = await seedDemoReferrals(store, new SideCollections(database.db));
  console.log(referrals > 0 ? `demo referrals: ${referrals} run through the workflow` : 'demo referrals: present already');
} finally {
  await close();
}

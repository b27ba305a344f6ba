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
import { createHubStore } from '../src/hub-store.ts';

const config = loadConfig();
const { database, close } = await openConfiguredDatabase(config, console.log);
try {
  const store = createHubStore(database.db, { listMaxResults: config.LIST_MAX_RESULTS, nationalIdSystem: config.NATIONAL_ID_SYSTEM, recognitionMark: config.RECOGNITION_MARK, reading: { ...(config.CRITICAL_RULES ? { rules: config.CRITICAL_RULES } : {}), ackMinutes: config.CRITICAL_ACK_MINUTES } });
  await store.ensureIndexes();
  const started = Date.now();
  const summary = await seedDemoConsortium(store);
  await database.refreshStatistics();
  console.log(`demo consortium loaded into ${config.MONGODB_DB} in ${Date.now() - started} ms:`, summary);
  console.log(`demo API clients registered: ${await seedDemoClients(new ClientRegistry(database.db))} new`);
  console.log(`demo recognition: ${await seedDemoRecognition(store)} resources (catalog, QC records, code map, results)`);
  console.log(`demo recognition decisions of a year: ${await seedDemoDecisions(store, database.db, new Date(), config.RECOGNITION_MARK)}`);
  console.log(`demo remote readings of a year: ${await seedDemoReadings(store, database.db)}`);
  const referrals = await seedDemoReferrals(store, database.db);
  console.log(referrals > 0 ? `demo referrals: ${referrals} run through the workflow` : 'demo referrals: present already');
} finally {
  await close();
}

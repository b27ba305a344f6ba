/**
 * npm run reindex: re-extracts the search values of every stored resource. Needed once after an upgrade
 * that adds search parameters (the hub logs a warning at start when the database's values are stale).
 * Safe while hubs are serving: a resource written meanwhile keeps the values its writer extracted.
 */
import { loadConfig } from '../src/config.ts';
import { openConfiguredDatabase } from '../src/database/configured-database.ts';
import { createHubStore } from '../src/hub-store.ts';

const config = loadConfig();
const { database, close } = await openConfiguredDatabase(config, console.log);
try {
  const store = createHubStore(database.db, { listMaxResults: config.LIST_MAX_RESULTS, nationalIdSystem: config.NATIONAL_ID_SYSTEM, recognitionMark: config.RECOGNITION_MARK, reading: { ...(config.CRITICAL_RULES ? { rules: config.CRITICAL_RULES } : {}), ackMinutes: config.CRITICAL_ACK_MINUTES } });
  const started = Date.now();
  // A progress line on a terminal; otherwise only the summary below.
  const summary = await store.reindex((type, done) => {
    if (process.stdout.isTTY) process.stdout.write(`\r${type}: ${done} resources   `);
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(`reindexed ${summary.documents} resources (${summary.changed} changed) in ${Date.now() - started} ms`);
} finally {
  await close();
}

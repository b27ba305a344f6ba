/**
 * npm run reindex: re-extracts the search values of every stored resource. Needed once after an upgrade
 * that adds search parameters (the hub logs a warning at start when the database's values are stale).
 * Safe while hubs are serving: a resource written meanwhile keeps the values its writer extracted.
 */
import { loadConfig } from '../src/config.ts';
import { openConfiguredDatabase } from '../src/database/configured-database.ts';
import { createHubStore, hubStoreOptions } from '../src/hub-store.ts';

const config = loadConfig();
const { database, close } = await openConfiguredDatabase(config, console.log);
try {
  const { maintenance } = createHubStore(database.db, hubStoreOptions(config));
  const started = Date.now();
  // A progress line on a terminal; otherwise only the summary below.
  const summary = await maintenance.reindex((type, done) => {
    if (process.stdout.isTTY) process.stdout.write(`\r${type}: ${done} resources   `);
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(`reindexed ${summary.documents} resources (${summary.changed} changed) in ${Date.now() - started} ms`);
} finally {
  await close();
}

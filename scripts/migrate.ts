/**
 * npm run migrate: moves the embedded database of DATA_DIR from FerretDB's SQLite backend (the earlier layout)
 * to its PostgreSQL backend (src/database/migrate.ts). Stop the hub first; the SQLite data is kept aside.
 */
import { loadConfig } from '../src/config.ts';
import { migrateSqliteToPostgres } from '../src/database/migrate.ts';
import { createHubStore, hubStoreOptions } from '../src/hub-store.ts';

const config = loadConfig();
if (config.MONGODB_URI) {
  console.error('MONGODB_URI is set: npm run migrate moves only the embedded database of DATA_DIR');
  process.exit(2);
}
try {
  const report = await migrateSqliteToPostgres({
    dataDir: config.DATA_DIR,
    ferretdbBinary: config.FERRETDB_BIN,
    maintenanceFor: (db) => createHubStore(db, hubStoreOptions(config)).maintenance,
    log: console.log,
  });
  for (const database of report.databases) {
    console.log(`database ${database.name}: ${database.collections} collections, ${database.documents} documents copied, ${database.reencoded} resources re-encoded`);
  }
  console.log(`migrated to PostgreSQL in ${report.ms} ms; the SQLite data is kept in ${report.backup} (delete it when the hub runs well)`);
} catch (error) {
  console.error(`migration failed: ${(error as Error).message}`);
  process.exit(1);
}

import { join } from 'node:path';
import type { Config } from '../config.ts';
import { openDatabase, type DatabaseConnection } from './connection.ts';
import { startupLimit } from './startup-wait.ts';
import { runningPostgresUrl, startEmbeddedDatabase, type EmbeddedDatabase } from './embedded-database.ts';
import { EmbeddedFerretDb, splitCredentials } from './embedded-ferretdb.ts';

/** A connection string with its user name and password left out, for messages. */
export function withoutCredentials(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1');
}

/**
 * For commands beside the hub (`npm run seed`, `import`, `reindex`, `clients`, `migrate`): the database of
 * MONGODB_URI, or the embedded database of DATA_DIR — the one a running hub serves (at the port its FerretDB
 * really listens on), or one started for this command and stopped by `close`. Never another server that
 * happens to listen on the configured port. `log` is told first which database it is.
 */
export async function openConfiguredDatabase(
  config: Config,
  log: (message: string) => void,
): Promise<{ database: DatabaseConnection; close: () => Promise<void> }> {
  let embedded: EmbeddedDatabase | undefined;
  let uri = config.MONGODB_URI;
  let postgresUrl = config.FERRETDB_POSTGRESQL_URL;
  if (uri) {
    log(`database: MONGODB_URI ${withoutCredentials(uri)}, database ${config.MONGODB_DB}`);
  } else {
    const runningPostgres = runningPostgresUrl(config.DATA_DIR);
    const running = await new EmbeddedFerretDb({ binary: config.FERRETDB_BIN, dataDir: join(config.DATA_DIR, 'ferretdb'), port: config.EMBEDDED_DB_PORT, ...(runningPostgres ? { credentials: splitCredentials(runningPostgres).credentials } : {}) }).runningForDataFolder();
    if (running) {
      log(`database: ${running.description}, database ${config.MONGODB_DB}`);
      uri = running.uri;
      postgresUrl = runningPostgres;
    } else {
      log(`database: an embedded database started for this command (data folder ${config.DATA_DIR}), database ${config.MONGODB_DB}`);
      embedded = await startEmbeddedDatabase({
        dataDir: config.DATA_DIR,
        ferretdbPort: config.EMBEDDED_DB_PORT,
        postgresPort: config.EMBEDDED_POSTGRES_PORT,
        ferretdbBinary: config.FERRETDB_BIN,
        backend: config.EMBEDDED_DB_BACKEND,
        startupTimeoutMs: config.STARTUP_TIMEOUT_MS,
        log,
        warn: log,
      });
      uri = embedded.uri;
      postgresUrl = embedded.postgresUrl;
    }
  }
  const database = openDatabase(uri, config.MONGODB_DB, config.DB_TIMEOUT_MS, config.DB_OPERATION_TIMEOUT_MS, postgresUrl ? { url: postgresUrl, warn: log } : undefined);
  try {
    await database.connect(startupLimit(config.STARTUP_TIMEOUT_MS, log));
  } catch (error) {
    await database.close().catch(() => undefined);
    await embedded?.stop();
    throw error;
  }
  return {
    database,
    close: async () => {
      await database.close();
      await embedded?.stop();
    },
  };
}

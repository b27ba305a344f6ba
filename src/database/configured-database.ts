import { join } from 'node:path';
import type { Config } from '../config.ts';
import { openDatabase, type DatabaseConnection } from './connection.ts';
import { EmbeddedFerretDb } from './embedded-ferretdb.ts';

/** A connection string with its user name and password left out, for messages. */
export function withoutCredentials(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1');
}

/**
 * For commands beside the hub (`npm run seed`, `import`, `reindex`, `clients`): the database of MONGODB_URI, or
 * the embedded FerretDB of DATA_DIR — the one a running hub uses, or one started for this command and stopped
 * by `close`. Never another server that happens to listen on the configured port. `log` is told first which
 * database it is.
 */
export async function openConfiguredDatabase(
  config: Config,
  log: (message: string) => void,
): Promise<{ database: DatabaseConnection; close: () => Promise<void> }> {
  let embedded: EmbeddedFerretDb | undefined;
  let uri = config.MONGODB_URI;
  if (uri) {
    log(`database: MONGODB_URI ${withoutCredentials(uri)}, database ${config.MONGODB_DB}`);
  } else {
    const dataDir = join(config.DATA_DIR, 'ferretdb');
    const candidate = new EmbeddedFerretDb({ binary: config.FERRETDB_BIN, dataDir, port: config.EMBEDDED_DB_PORT, log });
    const running = await candidate.runningForDataFolder();
    if (running) {
      log(`database: ${running.description}, database ${config.MONGODB_DB}`);
      uri = running.uri;
    } else {
      log(`database: an embedded FerretDB started for this command (127.0.0.1:${config.EMBEDDED_DB_PORT}, data folder ${dataDir}), database ${config.MONGODB_DB}`);
      await candidate.start();
      embedded = candidate;
      uri = candidate.uri;
    }
  }
  const database = openDatabase(uri, config.MONGODB_DB, config.DB_TIMEOUT_MS, config.DB_OPERATION_TIMEOUT_MS);
  return {
    database,
    close: async () => {
      await database.close();
      await embedded?.stop();
    },
  };
}

import { join } from 'node:path';
import type { Config } from '../config.ts';
import { openDatabase, type DatabaseConnection } from './connection.ts';
import { EmbeddedFerretDb } from './embedded-ferretdb.ts';

/**
 * For commands beside the hub (`npm run seed`, `npm run import`): the database of MONGODB_URI, or the
 * embedded FerretDB — the one a running hub uses, or one started for this command and stopped by `close`.
 */
export async function openConfiguredDatabase(
  config: Config,
  log?: (message: string) => void,
): Promise<{ database: DatabaseConnection; close: () => Promise<void> }> {
  let embedded: EmbeddedFerretDb | undefined;
  let uri = config.MONGODB_URI;
  if (!uri) {
    embedded = new EmbeddedFerretDb({ binary: config.FERRETDB_BIN, dataDir: join(config.DATA_DIR, 'ferretdb'), port: config.EMBEDDED_DB_PORT, log });
    if (!(await embedded.attachOrStart())) embedded = undefined;
    uri = `mongodb://127.0.0.1:${config.EMBEDDED_DB_PORT}/`;
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

import { MongoClient, type Db } from 'mongodb';
import { FerretDbStorage, useFerretDbStorage } from './ferretdb-storage.ts';

export interface DatabaseConnection {
  client: MongoClient;
  db: Db;
  /** Round trips since the connection was made: commands (command monitoring) and direct reads from PostgreSQL. */
  commandsSent(): number;
  /** Whether the server answers a ping now. */
  ping(): Promise<boolean>;
  /** Whether the server was unreachable at some moment since `since` (ms since the epoch), as the driver saw it. */
  unreachableSince(since: number): boolean;
  /** After a bulk import: refreshes the planner statistics of FerretDB's PostgreSQL tables (a no-op elsewhere). */
  refreshStatistics(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a client. The driver connects lazily and reconnects by itself, so a database that is down at
 * start or goes away later makes operations fail fast (after `timeoutMs`) instead of stopping the hub.
 */
export function openDatabase(
  uri: string,
  dbName: string,
  timeoutMs: number,
  operationTimeoutMs = 120_000,
  /** FerretDB's PostgreSQL database, when the server is FerretDB on PostgreSQL: the hub creates its GIN indexes there. */
  postgres?: { url: string; warn?: (message: string) => void },
): DatabaseConnection {
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: operationTimeoutMs,
    maxPoolSize: 50,
    monitorCommands: true,
    appName: 'consortium-hub',
  });
  let commands = 0;
  client.on('commandStarted', () => {
    commands++;
  });
  // Outages as the driver's monitoring sees them: when the server went Unknown, and when it came back.
  let downSince: number | undefined;
  let lastDownUntil = 0;
  client.on('serverDescriptionChanged', (event) => {
    const unknown = event.newDescription.type === 'Unknown';
    if (unknown && downSince === undefined) downSince = Date.now();
    else if (!unknown && downSince !== undefined) {
      downSince = undefined;
      lastDownUntil = Date.now();
    }
  });
  const db = client.db(dbName);
  const indexes = postgres ? new FerretDbStorage(postgres.url, postgres.warn) : undefined;
  if (indexes) useFerretDbStorage(db, indexes);
  return {
    client,
    db,
    commandsSent: () => commands + (indexes?.statements ?? 0),
    ping: async () => {
      try {
        await db.command({ ping: 1 }, { timeoutMS: timeoutMs });
        return true;
      } catch {
        return false;
      }
    },
    unreachableSince: (since) => downSince !== undefined || lastDownUntil >= since,
    refreshStatistics: async () => {
      await indexes?.analyze(dbName);
    },
    close: async () => {
      await client.close();
      await indexes?.close();
    },
  };
}

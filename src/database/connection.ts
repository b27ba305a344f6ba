import { MongoClient, type Db } from 'mongodb';
import { FerretDbStorage, useFerretDbStorage } from './ferretdb-storage.ts';
import { waitFor, type StartupLimit } from './startup-wait.ts';

export interface DatabaseConnection {
  client: MongoClient;
  db: Db;
  /** Round trips since the connection was made: commands (command monitoring) and direct reads from PostgreSQL. */
  commandsSent(): number;
  /**
   * Connects, trying again until the start-up limit: a first connection the driver could not make leaves its
   * client closed for good (every later operation fails with "Topology is closed"), so the hub makes it here
   * before any operation, however long a busy machine takes. Once connected, the driver reconnects by itself.
   */
  connect(limit: StartupLimit): Promise<void>;
  /** Whether the server answers a ping now. */
  ping(): Promise<boolean>;
  /** Whether the server was unreachable at some moment since `since` (ms since the epoch), as the driver saw it. */
  unreachableSince(since: number): boolean;
  /** After a bulk import: refreshes the planner statistics of FerretDB's PostgreSQL tables (a no-op elsewhere). */
  refreshStatistics(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a client (connect() makes the first connection). A database that goes away later makes operations fail
 * fast (after `timeoutMs`, the wait for a reachable server) instead of stopping the hub, and the driver
 * reconnects by itself when it returns. Connections get at least 10 s to open: on a busy machine a new
 * connection (or the driver's heartbeat on it) can take seconds, and a stopped server refuses at once anyway.
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
    connectTimeoutMS: Math.max(timeoutMs, 10_000),
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
    connect: (limit) =>
      waitFor('the database to accept the hub\'s connection', async () => {
        try {
          await client.connect();
          await db.command({ ping: 1 });
          return true;
        } catch {
          return false;
        }
      }, limit, { intervalMs: 1000 }),
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

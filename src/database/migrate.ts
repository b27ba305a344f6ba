/**
 * `npm run migrate`: moves a data folder of the earlier SQLite layout (DATA_DIR/ferretdb/*.sqlite) to the
 * PostgreSQL layout the embedded database uses now (embedded-database.ts).
 *
 * The source is never changed: the new cluster is built beside it (DATA_DIR/postgres.migrating and
 * DATA_DIR/ferretdb.migrating), every collection of every database is copied with its indexes, each hub database
 * gets the hub's indexes and its documents re-encoded in the PostgreSQL layout (the store's reindex), counts are
 * compared, and only then are the folders swapped: the old one stays as DATA_DIR/ferretdb-sqlite-<time> until the
 * operator deletes it. A migration cut off at any point leaves the SQLite data in use and is simply run again.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { openDatabase } from './connection.ts';
import { holdsSqliteData } from './embedded-database.ts';
import { EmbeddedDatabaseError, EmbeddedFerretDb } from './embedded-ferretdb.ts';
import { EmbeddedPostgres, postgresBinDir } from './embedded-postgres.ts';
import { servedResourceTypes } from '../fhir/resource-types.ts';
import type { StoreMaintenance } from '../fhir/storage/maintenance.ts';
import type { Db } from 'mongodb';

export interface MigrationOptions {
  dataDir: string;
  ferretdbBinary?: string;
  /** The store of one database on the new server (the hub's store, with its extensions). */
  maintenanceFor: (db: Db) => StoreMaintenance;
  log?: (message: string) => void;
  batch?: number;
}

export interface MigrationReport {
  databases: { name: string; collections: number; documents: number; reencoded: number }[];
  /** Where the SQLite data now is (kept until deleted by hand). */
  backup: string;
  ms: number;
}

/** A free TCP port on the loopback interface. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Databases FerretDB and MongoDB keep for themselves. */
const systemDatabases = new Set(['admin', 'local', 'config']);

export async function migrateSqliteToPostgres(options: MigrationOptions): Promise<MigrationReport> {
  const log = options.log ?? (() => {});
  const started = Date.now();
  const sqliteDir = join(options.dataDir, 'ferretdb');
  const postgresDir = join(options.dataDir, 'postgres');
  const newPostgresDir = join(options.dataDir, 'postgres.migrating');
  const newFerretDbDir = join(options.dataDir, 'ferretdb.migrating');
  const batch = options.batch ?? 500;
  if (!holdsSqliteData(sqliteDir)) throw new EmbeddedDatabaseError(`${sqliteDir} holds no data of the SQLite layout: nothing to migrate`);
  if (existsSync(join(postgresDir, 'cluster', 'PG_VERSION'))) {
    throw new EmbeddedDatabaseError(`${postgresDir} already holds a PostgreSQL cluster; move it away first if the SQLite data in ${sqliteDir} is the one to keep`);
  }
  const binDir = postgresBinDir();
  if (!binDir) throw new EmbeddedDatabaseError('PostgreSQL is not installed (/usr/lib/postgresql/<major>/bin): apt-get install postgresql');
  const source = new EmbeddedFerretDb({ ...(options.ferretdbBinary ? { binary: options.ferretdbBinary } : {}), dataDir: sqliteDir, port: await freePort() });
  if (await source.runningForDataFolder()) throw new EmbeddedDatabaseError(`a hub (or seed or import) is running on ${options.dataDir}; stop it before migrating`);

  // A cut-off earlier attempt left its half-built target: start that over (the source was never touched).
  rmSync(newPostgresDir, { recursive: true, force: true });
  rmSync(newFerretDbDir, { recursive: true, force: true });
  const postgres = new EmbeddedPostgres({ binDir, dataDir: newPostgresDir, port: await freePort(), log });
  let target: EmbeddedFerretDb | undefined;
  const report: MigrationReport['databases'] = [];
  let from: MongoClient | undefined;
  try {
    await source.start();
    await postgres.start();
    target = new EmbeddedFerretDb({
      ...(options.ferretdbBinary ? { binary: options.ferretdbBinary } : {}),
      dataDir: newFerretDbDir,
      port: await freePort(),
      postgresqlUrl: postgres.url,
    });
    await target.start();
    from = new MongoClient(source.uri, { serverSelectionTimeoutMS: 10_000 });
    const { databases } = await from.db('admin').admin().listDatabases({ nameOnly: true });
    for (const { name } of databases) {
      if (systemDatabases.has(name)) continue;
      const to = openDatabase(target.uri, name, 10_000, 600_000, { url: postgres.url, warn: log });
      try {
        const origin = from.db(name);
        let documents = 0;
        const collections = (await origin.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort();
        for (const collection of collections) {
          const counted = await copyCollection(origin, to.db, collection, batch);
          documents += counted;
          log(`${name}.${collection}: ${counted} documents`);
        }
        // The hub's own indexes and layout (compact documents on FerretDB's PostgreSQL backend).
        const maintenance = options.maintenanceFor(to.db);
        await maintenance.ensureIndexes();
        const { changed } = await maintenance.reindex();
        await to.refreshStatistics();
        for (const collection of collections) {
          const [before, after] = await Promise.all([origin.collection(collection).countDocuments({}), to.db.collection(collection).countDocuments({})]);
          if (before !== after) throw new EmbeddedDatabaseError(`${name}.${collection}: ${before} documents in SQLite but ${after} after the copy; the SQLite data stays in use`);
        }
        report.push({ name, collections: collections.length, documents, reencoded: changed });
      } finally {
        await to.close();
      }
    }
  } finally {
    await from?.close();
    await target?.stop();
    await postgres.stop();
    await source.stop();
  }
  const backup = join(options.dataDir, `ferretdb-sqlite-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  // The swap: first the old folder aside, then the new ones in (a cut between leaves no .sqlite in ferretdb/
  // and a complete cluster beside it; the next start uses PostgreSQL).
  renameSync(newPostgresDir, postgresDir);
  renameSync(sqliteDir, backup);
  renameSync(newFerretDbDir, sqliteDir);
  return { databases: report, backup, ms: Date.now() - started };
}

const storeCollections = new Set(servedResourceTypes.flatMap((type) => [type, `${type}_history`]));

/** Copies one collection in batches (documents unchanged, `_id` kept) and then its indexes; returns the count. */
async function copyCollection(origin: Db, destination: Db, name: string, batch: number): Promise<number> {
  let copied = 0;
  let pending: Document[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    await destination.collection(name).insertMany(pending, { ordered: false });
    copied += pending.length;
    pending = [];
  };
  await destination.createCollection(name).catch((error: { codeName?: string }) => {
    if (error.codeName !== 'NamespaceExists') throw error;
  });
  for await (const document of origin.collection(name).find({}, { batchSize: batch })) {
    pending.push(document);
    if (pending.length >= batch) await flush();
  }
  await flush();
  // The store's collections get the store's indexes for the new layout (ensureIndexes), not the old ones.
  if (storeCollections.has(name)) return copied;
  const indexes = (await origin.collection(name).listIndexes().toArray()).filter((index) => index.name !== '_id_');
  if (indexes.length > 0) {
    await destination.collection(name).createIndexes(
      indexes.map((index) => {
        const { v: _v, ns: _ns, ...spec } = index as Document;
        return spec as { key: Record<string, 1 | -1>; name: string };
      }),
    );
  }
  return copied;
}

/**
 * The embedded default database, when no MONGODB_URI is set: FerretDB on its PostgreSQL backend, over a private
 * PostgreSQL cluster in the data folder (embedded-postgres.ts), both supervised by the hub; FerretDB on SQLite
 * when the PostgreSQL binaries are absent, or when the data folder holds data of the SQLite layout (which is
 * never silently abandoned: `npm run migrate` moves it).
 *
 *   DATA_DIR/postgres/   the PostgreSQL cluster (or a link to it, see embedded-postgres.ts) and its password
 *   DATA_DIR/ferretdb/   FerretDB's state, log and pid file (and the data itself with the SQLite backend)
 *
 * Why PostgreSQL: FerretDB v1's SQLite backend pushes down only `{_id: <id>}` and decodes whole collections for
 * everything else; its PostgreSQL backend pushes down top-level equalities, which the hub's GIN indexes answer
 * in milliseconds (ferretdb-storage.ts).
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedDatabaseError, EmbeddedFerretDb, ensureFerretDbBinary } from './embedded-ferretdb.ts';
import { EmbeddedPostgres, FERRETDB_DATABASE, postgresBinDir } from './embedded-postgres.ts';

export type EmbeddedBackend = 'auto' | 'postgresql' | 'sqlite';

export interface EmbeddedDatabaseOptions {
  /** DATA_DIR */
  dataDir: string;
  ferretdbPort: number;
  postgresPort: number;
  ferretdbBinary?: string;
  backend?: EmbeddedBackend;
  log?: (message: string) => void;
  warn?: (message: string) => void;
  /** how long each server may take to answer at start, however busy the machine (STARTUP_TIMEOUT_MS) */
  startupTimeoutMs?: number;
}

export interface EmbeddedDatabase {
  uri: string;
  backend: 'postgresql' | 'sqlite';
  /** FerretDB's PostgreSQL database (for the hub's indexes), with the PostgreSQL backend */
  postgresUrl?: string;
  description: string;
  ferretdb: EmbeddedFerretDb;
  postgres?: EmbeddedPostgres;
  /** Called when either server ends without being asked to. */
  onUnexpectedExit(handler: (which: 'ferretdb' | 'postgres', code: number | null) => void): void;
  /** Starts a server that ended unexpectedly again. */
  restart(which: 'ferretdb' | 'postgres'): Promise<void>;
  stop(): Promise<void>;
  /** Stops both servers and removes every file of this database (throwaway data folders: tests, the bench). */
  remove(): Promise<void>;
}

/** Whether FerretDB's SQLite backend keeps data in this folder (`<database>.sqlite` files). */
export function holdsSqliteData(ferretdbDir: string): boolean {
  return existsSync(ferretdbDir) && readdirSync(ferretdbDir).some((name) => name.endsWith('.sqlite'));
}

/** Which backend a data folder uses: its existing data decides, then what is installed. */
export function chooseBackend(options: Pick<EmbeddedDatabaseOptions, 'dataDir' | 'backend' | 'warn'>): { backend: 'postgresql' | 'sqlite'; binDir?: string } {
  const binDir = postgresBinDir();
  const requested = options.backend ?? 'auto';
  const cluster = existsSync(join(options.dataDir, 'postgres', 'cluster', 'PG_VERSION'));
  if (requested === 'sqlite') return { backend: 'sqlite' };
  if (!binDir) {
    if (requested === 'postgresql') throw new EmbeddedDatabaseError('EMBEDDED_DB_BACKEND=postgresql, but no PostgreSQL server is installed (looked for pg_config --bindir, initdb on the PATH, /usr/lib/postgresql/<major>/bin): apt-get install postgresql');
    options.warn?.('No PostgreSQL server is installed (looked for pg_config --bindir, initdb on the PATH, /usr/lib/postgresql/<major>/bin; apt-get install postgresql): the embedded database uses FerretDB\'s SQLite backend, which decodes whole collections for most queries (seconds instead of milliseconds on real data)');
    return { backend: 'sqlite' };
  }
  if (!cluster && holdsSqliteData(join(options.dataDir, 'ferretdb'))) {
    if (requested === 'postgresql') throw new EmbeddedDatabaseError(`${options.dataDir} holds data of the SQLite backend; move it with \`npm run migrate\` first`);
    options.warn?.(`${join(options.dataDir, 'ferretdb')} holds data of the earlier SQLite layout; the hub keeps using it. Move it to PostgreSQL (milliseconds instead of seconds per query) with: npm run migrate`);
    return { backend: 'sqlite' };
  }
  return { backend: 'postgresql', binDir };
}

export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const ferretdbDir = join(options.dataDir, 'ferretdb');
  const { backend, binDir } = chooseBackend(options);
  // FerretDB first: without it (no Go to build it) there is nothing to start PostgreSQL for.
  await ensureFerretDbBinary(options.ferretdbBinary, options.log);
  let postgres: EmbeddedPostgres | undefined;
  let postgresUrl: string | undefined;
  if (backend === 'postgresql') {
    postgres = new EmbeddedPostgres({ binDir: binDir!, dataDir: join(options.dataDir, 'postgres'), port: options.postgresPort, ...(options.log ? { log: options.log } : {}), ...(options.startupTimeoutMs ? { startupTimeoutMs: options.startupTimeoutMs } : {}) });
    await postgres.start();
    postgresUrl = postgres.url;
  }
  const ferretdb = new EmbeddedFerretDb({
    ...(options.ferretdbBinary ? { binary: options.ferretdbBinary } : {}),
    dataDir: ferretdbDir,
    port: options.ferretdbPort,
    ...(postgresUrl ? { postgresqlUrl: postgresUrl } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.startupTimeoutMs ? { startupTimeoutMs: options.startupTimeoutMs } : {}),
  });
  try {
    await ferretdb.start();
  } catch (error) {
    await postgres?.stop();
    throw error;
  }
  const stop = async (): Promise<void> => {
    await ferretdb.stop();
    await postgres?.stop();
  };
  return {
    uri: ferretdb.uri,
    backend,
    ...(postgresUrl ? { postgresUrl } : {}),
    description:
      backend === 'postgresql'
        ? `FerretDB on PostgreSQL (127.0.0.1:${options.ferretdbPort}, PostgreSQL 127.0.0.1:${options.postgresPort}, data folder ${options.dataDir})`
        : `FerretDB on SQLite (127.0.0.1:${options.ferretdbPort}, data folder ${ferretdbDir})`,
    ferretdb,
    ...(postgres ? { postgres } : {}),
    onUnexpectedExit(handler) {
      ferretdb.onUnexpectedExit((code) => handler('ferretdb', code));
      postgres?.onUnexpectedExit((code) => handler('postgres', code));
    },
    async restart(which) {
      if (which === 'postgres') await postgres?.start();
      else await ferretdb.start();
    },
    stop,
    async remove() {
      await stop();
      postgres?.removeCluster();
      rmSync(options.dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The PostgreSQL URL of the embedded cluster a running hub of this data folder serves (for the commands beside
 * the hub, which create the same indexes), read from the cluster's postmaster.pid and password file.
 */
export function runningPostgresUrl(dataDir: string): string | undefined {
  try {
    const lines = readFileSync(join(dataDir, 'postgres', 'cluster', 'postmaster.pid'), 'utf8').split('\n');
    const port = Number(lines[3]);
    const password = readFileSync(join(dataDir, 'postgres', 'password'), 'utf8').trim();
    if (!port) return undefined;
    return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${FERRETDB_DATABASE}`;
  } catch {
    return undefined;
  }
}

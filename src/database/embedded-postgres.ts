/**
 * A private PostgreSQL cluster for FerretDB's PostgreSQL backend: the PostgreSQL server installed on the machine
 * (found by `pg_config --bindir`, then `initdb` on the PATH, then Debian's `/usr/lib/postgresql/<major>/bin`), a
 * cluster created once with `initdb`, listening on a loopback port of its own only (no Unix socket),
 * password-protected with a random password kept in the data folder.
 *
 * Who runs it: the invoking user, or, when the hub runs as root (PostgreSQL refuses to), the `postgres` user.
 * The cluster lives in `DATA_DIR/postgres/cluster`; when the postgres user cannot reach the data folder (root's
 * home folder is mode 700 in most containers), it lives in `/var/lib/consortium-hub/<data folder>-<hash>/cluster`
 * instead, owned by postgres, and `DATA_DIR/postgres/cluster` is a symbolic link to it, so a restart (and the
 * commands beside the hub) find the same cluster through the data folder.
 *
 * Supervised like the embedded FerretDB: started and stopped by the hub, a cluster left running by a hub
 * that was killed is stopped at the next start, and a second hub on one data folder is refused.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { EmbeddedDatabaseError, portOpen } from './embedded-ferretdb.ts';
import { startupLimit, waitFor } from './startup-wait.ts';

const run = promisify(execFile);

/** The database FerretDB keeps its data in (each MongoDB database is a schema of it). */
export const FERRETDB_DATABASE = 'ferretdb';
const POSTGRES_USER = 'postgres';

const hasServer = (dir: string): boolean => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'));

/**
 * Where the PostgreSQL server binaries are: `pg_config --bindir` (the installation that pg_config describes), then
 * the folder of `initdb` on the PATH, then the newest of Debian's `/usr/lib/postgresql/<major>/bin`; undefined when
 * no server is installed (a client-only pg_config, e.g. from libpq-dev, does not count).
 */
export function postgresBinDir(debianRoot = '/usr/lib/postgresql', path = process.env.PATH ?? ''): string | undefined {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
    if (dir && hasServer(dir)) return dir;
  } catch {
    // no pg_config on the PATH
  }
  for (const dir of path.split(delimiter).filter(Boolean)) {
    if (!existsSync(join(dir, 'initdb'))) continue;
    const real = dirname(realpathSync(join(dir, 'initdb')));
    if (hasServer(real)) return real;
  }
  if (!existsSync(debianRoot)) return undefined;
  const majors = readdirSync(debianRoot)
    .filter((name) => /^\d+$/.test(name) && hasServer(join(debianRoot, name, 'bin')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(debianRoot, majors[0], 'bin') : undefined;
}

/** Where clusters live whose data folder the postgres user cannot reach (see the top of this file). */
export const OUTSIDE_CLUSTERS = '/var/lib/consortium-hub';

/** uid and gid of the `postgres` user when this process runs as root (PostgreSQL will not run as root). */
async function runAs(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', POSTGRES_USER]), run('id', ['-g', POSTGRES_USER])]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch {
    throw new EmbeddedDatabaseError('The hub runs as root and PostgreSQL may not: create the postgres user (Debian\'s postgresql package does) or run the hub as another user.');
  }
}

function chownTree(path: string, owner: { uid: number; gid: number }): void {
  chownSync(path, owner.uid, owner.gid);
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), owner);
}

export interface PostgresOptions {
  binDir: string;
  dataDir: string;
  port: number;
  log?: (message: string) => void;
  /** how long start() may wait for the server, however busy the machine (STARTUP_TIMEOUT_MS) */
  startupTimeoutMs?: number;
}

export class EmbeddedPostgres {
  private child: ChildProcess | undefined;
  private stopping = false;

  constructor(private readonly options: PostgresOptions) {}

  /** The cluster's path in the data folder: its folder, or a link to it (see clusterDir). */
  private get clusterLink(): string {
    return join(this.options.dataDir, 'cluster');
  }

  /** The cluster's real folder, the path PostgreSQL is given (it may not be able to follow the link's path). */
  private get clusterDir(): string {
    return existsSync(this.clusterLink) ? realpathSync(this.clusterLink) : this.clusterLink;
  }

  /** Whether the cluster lives outside the data folder (a link to /var/lib/consortium-hub/…). */
  private get outside(): boolean {
    try {
      return lstatSync(this.clusterLink).isSymbolicLink();
    } catch {
      return false;
    }
  }

  private get passwordFile(): string {
    return join(this.options.dataDir, 'password');
  }

  private get logPath(): string {
    return join(this.options.dataDir, 'postgres.log');
  }

  /** The connection URL of FerretDB's database (password included: keep it out of logs). */
  get url(): string {
    const password = readFileSync(this.passwordFile, 'utf8').trim();
    return `postgres://${POSTGRES_USER}:${encodeURIComponent(password)}@127.0.0.1:${this.options.port}/${FERRETDB_DATABASE}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Whether the user PostgreSQL runs as can get into the data folder (every folder above must let it through). */
  private async reachable(owner: { uid: number; gid: number }): Promise<boolean> {
    try {
      await run('test', ['-x', this.options.dataDir], { ...owner });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * A new cluster's folder: in the data folder, or, when the postgres user cannot reach it, under
   * /var/lib/consortium-hub with a link from the data folder (named after the data folder's real path, so two
   * data folders never share a cluster).
   */
  private async placeCluster(owner: { uid: number; gid: number } | undefined): Promise<string> {
    mkdirSync(this.options.dataDir, { recursive: true });
    if (!owner || (await this.reachable(owner))) {
      mkdirSync(this.clusterLink, { recursive: true });
      return this.clusterLink;
    }
    const real = realpathSync(this.options.dataDir);
    // Named after the folder that holds DATA_DIR (the project's, usually), and its real path's hash.
    const slug = `${basename(dirname(dirname(real))) || 'data'}-${createHash('sha256').update(real).digest('hex').slice(0, 12)}`;
    const home = join(OUTSIDE_CLUSTERS, slug);
    const cluster = join(home, 'cluster');
    try {
      mkdirSync(cluster, { recursive: true });
      chmodSync(OUTSIDE_CLUSTERS, 0o755);
      chownSync(home, owner.uid, owner.gid);
      chmodSync(home, 0o700);
    } catch (error) {
      throw new EmbeddedDatabaseError(`PostgreSQL runs as the ${POSTGRES_USER} user, which cannot reach ${this.options.dataDir}, and its cluster cannot be created in ${home} either (${String(error)}); set DATA_DIR to a folder the ${POSTGRES_USER} user can reach`);
    }
    symlinkSync(cluster, this.clusterLink);
    this.options.log?.(`the ${POSTGRES_USER} user cannot reach ${this.options.dataDir}: the PostgreSQL cluster lives in ${cluster}, linked from ${this.clusterLink}`);
    return cluster;
  }

  /** Creates the cluster once: initdb with a random password, UTF-8, loopback only. */
  private async initialize(owner: { uid: number; gid: number } | undefined): Promise<boolean> {
    if (existsSync(join(this.clusterDir, 'PG_VERSION'))) return false;
    if (owner && !this.outside && existsSync(this.clusterLink) && !(await this.reachable(owner))) {
      throw new EmbeddedDatabaseError(`PostgreSQL runs as the ${POSTGRES_USER} user, which cannot reach ${this.options.dataDir}: let it through the folders above (chmod o+x), or set DATA_DIR to a folder it can reach`);
    }
    const clusterDir = existsSync(this.clusterLink) ? this.clusterDir : await this.placeCluster(owner);
    chmodSync(clusterDir, 0o700);
    const password = randomBytes(24).toString('base64url');
    writeFileSync(this.passwordFile, `${password}\n`, { mode: 0o600 });
    // initdb reads the password as the user PostgreSQL runs as: beside the cluster, where that user can reach.
    const pwfile = join(clusterDir, '..', '.initdb-password');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) {
      chownTree(clusterDir, owner);
      chownSync(pwfile, owner.uid, owner.gid);
    }
    this.options.log?.(`creating the embedded PostgreSQL cluster in ${clusterDir} (once)`);
    try {
      await run(join(this.options.binDir, 'initdb'), ['-D', clusterDir, '-U', POSTGRES_USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions'], {
        ...(owner ? owner : {}),
        cwd: clusterDir,
        timeout: Math.max(120_000, this.options.startupTimeoutMs ?? 0),
      });
    } catch (error) {
      throw new EmbeddedDatabaseError(`initdb failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
    } finally {
      rmSync(pwfile, { force: true });
    }
    return true;
  }

  /**
   * Removes the cluster with the data folder's link to it, for throwaway data folders (tests, the bench): a
   * cluster outside the data folder would outlive the folder. The server must be stopped.
   */
  removeCluster(): void {
    if (this.outside) rmSync(dirname(this.clusterDir), { recursive: true, force: true });
    rmSync(this.clusterLink, { recursive: true, force: true });
  }

  /** The postmaster named in the cluster's postmaster.pid, if it runs, and whether a live process owns it. */
  private running(): { pid: number; ownerAlive: boolean } | undefined {
    const file = join(this.clusterDir, 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    try {
      const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!commandLine.includes('postgres') || !commandLine.includes(this.clusterDir)) return undefined;
      const parent = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      const parentCommand = parent > 1 ? readFileSync(`/proc/${parent}/cmdline`, 'utf8') : '';
      return { pid, ownerAlive: parentCommand.includes('node') };
    } catch {
      return undefined;
    }
  }

  /** A cluster left running by a hub that was killed is stopped; one owned by a running hub is refused. */
  private async stopLeftover(): Promise<void> {
    const running = this.running();
    if (!running) return;
    if (running.ownerAlive) {
      throw new EmbeddedDatabaseError(`another hub (or seed or import) is already running the embedded database on ${this.options.dataDir}; stop it first, or give this one its own DATA_DIR`);
    }
    this.options.log?.(`stopping PostgreSQL left running by an earlier hub (pid ${running.pid})`);
    process.kill(running.pid, 'SIGINT');
    const deadline = Date.now() + 30_000;
    while (existsSync(`/proc/${running.pid}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (existsSync(`/proc/${running.pid}`)) process.kill(running.pid, 'SIGKILL');
  }

  async start(): Promise<void> {
    const owner = await runAs();
    const created = await this.initialize(owner);
    await this.stopLeftover();
    if (await portOpen('127.0.0.1', this.options.port)) {
      throw new EmbeddedDatabaseError(`port ${this.options.port} is already in use; set EMBEDDED_POSTGRES_PORT to a free port`);
    }
    const logFile = openSync(this.logPath, 'a');
    if (owner) chownSync(this.logPath, owner.uid, owner.gid);
    this.stopping = false;
    const child = spawn(
      join(this.options.binDir, 'postgres'),
      ['-D', this.clusterDir, '-p', String(this.options.port), '-c', 'listen_addresses=127.0.0.1', '-c', "unix_socket_directories=", '-c', 'max_connections=200'],
      { stdio: ['ignore', logFile, logFile], cwd: this.clusterDir, ...(owner ? owner : {}) },
    );
    closeSync(logFile);
    this.child = child;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new EmbeddedDatabaseError(`PostgreSQL exited during start-up (code ${code}):\n${this.logTail()}`))),
    );
    exited.catch(() => {});
    await waitFor('PostgreSQL to accept connections', () => this.accepting(), startupLimit(this.options.startupTimeoutMs, this.options.log), {
      stopped: () => (child.exitCode !== null ? exited : undefined),
      gaveUp: (message) => {
        child.kill('SIGKILL');
        return new EmbeddedDatabaseError(`${message}:\n${this.logTail()}`);
      },
    });
    if (created) await this.createFerretDbDatabase();
  }

  /** Whether the server accepts a login now. */
  private async accepting(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url.replace(`/${FERRETDB_DATABASE}`, '/postgres'), connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * FerretDB's database. Its prepared statements would keep generic plans that cannot use the hub's
   * expression indexes; custom plans can (plan_cache_mode).
   */
  private async createFerretDbDatabase(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url.replace(`/${FERRETDB_DATABASE}`, '/postgres') });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${FERRETDB_DATABASE} ENCODING 'UTF8'`);
      await client.query(`ALTER DATABASE ${FERRETDB_DATABASE} SET plan_cache_mode = force_custom_plan`);
    } finally {
      await client.end();
    }
  }

  private logTail(): string {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  /** Called with the exit code when the server ends without being asked to. */
  onUnexpectedExit(handler: (code: number | null) => void): void {
    this.child?.once('exit', (code) => {
      if (!this.stopping) handler(code);
    });
  }

  /** Fast shutdown: open transactions are rolled back, committed data is safe. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.stopping = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

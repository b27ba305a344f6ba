/**
 * A private PostgreSQL cluster in the data folder, for FerretDB's PostgreSQL backend: Debian's `postgresql`
 * binaries (`/usr/lib/postgresql/<major>/bin`), a cluster created once with `initdb` (as the `postgres` user
 * when the hub runs as root: PostgreSQL refuses to run as root), listening on a loopback port of its own only
 * (no Unix socket), password-protected with a random password kept in the data folder.
 *
 * Supervised like the embedded FerretDB: started and stopped by the hub, a cluster left running by a hub
 * that was killed is stopped at the next start, and a second hub on one data folder is refused.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { EmbeddedDatabaseError, portOpen } from './embedded-ferretdb.ts';

const run = promisify(execFile);

/** The database FerretDB keeps its data in (each MongoDB database is a schema of it). */
export const FERRETDB_DATABASE = 'ferretdb';
const POSTGRES_USER = 'postgres';

/** The newest Debian PostgreSQL installed (`/usr/lib/postgresql/<major>/bin`), or undefined. */
export function postgresBinDir(root = '/usr/lib/postgresql'): string | undefined {
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')) && existsSync(join(root, name, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(root, majors[0], 'bin') : undefined;
}

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
}

export class EmbeddedPostgres {
  private child: ChildProcess | undefined;
  private stopping = false;

  constructor(private readonly options: PostgresOptions) {}

  private get clusterDir(): string {
    return join(this.options.dataDir, 'cluster');
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

  /** Creates the cluster once: initdb with a random password, UTF-8, loopback only. */
  private async initialize(owner: { uid: number; gid: number } | undefined): Promise<boolean> {
    if (existsSync(join(this.clusterDir, 'PG_VERSION'))) return false;
    mkdirSync(this.clusterDir, { recursive: true });
    if (owner) {
      // PostgreSQL runs as its own user: every folder above the cluster must let it through.
      try {
        await run('test', ['-x', this.options.dataDir], { ...owner });
      } catch {
        throw new EmbeddedDatabaseError(`PostgreSQL runs as the ${POSTGRES_USER} user, which cannot reach ${this.options.dataDir}: let it through the folders above (chmod o+x), or set DATA_DIR to a folder it can reach`);
      }
    }
    chmodSync(this.clusterDir, 0o700);
    const password = randomBytes(24).toString('base64url');
    writeFileSync(this.passwordFile, `${password}\n`, { mode: 0o600 });
    const pwfile = join(this.clusterDir, '..', '.initdb-password');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) {
      chownTree(this.clusterDir, owner);
      chownSync(pwfile, owner.uid, owner.gid);
    }
    this.options.log?.(`creating the embedded PostgreSQL cluster in ${this.clusterDir} (once)`);
    try {
      await run(join(this.options.binDir, 'initdb'), ['-D', this.clusterDir, '-U', POSTGRES_USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions'], {
        ...(owner ? owner : {}),
        cwd: this.clusterDir,
        timeout: 120_000,
      });
    } catch (error) {
      throw new EmbeddedDatabaseError(`initdb failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
    } finally {
      writeFileSync(pwfile, '');
    }
    return true;
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
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) await exited;
      if (await this.accepting()) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new EmbeddedDatabaseError(`PostgreSQL did not accept connections on port ${this.options.port} within 60 s:\n${this.logTail()}`);
      }
      await Promise.race([new Promise((r) => setTimeout(r, 100)), exited]);
    }
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

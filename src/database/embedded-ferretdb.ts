/**
 * The embedded default database: a local FerretDB v1.24.2 (MongoDB wire protocol over PostgreSQL, or SQLite),
 * built once from its Go module into `.tools/bin/` and run as a child process of the hub or the tests.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { projectRoot } from '../config.ts';
import { startupLimit, waitFor } from './startup-wait.ts';

const run = promisify(execFile);

export const FERRETDB_VERSION = 'v1.24.2';
export const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
export const defaultFerretDbBinary = join(projectRoot, '.tools', 'bin', 'ferretdb');

export class EmbeddedDatabaseError extends Error {}

async function installedVersion(binary: string): Promise<string | undefined> {
  if (!existsSync(binary)) return undefined;
  try {
    const { stdout } = await run(binary, ['--version'], { timeout: 10_000 });
    return /^version:\s*(\S+)/m.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

async function goAvailable(): Promise<boolean> {
  try {
    await run('go', ['version'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds FerretDB from the Go module proxy unless the right version is already there.
 *
 * Why not plain `go install …@v1.24.2`: the module proxy here refuses the version list that
 * `go install` reads for its deprecation check, and a binary built that way panics at start because
 * the module ships without `build/version/version.txt`. So the module is downloaded with
 * `go mod download`, copied to a writable folder, given its version file, and built there.
 */
export async function ensureFerretDbBinary(
  binary: string = defaultFerretDbBinary,
  log: (message: string) => void = () => {},
): Promise<string> {
  if ((await installedVersion(binary)) === FERRETDB_VERSION) return binary;
  if (!(await goAvailable())) {
    throw new EmbeddedDatabaseError(
      'No MONGODB_URI is set and the embedded database (FerretDB) is not built yet, but the Go toolchain ' +
        'is not installed. Either install Go (https://go.dev/dl/, or `apt-get install golang`) and run again, ' +
        'or set MONGODB_URI to a MongoDB replica set, e.g. MONGODB_URI=mongodb://db1,db2,db3/?replicaSet=rs0.',
    );
  }
  log(`building FerretDB ${FERRETDB_VERSION} into ${binary} (once; takes a few minutes)`);
  const toolsDir = join(binary, '..', '..');
  const sourceDir = join(toolsDir, 'src', `ferretdb-${FERRETDB_VERSION}`);
  const env = { ...process.env, GOFLAGS: '-buildvcs=false' };
  const { stdout } = await run('go', ['mod', 'download', '-json', `${FERRETDB_MODULE}@${FERRETDB_VERSION}`], {
    env,
    cwd: projectRoot,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 15 * 60_000,
  });
  const moduleDir = (JSON.parse(stdout) as { Dir?: string }).Dir;
  if (!moduleDir) throw new EmbeddedDatabaseError(`go mod download did not report where ${FERRETDB_MODULE} is`);
  rmSync(sourceDir, { recursive: true, force: true });
  mkdirSync(sourceDir, { recursive: true });
  cpSync(moduleDir, sourceDir, { recursive: true });
  makeWritable(sourceDir);
  writeFileSync(join(sourceDir, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
  mkdirSync(join(binary, '..'), { recursive: true });
  await run('go', ['build', '-trimpath', '-o', binary, './cmd/ferretdb'], {
    cwd: sourceDir,
    env,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 30 * 60_000,
  });
  rmSync(sourceDir, { recursive: true, force: true });
  const version = await installedVersion(binary);
  if (version !== FERRETDB_VERSION) throw new EmbeddedDatabaseError(`built FerretDB reports version ${version ?? 'none'}`);
  log(`FerretDB ${FERRETDB_VERSION} built`);
  return binary;
}

function makeWritable(dir: string): void {
  chmodSync(dir, 0o755);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) makeWritable(path);
    else chmodSync(path, 0o644);
  }
}

export interface FerretDbOptions {
  binary?: string;
  /** FerretDB's state folder; with the SQLite backend also where the data is */
  dataDir: string;
  port: number;
  host?: string;
  /**
   * The PostgreSQL database of the PostgreSQL backend, with its user and password; without it the SQLite backend
   * (in dataDir) is used. FerretDB is given it without the password, so a client must bring the credentials
   * itself (FerretDB passes them on to PostgreSQL): an anonymous connection to its port reads nothing.
   */
  postgresqlUrl?: string;
  /** For a FerretDB started by another process (runningForDataFolder): the credentials its clients need. */
  credentials?: Credentials;
  log?: (message: string) => void;
  /** how long start() may wait for FerretDB to answer, however busy the machine (STARTUP_TIMEOUT_MS) */
  startupTimeoutMs?: number;
}

/** sun_path holds 108 bytes on Linux; a little room is kept. */
const MAX_SOCKET_PATH = 100;

/** The MongoDB connection string of a Unix domain socket (its path percent-encoded as the host). */
/** The user and password a client of the embedded FerretDB on PostgreSQL authenticates with (PLAIN). */
export interface Credentials {
  user: string;
  password: string;
}

/** A MongoDB connection string for a host (`127.0.0.1:27018`, or a socket path), with credentials when it needs them. */
function mongoUri(host: string, credentials?: Credentials): string {
  const login = credentials ? `${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@` : '';
  return `mongodb://${login}${host}/${credentials ? '?authMechanism=PLAIN' : ''}`;
}

/** The credentials of a PostgreSQL URL, and the URL without its password (what FerretDB is given). */
export function splitCredentials(postgresqlUrl: string): { credentials: Credentials; url: string } {
  const url = new URL(postgresqlUrl);
  const credentials = { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
  url.password = '';
  return { credentials, url: url.toString() };
}

const unixHost = (path: string): string => encodeURIComponent(path);

/** A running FerretDB child process. */
export class EmbeddedFerretDb {
  private child: ChildProcess | undefined;
  private stopping = false;

  constructor(private readonly options: FerretDbOptions) {}

  /**
   * The hub's own connections go through a Unix domain socket in the data folder when its path fits (about a
   * sixth less CPU per request than loopback TCP, on both sides, measured on imports); the TCP port stays open
   * for everything else (mongosh, the CLI's first line, tests).
   */
  get uri(): string {
    const socket = this.socketPath;
    const credentials = this.credentials;
    if (socket && this.child && existsSync(socket)) return mongoUri(unixHost(socket), credentials);
    return mongoUri(`${this.options.host ?? '127.0.0.1'}:${this.options.port}`, credentials);
  }

  /** What a client brings (the PostgreSQL backend's user and password); none with the SQLite backend. */
  private get credentials(): Credentials | undefined {
    return this.options.postgresqlUrl ? splitCredentials(this.options.postgresqlUrl).credentials : this.options.credentials;
  }

  /** The Unix socket FerretDB listens on besides its port; undefined where the path would be too long. */
  private get socketPath(): string | undefined {
    const path = join(this.options.dataDir, 'ferretdb.sock');
    return Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const binary = await ensureFerretDbBinary(this.options.binary, this.options.log);
    const host = this.options.host ?? '127.0.0.1';
    await this.stopLeftover(host);
    if (await portOpen(host, this.options.port)) {
      throw new EmbeddedDatabaseError(
        `port ${this.options.port} is already in use; set EMBEDDED_DB_PORT to a free port or MONGODB_URI to a running database`,
      );
    }
    mkdirSync(this.options.dataDir, { recursive: true });
    const logFile = openSync(this.logPath, 'a');
    this.stopping = false;
    const backend = this.options.postgresqlUrl ? ['--handler=postgresql'] : ['--handler=sqlite', `--sqlite-url=file:${this.options.dataDir}/`];
    const socket = this.socketPath;
    // A socket file left by a FerretDB that was killed would refuse the new listener (no process uses it: the
    // pid file check above stopped or refused any FerretDB still running on this folder).
    if (socket) rmSync(socket, { force: true });
    const child = spawn(
      binary,
      [
        ...backend,
        `--state-dir=${this.options.dataDir}`,
        `--listen-addr=${host}:${this.options.port}`,
        ...(socket ? [`--listen-unix=${socket}`] : []),
        `--debug-addr=${host}:0`,
        '--telemetry=disable',
        '--log-level=error',
      ],
      // Its log goes to a file in the data folder, not a pipe: a pipe would kill it with SIGPIPE when the
      // hub dies, at a random moment; with a file, a hub killed hard always leaves it for the next start.
      // The PostgreSQL URL (with its password) goes in the environment, not on the command line.
      {
        stdio: ['ignore', logFile, logFile],
        env: { ...process.env, ...(this.options.postgresqlUrl ? { FERRETDB_POSTGRESQL_URL: splitCredentials(this.options.postgresqlUrl).url } : {}) },
      },
    );
    this.child = child;
    if (child.pid) writeFileSync(this.pidFile, String(child.pid));
    closeSync(logFile);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) =>
        reject(new EmbeddedDatabaseError(`FerretDB exited during start-up (code ${code}):\n${this.logTail()}`)),
      ),
    );
    exited.catch(() => {});
    await waitFor('FerretDB to answer', () => this.answering(host, socket), startupLimit(this.options.startupTimeoutMs, this.options.log), {
      stopped: () => (child.exitCode !== null ? exited : undefined),
      gaveUp: (message) => {
        child.kill('SIGKILL');
        return new EmbeddedDatabaseError(`${message}:\n${this.logTail()}`);
      },
    });
  }

  /**
   * Whether FerretDB listens on its port and socket and answers a command that reaches its backend (listing
   * databases reads PostgreSQL's catalog), with timeouts a busy machine can meet.
   */
  private async answering(host: string, socket: string | undefined): Promise<boolean> {
    if (!(await portOpen(host, this.options.port)) || (socket && !existsSync(socket))) return false;
    const client = new MongoClient(this.uri, { serverSelectionTimeoutMS: 30_000, connectTimeoutMS: 30_000, socketTimeoutMS: 60_000, maxPoolSize: 1 });
    try {
      await client.db('admin').command({ listDatabases: 1, nameOnly: true });
      return true;
    } catch {
      return false;
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  /** FerretDB's own log, in the data folder. */
  get logPath(): string {
    return join(this.options.dataDir, 'ferretdb.log');
  }

  private logTail(): string {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  private get pidFile(): string {
    return join(this.options.dataDir, 'ferretdb.pid');
  }

  /**
   * The FerretDB process named in our pid file, if it still runs ferretdb on this data folder, with the address
   * it really listens on (from its own command line, not from this process's configuration).
   */
  private runningFromPidFile(): { pid: number; ownerAlive: boolean; host: string; port: number; socket?: string } | undefined {
    if (!existsSync(this.pidFile)) return undefined;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!args[0]?.includes('ferretdb') || !args.some((arg) => arg.includes(this.options.dataDir))) return undefined;
      const listen = /^--listen-addr=(.+):(\d+)$/.exec(args.find((arg) => arg.startsWith('--listen-addr=')) ?? '');
      if (!listen) return undefined;
      // Field 4 of /proc/<pid>/stat is the parent: a live node process (a hub, seed or import) owns it.
      const parent = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      const parentCommand = parent > 1 ? readFileSync(`/proc/${parent}/cmdline`, 'utf8') : '';
      const socket = args.find((arg) => arg.startsWith('--listen-unix='))?.slice('--listen-unix='.length);
      return { pid, ownerAlive: parentCommand.includes('node'), host: listen[1]!, port: Number(listen[2]), ...(socket ? { socket } : {}) };
    } catch {
      return undefined;
    }
  }

  /**
   * A hub killed without its shutdown (SIGKILL, power loss) leaves its FerretDB running on the data folder,
   * orphaned. Only that process is stopped here; one still owned by a running hub is left alone.
   */
  private async stopLeftover(host: string): Promise<void> {
    const running = this.runningFromPidFile();
    if (!running) return;
    if (running.ownerAlive) {
      throw new EmbeddedDatabaseError(
        `another hub (or seed or import) is already running the embedded database on ${this.options.dataDir}; stop it first, or give this one its own DATA_DIR and EMBEDDED_DB_PORT`,
      );
    }
    const { pid } = running;
    this.options.log?.(`stopping FerretDB left running by an earlier hub (pid ${pid})`);
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (existsSync(`/proc/${pid}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
    while ((await portOpen(host, this.options.port)) && Date.now() < deadline + 2000) await new Promise((r) => setTimeout(r, 50));
  }

  /**
   * For `npm run seed`, `import`, `reindex` and `clients`: the embedded database of this data folder that a
   * running hub serves, at the address that FerretDB process really listens on (whatever port this command
   * was configured with); undefined when no hub runs it.
   */
  async runningForDataFolder(): Promise<{ uri: string; description: string } | undefined> {
    const running = this.runningFromPidFile();
    if (!running?.ownerAlive || !(await portOpen(running.host, running.port))) return undefined;
    return {
      uri: running.socket && existsSync(running.socket) ? mongoUri(unixHost(running.socket), this.options.credentials) : mongoUri(`${running.host}:${running.port}`, this.options.credentials),
      description: `the embedded FerretDB of the running hub (pid ${running.pid}, ${running.host}:${running.port}, data folder ${this.options.dataDir})`,
    };
  }

  /** Called with the exit code when the process ends without being asked to. */
  onUnexpectedExit(handler: (code: number | null) => void): void {
    this.child?.once('exit', (code) => {
      if (!this.stopping) handler(code);
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.stopping = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Freezes or resumes the server process, for fault tests. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }
}

export function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/database/connection.ts';
import { EmbeddedDatabaseError, EmbeddedFerretDb, ensureFerretDbBinary, FERRETDB_VERSION } from '../../src/database/embedded-ferretdb.ts';
import { projectRoot } from '../../src/config.ts';
import { freePort } from '../support/ports.ts';
import { spawnHub, waitForOutput } from '../support/process.ts';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'hub-ferretdb-'));
  chmodSync(dir, 0o755); // the embedded PostgreSQL runs as its own user and must get through
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('the embedded FerretDB', () => {
  it(`is FerretDB ${FERRETDB_VERSION}, keeps its data across restarts, and stops cleanly`, async () => {
    const dataDir = tempDir();
    const server = new EmbeddedFerretDb({ dataDir, port: await freePort() });
    await server.start();
    const first = openDatabase(server.uri, 'persist', 3000);
    const info = await first.db.admin().command({ buildInfo: 1 });
    expect(info.ferretdbVersion ?? info.ferretdb?.version).toBe(FERRETDB_VERSION);
    await first.db.collection('notes').insertOne({ text: '数据重启后仍在' });
    await first.close();
    await server.stop();

    await server.start();
    const second = openDatabase(server.uri, 'persist', 3000);
    expect(await second.db.collection('notes').findOne({}, { projection: { _id: 0 } })).toEqual({ text: '数据重启后仍在' });
    await second.close();
    await server.stop();
  });

  it('is shared with a seed or import while a hub runs it, and never started twice on one data folder', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const owner = new EmbeddedFerretDb({ dataDir, port });
    await owner.start();
    try {
      const second = new EmbeddedFerretDb({ dataDir, port });
      await expect(second.start()).rejects.toThrow(/already running the embedded database/);
      // The hub's own connections go through the Unix socket in the data folder; the port stays open beside it.
      expect(owner.uri).toBe(`mongodb://${encodeURIComponent(join(dataDir, 'ferretdb.sock'))}/`);
      expect(await second.runningForDataFolder()).toEqual({ uri: owner.uri, description: expect.stringContaining(`127.0.0.1:${port}`) });
      const overTcp = openDatabase(`mongodb://127.0.0.1:${port}/`, 'shared', 3000);
      const overSocket = openDatabase(owner.uri, 'shared', 3000);
      await overTcp.db.collection('notes').insertOne({ text: '两条路同一个库' });
      expect(await overSocket.db.collection('notes').findOne({}, { projection: { _id: 0 } })).toEqual({ text: '两条路同一个库' });
      await Promise.all([overTcp.close(), overSocket.close()]);
    } finally {
      await owner.stop();
    }
  });

  it('npm run import uses the database of its data folder at the port that database really uses, and says so first', async () => {
    const folder = tempDir();
    const hubPort = await freePort();
    const decoyPort = await freePort();
    // The hub's FerretDB runs on a port of its own; another FerretDB (not ours) listens on the port the command is configured with.
    const hubDatabase = new EmbeddedFerretDb({ dataDir: join(folder, 'ferretdb'), port: hubPort });
    const decoy = new EmbeddedFerretDb({ dataDir: tempDir(), port: decoyPort });
    await hubDatabase.start();
    await decoy.start();
    try {
      mkdirSync(join(folder, 'in'));
      const bundle = join(folder, 'in', 'bundle.json');
      writeFileSync(bundle, JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'PUT', url: 'Organization/cli-org' }, resource: { resourceType: 'Organization', id: 'cli-org', name: '命令行导入测试机构' } }] }));
      const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'scripts', 'import.ts'), bundle], {
        cwd: projectRoot,
        env: { ...process.env, MONGODB_URI: '', DATA_DIR: folder, EMBEDDED_DB_PORT: String(decoyPort), MONGODB_DB: 'cli' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      expect(await new Promise((resolve) => child.once('exit', resolve)), output).toBe(0);
      expect(output.split('\n')[0]).toMatch(new RegExp(`^database: the embedded FerretDB of the running hub \\(pid \\d+, 127\\.0\\.0\\.1:${hubPort}, data folder ${join(folder, 'ferretdb')}\\), database cli$`));
      const ours = openDatabase(hubDatabase.uri, 'cli', 3000);
      const theirs = openDatabase(decoy.uri, 'cli', 3000);
      expect(await ours.db.collection('Organization').countDocuments({ _id: 'cli-org' as never })).toBe(1);
      expect(await theirs.db.collection('Organization').countDocuments({})).toBe(0);
      await ours.close();
      await theirs.close();
    } finally {
      await hubDatabase.stop();
      await decoy.stop();
    }
  });

  it('a hub killed with SIGKILL leaves FerretDB behind; the next start stops that one and starts cleanly', async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, EMBEDDED_DB_PORT: String(await freePort()), EMBEDDED_POSTGRES_PORT: String(await freePort()), PORT: String(await freePort()), SEED_DEMO: 'false' };
    const first = spawnHub(env);
    await waitForOutput(first, /Playground: http/);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = spawnHub(env);
    await waitForOutput(second, /Playground: http/);
    expect(second.output()).toMatch(/stopping FerretDB left running by an earlier hub/);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('without Go and without MONGODB_URI says in one message what to do', async () => {
    const savedPath = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const error = await ensureFerretDbBinary(join(tempDir(), 'bin', 'ferretdb')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EmbeddedDatabaseError);
      expect((error as Error).message).toMatch(/Go toolchain/);
      expect((error as Error).message).toMatch(/MONGODB_URI/);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('npm start prints that message and exits with an error code', async () => {
    const hub = spawnHub({ PATH: '/usr/bin:/bin', FERRETDB_BIN: join(tempDir(), 'bin', 'ferretdb'), DATA_DIR: tempDir(), EMBEDDED_DB_PORT: String(await freePort()), EMBEDDED_POSTGRES_PORT: String(await freePort()), PORT: String(await freePort()) });
    expect(await hub.exited).toBe(1);
    expect(hub.output()).toMatch(/Go toolchain is not installed/);
    expect(hub.output()).toMatch(/set MONGODB_URI/);
    expect(hub.output()).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });
});

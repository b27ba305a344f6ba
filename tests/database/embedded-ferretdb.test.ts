import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/database/connection.ts';
import { EmbeddedDatabaseError, EmbeddedFerretDb, ensureFerretDbBinary, FERRETDB_VERSION } from '../../src/database/embedded-ferretdb.ts';
import { freePort } from '../support/ports.ts';
import { spawnHub, waitForOutput } from '../support/process.ts';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'hub-ferretdb-'));
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
      expect(await second.attachOrStart()).toBe(false);
    } finally {
      await owner.stop();
    }
  });

  it('a hub killed with SIGKILL leaves FerretDB behind; the next start stops that one and starts cleanly', async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, EMBEDDED_DB_PORT: String(await freePort()), PORT: String(await freePort()), SEED_DEMO: 'false' };
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
    const hub = spawnHub({ PATH: '/usr/bin:/bin', FERRETDB_BIN: join(tempDir(), 'bin', 'ferretdb'), PORT: String(await freePort()) });
    expect(await hub.exited).toBe(1);
    expect(hub.output()).toMatch(/Go toolchain is not installed/);
    expect(hub.output()).toMatch(/set MONGODB_URI/);
    expect(hub.output()).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });
});

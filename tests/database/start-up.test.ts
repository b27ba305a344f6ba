/**
 * `npm start` on the embedded database where users run it: as root in a private home folder (mode 700, which
 * the postgres user cannot enter), and on a machine whose cores are all busy with other work.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OUTSIDE_CLUSTERS } from '../../src/database/embedded-postgres.ts';
import { graphql } from '../support/hub.ts';
import { freePort } from '../support/ports.ts';
import { spawnHub, waitForOutput, type HubProcess } from '../support/process.ts';

const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((cleanup) => cleanup()));

/** A data folder inside a fresh folder of the given mode, removed (with a cluster it linked to) after the file. */
function dataFolder(mode: number): string {
  const home = mkdtempSync(join(tmpdir(), 'hub-home-'));
  chmodSync(home, mode);
  const dataDir = join(home, 'data');
  cleanups.push(() => {
    const link = join(dataDir, 'postgres', 'cluster');
    if (existsSync(link) && lstatSync(link).isSymbolicLink()) rmSync(dirname(readlinkSync(link)), { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });
  return dataDir;
}

async function startedHub(env: Record<string, string>, timeoutMs: number): Promise<{ hub: HubProcess; url: string }> {
  const [port, ferretdb, postgres] = [await freePort(), await freePort(), await freePort()];
  const hub = spawnHub({ PORT: String(port), EMBEDDED_DB_PORT: String(ferretdb), EMBEDDED_POSTGRES_PORT: String(postgres), LOG_LEVEL: 'info', ...env });
  await waitForOutput(hub, /Consortium hub is ready\./, timeoutMs);
  return { hub, url: `http://127.0.0.1:${port}` };
}

async function stopped(hub: HubProcess): Promise<void> {
  hub.child.kill('SIGTERM');
  expect(await hub.exited).toBe(0);
}

describe.runIf(process.getuid?.() === 0)('npm start as root in a private folder (mode 700)', () => {
  it('keeps the PostgreSQL cluster where the postgres user can reach it, linked from the data folder, and a restart finds the same data', async () => {
    const dataDir = dataFolder(0o700);
    const env = { DATA_DIR: dataDir, SEED_DEMO: 'false', AUTH_REQUIRED: 'false' };
    const first = await startedHub(env, 180_000);
    expect(first.hub.output()).toMatch(/the postgres user cannot reach .*: the PostgreSQL cluster lives in \/var\/lib\/consortium-hub\//);
    expect((await fetch(`${first.url}/health`)).status).toBe(200);
    const created = await graphql(first.url, 'mutation { OrganizationCreate(res: { name: "家目录里的卫生院" }) { id } }');
    expect(created.errors).toBeUndefined();
    await stopped(first.hub);

    const link = join(dataDir, 'postgres', 'cluster');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link).startsWith(`${OUTSIDE_CLUSTERS}/`)).toBe(true);

    const second = await startedHub(env, 180_000);
    const found = await graphql(second.url, `{ Organization(id: "${created.data!.OrganizationCreate.id}") { name } }`);
    expect(found.data?.Organization).toEqual({ name: '家目录里的卫生院' });
    await stopped(second.hub);
  }, 420_000);
});

describe('npm start on a saturated machine', () => {
  it('waits for its database however slow the machine is, seeds the demo consortium, and serves /health', async () => {
    // Four CPU-bound processes on two cores for the whole start, as a busy build machine or laptop has.
    const busy: ChildProcess[] = Array.from({ length: 4 }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    cleanups.push(() => busy.forEach((child) => child.kill('SIGKILL')));
    try {
      const { hub, url } = await startedHub({ DATA_DIR: dataFolder(0o755) }, 1_500_000);
      expect(hub.output()).toMatch(/waiting for PostgreSQL to accept connections/);
      expect(hub.output()).toMatch(/demo remote readings of a year/);
      const health = await fetch(`${url}/health`);
      expect(await health.json()).toEqual({ status: 'ok', database: 'reachable' });
      await stopped(hub);
    } finally {
      busy.forEach((child) => child.kill('SIGKILL'));
    }
  }, 1_800_000);
});

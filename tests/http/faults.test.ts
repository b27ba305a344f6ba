import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { EmbeddedFerretDb } from '../../src/database/embedded-ferretdb.ts';
import { graphql, startTestHub } from '../support/hub.ts';
import { freePort } from '../support/ports.ts';
import { spawnHub, waitForOutput } from '../support/process.ts';

// These tests stop and freeze a database server, so they run their own FerretDB, never the shared one.
let dataDir: string;
let server: EmbeddedFerretDb;
beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hub-faults-'));
  server = new EmbeddedFerretDb({ dataDir, port: await freePort() });
  await server.start();
});
afterAll(async () => {
  server.resume();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const createOrganization = `mutation { OrganizationCreate(res: { name: "东湖县人民医院" }) { id name } }`;

describe('when the database goes away', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startTestHub('faults', { DB_TIMEOUT_MS: '3000' }, server.uri);
    // Start-up index creation on a fresh database is slow on a loaded machine; the outage comes after it.
    await hub.indexesReady;
  });
  afterAll(async () => hub.stop());

  it('answers with SERVICE_UNAVAILABLE, stays up, and recovers by itself when the database returns', async () => {
    const before = await graphql(hub.url, createOrganization);
    expect(before.errors).toBeUndefined();
    expect(before.data?.OrganizationCreate.name).toBe('东湖县人民医院');

    await server.stop();
    const during = await graphql(hub.url, '{ OrganizationList { id } }');
    expect(during.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    expect(during.errors?.[0]?.message).toMatch(/database is not reachable/);
    const write = await graphql(hub.url, createOrganization);
    expect(write.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    const health = await fetch(`${hub.url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'degraded', database: 'unreachable' });

    await server.start();
    let after = await graphql(hub.url, '{ OrganizationList { id name } }');
    for (let attempt = 0; attempt < 20 && after.errors; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      after = await graphql(hub.url, '{ OrganizationList { id name } }');
    }
    expect(after.errors).toBeUndefined();
    // The write made during the outage was refused, so exactly the first organisation exists.
    expect(after.data?.OrganizationList).toEqual([{ id: before.data?.OrganizationCreate.id, name: '东湖县人民医院' }]);
    expect((await fetch(`${hub.url}/health`)).status).toBe(200);
  });
});

describe('SIGTERM', () => {
  it('drains the in-flight request, refuses new connections, and exits with 0', async () => {
    const port = await freePort();
    const hub = spawnHub({ MONGODB_URI: server.uri, MONGODB_DB: 'drain', PORT: String(port), DB_TIMEOUT_MS: '20000', LOG_LEVEL: 'info', AUTH_REQUIRED: 'false' });
    await waitForOutput(hub, /Playground: http/);
    const url = `http://127.0.0.1:${port}`;
    expect((await graphql(url, createOrganization)).data?.OrganizationCreate.name).toBe('东湖县人民医院');

    server.pause(); // the next request waits on the database: it is in flight when SIGTERM arrives
    const inFlight = graphql(url, '{ OrganizationList { name } }');
    await new Promise((resolve) => setTimeout(resolve, 500));
    hub.child.kill('SIGTERM');
    await waitForOutput(hub, /draining in-flight requests/);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    server.resume();

    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(answered.data?.OrganizationList).toEqual([{ name: '东湖县人民医院' }]);
    expect(await hub.exited).toBe(0);
    expect(hub.output()).toMatch(/stopped cleanly/);
  });
});

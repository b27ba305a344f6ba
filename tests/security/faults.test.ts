/**
 * Issue 10, item 9: faults. Every answer while the database restarts is SERVICE_UNAVAILABLE (never INTERNAL),
 * and writes cut off by a hub killed mid-write are finished at the next start.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/database/connection.ts';
import { EmbeddedFerretDb } from '../../src/database/embedded-ferretdb.ts';
import { graphql, startTestHub } from '../support/hub.ts';
import { freePort } from '../support/ports.ts';
import { spawnHub, waitForOutput } from '../support/process.ts';

// These tests stop and kill servers, so they run their own FerretDB, never the shared one.
let dataDir: string;
let server: EmbeddedFerretDb;
beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hub-faults-'));
  server = new EmbeddedFerretDb({ dataDir, port: await freePort() });
  await server.start();
});
afterAll(async () => {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('item 9: faults', () => {
  it('answers SERVICE_UNAVAILABLE, never INTERNAL, to every request while the database restarts', async () => {
    const hub = await startTestHub('restarts', { DB_TIMEOUT_MS: '3000', REQUEST_TIMEOUT_MS: '5000' }, server.uri);
    // The restart comes once the hub writes (a loaded machine may take a while to open the first connections).
    await expect.poll(async () => (await graphql(hub.url, 'mutation { OrganizationCreate(res: { name: "就绪" }) { id } }')).errors, { timeout: 60_000, interval: 500 }).toBeUndefined();
    const codes = new Map<string, number>();
    let running = true;
    let written = 0;
    const load = Array.from({ length: 6 }, async (_, worker) => {
      for (let i = 0; running; i++) {
        const answer = await graphql(
          hub.url,
          i % 2 === 0 ? `mutation { OrganizationCreate(res: { name: "重启中 ${worker}-${i}" }) { id } }` : '{ OrganizationList(_count: 5) { id name } }',
        ).catch(() => ({ status: 0, errors: [{ message: 'no answer', extensions: { code: 'NO_ANSWER' } }] }));
        for (const error of answer.errors ?? []) {
          codes.set(String(error.extensions?.code), (codes.get(String(error.extensions?.code)) ?? 0) + 1);
          if (error.extensions?.code !== 'SERVICE_UNAVAILABLE') console.log('not SERVICE_UNAVAILABLE:', error.message);
        }
        if (!answer.errors && i % 2 === 0) written++;
      }
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await server.stop();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await server.start();
      await new Promise((resolve) => setTimeout(resolve, 3000));
    } finally {
      running = false;
      await Promise.all(load);
      await hub.stop();
    }
    console.log('error codes while the database restarted:', JSON.stringify(Object.fromEntries(codes)), 'writes acknowledged:', written);
    expect(codes.get('SERVICE_UNAVAILABLE') ?? 0).toBeGreaterThan(0);
    expect([...codes.keys()].filter((code) => code !== 'SERVICE_UNAVAILABLE')).toEqual([]);
    expect(written).toBeGreaterThan(0);
  }, 120_000);

  it('finishes at the next start the writes of a hub killed in the middle of them', async () => {
    const env = { MONGODB_URI: server.uri, MONGODB_DB: 'killed', AUTH_REQUIRED: 'false', LOG_LEVEL: 'info' };
    const connection = openDatabase(server.uri, 'killed', 3000);
    const db = connection.db;
    /** Patient and Observation ids whose history has a committed version but no current document: writes cut off. */
    const cutOff = async (): Promise<string[]> => {
      const found: string[] = [];
      for (const type of ['Patient', 'Observation']) {
        const current = new Set((await db.collection(type).find({}, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id)));
        // Versions of a transaction that never committed carry its pending mark: never acknowledged, never visible,
        // rolled back by a later recovery (storage/transactions.ts); they are not writes to finish.
        const history = await db.collection(`${type}_history`).find({ p: { $exists: false } }, { projection: { rid: 1 } }).toArray();
        found.push(...new Set(history.map((d) => `${type}/${String(d.rid)}`).filter((key) => !current.has(key.split('/')[1]!))));
      }
      return found;
    };
    /** Starts a hub, writes with 4 clients (single creates and transactions of 50), and kills it with SIGKILL mid-write. */
    const killDuringWrites = async (): Promise<number> => {
      const first = spawnHub({ ...env, PORT: String(await freePort()) });
      await waitForOutput(first, /Playground: http/);
      const url = /Playground: (http:\/\/[^\s]+)\/graphql/.exec(first.output())![1]!;
      let acknowledged = 0;
      let stop = false;
      const writers = Array.from({ length: 4 }, async (_, worker) => {
        for (let i = 0; !stop; i++) {
          const single = worker % 2 === 0;
          const answer = single
            ? await graphql(url, `mutation { PatientCreate(res: { name: [{ text: "写入 ${worker}-${i}" }] }) { id } }`).catch(() => undefined)
            : await graphql(url, 'mutation($b: JSON!) { importBundle(bundle: $b) { summary { created } } }', {
                b: {
                  resourceType: 'Bundle',
                  type: 'transaction',
                  // Two types under one write intent: a Patient and an Observation about it, 25 times.
                  entry: Array.from({ length: 25 }, (_, k) => {
                    const patient = `urn:uuid:${randomUUID()}`;
                    return [
                      { fullUrl: patient, request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ text: `批量 ${worker}-${i}-${k}` }] } },
                      { fullUrl: `urn:uuid:${randomUUID()}`, request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: '血压' }, subject: { reference: patient } } },
                    ];
                  }).flat(),
                },
              }).catch(() => undefined);
          if (answer && !answer.errors) acknowledged += single ? 1 : 25; // Patients
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      // Freeze the database so every write stops at the step it has sent, kill the hub there, then let the
      // database finish what it received: the writes whose history entry was in flight are cut off.
      server.pause();
      await new Promise((resolve) => setTimeout(resolve, 200));
      first.child.kill('SIGKILL');
      await first.exited;
      server.resume();
      stop = true;
      await Promise.all(writers);
      return acknowledged;
    };
    let acknowledged = 0;
    let before: string[] = [];
    // A kill between two writes leaves nothing to repair; kill again until one lands in the middle of one.
    for (let attempt = 0; attempt < 5 && before.length === 0; attempt++) {
      acknowledged += await killDuringWrites();
      before = await cutOff();
    }
    const intents = await db.collection('write_intents').countDocuments({});
    console.log(`killed mid-write after ${acknowledged} acknowledged creates: ${before.length} versions without a current document, ${intents} write intents left`);
    expect(before.length).toBeGreaterThan(0);

    const second = spawnHub({ ...env, PORT: String(await freePort()) });
    await waitForOutput(second, /Playground: http/);
    try {
      // Every version in history has its current document again, and every acknowledged create is there.
      await expect.poll(cutOff, { timeout: 60_000 }).toEqual([]);
      expect(await db.collection('Patient').countDocuments({})).toBeGreaterThanOrEqual(acknowledged);
      await expect.poll(() => second.output(), { timeout: 10_000 }).toMatch(/finished writes left half done/).catch((error: unknown) => {
        console.log(second.output().slice(-3000));
        throw error;
      });
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
      await connection.close();
    }
  }, 180_000);
});

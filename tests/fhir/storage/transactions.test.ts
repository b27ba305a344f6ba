/**
 * A transaction's entries become visible together or not at all (src/fhir/storage/transactions.ts): readers
 * polling while a 2,000-entry transaction is written see none of it or all of it, never a part; a hub killed in the
 * middle of one leaves nothing visible, and recovery rolls the cut-off transaction back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../../src/app.ts';
import { BundleImporter } from '../../../src/fhir/bundles.ts';
import { freshDatabase, mongodbUri, startTestHub, type TestDatabase } from '../../support/hub.ts';
import { freePort } from '../../support/ports.ts';
import { spawnHub, waitForOutput } from '../../support/process.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  database = await freshDatabase('transaction_visibility');
  hub = await startTestHub(database.name);
});
afterAll(async () => {
  await hub?.stop();
  await database?.drop();
});

/** A transaction of `n` Patients of one family and an Observation about each. */
function transaction(family: string, n: number) {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Array.from({ length: n }, (_, i) => {
      const patient = `urn:uuid:${randomUUID()}`;
      return [
        { fullUrl: patient, resource: { resourceType: 'Patient', name: [{ family, given: [`${i}`] }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:test:transaction', code: family }] }, subject: { reference: patient } }, request: { method: 'POST', url: 'Observation' } },
      ];
    }).flat(),
  };
}

const visible = async (family: string): Promise<[number, number]> => [
  (await database.store.search('Patient', { family, _count: 1000 })).resources.length,
  (await database.store.search('Observation', { code: `urn:test:transaction|${family}`, _count: 1000 })).resources.length,
];

describe('a transaction', () => {
  it('is seen by readers polling while it is written as nothing or everything of each type, never a part', async () => {
    const family = `原子${randomUUID().slice(0, 6)}`;
    const seen = new Set<string>();
    let done = false;
    const readers = Array.from({ length: 3 }, async () => {
      while (!done) seen.add(JSON.stringify(await visible(family)));
    });
    const result = await new BundleImporter(hub.store).import(transaction(family, 1000));
    done = true;
    await Promise.all(readers);
    expect(result.summary.created).toBe(2000);
    seen.add(JSON.stringify(await visible(family)));
    // Each read sees none of the transaction's resources of its type or all of them; and the Patients (written
    // first, read first) are never there without the Observations read after them: the whole is visible at once.
    // (Two reads one after the other may fall on either side of the commit: [0, 1000] can be seen.)
    const counts = [...seen].flatMap((pair) => JSON.parse(pair) as number[]);
    expect(new Set(counts)).toEqual(new Set([0, 1000]));
    expect(seen.has('[1000,0]')).toBe(false);
    expect(seen.has('[1000,1000]')).toBe(true);
  }, 120_000);

  it('cut off by a killed hub leaves nothing visible, and recovery rolls it back', async () => {
    const family = `中断${randomUUID().slice(0, 6)}`;
    const killed = await freshDatabase('killed_txn');
    const raw = killed.connection.db;
    const first = spawnHub({ MONGODB_URI: mongodbUri(), MONGODB_DB: killed.name, AUTH_REQUIRED: 'false', LOG_LEVEL: 'info', PORT: String(await freePort()) });
    try {
      await waitForOutput(first, /Playground: http/);
      const url = /Playground: (http:\/\/[^\s]+)\/graphql/.exec(first.output())![1]!;
      const sent = fetch(`${url}/fhir`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(transaction(family, 1000)) }).catch(() => undefined);
      // Kill it once some of the transaction is in the database, before all of it is.
      await expect.poll(() => raw.collection('Patient_history').countDocuments({}), { timeout: 60_000, interval: 20 }).toBeGreaterThan(0);
      first.child.kill('SIGKILL');
      await first.exited;
      await sent;
    } finally {
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
    }
    const store = killed.store;
    const marked = await raw.collection('Patient').countDocuments({ p: { $exists: true } });
    const intents = await raw.collection('write_intents').find({ state: 'pending' }).toArray();
    console.log(`killed mid-transaction: ${marked} marked Patients, ${intents.length} pending transaction`);
    if (intents.length === 0) {
      // The kill came after the commit: then all of it is there, which is as atomic.
      expect([(await store.search('Patient', { family, _count: 1000 })).resources.length, (await store.search('Observation', { code: `urn:test:transaction|${family}`, _count: 1000 })).resources.length]).toEqual([1000, 1000]);
    } else {
      expect((await store.search('Patient', { family, _count: 1000 })).resources).toHaveLength(0);
      expect((await store.search('Observation', { code: `urn:test:transaction|${family}`, _count: 1000 })).resources).toHaveLength(0);
      // A restart's recovery leaves a young pending transaction alone (its writer might still be at it) ...
      await killed.maintenance.recoverCutOffWrites();
      expect(await raw.collection('write_intents').countDocuments({ state: 'pending' })).toBe(1);
      // ... and rolls back one older than the pending timeout: nothing of it remains.
      await raw.collection('write_intents').updateMany({ state: 'pending' }, { $set: { at: new Date(Date.now() - 3_600_000) } });
      await killed.maintenance.recoverCutOffWrites();
      expect(await raw.collection('write_intents').countDocuments({})).toBe(0);
      expect(await raw.collection('Patient').countDocuments({ p: { $exists: true } })).toBe(0);
      expect(await raw.collection('Patient_history').countDocuments({ p: { $exists: true } })).toBe(0);
      expect(await raw.collection('Observation').countDocuments({})).toBe(0);
    }
    await killed.drop();
  }, 180_000);
});

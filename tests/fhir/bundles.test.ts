import { readFileSync } from 'node:fs';
import type { Bundle, Encounter, Observation } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { BundleImporter } from '../../src/fhir/bundles.ts';
import { bundleFiles, importFiles } from '../../src/fhir/import-files.ts';
import { freshDatabase, graphql, startTestHub, type TestDatabase } from '../support/hub.ts';
import { syntheaFiles, syntheaManifest, syntheaSample } from '../support/sample-data.ts';

const databases: TestDatabase[] = [];
async function database(label: string): Promise<TestDatabase> {
  const created = await freshDatabase(label);
  databases.push(created);
  return created;
}
afterAll(async () => {
  for (const created of databases) await created.drop();
});

async function countsByType(db: TestDatabase, types: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const type of types) counts[type] = await db.connection.db.collection(type).countDocuments({});
  return counts;
}

describe('npm run import (Bundle files)', () => {
  it('imports the Synthea 3.3 sample completely, in any file order, with exact counts, and a second import changes nothing', async () => {
    const db = await database('synthea');
    const manifest = syntheaManifest();
    const { providers, patients } = syntheaFiles();
    // Patient Bundles first: their conditional references (Practitioner?identifier=…) resolve only after the
    // provider batches, so they wait and are tried again.
    const files = [...patients, ...providers];
    expect(files).toHaveLength(manifest.files);
    const first = await importFiles(db.store, files);
    expect(first.totals.failed).toBe(0);
    expect(first.totals.created).toBe(manifest.entries);
    // Every resource of every type is kept: the counts are Synthea's own (manifest.json, counted from its files).
    expect(await countsByType(db, Object.keys(manifest.resources))).toEqual(manifest.resources);
    const versions = await db.connection.db.collection('Observation_history').countDocuments({});
    const second = await importFiles(db.store, await bundleFiles([syntheaSample]));
    expect(second.totals).toEqual({ created: 0, updated: 0, unchanged: manifest.entries, failed: 0 });
    expect(await countsByType(db, Object.keys(manifest.resources))).toEqual(manifest.resources);
    expect(await db.connection.db.collection('Observation_history').countDocuments({})).toBe(versions);
    // urn:uuid references now point at stored resources, conditional ones at the providers' stored ids.
    const { resources } = await db.store.search('Observation', { _count: 1, _sort: '_id' });
    const subject = (resources[0] as Observation).subject?.reference ?? '';
    expect(subject).toMatch(/^Patient\/[0-9a-f-]{36}$/);
    await expect(db.store.read('Patient', subject.split('/')[1]!)).resolves.toMatchObject({ resourceType: 'Patient' });
    const encounter = (await db.store.search('Encounter', { _count: 1 })).resources[0] as Encounter;
    const practitioner = encounter.participant?.[0]?.individual?.reference ?? '';
    // A conditional create gets the id its condition claims (exactly once however many Bundles create it at once).
    expect(practitioner).toMatch(/^Practitioner\/[0-9a-f]{32}$/);
    await expect(db.store.read('Practitioner', practitioner.split('/')[1]!)).resolves.toMatchObject({ resourceType: 'Practitioner' });
  }, 600_000);

  it('two imports of the same data at once create each resource exactly once', async () => {
    const db = await database('concurrent');
    const { providers, patients } = syntheaFiles();
    await importFiles(db.store, providers);
    const bundle = JSON.parse(readFileSync(patients[0]!, 'utf8')) as Bundle;
    const [a, b] = await Promise.all([new BundleImporter(db.store).import(bundle), new BundleImporter(db.store).import(structuredClone(bundle))]);
    expect(a.summary.failed + b.summary.failed).toBe(0);
    expect(a.summary.created + b.summary.created).toBe(bundle.entry!.length);
    const observations = bundle.entry!.filter((entry) => entry.resource?.resourceType === 'Observation').length;
    expect(await db.connection.db.collection('Observation').countDocuments({})).toBe(observations);
    expect(await db.connection.db.collection('Observation_history').countDocuments({})).toBe(observations);
  }, 120_000);
});

describe('Bundle semantics', () => {
  let db: TestDatabase;
  let hub: Hub;
  beforeAll(async () => {
    db = await database('semantics');
    hub = await startTestHub(db.name);
  });
  afterAll(async () => hub.stop());

  const patient = { resourceType: 'Patient', name: [{ text: '陈丽' }] };
  const observation = (subject: string, status = 'final') => ({ resourceType: 'Observation', status, code: { text: '血糖' }, subject: { reference: subject } });

  it('a transaction with one invalid entry writes nothing and names the entry', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:0b8a4c52-7f0e-4d8c-9a55-000000000001', resource: patient, request: { method: 'POST', url: 'Patient' } },
        { resource: observation('urn:uuid:0b8a4c52-7f0e-4d8c-9a55-000000000001'), request: { method: 'POST', url: 'Observation' } },
        { resource: observation('urn:uuid:0b8a4c52-7f0e-4d8c-9a55-000000000001', 'finsihed'), request: { method: 'POST', url: 'Observation' } },
      ],
    };
    const error = await new BundleImporter(db.store).import(bundle).catch((e: Error) => e);
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('entry 2 (Observation)') });
    expect(await countsByType(db, ['Patient', 'Observation'])).toEqual({ Patient: 0, Observation: 0 });

    const dangling = { ...bundle, entry: [{ resource: observation('urn:uuid:0b8a4c52-7f0e-4d8c-9a55-0000000000ff'), request: { method: 'POST', url: 'Observation' } }] };
    await expect(new BundleImporter(db.store).import(dangling)).rejects.toMatchObject({ message: expect.stringContaining('names no entry') });
  });

  it('a batch reports an outcome per entry and writes the valid ones; ifNoneExist reuses a match', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Organization', identifier: [{ system: 'https://demo/org', value: 'A1' }], name: '桃林镇卫生院' }, request: { method: 'POST', url: 'Organization', ifNoneExist: 'identifier=https://demo/org|A1' } },
        { resource: { resourceType: 'Organization', name: 'x', active: 'yes' }, request: { method: 'POST', url: 'Organization' } },
        { resource: { resourceType: 'Claim' }, request: { method: 'DELETE', url: 'Claim/1' } },
      ],
    };
    const result = await graphql(hub.url, `mutation($b: JSON!) { importBundle(bundle: $b) { type summary { created failed } entries { index outcome message id } byType { resourceType counts { created } } } }`, { b: bundle });
    expect(result.errors).toBeUndefined();
    const imported = result.data!.importBundle;
    expect(imported.type).toBe('batch');
    expect(imported.summary).toEqual({ created: 1, failed: 2 });
    expect(imported.entries.map((entry: { outcome: string }) => entry.outcome)).toEqual(['created', 'failed', 'failed']);
    expect(imported.entries[1].message).toMatch(/entry 1 \(Organization\).*active/);
    expect(imported.entries[2].message).toMatch(/DELETE/);

    const again = await graphql(hub.url, `mutation($b: JSON!) { importBundle(bundle: $b) { entries { outcome id } } }`, { b: { ...bundle, entry: [bundle.entry[0]] } });
    expect(again.data!.importBundle.entries).toEqual([{ outcome: 'unchanged', id: imported.entries[0].id }]);
    expect(await db.connection.db.collection('Organization').countDocuments({})).toBe(1);
  });

  it('refuses what is not a transaction or batch Bundle', async () => {
    const result = await graphql(hub.url, `mutation { importBundle(bundle: { resourceType: "Bundle", type: "searchset" }) { type } }`);
    expect(result.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringContaining('searchset') });
  });
});

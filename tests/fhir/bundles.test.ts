import { readFileSync } from 'node:fs';
import type { Bundle, Encounter, Observation } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { BundleImporter } from '../../src/fhir/bundles.ts';
import { bundleFiles, importFiles } from '../../src/fhir/import-files.ts';
import { freshDatabase, graphql, startTestHub, type TestDatabase } from '../support/hub.ts';
import { sharedData } from '../support/shared-data.ts';

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

// Distinct resources per type in synthea-r4, from ../shared/data/MANIFEST.md (Organization and Practitioner:
// 223 entries each, 102 distinct).
const syntheaR4 = {
  Patient: 90, Organization: 102, Practitioner: 102, Encounter: 1295, Condition: 432, MedicationRequest: 259, Claim: 1554,
  ExplanationOfBenefit: 1295, CarePlan: 135, Observation: 6873, Immunization: 989, DiagnosticReport: 341, Procedure: 495,
  ImagingStudy: 8, Goal: 65, AllergyIntolerance: 55,
};

describe('npm run import (Bundle files)', () => {
  it('imports all of synthea-r4 with exact counts, and a second import changes nothing', async () => {
    const db = await database('synthea');
    const files = await bundleFiles([sharedData('synthea-r4')]);
    expect(files).toHaveLength(92);
    const first = await importFiles(db.store, files);
    expect(first.totals.failed).toBe(0);
    expect(await countsByType(db, Object.keys(syntheaR4))).toEqual(syntheaR4);
    const versions = await db.connection.db.collection('Observation_history').countDocuments({});
    const second = await importFiles(db.store, files);
    expect(second.totals).toEqual({ created: 0, updated: 0, unchanged: 14332, failed: 0 });
    expect(await countsByType(db, Object.keys(syntheaR4))).toEqual(syntheaR4);
    expect(await db.connection.db.collection('Observation_history').countDocuments({})).toBe(versions);
    // urn:uuid references now point at stored resources.
    const { resources } = await db.store.search('Observation', { _count: 1, _sort: '_id' });
    const subject = (resources[0] as Observation).subject?.reference ?? '';
    expect(subject).toMatch(/^Patient\/[0-9a-f-]{36}$/);
    await expect(db.store.read('Patient', subject.split('/')[1]!)).resolves.toMatchObject({ resourceType: 'Patient' });
  }, 600_000);

  it('imports synthea-r4-conditional in any file order, resolving conditional references and ifNoneExist', async () => {
    const db = await database('conditional');
    // Patient Bundles first: their conditional references resolve only after the provider batches, so they wait.
    const files = (await bundleFiles([sharedData('synthea-r4-conditional')])).sort((a, b) => Number(/Information/.test(a)) - Number(/Information/.test(b)));
    const first = await importFiles(db.store, files);
    expect(first.totals.failed).toBe(0);
    expect(await countsByType(db, ['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'Patient', 'Encounter', 'Observation'])).toEqual({
      Organization: 1191, Location: 1191, Practitioner: 1191, PractitionerRole: 1191, Patient: 3, Encounter: 91, Observation: 183,
    });
    const encounter = (await db.store.search('Encounter', { _count: 1 })).resources[0] as Encounter;
    const practitioner = encounter.participant?.[0]?.individual?.reference ?? '';
    expect(practitioner).toMatch(/^Practitioner\/[0-9a-f-]{36}$/);
    await expect(db.store.read('Practitioner', practitioner.split('/')[1]!)).resolves.toMatchObject({ resourceType: 'Practitioner' });

    const second = await importFiles(db.store, files);
    expect(second.totals.created + second.totals.updated + second.totals.failed).toBe(0);
  }, 600_000);

  it('two imports of the same data at once create each resource exactly once', async () => {
    const db = await database('concurrent');
    const file = (await bundleFiles([sharedData('synthea-r4')])).find((name) => !/Information/.test(name))!;
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as Bundle;
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

/**
 * Conditional create exactly once (src/fhir/conditional-create.ts): 20 concurrent `POST /fhir/Patient` with one
 * `If-None-Exist`, spread over two hub instances on one database, give one 201 and 19 × 200 with the same id;
 * the same for Bundle entries with `ifNoneExist` (each Bundle naming the entry with its own fullUrl) and for
 * GraphQL `PatientCreate(ifNoneExist:)`. A condition that matches several resources is refused (412).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { freshDatabase, graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let first: Hub;
let second: Hub;
beforeAll(async () => {
  database = await freshDatabase('conditional_create');
  [first, second] = await Promise.all([startTestHub(database.name), startTestHub(database.name)]);
});
afterAll(async () => {
  await first?.stop();
  await second?.stop();
  await database?.drop();
});

const patient = (value: string) => ({ resourceType: 'Patient', identifier: [{ system: 'https://demo.consortium-hub.cn/sid/test/mrn', value }], name: [{ text: '并发患者' }] });
const patients = (): Promise<number> => database.connection.db.collection('Patient').countDocuments({});

describe('conditional create', () => {
  it('answers 20 concurrent REST creates of one identifier on two instances with one 201 and 19 × 200, all with the same id', async () => {
    const value = `MRN-${randomUUID().slice(0, 8)}`;
    const before = await patients();
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const hub = i % 2 === 0 ? first : second;
        const response = await fetch(`${hub.url}/fhir/Patient`, {
          method: 'POST',
          headers: { 'content-type': 'application/fhir+json', 'if-none-exist': `identifier=https://demo.consortium-hub.cn/sid/test/mrn|${value}` },
          body: JSON.stringify(patient(value)),
        });
        return { status: response.status, id: ((await response.json()) as { id?: string }).id };
      }),
    );
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(19);
    expect(new Set(answers.map((answer) => answer.id)).size).toBe(1);
    expect(await patients()).toBe(before + 1);
  });

  it('creates one resource for concurrent Bundles with the same ifNoneExist, whatever their fullUrls', async () => {
    const value = `MRN-${randomUUID().slice(0, 8)}`;
    const before = await patients();
    const bundles = Array.from({ length: 10 }, () => {
      const fullUrl = `urn:uuid:${randomUUID()}`;
      return {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl, resource: patient(value), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=https://demo.consortium-hub.cn/sid/test/mrn|${value}` } },
          { resource: { resourceType: 'Observation', status: 'final', code: { text: '体温' }, subject: { reference: fullUrl } }, request: { method: 'POST', url: 'Observation' } },
        ],
      };
    });
    const answers = await Promise.all(bundles.map((bundle, i) => fetch(`${(i % 2 === 0 ? first : second).url}/fhir`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) })));
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 10 }, () => 200));
    expect(await patients()).toBe(before + 1);
    // Every Bundle's Observation points at that one patient.
    const [only] = (await first.store.search('Patient', { identifier: `https://demo.consortium-hub.cn/sid/test/mrn|${value}` })).resources;
    expect((await first.store.search('Observation', { subject: `Patient/${only!.id}` })).resources).toHaveLength(10);
  });

  it('gives concurrent GraphQL creates with ifNoneExist the same resource', async () => {
    const value = `MRN-${randomUUID().slice(0, 8)}`;
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        graphql((i % 2 === 0 ? first : second).url, 'mutation($res: PatientInput!, $c: String) { PatientCreate(res: $res, ifNoneExist: $c) { id } }', { res: patient(value), c: `identifier=https://demo.consortium-hub.cn/sid/test/mrn|${value}` }),
      ),
    );
    expect(answers.every((answer) => answer.errors === undefined)).toBe(true);
    expect(new Set(answers.map((answer) => answer.data!.PatientCreate.id)).size).toBe(1);
  });

  it('refuses a condition that matches more than one resource with 412, and writes nothing', async () => {
    const value = `MRN-${randomUUID().slice(0, 8)}`;
    await first.store.create(patient(value) as never);
    await first.store.create(patient(value) as never);
    const before = await patients();
    const response = await fetch(`${first.url}/fhir/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json', 'if-none-exist': `identifier=https://demo.consortium-hub.cn/sid/test/mrn|${value}` }, body: JSON.stringify(patient(value)) });
    expect(response.status).toBe(412);
    expect(((await response.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect(await patients()).toBe(before);
  });
});

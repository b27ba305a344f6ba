/**
 * Issue 10, items 5 and 10: who may write a resource is decided by the organisation it was first written for,
 * which a deletion does not give away; a member's own transaction may create a patient and what is about it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { makeNationalId } from '../../src/identity/national-id.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let hospitalA: string;
let hospitalB: string;
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('ownership'));
  hospitalA = await token(hub.url, 'his-xishan-county');
  hospitalB = await token(hub.url, 'his-donghu-county');
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const nid = 'urn:oid:2.16.156.10011.1.3';
const importBundle = (bundle: unknown, accessToken: string) =>
  graphql(hub.url, 'mutation($b: JSON!) { importBundle(bundle: $b) { summary { created updated unchanged failed } } }', { b: bundle }, accessToken);

const patient = (id: string, organization: string, nationalId?: string) => ({
  resourceType: 'Patient',
  id,
  name: [{ text: '测试居民' }],
  gender: 'female',
  birthDate: '1970-05-06',
  managingOrganization: { reference: `Organization/${organization}` },
  ...(nationalId ? { identifier: [{ system: nid, value: nationalId }] } : {}),
});
const condition = (id: string, patientId: string) => ({
  resourceType: 'Condition',
  id,
  code: { text: '高血压' },
  subject: { reference: `Patient/${patientId}` },
});
const transaction = (...resources: { resourceType: string; id: string }[]) => ({
  resourceType: 'Bundle',
  type: 'transaction',
  entry: resources.map((resource) => ({ request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` }, resource })),
});

describe('item 5: a deleted id stays its organisation’s', () => {
  it('refuses another member re-creating a deleted Patient, and with it writing the records about it', async () => {
    expect((await importBundle(transaction(patient('owned-x', 'org-donghu-county'), condition('owned-y', 'owned-x')), hospitalB)).errors).toBeUndefined();
    const deleted = await graphql(hub.url, 'mutation { PatientDelete(id: "owned-x") { versionId } }', undefined, hospitalB);
    expect(deleted.data?.PatientDelete).toEqual({ versionId: '2' });

    // Hospital A takes the id over with a resident's national ID: refused, nothing written.
    const takeover = await importBundle(transaction(patient('owned-x', 'org-xishan-county', makeNationalId('430621', '1970-05-06', 88, 'female'))), hospitalA);
    expect(takeover.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(takeover.errors?.[0]?.message).toMatch(/belongs to Organization\/org-donghu-county/);
    const created = await graphql(hub.url, 'mutation($r: PatientInput!) { PatientUpdate(id: "owned-x", res: $r) { id } }', { r: patient('owned-x', 'org-xishan-county') }, hospitalA);
    expect(created.errors?.[0]?.extensions?.code).toMatch(/FORBIDDEN|NOT_FOUND/);
    const rewrite = await graphql(hub.url, 'mutation($r: ConditionInput!) { ConditionUpdate(id: "owned-y", res: $r) { id } }', { r: { ...condition('owned-y', 'owned-x'), note: [{ text: '改写' }] } }, hospitalA);
    expect(rewrite.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const history = await graphql(hub.url, '{ Condition(id: "owned-y") { meta { versionId } } }', undefined, hospitalB);
    expect(history.data?.Condition).toEqual({ meta: { versionId: '1' } });

    // Its own organisation puts it back as the next version.
    const back = await importBundle(transaction(patient('owned-x', 'org-donghu-county')), hospitalB);
    expect(back.data?.importBundle.summary).toMatchObject({ created: 1 });
    expect((await graphql(hub.url, '{ Patient(id: "owned-x") { meta { versionId } } }', undefined, hospitalB)).data?.Patient).toEqual({ meta: { versionId: '3' } });
  });

  it('keeps the owner of seeded and imported records, decided by what they name, after their deletion', async () => {
    const admin = await token(hub.url, 'consortium-admin');
    // A seeded township record, deleted by an administrator; a county member may not bring it back as its own.
    const deleted = await graphql(hub.url, 'mutation { PatientDelete(id: "pat-taolin-township-010") { versionId } }', undefined, admin);
    expect(deleted.errors, JSON.stringify(deleted.errors)).toBeUndefined();
    const takeover = await importBundle(transaction(patient('pat-taolin-township-010', 'org-xishan-county')), hospitalA);
    expect(takeover.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('item 10: a member’s own transaction', () => {
  it('creates a Patient and a Condition about it in one transaction, and refuses the same naming another member’s patient', async () => {
    const own = await importBundle(transaction(patient('new-a-1', 'org-xishan-county'), condition('new-a-1-c', 'new-a-1')), hospitalA);
    expect(own.errors).toBeUndefined();
    expect(own.data?.importBundle.summary).toMatchObject({ created: 2, failed: 0 });

    const foreign = await importBundle(transaction(patient('new-a-2', 'org-xishan-county'), condition('new-a-2-c', 'pat-donghu-county-001')), hospitalA);
    expect(foreign.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await graphql(hub.url, '{ PatientList(_id: "new-a-2") { id } }', undefined, hospitalA)).data?.PatientList).toEqual([]);
  });
});

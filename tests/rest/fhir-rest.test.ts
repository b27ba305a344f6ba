/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * The FHIR REST facade at /fhir (issue 14, item 1), driven by fhir-kit-client against a hub on the real database:
 * create -> read -> search with paging -> update with a stale If-Match (412) -> transaction -> $everything ->
 * delete -> vread of the deleted version, the CapabilityStatement, includes, _summary=count, _elements, Prefer,
 * conditional create, and every error as an OperationOutcome with its status — as a member, a resident and without
 * a token, through the same access policy and audit trail as GraphQL.
 */
import type { Bundle, CapabilityStatement, Observation, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { Client, RESPONSE_KEY } from 'fhir-kit-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import type { TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
/** fhir-kit-client's calls, with FHIR types instead of its loose FhirResource (which @medplum/fhirtypes do not fit). */
type Kit = { [K in 'capabilityStatement' | 'create' | 'read' | 'vread' | 'update' | 'delete' | 'search' | 'nextPage' | 'prevPage' | 'transaction' | 'operation' | 'resourceHistory']: (...args: any[]) => Promise<any> };
const kit = (client: Client): Kit => client as unknown as Kit;
let county: Kit;
let admin: Kit;

const headersOf = (result: unknown): Headers => (result as Record<string, Response>)[RESPONSE_KEY]!.headers;

/** The HTTP status and OperationOutcome of a refused call. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; outcome: OperationOutcome }> {
  try {
    await call;
  } catch (error) {
    const response = (error as { response?: { status: number; data: OperationOutcome } }).response;
    if (response) return { status: response.status, outcome: response.data };
    throw error;
  }
  throw new Error('the call was not refused');
}

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('fhir-rest', { AUDIT_FLUSH_MS: '20' }));
  county = kit(new Client({ baseUrl: `${hub.url}/fhir`, bearerToken: await token(hub.url, 'his-donghu-county') }));
  admin = kit(new Client({ baseUrl: `${hub.url}/fhir`, bearerToken: await token(hub.url, 'consortium-admin') }));
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

describe('FHIR REST with fhir-kit-client', () => {
  it('publishes a CapabilityStatement of what is served, with the token endpoint', async () => {
    const statement = (await county.capabilityStatement()) as CapabilityStatement;
    expect(statement.fhirVersion).toBe('4.0.1');
    const rest = statement.rest![0]!;
    const observation = rest.resource!.find((resource) => resource.type === 'Observation')!;
    expect(observation.searchParam!.map((parameter) => parameter.name)).toEqual(expect.arrayContaining(['code', 'date', 'patient', 'subject', 'value-quantity']));
    expect(observation.interaction!.map((interaction) => interaction.code)).toEqual(expect.arrayContaining(['read', 'vread', 'search-type', 'create', 'update', 'delete', 'history-instance']));
    expect(rest.security!.extension![0]!.extension![0]).toEqual({ url: 'token', valueUri: `${hub.url.replace('127.0.0.1', '127.0.0.1')}/oauth/token` });
    expect(rest.resource!.find((resource) => resource.type === 'Patient')!.operation!.map((operation) => operation.name)).toContain('everything');
  });

  it('create -> read -> search with paging -> stale If-Match 412 -> transaction -> $everything -> delete -> vread', async () => {
    const patient: Patient = { resourceType: 'Patient', name: [{ text: '赵敏', family: '赵', given: ['敏'] }], gender: 'female', birthDate: '1986-03-02', managingOrganization: { reference: 'Organization/org-donghu-county' } };
    const created = (await county.create({ resourceType: 'Patient', body: patient })) as Patient;
    expect(created.id).toMatch(/^[A-Za-z0-9-]+$/);
    expect(created.name![0]!.text).toBe('赵敏');
    expect(headersOf(created).get('location')).toBe(`${hub.url}/fhir/Patient/${created.id}/_history/1`);
    expect(headersOf(created).get('etag')).toBe('W/"1"');

    const read = (await county.read({ resourceType: 'Patient', id: created.id! })) as Patient;
    expect(read).toMatchObject({ id: created.id, meta: { versionId: '1' }, name: [{ text: '赵敏' }] });
    expect(headersOf(read).get('last-modified')).toBe(new Date(read.meta!.lastUpdated!).toUTCString());

    // Seven observations, paged three at a time; one arriving between pages moves none to another page.
    const observation = (n: number): Observation => ({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }], text: '心率' },
      subject: { reference: `Patient/${created.id}` },
      effectiveDateTime: `2026-10-0${n}T08:00:00+08:00`,
      performer: [{ reference: 'Organization/org-donghu-county' }],
      valueQuantity: { value: 70 + n, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    });
    for (let n = 1; n <= 7; n++) await county.create({ resourceType: 'Observation', body: observation(n) });
    const first = (await county.search({ resourceType: 'Observation', searchParams: { subject: `Patient/${created.id}`, _sort: '-date', _count: 3, _total: 'accurate' } })) as Bundle;
    expect(first.total).toBe(7);
    expect(first.entry!.map((entry) => (entry.resource as Observation).valueQuantity!.value)).toEqual([77, 76, 75]);
    await county.create({ resourceType: 'Observation', body: { ...observation(8), effectiveDateTime: '2026-10-08T08:00:00+08:00' } });
    const second = (await county.nextPage({ bundle: first })) as Bundle;
    expect(second.entry!.map((entry) => (entry.resource as Observation).valueQuantity!.value)).toEqual([74, 73, 72]);
    const third = (await county.nextPage({ bundle: second })) as Bundle;
    expect(third.entry!.map((entry) => (entry.resource as Observation).valueQuantity!.value)).toEqual([71]);
    expect(third.link!.find((link) => link.relation === 'next')).toBeUndefined();
    const back = (await county.prevPage({ bundle: third })) as Bundle;
    expect(back.entry!.map((entry) => (entry.resource as Observation).valueQuantity!.value)).toEqual([74, 73, 72]);
    // The same search by POST _search.
    const posted = (await county.search({ resourceType: 'Observation', searchParams: { subject: `Patient/${created.id}`, 'value-quantity': 'gt76' }, options: { postSearch: true } })) as Bundle;
    expect(posted.entry!.map((entry) => (entry.resource as Observation).valueQuantity!.value).sort()).toEqual([77, 78]);

    const updated = (await county.update({ resourceType: 'Patient', id: created.id!, body: { ...read, telecom: [{ system: 'phone', value: '13800000000' }] }, options: { headers: { 'if-match': 'W/"1"' } } })) as Patient;
    expect(updated.meta!.versionId).toBe('2');
    const stale = await refusal(county.update({ resourceType: 'Patient', id: created.id!, body: { ...read, gender: 'male' }, options: { headers: { 'if-match': 'W/"1"' } } }));
    expect(stale.status).toBe(412);
    expect(stale.outcome.resourceType).toBe('OperationOutcome');

    const transaction = (await county.transaction({
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:0b1c7f1e-2f0a-4a56-9a8e-2f7c1b0e6a01', resource: { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${created.id}` }, serviceProvider: { reference: 'Organization/org-donghu-county' } }, request: { method: 'POST', url: 'Encounter' } },
          { fullUrl: 'urn:uuid:0b1c7f1e-2f0a-4a56-9a8e-2f7c1b0e6a02', resource: { ...observation(9), effectiveDateTime: '2026-10-09T08:00:00+08:00', encounter: { reference: 'urn:uuid:0b1c7f1e-2f0a-4a56-9a8e-2f7c1b0e6a01' } }, request: { method: 'POST', url: 'Observation' } },
        ],
      },
    })) as Bundle;
    expect(transaction.type).toBe('transaction-response');
    expect(transaction.entry!.map((entry) => entry.response!.status)).toEqual(['201 Created', '201 Created']);
    expect(transaction.entry![1]!.response!.location).toBe('Observation/0b1c7f1e-2f0a-4a56-9a8e-2f7c1b0e6a02/_history/1');
    const linked = (await county.read({ resourceType: 'Observation', id: '0b1c7f1e-2f0a-4a56-9a8e-2f7c1b0e6a02' })) as Observation;
    expect(linked.encounter!.reference).toBe('Encounter/0b1c7f1e-2f0a-4a56-9a8e-2f7c1b0e6a01');

    const everything = (await county.operation({ name: '$everything', resourceType: 'Patient', id: created.id!, method: 'get' })) as Bundle;
    const types = everything.entry!.map((entry) => entry.resource!.resourceType);
    expect(types.filter((type) => type === 'Observation')).toHaveLength(9);
    expect(types).toEqual(expect.arrayContaining(['Patient', 'Encounter']));

    await county.delete({ resourceType: 'Observation', id: linked.id! });
    const gone = await refusal(county.read({ resourceType: 'Observation', id: linked.id! }));
    expect(gone.status).toBe(410);
    const deletedVersion = await refusal(county.vread({ resourceType: 'Observation', id: linked.id!, version: '2' }));
    expect(deletedVersion.status).toBe(410);
    const before = (await county.vread({ resourceType: 'Observation', id: linked.id!, version: '1' })) as Observation;
    expect(before.id).toBe(linked.id);
    const history = (await county.resourceHistory({ resourceType: 'Observation', id: linked.id! })) as Bundle;
    expect(history.entry!.map((entry) => entry.response!.status)).toEqual(['204', '201']);
  });

  it('includes and reverse includes, _summary=count, _elements', async () => {
    const found = (await county.search({ resourceType: 'Observation', searchParams: { patient: 'Patient/pat-donghu-county-001', _count: 5, _include: 'Observation:subject' } })) as Bundle;
    const included = found.entry!.filter((entry) => entry.search?.mode === 'include');
    expect(included.map((entry) => `${entry.resource!.resourceType}/${entry.resource!.id}`)).toEqual(['Patient/pat-donghu-county-001']);
    const counted = (await county.search({ resourceType: 'Observation', searchParams: { patient: 'Patient/pat-donghu-county-001', _summary: 'count' } })) as Bundle;
    expect(counted.entry).toBeUndefined();
    expect(counted.total).toBeGreaterThan(5);
    const slim = (await county.search({ resourceType: 'Patient', searchParams: { _id: 'pat-donghu-county-001', _elements: 'name' } })) as Bundle;
    const patient = slim.entry![0]!.resource as Patient;
    expect(patient.name).toBeDefined();
    expect(patient.gender).toBeUndefined();
    expect(patient.meta!.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
    const withPatients = (await county.search({ resourceType: 'Patient', searchParams: { _id: 'pat-donghu-county-001', _revinclude: 'Observation:subject', _count: 1 } })) as Bundle;
    expect(withPatients.entry!.filter((entry) => entry.search?.mode === 'include').length).toBeGreaterThan(0);
  });

  it('conditional create and Prefer', async () => {
    const body = { resourceType: 'Patient', identifier: [{ system: 'https://demo.consortium-hub.cn/mrn/donghu-county', value: 'REST-0001' }], name: [{ text: '钱多多' }], managingOrganization: { reference: 'Organization/org-donghu-county' } };
    const first = (await county.create({ resourceType: 'Patient', body, options: { headers: { 'if-none-exist': 'identifier=https://demo.consortium-hub.cn/mrn/donghu-county|REST-0001', prefer: 'return=representation' } } })) as Patient;
    const again = (await county.create({ resourceType: 'Patient', body, options: { headers: { 'if-none-exist': 'identifier=https://demo.consortium-hub.cn/mrn/donghu-county|REST-0001' } } })) as Patient;
    expect(again.id).toBe(first.id);
    const outcome = (await county.update({ resourceType: 'Patient', id: first.id!, body: { ...first, gender: 'male' }, options: { headers: { prefer: 'return=OperationOutcome' } } })) as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    const minimal = await fetch(`${hub.url}/fhir/Patient/${first.id}`, { method: 'PUT', headers: { authorization: `Bearer ${await token(hub.url, 'his-donghu-county')}`, 'content-type': 'application/fhir+json', prefer: 'return=minimal' }, body: JSON.stringify({ ...first, gender: 'female' }) });
    expect(minimal.status).toBe(200);
    expect(await minimal.text()).toBe('');
    expect(minimal.headers.get('etag')).toBe('W/"3"');
    // Update-as-create with a client-chosen id.
    const put = (await county.update({ resourceType: 'Patient', id: 'rest-chosen-id', body: { ...body, id: 'rest-chosen-id', identifier: [] } })) as Patient;
    expect(put.meta!.versionId).toBe('1');
  });

  it('answers every error with an OperationOutcome and its status', async () => {
    const anonymous = kit(new Client({ baseUrl: `${hub.url}/fhir` }));
    expect((await refusal(anonymous.read({ resourceType: 'Patient', id: 'pat-donghu-county-001' }))).status).toBe(401);
    const resident = kit(new Client({ baseUrl: `${hub.url}/fhir`, bearerToken: await token(hub.url, 'county-health-app', { patient_identifier: '43062120021114011X' }) }));
    const residentRefusal = await refusal(resident.read({ resourceType: 'Patient', id: 'pat-xishan-county-001' }));
    expect([403, 404]).toContain(residentRefusal.status);
    expect(((await resident.read({ resourceType: 'Patient', id: 'pat-donghu-county-001' })) as Patient).id).toBe('pat-donghu-county-001');
    expect((await refusal(county.read({ resourceType: 'Patient', id: 'no-such-patient' }))).status).toBe(404);
    expect((await refusal(county.read({ resourceType: 'Nonsense', id: 'x' }))).status).toBe(404);
    const invalid = await refusal(county.create({ resourceType: 'Observation', body: { resourceType: 'Observation', status: 'not-a-status', code: { text: 'x' } } }));
    expect(invalid.status).toBe(422);
    expect(invalid.outcome.issue[0]!.details!.coding![0]!.code).toBe('BAD_USER_INPUT');
    const badSearch = await refusal(county.search({ resourceType: 'Observation', searchParams: { nonsense: 'x' } }));
    expect(badSearch.status).toBe(400);
    const foreign = await refusal(county.update({ resourceType: 'Patient', id: 'pat-xishan-county-001', body: { resourceType: 'Patient', id: 'pat-xishan-county-001', managingOrganization: { reference: 'Organization/org-xishan-county' } } }));
    expect(foreign.status).toBe(403);
    const xml = await fetch(`${hub.url}/fhir/Patient/pat-donghu-county-001?_format=xml`, { headers: { authorization: `Bearer ${await token(hub.url, 'his-donghu-county')}` } });
    expect(xml.status).toBe(406);
    const tooLarge = await fetch(`${hub.url}/fhir/Patient`, { method: 'POST', headers: { authorization: `Bearer ${await token(hub.url, 'his-donghu-county')}`, 'content-type': 'application/fhir+json' }, body: 'x'.repeat(6 * 1024 * 1024) });
    expect(tooLarge.status).toBe(413);
  });

  it('answers $graphql at the base and on a Patient', async () => {
    const bearer = `Bearer ${await token(hub.url, 'his-donghu-county')}`;
    const post = (path: string, query: string) => fetch(`${hub.url}/fhir/${path}`, { method: 'POST', headers: { authorization: bearer, 'content-type': 'application/json' }, body: JSON.stringify({ query }) }).then((response) => response.json() as Promise<{ data?: Record<string, any>; errors?: unknown[] }>);
    const system = await post('$graphql', '{ Patient(id: "pat-donghu-county-001") { name { text } } }');
    expect(system.data!.Patient.name[0].text).toBe('王伟');
    const instance = await post('Patient/pat-donghu-county-001/$graphql', '{ name { text } managingOrganization { display } }');
    expect(instance.errors).toBeUndefined();
    expect(instance.data!.name[0].text).toBe('王伟');
    const bad = await post('Patient/pat-donghu-county-001/$graphql', 'query { x }');
    expect(bad.errors).toBeDefined();
  });

  it('is audited like GraphQL: who read which patient over REST', async () => {
    await county.read({ resourceType: 'Patient', id: 'pat-donghu-county-002' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const events = (await admin.search({ resourceType: 'AuditEvent', searchParams: { patient: 'Patient/pat-donghu-county-002', _count: 50 } })) as Bundle;
    const rest = events.entry!.map((entry) => entry.resource as { entity?: { description?: string }[]; agent?: { who?: { display?: string; identifier?: { value?: string } } }[] }).filter((event) => JSON.stringify(event).includes('FHIR REST GET /fhir/Patient/pat-donghu-county-002'));
    expect(rest.length).toBeGreaterThan(0);
    expect(JSON.stringify(rest[0])).toContain('his-donghu-county');
  });
});

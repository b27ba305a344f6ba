import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { exampleQueries } from '../../src/http/example-queries.ts';
import { seedDemoDecisions, seedDemoRecognition } from '../../src/demo/recognition.ts';
import { seedDemoReferrals } from '../../src/demo/referrals.ts';
import { demoHub, graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  ({ database, hub } = await demoHub('graphql'));
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

// Demo data, read from fixtures/demo-consortium.json by hand: the first resident (王伟) has records at
// 桃林镇卫生院 (pat-taolin-township-001), 东湖县人民医院 (pat-donghu-county-001) and 江南省人民医院 (pat-jiangnan-provincial-001).
const nationalIdOfFirstResident = '43062120021114011X';

describe('GraphQL resource API', () => {
  it('reads each served type by id and exposes the whole FHIR JSON', async () => {
    const result = await graphql(
      hub.url,
      `{
        Patient(id: "pat-taolin-township-001") { id resourceType name { text } json }
        Organization(id: "org-donghu-county") { name alias partOf { display } }
        Practitioner(id: "pra-donghu-county-1") { name { text } }
        Encounter(id: "enc-0001") { status class { code } serviceProvider { display } }
        Observation(id: "obs-00001") { status code { coding { system code } } valueQuantity { value unit code } }
        DiagnosticReport(id: "rep-0001") { status result { reference } }
        ServiceRequest(id: "ref-001") { intent category { text } performer { display } }
        Task(id: "task-ref-001") { status businessStatus { text } focus { reference } }
      }`,
    );
    expect(result.errors).toBeUndefined();
    const data = result.data!;
    expect(data.Patient).toMatchObject({ id: 'pat-taolin-township-001', resourceType: 'Patient', name: [{ text: '王伟' }, { text: null }] });
    expect(data.Patient.json).toMatchObject({ resourceType: 'Patient', id: 'pat-taolin-township-001', meta: { versionId: '1' } });
    expect(data.Patient.json.identifier[1].value).toBe(nationalIdOfFirstResident);
    expect(data.Organization).toEqual({ name: '东湖县人民医院', alias: ['Donghu County People’s Hospital'], partOf: { display: '江南省人民医院' } });
    expect(data.Practitioner.name[0].text).toBe('杨卫东');
    expect(data.Encounter.status).toBe('finished');
    expect(data.Observation.code.coding[0].system).toBe('http://loinc.org');
    expect(data.Observation.valueQuantity.code).toBe(data.Observation.valueQuantity.unit);
    expect(data.DiagnosticReport.result.length).toBeGreaterThan(0);
    expect(data.ServiceRequest).toMatchObject({ intent: 'order', category: [{ text: '转诊' }, { text: '上转' }], performer: [{ display: '东湖县人民医院' }] });
    expect(data.Task).toEqual({ status: 'accepted', businessStatus: { text: 'ACCEPTED' }, focus: { reference: 'ServiceRequest/ref-001' } });
  });

  it('finds one resident by national ID across member records, and by one member record number', async () => {
    const byNationalId = await graphql(hub.url, `query($id: String) { PatientList(identifier: $id) { id managingOrganization { display } } }`, {
      id: `urn:oid:2.16.156.10011.1.3|${nationalIdOfFirstResident}`,
    });
    expect(byNationalId.data?.PatientList.map((p: { id: string }) => p.id).sort()).toEqual([
      'pat-donghu-county-001',
      'pat-jiangnan-provincial-001',
      'pat-taolin-township-001',
    ]);
    const byMrn = await graphql(hub.url, `{ PatientList(identifier: "https://demo.consortium-hub.cn/sid/donghu-county/mrn|DH100037") { id } }`);
    expect(byMrn.data?.PatientList).toEqual([{ id: 'pat-donghu-county-001' }]);
  });

  it('searches with subject, patient, code, date, status, _id and _count, and resolves references', async () => {
    const result = await graphql(
      hub.url,
      `{
        all: ObservationList(subject: "Patient/pat-taolin-township-001") { id }
        hb: ObservationList(patient: "pat-taolin-township-001", code: "http://loinc.org|718-7") { id code { coding { code } } }
        dated: ObservationList(subject: "pat-taolin-township-001", date: "ge2024-01-01", status: "final", _count: 2, _sort: "-date") {
          effectiveDateTime subject { resource { ... on Patient { id name { text } } } }
        }
        two: EncounterList(_id: "enc-0001,enc-0002") { id }
        reports: DiagnosticReportList(subject: "Patient/pat-taolin-township-001") { result { resource { ... on Observation { id } } } }
        tasks: TaskList(status: "requested") { id owner { resource(type: "Organization") { ... on Organization { name } } } }
      }`,
    );
    expect(result.errors).toBeUndefined();
    const data = result.data!;
    expect(data.all.length).toBeGreaterThan(0);
    expect(data.hb.every((o: { code: { coding: { code: string }[] } }) => o.code.coding[0]!.code === '718-7')).toBe(true);
    expect(data.dated).toHaveLength(2);
    expect(data.dated[0].effectiveDateTime >= data.dated[1].effectiveDateTime).toBe(true);
    expect(data.dated[0].subject.resource).toEqual({ id: 'pat-taolin-township-001', name: [{ text: '王伟' }, { text: null }] });
    expect(data.two.map((e: { id: string }) => e.id)).toEqual(['enc-0001', 'enc-0002']);
    const resultIds = data.reports.flatMap((r: { result: { resource: { id: string } }[] }) => r.result.map((x) => x.resource.id)).sort();
    expect(resultIds).toEqual(data.all.map((o: { id: string }) => o.id).sort());
    expect(data.tasks).toEqual([{ id: 'task-ref-004', owner: { resource: { name: '东湖县人民医院' } } }]);
  });

  it('repeats a parameter through _and, next to String variables as HAPI and Medplum clients send them', async () => {
    const result = await graphql(
      hub.url,
      `query($patient: String, $and: [String!]) {
        both: ObservationList(patient: $patient, _and: $and) { id effectiveDateTime }
        all: ObservationList(patient: $patient) { id effectiveDateTime }
      }`,
      { patient: 'pat-taolin-township-001', and: ['date=ge2023-01-01', 'date=lt2024-07-01'] },
    );
    expect(result.errors).toBeUndefined();
    const inRange = result.data!.all.filter((o: { effectiveDateTime: string }) => o.effectiveDateTime >= '2023-01-01' && o.effectiveDateTime < '2024-07-01');
    expect(inRange.length).toBeGreaterThan(0);
    expect(inRange.length).toBeLessThan(result.data!.all.length);
    expect(result.data!.both.map((o: { id: string }) => o.id).sort()).toEqual(inRange.map((o: { id: string }) => o.id).sort());
    const bad = await graphql(hub.url, `{ ObservationList(_and: ["date>2024"]) { id } }`);
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('answers GET with a query string and the /$graphql alias, with variables and fragments', async () => {
    const query = 'query One($id: ID!) { Organization(id: $id) { ...Names } } fragment Names on Organization { name alias }';
    const url = `${hub.url}/$graphql?query=${encodeURIComponent(query)}&variables=${encodeURIComponent(JSON.stringify({ id: 'org-jiangnan-provincial' }))}`;
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { Organization: { name: '江南省人民医院', alias: ['Jiangnan Provincial People’s Hospital'] } } });
  });

  it('creates, updates with ifMatch, and deletes through mutations, with CONFLICT on a stale version', async () => {
    const created = await graphql(
      hub.url,
      `mutation($res: PatientInput!) { PatientCreate(res: $res) { id meta { versionId } name { text } } }`,
      { res: { name: [{ text: '诸葛婉清', family: '诸葛', given: ['婉清'] }], gender: 'female', birthDate: '1990-05-06' } },
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.PatientCreate.id as string;
    expect(created.data!.PatientCreate).toMatchObject({ meta: { versionId: '1' }, name: [{ text: '诸葛婉清' }] });

    const update = `mutation($id: ID!, $res: PatientInput!, $v: String) { PatientUpdate(id: $id, res: $res, ifMatch: $v) { meta { versionId } gender } }`;
    const updated = await graphql(hub.url, update, { id, v: 'W/"1"', res: { name: [{ text: '诸葛婉清' }], gender: 'other' } });
    expect(updated.data?.PatientUpdate).toEqual({ meta: { versionId: '2' }, gender: 'other' });
    const stale = await graphql(hub.url, update, { id, v: '1', res: { gender: 'male' } });
    expect(stale.errors?.[0]?.extensions?.code).toBe('CONFLICT');

    const deleted = await graphql(hub.url, `mutation { PatientDelete(id: "${id}") { resourceType id versionId } }`);
    expect(deleted.data?.PatientDelete).toEqual({ resourceType: 'Patient', id, versionId: '3' });
    const gone = await graphql(hub.url, `{ Patient(id: "${id}") { id } }`);
    expect(gone.errors?.[0]?.extensions?.code).toBe('GONE');
  });

  it('runs every playground example on the demo data without errors and with results', async () => {
    // The demo data of `npm start`: the consortium and demo referrals run through the workflow.
    const full = await demoHub('graphql_examples');
    await seedDemoReferrals(full.database.store, full.database.collections, 24);
    await seedDemoRecognition(full.database.store);
    await seedDemoDecisions(full.database.store, full.database.collections);
    try {
      for (const example of exampleQueries) {
        const result = await graphql(full.hub.url, example.query);
        expect(result.errors, example.title).toBeUndefined();
        expect(JSON.stringify(result.data).length, example.title).toBeGreaterThan(100);
      }
    } finally {
      await full.hub.stop();
      await full.database.drop();
    }
  });

  it('reports hub status', async () => {
    const result = await graphql(hub.url, '{ hubStatus { name fhirVersion resourceTypes databaseReachable } }');
    expect(result.data?.hubStatus).toMatchObject({ name: 'consortium-hub', fhirVersion: '4.0.1', databaseReachable: true });
    expect(result.data?.hubStatus.resourceTypes).toContain('ServiceRequest');
  });
});

/**
 * Queries as others write them: the examples of the HL7 FHIR GraphQL page (R4, "Using GraphQL with FHIR") and
 * the query forms HAPI FHIR and Medplum document, unchanged apart from ids, run against the demo consortium.
 * The HL7 page writes many argument values without quotes (`_reference: patient`, `Patient(id: example)`,
 * `clinical_status: relapse`, `name(use: official)`), which plain GraphQL reads as enum values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { demoHub, graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;

const birthTime = { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '2016-05-18T10:28:45Z' };
const ethnicity = { url: 'http://example.org/ext/ethnicity', valueString: '汉族' };

// The HL7 page's own example resources, named as there: Patient/example with three names, Conditions of it.
const examples = {
  resourceType: 'Bundle',
  type: 'transaction',
  entry: [
    {
      fullUrl: 'urn:uuid:8b7b1ee4-7c1f-4bd0-9c2e-000000000001',
      request: { method: 'PUT', url: 'Patient/example' },
      resource: {
        resourceType: 'Patient',
        id: 'example',
        extension: [ethnicity],
        identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '12345' }],
        active: true,
        name: [
          { use: 'official', family: 'Chalmers', given: ['Peter', 'James'] },
          { use: 'usual', given: ['Jim'] },
          { use: 'maiden', family: 'Windsor', given: ['Peter', 'James'] },
        ],
        gender: 'male',
        birthDate: '2016-05-18',
        _birthDate: { extension: [birthTime] },
        address: [{ city: 'Philadelphia', text: '534 Erewhon St' }],
        managingOrganization: { reference: 'Organization/org-donghu-county' },
      },
    },
    ...['relapse', 'active', 'active'].map((status, i) => ({
      request: { method: 'PUT', url: `Condition/example-${i}` },
      resource: {
        resourceType: 'Condition',
        id: `example-${i}`,
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: status }] },
        code: { text: ['高血压', '糖尿病', '冠心病'][i] },
        subject: { reference: 'Patient/example' },
      },
    })),
  ],
};

beforeAll(async () => {
  ({ database, hub } = await demoHub('peers'));
  const imported = await graphql(hub.url, 'mutation($b: JSON!) { importBundle(bundle: $b) { summary { created failed } } }', { b: examples });
  expect(imported.errors).toBeUndefined();
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

async function ok(query: string, variables?: Record<string, unknown>): Promise<Record<string, any>> {
  const result = await graphql(hub.url, query, variables);
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

describe('the HL7 FHIR GraphQL page, as written there', () => {
  it('reads a resource by an unquoted id and selects fields, polymorphic values and primitive extensions', async () => {
    const data = await ok('{ Patient(id: example) { id, active } }');
    expect(data.Patient).toEqual({ id: 'example', active: true });
    const extensions = await ok('{ Patient(id: example) { name { text given family } birthDate _birthDate { extension { valueDateTime } } } }');
    expect(extensions.Patient.name[0]).toEqual({ text: null, given: ['Peter', 'James'], family: 'Chalmers' });
    expect(extensions.Patient).toMatchObject({ birthDate: '2016-05-18', _birthDate: { extension: [{ valueDateTime: '2016-05-18T10:28:45Z' }] } });
    const polymorphic = await ok('{ ObservationList(subject: "Patient/pat-taolin-township-001", _count: 1) { valueQuantity { value unit } } }');
    expect(polymorphic.ObservationList[0].valueQuantity.value).toEqual(expect.any(Number));
  });

  it('navigates lists with fhirpath, a property filter, an extension url and _count/_offset', async () => {
    const data = await ok(`{ Patient(id: example) {
      withFamily: name(fhirpath: "family.exists()") { text given family }
      official: name(use: official) { text given family }
      window: name(_count: 1, _offset: 1) { given }
      myext: extension(url: "http://example.org/ext/ethnicity") { value: valueString }
    } }`);
    expect(data.Patient.withFamily.map((n: { family: string }) => n.family)).toEqual(['Chalmers', 'Windsor']);
    expect(data.Patient.official).toEqual([{ text: null, given: ['Peter', 'James'], family: 'Chalmers' }]);
    expect(data.Patient.window).toEqual([{ given: ['Jim'] }]);
    expect(data.Patient.myext).toEqual([{ value: '汉族' }]);
    const bad = await graphql(hub.url, '{ Patient(id: example) { name(fhirpath: "family.(((") { family } } }');
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('resolves a reference with resource(type: Patient) written unquoted', async () => {
    const data = await ok(`{ ConditionList(patient: example, _count: 1) {
      id
      subject { reference resource(type: Patient) { ... on Patient { birthDate } } }
      code { coding { system code } }
    } }`);
    expect(data.ConditionList[0].subject).toEqual({ reference: 'Patient/example', resource: { birthDate: '2016-05-18' } });
  });

  it('searches a list with unquoted token and id values, and with a list of ids for OR', async () => {
    const relapse = await ok('{ ConditionList(clinical_status: relapse, patient: example) { id, clinicalStatus { coding { code } } } }');
    expect(relapse.ConditionList).toEqual([{ id: 'example-0', clinicalStatus: { coding: [{ code: 'relapse' }] } }]);
    const pet = await ok('{ PatientList(name:"pet") { name { family, given } } }');
    expect(pet.PatientList.length).toBe(1);
    expect(pet.PatientList[0].name[0].family).toBe('Chalmers');
    const either = await ok('{ PatientList(_id: [example, "pat-taolin-township-001"]) { id } }');
    expect(either.PatientList.map((p: { id: string }) => p.id).sort()).toEqual(['example', 'pat-taolin-township-001']);
  });

  it('pages a connection and follows its cursor', async () => {
    const first = await ok(`{ ConditionConnection (clinical_status: active, patient: example, _count: 1) {
      count offset pagesize
      edges { mode, score, resource { id, clinicalStatus { coding { code } } } }
      first previous next last
    } }`);
    const connection = first.ConditionConnection;
    expect(connection).toMatchObject({ count: 2, offset: 0, pagesize: 1, previous: null });
    expect(connection.edges).toEqual([{ mode: 'match', score: null, resource: { id: 'example-1', clinicalStatus: { coding: [{ code: 'active' }] } } }]);
    const next = await ok('query($c: String) { ConditionConnection (_cursor : $c) { count offset pagesize edges { resource { id } } first previous next last } }', { c: connection.next });
    expect(next.ConditionConnection.edges).toEqual([{ resource: { id: 'example-2' } }]);
  });

  it('lists reverse references with _reference: patient written unquoted, and quoted too', async () => {
    for (const reference of ['patient', '"patient"', 'subject']) {
      const data = await ok(`{ Patient(id: example) { name { family, given } ConditionList(_reference: ${reference}) { id, clinicalStatus { coding { code } } } } }`);
      expect(data.Patient.ConditionList.map((c: { id: string }) => c.id).sort()).toEqual(['example-0', 'example-1', 'example-2']);
    }
    const connection = await ok('{ Patient(id: example) { ConditionList(_reference: patient, clinical_status: active) { id } } }');
    expect(connection.Patient.ConditionList).toHaveLength(2);
  });

  it('flattens with the data directives', async () => {
    const data = await ok('{ Patient(id: example) { identifier @flatten { system @singleton value @singleton } active name @flatten @first { text given family @singleton } } }');
    expect(data.Patient).toEqual({ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '12345', active: true, given: ['Peter', 'James'], family: 'Chalmers' });
  });

  it('creates, updates and deletes with res, as the mutations section writes them', async () => {
    const created = await ok('mutation { PatientCreate(res: { resourceType: "Patient", name: [{ family: "Chalmers", given: ["Peter"] }] }) { id meta { versionId } } }');
    const id = created.PatientCreate.id;
    const updated = await ok(`mutation { PatientUpdate(id: "${id}", res: { name: [{ family: "Chalmers", given: ["Jim"] }], active: true }) { active meta { versionId } } }`);
    expect(updated.PatientUpdate).toEqual({ active: true, meta: { versionId: '2' } });
    const deleted = await ok(`mutation { PatientDelete(id: "${id}") { id versionId } }`);
    expect(deleted.PatientDelete).toEqual({ id, versionId: '3' });
  });
});

describe('query forms HAPI FHIR and Medplum document', () => {
  it('Medplum: read by quoted id, search with snake_case parameters, _count and _sort on _lastUpdated', async () => {
    const data = await ok(`{
      Patient(id: "example") { resourceType id name { text } address { text } }
      PatientList(name: "Peter", address_city: "Philadelphia") { id }
      recent: PatientList(_count: 2, _sort: "-_lastUpdated") { id meta { lastUpdated } }
    }`);
    expect(data.Patient).toMatchObject({ resourceType: 'Patient', id: 'example', address: [{ text: '534 Erewhon St' }] });
    expect(data.PatientList).toEqual([{ id: 'example' }]);
    expect(data.recent).toHaveLength(2);
    expect(data.recent[0].meta.lastUpdated >= data.recent[1].meta.lastUpdated).toBe(true);
  });

  it('Medplum: reverse references with _reference written unquoted, and the Connection API with count', async () => {
    const data = await ok(`{
      Patient(id: "pat-taolin-township-001") {
        EncounterList(_reference: patient) { id }
        ObservationList(_reference: subject, _count: 3) { id }
      }
      PatientConnection(name: "王") { count edges { resource { resourceType id name { given family } } } }
    }`);
    expect(data.Patient.EncounterList.length).toBeGreaterThan(0);
    expect(data.Patient.ObservationList).toHaveLength(3);
    expect(data.PatientConnection.count).toBeGreaterThan(0);
    expect(data.PatientConnection.edges[0].resource.resourceType).toBe('Patient');
  });

  it('HAPI: variables of type String for search values and _reference, POSTed as JSON and sent by GET', async () => {
    const query = 'query($ref: String!, $code: String) { Patient(id: "pat-taolin-township-001") { ObservationList(_reference: $ref, code: $code) { id } } }';
    const posted = await ok(query, { ref: 'subject', code: 'http://loinc.org|4548-4' });
    expect(posted.Patient.ObservationList.length).toBeGreaterThan(0);
    const get = await fetch(`${hub.url}/graphql?query=${encodeURIComponent('{ Patient(id: example) { ConditionList(_reference: patient) { id } } }')}`);
    const body = (await get.json()) as { data: { Patient: { ConditionList: unknown[] } } };
    expect(body.data.Patient.ConditionList).toHaveLength(3);
  });
});

describe('primitive extensions on write (FHIR JSON _field siblings)', () => {
  const resident = {
    resourceType: 'Patient',
    name: [{ family: '张', given: ['三', null], _given: [null, { extension: [{ url: 'http://example.org/ext/pinyin', valueString: 'San' }] }] }],
    birthDate: '1980-02-03',
    _birthDate: { extension: [{ ...birthTime, valueDateTime: '1980-02-03T06:30:00+08:00' }] },
    gender: 'female',
    _gender: { extension: [{ url: 'http://example.org/ext/note', valueString: '本人自述' }] },
    address: [{ text: '东湖县新民村2号', postalCode: '414000', _postalCode: { id: 'pc', extension: [{ url: 'http://example.org/ext/verified', valueBoolean: true }] } }],
  };

  it('creates and updates through the typed inputs and reads them back unchanged, also through output fields', async () => {
    const created = await ok('mutation($res: PatientInput!) { PatientCreate(res: $res) { id json } }', { res: resident });
    const { id, meta, ...stored } = created.PatientCreate.json;
    expect(stored).toEqual(resident);
    expect(meta.versionId).toBe('1');

    const read = await ok(`{ Patient(id: "${id}") {
      birthDate _birthDate { extension { url valueDateTime } }
      _gender { extension { valueString } }
      name { given _given { extension { valueString } } }
      address { postalCode _postalCode { id extension { valueBoolean } } }
    } }`);
    expect(read.Patient).toEqual({
      birthDate: '1980-02-03',
      _birthDate: { extension: [{ url: birthTime.url, valueDateTime: '1980-02-03T06:30:00+08:00' }] },
      _gender: { extension: [{ valueString: '本人自述' }] },
      name: [{ given: ['三', null], _given: [null, { extension: [{ valueString: 'San' }] }] }],
      address: [{ postalCode: '414000', _postalCode: { id: 'pc', extension: [{ valueBoolean: true }] } }],
    });

    const changed = { ...resident, _birthDate: { extension: [{ ...birthTime, valueDateTime: '1980-02-03T07:00:00+08:00' }] } };
    const updated = await ok('mutation($id: ID!, $res: PatientInput!) { PatientUpdate(id: $id, res: $res, ifMatch: "1") { json } }', { id, res: changed });
    expect(updated.PatientUpdate.json._birthDate).toEqual(changed._birthDate);
    expect(updated.PatientUpdate.json.name).toEqual(resident.name);
  });

  it('drops a null a GraphQL client sends in a repeating primitive, but keeps it beside _<name> for the validator to judge', async () => {
    const before = (await ok('{ PatientConnection(family: "李") { count } }')).PatientConnection.count;
    const result = await graphql(hub.url, 'mutation($res: PatientInput!) { PatientCreate(res: $res) { id } }', { res: { resourceType: 'Patient', name: [{ family: '李', given: ['四', null] }] } });
    // Without a _given beside it the null is dropped (GraphQL clients send nulls for absent values)...
    expect(result.errors).toBeUndefined();
    const bad = await graphql(hub.url, 'mutation($res: PatientInput!) { PatientCreate(res: $res) { id } }', { res: { resourceType: 'Patient', name: [{ family: '李', given: ['四', null], _given: [null, null] }] } });
    // ...with one, it stays and the validator judges the pair: a null beside a null is refused, nothing written.
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await ok('{ PatientConnection(family: "李") { count } }')).PatientConnection.count).toBe(before + 1);
  });
});

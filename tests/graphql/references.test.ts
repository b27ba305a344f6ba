import type { DiagnosticReport, Observation, Organization, Patient, Practitioner, Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { findsDuring } from '../support/commands.ts';
import { freshDatabase, graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
const patients = 50;
beforeAll(async () => {
  database = await freshDatabase('references');
  const organizations: Organization[] = [0, 1, 2, 3, 4].map((n) => ({ resourceType: 'Organization', id: `org-${n}`, name: `第${n + 1}卫生院` }));
  const practitioners: Practitioner[] = [0, 1, 2].map((n) => ({ resourceType: 'Practitioner', id: `pra-${n}`, name: [{ text: `医生${n + 1}` }] }));
  const people: Patient[] = Array.from({ length: patients }, (_, n) => ({ resourceType: 'Patient', id: `p-${String(n).padStart(3, '0')}`, name: [{ text: `居民${n}` }] }));
  await database.store.putMany([...organizations, ...practitioners, ...people]);
  await addObservationsAndReports(2, 0);
  hub = await startTestHub(database.name);
  await hub.indexesReady;
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

/** Gives every patient `count` more observations and one more report over them. */
async function addObservationsAndReports(count: number, round: number): Promise<void> {
  const resources: Resource[] = [];
  for (let n = 0; n < patients; n++) {
    const subject = { reference: `Patient/p-${String(n).padStart(3, '0')}` };
    const observations: Observation[] = Array.from({ length: count }, (_, k) => ({
      resourceType: 'Observation',
      id: `o-${n}-${round}-${k}`,
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] },
      subject,
      performer: [{ reference: `Organization/org-${(n + k) % 5}` }],
      valueQuantity: { value: 120 + k, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
    }));
    const report: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      id: `r-${n}-${round}`,
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '58410-2' }] },
      subject,
      performer: [{ reference: `Organization/org-${n % 5}` }],
      resultsInterpreter: [{ reference: `Practitioner/pra-${n % 3}` }],
      result: observations.map((observation) => ({ reference: `Observation/${observation.id}` })),
    };
    resources.push(...observations, report);
  }
  await database.store.putMany(resources);
}

const summaryQuery = `{
  PatientList(_count: 50) {
    id
    ObservationList(_reference: "subject") { id performer { resource { ... on Organization { name } } } }
    DiagnosticReportList(_reference: "subject") {
      id
      result { resource { ... on Observation { id valueQuantity { value } } } }
      performer { resource { ... on Organization { name } } }
      resultsInterpreter { resource { ... on Practitioner { name { text } } } }
    }
  }
}`;

/**
 * The database work of a query: searches (finds that are not a read by id), and reads by id. On FerretDB a
 * batch of up to 64 ids is read with one `{_id}` equality per id, sent together (its `$in` decodes the whole
 * collection); on MongoDB it is one `$in`. Either way every id is read once per request, not once per parent.
 */
async function roundTrips(query: string): Promise<{ searches: number; idReads: number; distinctIds: number; data: any }> {
  let data: any;
  const finds = await findsDuring(hub, async () => {
    const result = await graphql(hub.url, query);
    expect(result.errors).toBeUndefined();
    data = result.data;
  });
  const byId = finds.filter((find) => Object.keys(find.filter).length === 1 && '_id' in find.filter);
  const ids = byId.flatMap((find) => {
    const condition = find.filter._id as string | { $in: string[] };
    return typeof condition === 'string' ? [`${find.collection}/${condition}`] : condition.$in.map((id) => `${find.collection}/${id}`);
  });
  return { searches: finds.length - byId.length, idReads: ids.length, distinctIds: new Set(ids).size, data };
}

describe('references both ways', () => {
  it('resolves forward and reverse references of 50 patients with a number of round trips that does not grow with the data', async () => {
    const small = await roundTrips(summaryQuery);
    expect(small.data.PatientList).toHaveLength(50);
    const first = small.data.PatientList[0];
    expect(first.ObservationList).toHaveLength(2);
    expect(first.DiagnosticReportList[0].result.map((r: any) => r.resource.id).sort()).toEqual(first.ObservationList.map((o: any) => o.id).sort());
    expect(first.DiagnosticReportList[0].performer[0].resource.name).toBe('第1卫生院');
    expect(first.DiagnosticReportList[0].resultsInterpreter[0].resource.name[0].text).toBe('医生1');

    await addObservationsAndReports(6, 1); // four times as many observations, twice the reports
    const large = await roundTrips(summaryQuery);
    expect(large.data.PatientList[0].ObservationList).toHaveLength(8);
    expect(large.data.PatientList[0].DiagnosticReportList).toHaveLength(2);
    console.log(`searches for 50 patients: ${small.searches} with 100 observations, ${large.searches} with 400; ids read ${small.idReads} and ${large.idReads}`);
    expect(large.searches).toBe(small.searches);
    // Query depth bounds it: patients, observations, reports (the targets of references are read by id). On
    // FerretDB a batch of reverse references is one equality query per parent, sent together (its `$in`
    // decodes the whole collection); on MongoDB one `$in` query.
    expect(small.searches).toBeLessThanOrEqual(1 + 2 * patients);
    // Each referenced resource is read once per request, however many parents point at it.
    expect(small.idReads).toBe(small.distinctIds);
    expect(large.idReads).toBe(large.distinctIds);
  });

  it('applies search arguments, _count and _sort per parent in reverse references', async () => {
    const result = await graphql(hub.url, `{
      Patient(id: "p-001") {
        latest: ObservationList(_reference: "patient", _count: 3, _sort: "-_id") { id }
        fromOrg: ObservationList(_reference: "subject", performer: "Organization/org-2") { id performer { reference } }
      }
      Organization(id: "org-0") { reports: DiagnosticReportList(_reference: "performer", _count: 100) { id } }
    }`);
    expect(result.errors).toBeUndefined();
    expect(result.data?.Patient.latest.map((o: any) => o.id)).toEqual(['o-1-1-5', 'o-1-1-4', 'o-1-1-3']);
    expect(result.data?.Patient.fromOrg.every((o: any) => o.performer[0].reference === 'Organization/org-2')).toBe(true);
    expect(result.data?.Patient.fromOrg.length).toBeGreaterThan(0);
    // Patients 0, 5, 10, ... have reports performed by org-0: 10 patients x 2 rounds.
    expect(result.data?.Organization.reports).toHaveLength(20);
  });

  it('refuses a _reference that does not point at the type, naming the ones that do', async () => {
    const result = await graphql(hub.url, `{ Patient(id: "p-001") { ObservationList(_reference: "performer") { id } } }`);
    // Observation.performer can point at a Patient, so this one is allowed; "encounter" cannot.
    expect(result.errors).toBeUndefined();
    const wrong = await graphql(hub.url, `{ Patient(id: "p-001") { ObservationList(_reference: "encounter") { id } } }`);
    expect(wrong.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(wrong.errors?.[0]?.message).toMatch(/subject/);
  });

  it('Reference.resource with optional and type', async () => {
    await database.store.create<Observation>({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/missing' }, performer: [{ reference: 'Organization/org-1' }] });
    const result = await graphql(hub.url, `{
      ObservationList(subject: "Patient/missing") {
        subject { optional: resource(optional: true) { ... on Patient { id } } }
        performer { asPractitioner: resource(type: "Practitioner") { ... on Practitioner { id } } asOrg: resource(type: "Organization") { ... on Organization { id } } }
      }
    }`);
    expect(result.data?.ObservationList).toEqual([{ subject: { optional: null }, performer: [{ asPractitioner: null, asOrg: { id: 'org-1' } }] }]);
    const strict = await graphql(hub.url, `{ ObservationList(subject: "Patient/missing") { subject { resource { ... on Patient { id } } } } }`);
    expect(strict.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

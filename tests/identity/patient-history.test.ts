/**
 * person(...), patientHistory(...), possibleDuplicates and link/unlink through GraphQL on the demo consortium.
 * Expected entries are derived from fixtures/demo-consortium.json here, by reading the resources.
 */
import type { Observation, Patient, Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { demoResources } from '../../src/demo/seed.ts';
import { demoSystems } from '../../src/demo/systems.ts';
import { demoHub, graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  ({ database, hub } = await demoHub('history'));
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const resources = demoResources();
const patients = resources.filter((r): r is Patient => r.resourceType === 'Patient');
const nationalIdOf = (patient: Patient): string | undefined => patient.identifier?.find((i) => i.system === demoSystems.nationalId)?.value;
const historyTypes = ['Encounter', 'Observation', 'DiagnosticReport', 'ServiceRequest', 'Condition', 'MedicationRequest'];
const subjectOf = (resource: Resource): string | undefined => (resource as { subject?: { reference?: string } }).subject?.reference;
function dateOf(resource: Resource): string {
  const r = resource as { period?: { start: string }; effectiveDateTime?: string; authoredOn?: string };
  return new Date(r.period?.start ?? r.effectiveDateTime ?? r.authoredOn ?? 0).toISOString();
}
/** The history of the records carrying a national ID, read from the fixture. */
function expectedHistory(nationalId: string, filter: (resource: Resource) => boolean = () => true): Resource[] {
  const refs = new Set(patients.filter((p) => nationalIdOf(p) === nationalId).map((p) => `Patient/${p.id}`));
  return resources.filter((r) => historyTypes.includes(r.resourceType) && refs.has(subjectOf(r) ?? '') && filter(r));
}

const firstResident = '43062120021114011X';
const historyQuery = `query($identifier: String, $patient: ID, $types: [String!], $from: String, $to: String, $organization: String, $code: String, $first: Int, $after: String) {
  patientHistory(identifier: $identifier, patient: $patient, types: $types, from: $from, to: $to, organization: $organization, code: $code, first: $first, after: $after) {
    person { id records { id } }
    entries { date type display status referralStatus source { reference name alias level } reference }
    next
  }
}`;

interface Entry { date: string; type: string; display: string; status: string | null; referralStatus: string | null; source: { reference: string; name: string; alias: string; level: string } | null; reference: string }

async function allPages(variables: Record<string, unknown>, pageSize: number): Promise<Entry[]> {
  const entries: Entry[] = [];
  let after: string | null = null;
  for (let page = 0; page < 100; page++) {
    const result = await graphql<{ patientHistory: { entries: Entry[]; next: string | null } }>(hub.url, historyQuery, { ...variables, first: pageSize, after });
    expect(result.errors).toBeUndefined();
    const history: { entries: Entry[]; next: string | null } = result.data!.patientHistory;
    expect(history.entries.length).toBeLessThanOrEqual(pageSize);
    entries.push(...history.entries);
    after = history.next;
    if (!after) return entries;
  }
  throw new Error('paging did not end');
}

describe('person', () => {
  it('finds a person by national ID or any member record number, with records, organisations and identifiers', async () => {
    const records = patients.filter((p) => nationalIdOf(p) === firstResident);
    expect(records.length).toBe(3);
    const mrn = records[1]!.identifier!.find((i) => i.system !== demoSystems.nationalId)!;
    const query = `query($identifier: String) { person(identifier: $identifier) { id nationalId records { id } organizations { name alias } identifiers { system value } } }`;
    const byId = await graphql(hub.url, query, { identifier: firstResident });
    const byMrn = await graphql(hub.url, query, { identifier: `${mrn.system}|${mrn.value}` });
    expect(byId.errors).toBeUndefined();
    expect(byMrn.data).toEqual(byId.data);
    const person = byId.data!.person;
    expect(person.id).toMatch(/^psn-[0-9a-f]{24}$/);
    expect(person.id).not.toContain(firstResident);
    expect(person.nationalId).toBe(firstResident);
    expect(person.records.map((r: { id: string }) => r.id).sort()).toEqual(records.map((r) => r.id).sort());
    expect(person.organizations.map((o: { name: string }) => o.name).sort()).toEqual(['东湖县人民医院', '东湖县桃林镇卫生院', '江南省人民医院'].sort());
    expect(person.identifiers).toHaveLength(4);
    const missing = await graphql(hub.url, query, { identifier: `${mrn.system}|NOPE` });
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('links the resident whose records arrived before the record carrying the ID, at four members', async () => {
    // The generator moves the fourth resident's four records to the end of the Bundle.
    const late = resources.slice(-4) as Patient[];
    expect(late.every((p) => p.resourceType === 'Patient' && nationalIdOf(p) === nationalIdOf(late[0]!))).toBe(true);
    const ids = resources.map((r) => r.id);
    // In the fixture these records come after their own encounters and results.
    const firstEncounter = resources.findIndex((r) => r.resourceType === 'Encounter' && subjectOf(r) === `Patient/${late[0]!.id}`);
    expect(ids.indexOf(late[0]!.id)).toBeGreaterThan(firstEncounter);
    const result = await graphql(hub.url, `{ person(patient: "${late[0]!.id}") { records { id } organizations { name } } }`);
    expect(result.data!.person.records).toHaveLength(4);
    expect(result.data!.person.organizations).toHaveLength(4);
  });
});

describe('patientHistory', () => {
  it('is one newest-first timeline over every linked record, each entry with its source institution', async () => {
    const expected = expectedHistory(firstResident);
    expect(expected.length).toBeGreaterThan(20);
    const entries = await allPages({ identifier: firstResident }, 7);
    expect(entries.map((e) => `${e.type}/${e.reference.split('/')[1]}`).sort()).toEqual(expected.map((r) => `${r.resourceType}/${r.id}`).sort());
    expect(new Set(entries.map((e) => e.reference.split('/')[1])).size).toBe(entries.length);
    for (let i = 1; i < entries.length; i++) expect(entries[i - 1]!.date >= entries[i]!.date).toBe(true);
    const byId = new Map(expected.map((r) => [`${r.resourceType}/${r.id}`, r]));
    for (const entry of entries) {
      expect(entry.date).toBe(dateOf(byId.get(`${entry.type}/${entry.reference.split('/')[1]}`)!));
      expect(entry.source?.name).toMatch(/[\u4e00-\u9fff]/);
      expect(entry.source?.alias).toMatch(/^[A-Z]/);
      expect(['provincial', 'county', 'township', 'community']).toContain(entry.source?.level);
      expect(entry.display.length).toBeGreaterThan(0);
    }
    // The referral of this resident (ref-001, taolin -> donghu, accepted) carries its Task status and comes from taolin.
    const referral = entries.find((e) => e.type === 'ServiceRequest')!;
    expect(referral).toMatchObject({ referralStatus: 'accepted / ACCEPTED', source: { name: '东湖县桃林镇卫生院' } });
    const observation = entries.find((e) => e.type === 'Observation')!;
    const fixtureObservation = byId.get(`Observation/${observation.reference.split('/')[1]}`) as Observation;
    expect(observation.display).toBe(`${fixtureObservation.code.text} ${fixtureObservation.valueQuantity!.value} ${fixtureObservation.valueQuantity!.unit}`);
  });

  it('filters by types, date range, organisation and code', async () => {
    const hb = await allPages({ identifier: firstResident, types: ['Observation'], code: 'http://loinc.org|718-7' }, 50);
    const expectedHb = expectedHistory(firstResident, (r) => r.resourceType === 'Observation' && (r as Observation).code.coding?.[0]?.code === '718-7');
    expect(hb.map((e) => e.reference.split('/')[1]).sort()).toEqual(expectedHb.map((r) => r.id).sort());

    const in2025 = await allPages({ identifier: firstResident, from: '2025', to: '2025-12-31' }, 50);
    const expected2025 = expectedHistory(firstResident, (r) => dateOf(r) >= '2025-01-01T00:00:00.000Z' && dateOf(r) <= '2025-12-31T23:59:59.999Z');
    expect(in2025.map((e) => e.reference.split('/')[1]).sort()).toEqual(expected2025.map((r) => r.id).sort());

    const atCounty = await allPages({ identifier: firstResident, organization: 'org-donghu-county' }, 50);
    const countyRecord = patients.find((p) => nationalIdOf(p) === firstResident && p.managingOrganization?.reference === 'Organization/org-donghu-county')!;
    // Encounters, results and reports of the county record name the county; the referral to the county was requested at taolin.
    const expectedCounty = expectedHistory(firstResident, (r) => subjectOf(r) === `Patient/${countyRecord.id}`);
    expect(atCounty.map((e) => e.reference.split('/')[1]).sort()).toEqual(expectedCounty.map((r) => r.id).sort());
    expect(atCounty.every((e) => e.source?.name === '东湖县人民医院')).toBe(true);

    const bad = await graphql(hub.url, historyQuery, { identifier: firstResident, types: ['Claim'] });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const badDate = await graphql(hub.url, historyQuery, { identifier: firstResident, from: 'yesterday' });
    expect(badDate.errors?.[0]?.message).toMatch(/from/);
  });

  it('pages correctly when records arrive between pages, and refuses foreign or forged cursors', async () => {
    const record = patients.find((p) => nationalIdOf(p) === firstResident)!;
    const first = await graphql(hub.url, historyQuery, { identifier: firstResident, first: 5 });
    const seen = first.data!.patientHistory.entries as Entry[];
    const observation = (id: string, when: string): Observation => ({
      resourceType: 'Observation',
      id,
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '718-7' }], text: '血红蛋白' },
      subject: { reference: `Patient/${record.id}` },
      effectiveDateTime: when,
      valueQuantity: { value: 131, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
    });
    // One newer than every entry (belongs before page 1, so later pages must not show it), one older than all.
    await database.store.create(observation('late-newest', '2026-11-23T10:00:00+08:00'), { id: 'late-newest' });
    await database.store.create(observation('late-oldest', '2019-01-01T10:00:00+08:00'), { id: 'late-oldest' });
    const remaining: Entry[] = [];
    let after = first.data!.patientHistory.next as string | null;
    while (after) {
      const page = await graphql(hub.url, historyQuery, { identifier: firstResident, first: 5, after });
      expect(page.errors).toBeUndefined();
      remaining.push(...page.data!.patientHistory.entries);
      after = page.data!.patientHistory.next;
    }
    const ids = [...seen, ...remaining].map((e) => e.reference.split('/')[1]);
    expect(ids).not.toContain('late-newest');
    expect(ids[ids.length - 1]).toBe('late-oldest');
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(expectedHistory(firstResident).length + 1);

    const other = await graphql(hub.url, historyQuery, { identifier: firstResident, types: ['Encounter'], after: first.data!.patientHistory.next });
    expect(other.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const forged = await graphql(hub.url, historyQuery, { identifier: firstResident, after: Buffer.from('{"p":{"$gt":""}}').toString('base64url') });
    expect(forged.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    await database.store.delete('Observation', 'late-newest');
    await database.store.delete('Observation', 'late-oldest');
  });

  it('costs the same number of database round trips per page whatever the record count', async () => {
    const single = patients.find((p) => !nationalIdOf(p) || patients.filter((q) => nationalIdOf(q) === nationalIdOf(p)).length === 1)!;
    const roundTrips = async (variables: Record<string, unknown>): Promise<number> => {
      const before = hub.database.commandsSent();
      const result = await graphql(hub.url, historyQuery, { ...variables, first: 20 });
      expect(result.errors).toBeUndefined();
      return hub.database.commandsSent() - before;
    };
    const small = await roundTrips({ patient: single.id });
    const three = await roundTrips({ identifier: firstResident });
    const record = patients.find((p) => nationalIdOf(p) === firstResident)!;
    const many: Observation[] = Array.from({ length: 150 }, (_, i) => ({
      resourceType: 'Observation',
      id: `bulk-${i}`,
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
      subject: { reference: `Patient/${record.id}` },
      effectiveDateTime: `2023-${String(1 + (i % 12)).padStart(2, '0')}-10`,
      valueQuantity: { value: 5, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    }));
    await database.store.putMany(many);
    const grown = await roundTrips({ identifier: firstResident });
    expect(three).toBe(grown);
    // Person (2), records (3), six entry types, Tasks and organisations; on FerretDB an entry type of a person
    // with several records is one equality query per record (its `$in` decodes the whole collection).
    expect(grown).toBeLessThanOrEqual(small + 2 + 6 * 2);
    expect(grown).toBeLessThanOrEqual(14 + 6 * 2);
  });
});

describe('possible duplicates and manual links over GraphQL', () => {
  it('lists the demo pairs, links one with a reason and unlinks it again', async () => {
    const duplicates = await graphql(hub.url, `{ possibleDuplicates { reason records { id name { text } } persons } }`);
    expect(duplicates.errors).toBeUndefined();
    const list = duplicates.data!.possibleDuplicates as { reason: string; records: { id: string; name: { text: string }[] }[] }[];
    const zhao = list.find((pair) => pair.records[0]!.name[0]!.text === '赵桂兰');
    const sun = list.find((pair) => pair.records[0]!.name[0]!.text === '孙立新');
    expect(zhao?.reason).toBe('SAME_NAME_BIRTH_DATE_SEX');
    expect(sun?.reason).toBe('NATIONAL_ID_ONE_DIGIT_APART');
    const [a, b] = zhao!.records.map((r) => r.id) as [string, string];

    const link = `mutation($p: ID!, $to: ID, $reason: String!) { linkPatientRecord(patient: $p, toPatient: $to, reason: $reason) { id records { id } linkEvents { action reason by } } }`;
    const linked = await graphql(hub.url, link, { p: b, to: a, reason: '电话随访核实为同一人' });
    expect(linked.errors).toBeUndefined();
    expect(linked.data!.linkPatientRecord.records.map((r: { id: string }) => r.id).sort()).toEqual([a, b].sort());
    expect(linked.data!.linkPatientRecord.linkEvents).toEqual([{ action: 'link', reason: '电话随访核实为同一人', by: 'auth-off' }]);
    const history = await allPages({ patient: a }, 20);
    expect(new Set(history.map((e) => e.source?.name))).toEqual(new Set(['东湖县长塘镇卫生院', '西山县人民医院']));

    const unlink = await graphql(hub.url, `mutation($p: ID!) { unlinkPatientRecord(patient: $p, reason: "核实有误") { records { id } } }`, { p: b });
    expect(unlink.data!.unlinkPatientRecord.records).toEqual([{ id: b }]);
    const noReason = await graphql(hub.url, link, { p: b, to: a, reason: '' });
    expect(noReason.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

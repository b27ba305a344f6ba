import ucum from '@lhncbc/ucum-lhc';
import type { DiagnosticReport, Observation, Organization, Patient, ServiceRequest, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoResources, seedDemoConsortium } from '../../src/demo/seed.ts';
import { demoSystems } from '../../src/demo/systems.ts';
import { checkNationalId } from '../../src/identity/national-id.ts';
import { freshDatabase, type TestDatabase } from '../support/hub.ts';

const resources = demoResources();
const ofType = <T>(type: string): T[] => resources.filter((resource) => resource.resourceType === type) as T[];
const organizations = ofType<Organization>('Organization');
const patients = ofType<Patient>('Patient');
const nationalIdOf = (patient: Patient): string | undefined => patient.identifier?.find((i) => i.system === demoSystems.nationalId)?.value;
const levelOf = (organization: Organization): string | undefined =>
  organization.type?.flatMap((type) => type.coding ?? []).find((coding) => coding.system === demoSystems.memberLevel)?.code;

describe('the demo consortium fixture', () => {
  it('has one provincial hospital, two county hospitals, three township centres and one community centre, linked by partOf', () => {
    const levels = organizations.map(levelOf).sort();
    expect(levels).toEqual(['community', 'county', 'county', 'provincial', 'township', 'township', 'township']);
    const byId = new Map(organizations.map((organization) => [`Organization/${organization.id}`, organization]));
    for (const organization of organizations) {
      expect(organization.name).toMatch(/[\u4e00-\u9fff]/);
      expect(organization.alias?.[0]).toMatch(/^[A-Za-z]/);
      if (levelOf(organization) === 'provincial') expect(organization.partOf).toBeUndefined();
      else {
        const parent = byId.get(organization.partOf?.reference ?? '');
        expect(parent).toBeDefined();
        const rank = { provincial: 0, county: 1, township: 2, community: 2 } as Record<string, number>;
        expect(rank[levelOf(parent!)!]!).toBeLessThan(rank[levelOf(organization)!]!);
      }
    }
  });

  it('has at least 30 residents with Chinese names and valid national IDs, several treated at three or more members', () => {
    const recordsByResident = new Map<string, Patient[]>();
    for (const patient of patients) {
      const id = nationalIdOf(patient);
      // The identity cases (a possible duplicate without an ID) are checked in tests/identity.
      if (!id) continue;
      expect(checkNationalId(id)).toMatchObject({ valid: true, birthDate: patient.birthDate, sex: patient.gender });
      expect(patient.name?.[0]?.text).toMatch(/^[\u4e00-\u9fff]{2,4}$/);
      recordsByResident.set(id, [...(recordsByResident.get(id) ?? []), patient]);
    }
    expect(recordsByResident.size).toBeGreaterThanOrEqual(30);
    const multiMember = [...recordsByResident.values()].filter((records) => new Set(records.map((r) => r.managingOrganization?.reference)).size >= 3);
    expect(multiMember.length).toBeGreaterThanOrEqual(5);
    for (const records of recordsByResident.values()) {
      // Each member that treated the resident has its own record number system.
      const systems = records.map((record) => record.identifier?.find((i) => i.type?.coding?.[0]?.code === 'MR')?.system);
      expect(new Set(systems).size).toBe(records.length);
    }
  });

  it('has LOINC-coded lab results with valid UCUM units, reports over them, and referrals between members', () => {
    const observations = ofType<Observation>('Observation');
    const utils = ucum.UcumLhcUtils.getInstance();
    expect(observations.length).toBeGreaterThan(100);
    for (const observation of observations) {
      expect(observation.code.coding?.[0]?.system).toBe('http://loinc.org');
      expect(observation.valueQuantity?.system).toBe('http://unitsofmeasure.org');
      expect(utils.validateUnitString(observation.valueQuantity?.code ?? '').status).toBe('valid');
    }
    const observationIds = new Set(observations.map((o) => `Observation/${o.id}`));
    for (const report of ofType<DiagnosticReport>('DiagnosticReport')) {
      for (const result of report.result ?? []) expect(observationIds.has(result.reference!)).toBe(true);
    }
    const requests = ofType<ServiceRequest>('ServiceRequest');
    const tasks = ofType<Task>('Task');
    expect(requests.length).toBeGreaterThanOrEqual(3);
    const types = requests.map((request) => request.category?.flatMap((c) => c.coding ?? []).find((c) => c.system === demoSystems.referralType)?.code);
    expect(new Set(types)).toEqual(new Set(['UP', 'DOWN', 'GREEN_CHANNEL', 'PRE_ADMISSION']));
    for (const task of tasks) {
      expect(requests.some((request) => `ServiceRequest/${request.id}` === task.focus?.reference)).toBe(true);
      expect(task.owner?.reference).not.toBe(task.requester?.reference);
    }
  });
});

describe('npm run seed (seedDemoConsortium)', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await freshDatabase('seed');
  });
  afterAll(async () => database.drop());

  it('loads every resource, and a second run changes nothing', async () => {
    const first = await seedDemoConsortium(database.store);
    expect(first).toEqual({ created: resources.length, updated: 0, unchanged: 0 });
    const historyCount = async (): Promise<number> => {
      let total = 0;
      for (const type of new Set(resources.map((r) => r.resourceType))) total += await database.connection.db.collection(`${type}_history`).countDocuments({});
      return total;
    };
    const versionsAfterFirst = await historyCount();
    expect(versionsAfterFirst).toBe(resources.length);
    const second = await seedDemoConsortium(database.store);
    expect(second).toEqual({ created: 0, updated: 0, unchanged: resources.length });
    expect(await historyCount()).toBe(versionsAfterFirst);
    const stored = await database.store.read<Patient>('Patient', patients[0]!.id!);
    expect(stored.name?.[0]?.text).toBe(patients[0]!.name?.[0]?.text);
  });

  it('puts a deleted demo resource back as its next version, keeping the deleted ones in history', async () => {
    const id = patients[1]!.id!;
    await database.store.delete('Patient', id);
    const summary = await seedDemoConsortium(database.store);
    expect(summary).toEqual({ created: 1, updated: 0, unchanged: resources.length - 1 });
    const history = await database.store.history('Patient', id);
    expect(history.map((version) => [version.versionId, version.deleted])).toEqual([
      ['3', false],
      ['2', true],
      ['1', false],
    ]);
    expect((await database.store.read<Patient>('Patient', id)).meta?.versionId).toBe('3');
  });

  it('with onlyIfEmpty (the embedded first start) does nothing once members exist', async () => {
    expect(await seedDemoConsortium(database.store, { onlyIfEmpty: true })).toBeUndefined();
  });
});

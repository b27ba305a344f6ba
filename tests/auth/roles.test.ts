/**
 * The role matrix against the real server: a member client (桃林镇卫生院's HIS), another member's client
 * (东湖县人民医院's HIS), the administrator, a resident token (王伟, via the county health app) and no token,
 * each against reads, searches, writes, identity administration and the audit trail; allowed and refused.
 */
import type { Observation } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import type { ClientRegistry } from '../../src/auth/clients.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';
import { authenticatedDemoHub, token, tokenResponse } from '../support/auth.ts';

let database: TestDatabase;
let hub: Hub;
let registry: ClientRegistry;
const tokens: Record<string, string | undefined> = {};
// From fixtures/demo-consortium.json: 王伟 (43062120021114011X) has records pat-taolin-township-001,
// pat-donghu-county-001 and pat-jiangnan-provincial-001; pat-taolin-township-002 is another resident.
const ownRecord = 'pat-taolin-township-001';
const otherResidentRecord = 'pat-taolin-township-002';

beforeAll(async () => {
  ({ database, hub, registry } = await authenticatedDemoHub('roles', { LOG_LEVEL: 'error' }));
  tokens.member = await token(hub.url, 'his-taolin-township');
  tokens.otherMember = await token(hub.url, 'his-donghu-county');
  tokens.admin = await token(hub.url, 'consortium-admin');
  tokens.resident = await token(hub.url, 'county-health-app', { patient_identifier: '43062120021114011X' });
  tokens.none = undefined;
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

type Role = 'member' | 'otherMember' | 'admin' | 'resident' | 'none';
const roles: Role[] = ['member', 'otherMember', 'admin', 'resident', 'none'];
const as = (role: Role, query: string, variables?: Record<string, unknown>) => graphql(hub.url, query, variables, tokens[role]);
const code = (result: Awaited<ReturnType<typeof as>>): string => (result.errors?.[0]?.extensions?.code as string | undefined) ?? (result.status === 200 ? 'OK' : String(result.status));

const observation = (id: string, performer: string, subject = ownRecord): Observation => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '718-7' }], text: '血红蛋白' },
  subject: { reference: `Patient/${subject}` },
  effectiveDateTime: '2026-11-20T09:00:00+08:00',
  performer: [{ reference: `Organization/${performer}` }],
  valueQuantity: { value: 128, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
});
const create = `mutation($res: ObservationInput!) { ObservationCreate(res: $res) { id } }`;
const countObservations = (): Promise<number> => database.connection.db.collection('Observation').countDocuments({});

describe('tokens', () => {
  it('issues tokens only for right credentials, narrows scopes, and binds resident tokens to one person', async () => {
    expect((await tokenResponse(hub.url, 'his-taolin-township', 'wrong-secret-wrong-secret')).status).toBe(401);
    expect((await tokenResponse(hub.url, 'nobody', 'whatever-whatever-whatever')).body.error).toBe('invalid_client');
    const narrowed = await tokenResponse(hub.url, 'his-taolin-township', 'demo-secret-his-taolin-township', { scope: 'system/Observation.rs system/Patient.cruds' });
    expect(narrowed.body.scope).toBe('system/Observation.rs system/Patient.cruds');
    const noResident = await tokenResponse(hub.url, 'county-health-app', 'demo-secret-county-health-app');
    expect(noResident).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const unknownResident = await tokenResponse(hub.url, 'county-health-app', 'demo-secret-county-health-app', { patient_identifier: '110105194912310021' });
    expect(unknownResident.status).toBe(400);
    const memberAsResident = await tokenResponse(hub.url, 'his-taolin-township', 'demo-secret-his-taolin-township', { patient_identifier: '43062120021114011X' });
    expect(memberAsResident.status).toBe(400);

    const observationOnly = narrowed.body.access_token as string;
    expect(code(await graphql(hub.url, `{ ObservationList(_count: 1) { id } }`, undefined, observationOnly))).toBe('OK');
    expect(code(await graphql(hub.url, `{ EncounterList(_count: 1) { id } }`, undefined, observationOnly))).toBe('FORBIDDEN');
    expect(code(await graphql(hub.url, create, { res: observation('scoped-1', 'org-taolin-township') }, observationOnly))).toBe('FORBIDDEN');
  });

  it('refuses every GraphQL request without a token, but serves the playground page and health', async () => {
    const result = await as('none', `{ hubStatus { name } }`);
    expect(result.status).toBe(401);
    expect(code(result)).toBe('UNAUTHENTICATED');
    expect((await fetch(`${hub.url}/graphql`, { headers: { accept: 'text/html' } })).status).toBe(200);
    expect((await fetch(`${hub.url}/health`)).status).toBe(200);
  });
});

describe('role matrix', () => {
  it('reads and searches: members share, the resident sees its own person only', async () => {
    const expected: Record<Role, [string, string, string]> = {
      // [own record of 王伟, another resident's record, search result covers other residents]
      member: ['OK', 'OK', 'yes'],
      otherMember: ['OK', 'OK', 'yes'],
      admin: ['OK', 'OK', 'yes'],
      resident: ['OK', 'NOT_FOUND', 'no'],
      none: ['UNAUTHENTICATED', 'UNAUTHENTICATED', 'no'],
    };
    for (const role of roles) {
      const own = await as(role, `{ Patient(id: "${ownRecord}") { id } }`);
      const other = await as(role, `{ Patient(id: "${otherResidentRecord}") { id } }`);
      const search = await as(role, `{ ObservationList(code: "http://loinc.org|718-7", _count: 200) { subject { reference } } }`);
      const subjects = new Set((search.data?.ObservationList ?? []).map((o: { subject: { reference: string } }) => o.subject.reference));
      const others = [...subjects].some((subject) => !['Patient/pat-taolin-township-001', 'Patient/pat-donghu-county-001', 'Patient/pat-jiangnan-provincial-001'].includes(subject as string));
      expect([code(own), code(other), others ? 'yes' : 'no'], role).toEqual(expected[role]);
    }
  });

  it('writes: a member writes only its own organisation resources, before and after the change', async () => {
    const expected: Record<Role, [string, string]> = {
      // [create attributed to 桃林, create attributed to 东湖]
      member: ['OK', 'FORBIDDEN'],
      otherMember: ['FORBIDDEN', 'OK'],
      admin: ['OK', 'OK'],
      resident: ['FORBIDDEN', 'FORBIDDEN'],
      none: ['UNAUTHENTICATED', 'UNAUTHENTICATED'],
    };
    for (const role of roles) {
      const before = await countObservations();
      const taolin = await as(role, create, { res: observation(`w-${role}-1`, 'org-taolin-township') });
      const donghu = await as(role, create, { res: observation(`w-${role}-2`, 'org-donghu-county', 'pat-donghu-county-001') });
      expect([code(taolin), code(donghu)], role).toEqual(expected[role]);
      const written = [taolin, donghu].filter((result) => code(result) === 'OK').length;
      expect(await countObservations(), role).toBe(before + written);
    }
    // An Observation of 桃林 that 桃林 created: 东湖 may not change or delete it, 桃林 may not hand it to 东湖.
    const created = await as('member', create, { res: observation('w-owned', 'org-taolin-township') });
    const id = created.data!.ObservationCreate.id as string;
    const update = `mutation($id: ID!, $res: ObservationInput!) { ObservationUpdate(id: $id, res: $res) { meta { versionId } } }`;
    expect(code(await as('otherMember', update, { id, res: { ...observation(id, 'org-donghu-county'), id } }))).toBe('FORBIDDEN');
    expect(code(await as('member', update, { id, res: { ...observation(id, 'org-donghu-county'), id } }))).toBe('FORBIDDEN');
    expect(code(await as('otherMember', `mutation { ObservationDelete(id: "${id}") { versionId } }`))).toBe('FORBIDDEN');
    expect(code(await as('member', update, { id, res: { ...observation(id, 'org-taolin-township'), id, status: 'amended' } }))).toBe('OK');
    expect(code(await as('member', `mutation { ObservationDelete(id: "${id}") { versionId } }`))).toBe('OK');
    // Without an organisation named, the patient record decides: 桃林 may write about its own record only.
    const unattributed = { ...observation('w-subject', 'x'), performer: undefined };
    expect(code(await as('member', create, { res: { ...unattributed, id: 'w-subject-1' } }))).toBe('OK');
    expect(code(await as('member', create, { res: { ...unattributed, id: 'w-subject-2', subject: { reference: 'Patient/pat-donghu-county-001' } } }))).toBe('FORBIDDEN');
    // A Bundle naming another organisation in one entry writes nothing.
    const before = await countObservations();
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [observation('b-1', 'org-taolin-township'), observation('b-2', 'org-donghu-county')].map((resource) => ({ resource, request: { method: 'PUT', url: `Observation/${resource.id}` } })) };
    expect(code(await as('member', `mutation($b: JSON!) { importBundle(bundle: $b) { summary { created } } }`, { b: bundle }))).toBe('FORBIDDEN');
    expect(await countObservations()).toBe(before);
  });

  it('identity administration and the audit trail: administrators only (and the resident for its own audit events)', async () => {
    const expected: Record<Role, [string, string, string, string]> = {
      // [possibleDuplicates, linkPatientRecord, patientHistory of 王伟, patientHistory of another resident]
      member: ['FORBIDDEN', 'FORBIDDEN', 'OK', 'OK'],
      otherMember: ['FORBIDDEN', 'FORBIDDEN', 'OK', 'OK'],
      admin: ['OK', 'CONFLICT', 'OK', 'OK'],
      resident: ['FORBIDDEN', 'FORBIDDEN', 'OK', 'NOT_FOUND'],
      none: ['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED'],
    };
    for (const role of roles) {
      const duplicates = await as(role, `{ possibleDuplicates { reason } }`);
      // Linking a record into its own person is a CONFLICT: allowed to try, nothing changes.
      const link = await as(role, `mutation { linkPatientRecord(patient: "${ownRecord}", toPatient: "pat-donghu-county-001", reason: "test") { id } }`);
      const history = await as(role, `{ patientHistory(patient: "${ownRecord}", first: 5) { entries { type } } }`);
      const otherHistory = await as(role, `{ patientHistory(patient: "${otherResidentRecord}", first: 5) { entries { type } } }`);
      expect([code(duplicates), code(link), code(history), code(otherHistory)], role).toEqual(expected[role]);
    }
    await hub.auditTrail.flush();
    const audit = `{ AuditEventList(_count: 500, _sort: "-date") { outcome agent { who { identifier { value } display } } entity { what { reference } } } }`;
    expect(code(await as('member', audit))).toBe('FORBIDDEN');
    const all = await as('admin', audit);
    expect(code(all)).toBe('OK');
    const events = all.data!.AuditEventList as { outcome: string; agent: { who: { identifier?: { value: string } } }[]; entity?: { what?: { reference?: string } }[] }[];
    expect(events.some((event) => event.agent[0]?.who.identifier?.value === 'his-donghu-county' && event.entity?.some((e) => e.what?.reference === `Patient/${ownRecord}`))).toBe(true);
    expect(events.some((event) => event.outcome === '4')).toBe(true);
    const own = await as('resident', `{ AuditEventList(patient: "Patient/${ownRecord}", _count: 500) { entity { what { reference } } agent { who { display } } } }`);
    expect(code(own)).toBe('OK');
    const ownEvents = own.data!.AuditEventList as { entity: { what?: { reference?: string } }[] }[];
    expect(ownEvents.length).toBeGreaterThan(0);
    expect(ownEvents.every((event) => event.entity.some((e) => e.what?.reference === `Patient/${ownRecord}`))).toBe(true);
    const others = await as('resident', `{ AuditEventList(patient: "Patient/${otherResidentRecord}", _count: 500) { id } }`);
    expect(others.data?.AuditEventList ?? []).toEqual([]);
    expect(code(await as('admin', `mutation { AuditEventDelete(id: "x") { versionId } }`))).not.toBe('OK');
  });

  it('refuses the tokens of a revoked client from the next request on', async () => {
    const before = await token(hub.url, 'his-chengnan-community');
    expect(code(await graphql(hub.url, `{ hubStatus { name } }`, undefined, before))).toBe('OK');
    await registry.revoke('his-chengnan-community');
    expect(code(await graphql(hub.url, `{ hubStatus { name } }`, undefined, before))).toBe('UNAUTHENTICATED');
    expect((await tokenResponse(hub.url, 'his-chengnan-community', 'demo-secret-his-chengnan-community')).status).toBe(401);
  });
});

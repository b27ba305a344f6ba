/**
 * The county health app's API (issue 15, item 4) with a resident token for 王伟 against the real database: his
 * records at every member with their Chinese names, encounters, lab results in plain words with the recognition
 * mark, reports, referrals; who looked at his records; cancelling his own referral — and nothing of anyone else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { seedDemoRecognition } from '../../src/demo/recognition.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let resident: string;
let other: string;
let taolin: string;
const own = ['pat-donghu-county-001', 'pat-jiangnan-provincial-001', 'pat-taolin-township-001'];

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('resident-api'));
  await seedDemoRecognition(database.store);
  resident = await token(hub.url, 'county-health-app', { patient_identifier: '43062120021114011X' });
  taolin = await token(hub.url, 'his-taolin-township');
  other = await token(hub.url, 'his-changtang-township');
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

/** Every `Patient/<id>` in an answer. */
const patientsIn = (value: unknown): string[] => [...JSON.stringify(value).matchAll(/Patient\/([A-Za-z0-9\-.]+)/g)].map((match) => match[1]!);

describe('the resident API', () => {
  it('me: my records at every member, encounters, lab results with marks, reports, referrals — mine only', async () => {
    const answer = await graphql(
      hub.url,
      `{ me { name nationalIdMasked records { patient { id } organization { name } }
          encounters { subject { reference } }
          labResults { name value unit normalizedValue normalizedUnit mark issuedBy { name } observation { id subject { reference } } }
          reports { id subject { reference } } medications { subject { reference } } allergies { patient { reference } }
          referrals { id status } followUps { id } readingReports { id } } }`,
      undefined,
      resident,
    );
    expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
    const me = answer.data!.me;
    expect(me.name).toBe('王伟');
    expect(me.nationalIdMasked).toBe('430621********011X');
    expect(me.records.map((record: { patient: { id: string } }) => record.patient.id).sort()).toEqual(own);
    expect(me.records.map((record: { organization: { name: string } }) => record.organization.name)).toEqual(expect.arrayContaining(['东湖县桃林镇卫生院', '东湖县人民医院', '江南省人民医院']));
    const hgb = me.labResults.find((result: { observation: { id: string } }) => result.observation.id === 'rec-hgb-local');
    expect(hgb).toMatchObject({ name: '血红蛋白', value: 12.8, unit: 'g/dL', normalizedValue: 128, normalizedUnit: 'g/L', mark: 'HR', issuedBy: { name: '东湖县桃林镇卫生院' } });
    expect(me.encounters.length).toBeGreaterThan(0);
    for (const id of patientsIn(me)) expect(own, `Patient/${id}`).toContain(id);
  });

  it('myAccessLog: who read my records, with the organisation in Chinese', async () => {
    await graphql(hub.url, `{ Patient(id: "pat-taolin-township-001") { id } }`, undefined, taolin);
    await hub.auditTrail.flush();
    const answer = await graphql(hub.url, `{ myAccessLog(_count: 50) { at action client organization { name } records outcome } }`, undefined, resident);
    expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
    const entry = answer.data!.myAccessLog.find((item: { client: string }) => item.client === 'his-taolin-township');
    expect(entry).toMatchObject({ action: 'R', organization: { name: '东湖县桃林镇卫生院' }, outcome: 'success' });
    expect(entry.records).toContain('Patient/pat-taolin-township-001');
    for (const item of answer.data!.myAccessLog) for (const id of patientsIn(item.records)) expect(own).toContain(id);
  });

  it('cancels my own referral before arrival, not anyone else\'s', async () => {
    const submit = `mutation($patient: ID!) { referralSubmit(input: { type: UP, patient: $patient, to: "org-donghu-county", reason: "高血压控制不佳", consent: true }) { id status } }`;
    const mine = await graphql(hub.url, submit, { patient: 'pat-taolin-township-001' }, taolin);
    expect(mine.errors, JSON.stringify(mine.errors)).toBeUndefined();
    const theirs = await graphql(hub.url, submit, { patient: 'pat-changtang-township-001' }, other);
    const listed = await graphql(hub.url, `{ me { referrals { id status } } }`, undefined, resident);
    expect(listed.data!.me.referrals.map((referral: { id: string }) => referral.id)).toContain(mine.data!.referralSubmit.id);
    const cancel = `mutation($id: ID!) { cancelMyReferral(id: $id, reason: "已在本地好转") { id status } }`;
    const refused = await graphql(hub.url, cancel, { id: theirs.data!.referralSubmit.id }, resident);
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const cancelled = await graphql(hub.url, cancel, { id: mine.data!.referralSubmit.id }, resident);
    expect(cancelled.errors, JSON.stringify(cancelled.errors)).toBeUndefined();
    expect(cancelled.data!.cancelMyReferral.status).toBe('CANCELLED');
    const again = await graphql(hub.url, cancel, { id: mine.data!.referralSubmit.id }, resident);
    expect(again.errors?.[0]?.extensions?.code).toBe('ILLEGAL_TRANSITION');
  });

  it('is for resident tokens only; other residents\' data is out of reach', async () => {
    expect((await graphql(hub.url, `{ me { name } }`, undefined, taolin)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const candidates = await graphql(hub.url, `{ recognitionCandidates(patient: "pat-changtang-township-001", at: "org-donghu-county") { resultReference } }`, undefined, resident);
    expect(['NOT_FOUND', 'FORBIDDEN']).toContain(candidates.errors?.[0]?.extensions?.code);
    for (const query of [`{ readingQueue(centre: "org-jiangnan-provincial") { items { id } } }`, `{ reading(id: "any") { id } }`, `{ readingStatistics(from: "2026-01", to: "2026-11") { rows { readings } } }`, `{ criticalValues(organization: "org-taolin-township") { id } }`, `{ memberSyncStatus { organization } }`, `{ unmappedCodes(organization: "org-taolin-township") { complete } }`, `{ recognitionJobs { id } }`]) {
      expect((await graphql(hub.url, query, undefined, resident)).errors?.[0]?.extensions?.code, query).toBe('FORBIDDEN');
    }
  });
});

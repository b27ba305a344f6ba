/**
 * Recognition candidates against the real database (issue 13, item 4): the demo results of 王伟 at the township,
 * decided at the county hospital through his county record (one person across members), each cause on stored
 * FHIR, the township's code map applied, and a fixed number of reads whatever the number of results.
 */
import type { Observation } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { seedDemoRecognition } from '../../src/demo/recognition.ts';
import { readsDuring } from '../support/commands.ts';
import { demoHub, graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
const now = new Date();
beforeAll(async () => {
  ({ database, hub } = await demoHub('recognition'));
  await seedDemoRecognition(database.store, now);
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const CANDIDATES = `query($patient: ID!, $at: ID!, $codes: [String!], $asOf: String) {
  recognitionCandidates(patient: $patient, at: $at, codes: $codes, asOf: $asOf) {
    resultReference decision cause ageDays daysLeft mark standardCodes issuerLevel
    item { id nameZh category validityDays feeYuan referenceOnly }
    issuer { name }
  }
}`;

describe('recognition candidates', () => {
  it('decides every demo result of one person at the county hospital, through any of his records', async () => {
    const answer = await graphql(hub.url, CANDIDATES, { patient: 'pat-donghu-county-001', at: 'org-donghu-county' });
    expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
    const byRef = new Map((answer.data!.recognitionCandidates as Record<string, any>[]).map((c) => [c.resultReference, c]));
    expect(byRef.get('Observation/rec-hgb-local')).toMatchObject({ decision: 'RECOGNIZED', ageDays: 3, daysLeft: 4, mark: 'HR', issuerLevel: 1, item: { id: 'LAB-HGB', nameZh: '血红蛋白' }, issuer: { name: '东湖县桃林镇卫生院' } });
    expect(byRef.get('Observation/rec-hgb-local')!.standardCodes).toContain('http://loinc.org|718-7');
    expect(byRef.get('Observation/rec-wbc-local')).toMatchObject({ decision: 'NOT_ELIGIBLE', cause: 'NOT_MAPPED', item: null });
    expect(byRef.get('Observation/rec-glu-inside')).toMatchObject({ decision: 'RECOGNIZED', ageDays: 14, daysLeft: 0 });
    expect(byRef.get('Observation/rec-glu-outside')).toMatchObject({ decision: 'NOT_ELIGIBLE', cause: 'EXPIRED', ageDays: 15, daysLeft: -1 });
    expect(byRef.get('Observation/rec-crp-prelim')).toMatchObject({ decision: 'NOT_ELIGIBLE', cause: 'NOT_FINAL' });
    expect(byRef.get('DiagnosticReport/rec-ct-chest')).toMatchObject({ decision: 'RECOGNIZED', item: { id: 'CT-CHEST', category: 'CT', feeYuan: 260 } });
    expect(byRef.get('DiagnosticReport/rec-us-abdomen')).toMatchObject({ decision: 'REFERENCE_ONLY', mark: null, item: { referenceOnly: true } });
    // Newest first.
    const ages = (answer.data!.recognitionCandidates as { ageDays: number }[]).map((c) => c.ageDays);
    expect(ages).toEqual([...ages].sort((a, b) => a - b));
  });

  it('refuses results of a lab without passing QC, and narrows by code', async () => {
    const xishan = (await database.store.search('Observation', { performer: 'Organization/org-xishan-county', code: 'http://loinc.org|718-7', _count: 1 })).resources[0] as Observation | undefined;
    expect(xishan, 'a haemoglobin from 西山县人民医院 in the demo data').toBeDefined();
    const collected = new Date(xishan!.effectiveDateTime!);
    const asOf = new Date(Math.max(collected.getTime(), Date.parse('2026-03-02T00:00:00+08:00')) + 3600_000);
    const answer = await graphql(hub.url, CANDIDATES, { patient: xishan!.subject!.reference!.slice('Patient/'.length), at: 'org-donghu-county', codes: ['LAB-HGB'], asOf: asOf.toISOString() });
    expect(answer.errors).toBeUndefined();
    const found = (answer.data!.recognitionCandidates as Record<string, any>[]).find((c) => c.resultReference === `Observation/${xishan!.id}`);
    expect(found).toMatchObject({ decision: 'NOT_ELIGIBLE' });
    expect(['LAB_NOT_QUALIFIED', 'EXPIRED']).toContain(found!.cause);
    expect((answer.data!.recognitionCandidates as Record<string, any>[]).every((c) => c.item?.id === 'LAB-HGB')).toBe(true);
  });

  it('lists the catalog: at least 60 items with the default validity days', async () => {
    const answer = await graphql(hub.url, '{ recognitionCatalog { id nameZh nameEn category validityDays feeYuan referenceOnly standardCodes } }');
    const items = answer.data!.recognitionCatalog as Record<string, any>[];
    expect(items.length).toBeGreaterThanOrEqual(60);
    const byId = new Map(items.map((item) => [item.id, item]));
    expect(byId.get('LAB-HGB')).toMatchObject({ validityDays: 7, category: 'LAB' });
    expect(byId.get('LAB-GLU')).toMatchObject({ validityDays: 14 });
    expect(byId.get('LAB-TSH')).toMatchObject({ validityDays: 30 });
    expect(byId.get('LAB-HBA1C')).toMatchObject({ validityDays: 90 });
    expect(byId.get('MR-BRAIN')).toMatchObject({ validityDays: 60 });
    expect(byId.get('ECG-12')).toMatchObject({ validityDays: 7, referenceOnly: true });
  });

  it('reads the same number of times for a person with 7 results and one with many', async () => {
    const reads = async (patient: string) => {
      const sent = await readsDuring(hub, () => graphql(hub.url, CANDIDATES, { patient, at: 'org-donghu-county' }));
      return sent.finds.length + sent.statements.length;
    };
    const few = await reads('pat-donghu-county-001');
    const busiest = (await database.store.search('Observation', { _count: 1, _sort: '-date' })).resources[0] as Observation;
    const many = await reads(busiest.subject!.reference!.slice('Patient/'.length));
    expect(many).toBe(few);
  });

  it('records a recognition and a decline that orders the repeat, refuses what the rules or the form do not allow, and counts the savings', async () => {
    const decide = (args: string) => graphql(hub.url, `mutation { recordRecognitionDecision(${args}) { feeSavedYuan provenance { id target { reference } activity { coding { code } } reason { coding { code } } agent { who { reference } } } repeat { id status reasonCode { coding { code } text } supportingInfo { reference } requester { reference } } } }`);
    const provenances = async () => (await database.store.search('Provenance', { _count: 1000 })).resources.length;
    const before = await provenances();
    for (const [args, code] of [
      ['result: "Observation/rec-wbc-local", at: "org-donghu-county", accepted: true', 'BAD_USER_INPUT'],
      ['result: "Observation/rec-glu-outside", at: "org-donghu-county", accepted: true', 'BAD_USER_INPUT'],
      ['result: "Observation/rec-glu-inside", at: "org-donghu-county", accepted: false, patientInformedAt: "2026-11-26T09:00:00+08:00"', 'BAD_USER_INPUT'],
      ['result: "Observation/rec-glu-inside", at: "org-donghu-county", accepted: false, reason: RAPID_CHANGE', 'BAD_USER_INPUT'],
      ['result: "Observation/none", at: "org-donghu-county", accepted: true', 'BAD_USER_INPUT'],
    ] as const) {
      expect((await decide(args)).errors?.[0]?.extensions?.code, args).toBe(code);
    }
    expect(await provenances()).toBe(before);

    const accepted = await decide('result: "Observation/rec-hgb-local", at: "org-donghu-county", accepted: true');
    expect(accepted.errors).toBeUndefined();
    expect(accepted.data!.recordRecognitionDecision).toMatchObject({ feeSavedYuan: 5, provenance: { target: [{ reference: 'Observation/rec-hgb-local' }], activity: { coding: [{ code: 'RECOGNIZED' }] }, agent: [{ who: { reference: 'Organization/org-donghu-county' } }] }, repeat: null });
    const declined = await decide('result: "Observation/rec-glu-inside", at: "org-donghu-county", accepted: false, reason: RAPID_CHANGE, text: "血糖波动大，需当日复查", patientInformedAt: "2026-11-26T09:00:00+08:00"');
    expect(declined.errors).toBeUndefined();
    const record = declined.data!.recordRecognitionDecision;
    expect(record.repeat).toMatchObject({ status: 'active', reasonCode: [{ coding: [{ code: 'RAPID_CHANGE' }], text: '血糖波动大，需当日复查' }], supportingInfo: [{ reference: 'Observation/rec-glu-inside' }], requester: { reference: 'Organization/org-donghu-county' } });
    expect(record.provenance.target).toEqual([{ reference: 'Observation/rec-glu-inside' }, { reference: `ServiceRequest/${record.repeat.id}` }]);
    expect(record.provenance.reason).toEqual([{ coding: [{ code: 'RAPID_CHANGE' }] }]);

    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    const statistics = await graphql(hub.url, `{ recognitionStatistics(from: "${today}", to: "${today}", groupBy: CATEGORY) { institutionsWithPassingQc rows { key decisions recognized feesSavedYuan declined repeatsOrdered crossMemberRetrievals declinesByReason { reason count } } } }`);
    expect(statistics.errors).toBeUndefined();
    expect(statistics.data!.recognitionStatistics.rows).toEqual([
      { key: 'LAB', decisions: 2, recognized: 1, feesSavedYuan: 5, declined: 1, repeatsOrdered: 1, crossMemberRetrievals: 2, declinesByReason: [{ reason: 'RAPID_CHANGE', count: 1 }] },
    ]);
    // Six members passed every QC this year; 西山县 failed its lab EQA (and its CT certificate ran out in June).
    expect(statistics.data!.recognitionStatistics.institutionsWithPassingQc).toBe(Date.now() > Date.parse('2026-06-30T16:00:00Z') ? 6 : 7);
  });

  it('is a field of every Observation and DiagnosticReport, with the same decisions and no query per result', async () => {
    const query = (count: number) => `{ ObservationList(patient: "pat-taolin-township-001", _count: ${count}, _sort: "-date") { id recognition(at: "org-donghu-county") { decision cause ageDays mark item { id } } } }`;
    const all = await graphql(hub.url, query(50));
    expect(all.errors, JSON.stringify(all.errors)).toBeUndefined();
    const byId = new Map((all.data!.ObservationList as { id: string; recognition: Record<string, unknown> }[]).map((o) => [o.id, o.recognition]));
    expect(byId.get('rec-hgb-local')).toMatchObject({ decision: 'RECOGNIZED', ageDays: 3, mark: 'HR', item: { id: 'LAB-HGB' } });
    expect(byId.get('rec-wbc-local')).toMatchObject({ decision: 'NOT_ELIGIBLE', cause: 'NOT_MAPPED' });
    expect(byId.get('rec-crp-prelim')).toMatchObject({ decision: 'NOT_ELIGIBLE', cause: 'NOT_FINAL' });
    const report = await graphql(hub.url, '{ DiagnosticReport(id: "rec-us-abdomen") { recognition(at: "org-donghu-county") { decision item { id } } } }');
    expect(report.data!.DiagnosticReport.recognition).toEqual({ decision: 'REFERENCE_ONLY', item: { id: 'US-ABDOMEN' } });
    const reads = async (count: number) => {
      const sent = await readsDuring(hub, () => graphql(hub.url, query(count)));
      return sent.finds.length + sent.statements.length;
    };
    expect(await reads(7)).toBe(await reads(2));
  });
});

/**
 * Workflow-owned records (docs/architecture.md, src/fhir/workflow-records.ts): a referral's Task, form and admission
 * certificate, a referral slot, a reading's Task and report, a critical-value notification and a recognition
 * decision change only through their workflows. Every door is tried — FHIR REST (PUT, DELETE, POST), GraphQL
 * `<Type>Update/Delete/Create`, transaction and batch Bundles (REST and importBundle), `npm run import`'s importer
 * and the store calls of the member sync — and each answers WORKFLOW_OWNED (REST: 409 with an OperationOutcome
 * naming what to use) with nothing written. Attachments must be about the referral's patient; decisions are
 * corrected by a new decision that supersedes, both kept.
 */
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { seedDemoRecognition } from '../../src/demo/recognition.ts';
import { BundleImporter } from '../../src/fhir/bundles.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
const tokens: Record<string, string> = {};
/** `Type/id` of one record of each kind, and the member whose client edits it (its own organisation's). */
const records: { label: string; reference: string; editor: string }[] = [];

const ask = async (client: string, query: string, variables?: Record<string, unknown>): Promise<Record<string, any>> => {
  const answer = await graphql(hub.url, query, variables, tokens[client]);
  expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
  return answer.data!;
};

const rest = (client: string, method: string, path: string, body?: unknown): Promise<Response> =>
  fetch(`${hub.url}/fhir/${path}`, { method, headers: { authorization: `Bearer ${tokens[client]}`, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' }, ...(body ? { body: JSON.stringify(body) } : {}) });

const read = async (reference: string): Promise<Resource> => hub.store.read(reference.split('/')[0]!, reference.split('/')[1]!);

/** The record's content with a change a hostile member would make to it. */
function tampered(resource: Resource): Resource {
  const copy = structuredClone(resource) as Resource & Record<string, any>;
  switch (copy.resourceType) {
    case 'Task':
      return { ...copy, status: 'completed', businessStatus: { text: 'CLOSED' } } as Resource;
    case 'Communication':
      return { ...copy, status: 'completed', received: new Date().toISOString() } as Resource;
    case 'Provenance':
      return { ...copy, activity: { ...copy.activity, text: '改为不予互认' } } as Resource;
    case 'Slot':
      return { ...copy, status: copy.status === 'busy' ? 'free' : 'busy' } as Resource;
    case 'DiagnosticReport':
      return { ...copy, conclusion: '未见异常' } as Resource;
    default:
      return { ...copy, note: [{ text: '改动' }], status: 'revoked' } as Resource;
  }
}

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('workflow_records'));
  await seedDemoRecognition(database.store);
  for (const client of ['his-taolin-township', 'his-donghu-county', 'his-jiangnan-provincial', 'consortium-admin']) tokens[client] = await token(hub.url, client);
  // A referral accepted with a bed and an admission certificate.
  const [slot] = (await ask('his-donghu-county', `mutation { referralPublishSlots(organization: "org-donghu-county", kind: BED, department: "内分泌科", slots: [{ start: "2026-12-10T08:00:00+08:00", end: "2026-12-11T08:00:00+08:00", note: "内分泌科 3床" }]) { id } }`)).referralPublishSlots;
  const referral = (await ask('his-taolin-township', 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id form { id } } }', { input: { type: 'PRE_ADMISSION', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '血糖控制不佳', consent: true, attachments: ['Observation/obs-00001'] } })).referralSubmit;
  const accepted = (await ask('his-donghu-county', `mutation { referralAccept(id: "${referral.id}", slot: "${slot.id}", certificate: { ward: "内分泌科", bed: "3", validFrom: "2026-12-10", validTo: "2026-12-17" }) { admissionCertificate { id } } }`)).referralAccept;
  records.push(
    { label: "a referral's Task", reference: `Task/${referral.id}`, editor: 'his-taolin-township' },
    { label: "a referral's form", reference: `ServiceRequest/${referral.form.id}`, editor: 'his-taolin-township' },
    { label: 'an admission certificate', reference: `ServiceRequest/${accepted.admissionCertificate.id}`, editor: 'his-donghu-county' },
    { label: 'a referral slot', reference: `Slot/${slot.id}`, editor: 'his-donghu-county' },
  );
  // A reading reported with a STEMI: its Task, its report and the critical value sent to the township.
  const reading = (await ask('his-taolin-township', `mutation { requestReading(patient: "pat-taolin-township-001", modality: ECG, urgency: STAT, centre: "org-jiangnan-provincial") { id } }`)).requestReading;
  await ask('his-jiangnan-provincial', `mutation { claimReading(id: "${reading.id}", reader: "王主任") { status } }`);
  const reported = (await ask('his-jiangnan-provincial', `mutation { reportReading(id: "${reading.id}", conclusion: "急性前壁心肌梗死", findings: ["http://snomed.info/sct|401303003"]) { report { id } criticalValues { id } } }`)).reportReading;
  records.push(
    { label: "a reading's Task", reference: `Task/${reading.id}`, editor: 'his-taolin-township' },
    { label: "a reading's report", reference: `DiagnosticReport/${reported.report.id}`, editor: 'his-jiangnan-provincial' },
    { label: 'a critical-value notification', reference: `Communication/${reported.criticalValues[0].id}`, editor: 'his-jiangnan-provincial' },
  );
  // A recognition decision of the county hospital.
  const decision = (await ask('his-donghu-county', `mutation { recordRecognitionDecision(result: "Observation/rec-glu-inside", at: "org-donghu-county", accepted: true) { provenance { id } } }`)).recordRecognitionDecision;
  records.push({ label: 'a recognition decision', reference: `Provenance/${decision.provenance.id}`, editor: 'his-donghu-county' });
}, 180_000);
afterAll(async () => {
  await hub?.stop();
  await database?.drop();
});

describe('workflow-owned records', () => {
  it('are refused through FHIR REST PUT and DELETE with 409 WORKFLOW_OWNED, naming what to use, and stay as they were', async () => {
    for (const { label, reference, editor } of records) {
      const before = await read(reference);
      for (const client of [editor, 'consortium-admin']) {
        const put = await rest(client, 'PUT', reference, tampered(before));
        expect(put.status, `${label}: PUT by ${client}`).toBe(409);
        const outcome = (await put.json()) as { resourceType: string; issue: { code: string; details: { text: string; coding: { code: string }[] } }[] };
        expect(outcome.resourceType).toBe('OperationOutcome');
        expect(outcome.issue[0]!.details.coding[0]!.code, label).toBe('WORKFLOW_OWNED');
        expect(outcome.issue[0]!.details.text, label).toMatch(/use /);
        const removed = await rest(client, 'DELETE', reference);
        expect(removed.status, `${label}: DELETE by ${client}`).toBe(409);
      }
      expect((await read(reference)).meta?.versionId, label).toBe(before.meta?.versionId);
    }
  });

  it('are refused through GraphQL updates and deletes, and cannot be created outside their workflow', async () => {
    for (const { label, reference, editor } of records) {
      const [type, id] = reference.split('/') as [string, string];
      const before = await read(reference);
      const update = await graphql(hub.url, `mutation($res: ${type}Input!) { ${type}Update(id: "${id}", res: $res) { id } }`, { res: tampered(before) }, tokens[editor]);
      expect(update.errors?.[0]?.extensions?.code, `${label}: ${type}Update`).toBe('WORKFLOW_OWNED');
      const removed = await graphql(hub.url, `mutation { ${type}Delete(id: "${id}") { versionId } }`, undefined, tokens['consortium-admin']);
      expect(removed.errors?.[0]?.extensions?.code, `${label}: ${type}Delete`).toBe('WORKFLOW_OWNED');
      const { id: _id, meta: _meta, ...content } = before;
      const created = await graphql(hub.url, `mutation($res: ${type}Input!) { ${type}Create(res: $res) { id } }`, { res: content }, tokens['consortium-admin']);
      expect(created.errors?.[0]?.extensions?.code, `${label}: ${type}Create`).toBe('WORKFLOW_OWNED');
      const posted = await rest(editor, 'POST', type, content);
      expect(posted.status, `${label}: POST ${type}`).toBe(409);
      expect((await read(reference)).meta?.versionId, label).toBe(before.meta?.versionId);
    }
  });

  it('are refused in transaction and batch Bundles, importBundle, the importer and the sync\'s writes, with nothing written', async () => {
    const counts = async (): Promise<number[]> => Promise.all(['Task', 'ServiceRequest', 'Communication', 'Provenance', 'Slot', 'Organization'].map((type) => database.connection.db.collection(type).countDocuments({})));
    const before = await counts();
    for (const { label, reference } of records) {
      const stored = await read(reference);
      const entries = [
        { resource: { resourceType: 'Organization', name: '顺带写入的机构' }, request: { method: 'POST', url: 'Organization' } },
        { resource: tampered(stored), request: { method: 'PUT', url: reference } },
      ];
      const transaction = await rest('consortium-admin', 'POST', '', { resourceType: 'Bundle', type: 'transaction', entry: entries });
      expect(transaction.status, `${label}: transaction`).toBe(409);
      const batchAnswer = await rest("consortium-admin", "POST", "", { resourceType: "Bundle", type: "batch", entry: [entries[1]] });
      const batch = (await batchAnswer.json()) as Bundle;
      expect(batch.entry?.[0]?.response?.status, `${label}: batch`).toMatch(/^409/);
      const imported = await graphql(hub.url, 'mutation($b: JSON!) { importBundle(bundle: $b) { entries { outcome message } } }', { b: { resourceType: 'Bundle', type: 'batch', entry: [entries[1]] } }, tokens['consortium-admin']);
      expect(imported.data?.importBundle.entries[0], `${label}: importBundle`).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/only through its workflow|never changed once written/) });
      // npm run import and the member sync write with the unrestricted store: refused all the same.
      await expect(new BundleImporter(database.store).import({ resourceType: 'Bundle', type: 'transaction', entry: entries } as Bundle), `${label}: import`).rejects.toMatchObject({ code: 'WORKFLOW_OWNED' });
      const synced = await database.store.putMany([tampered(stored)], { atomic: false });
      expect(synced[0]?.error?.code, `${label}: sync`).toBe('WORKFLOW_OWNED');
    }
    expect(await counts()).toEqual(before);
  });

  it('keep attachments to the referral\'s own patient', async () => {
    const foreign = await graphql(hub.url, 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '胸闷', consent: true, attachments: ['Observation/obs-00001', 'DiagnosticReport/rep-0014'] } }, tokens['his-taolin-township']);
    expect(foreign.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringContaining('rep-0014') });
    // A result at another member's record of the same person (王伟 at the county hospital) travels with him.
    const own = await graphql(hub.url, 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '胸闷', consent: true, attachments: ['Observation/obs-00013'] } }, tokens['his-taolin-township']);
    expect(own.errors).toBeUndefined();
  });

  it('correct a decision with a new one that supersedes it, both kept, counted once', async () => {
    const decision = records.find((record) => record.label === 'a recognition decision')!.reference;
    const correction = await ask('his-donghu-county', `mutation { recordRecognitionDecision(result: "Observation/rec-glu-inside", at: "org-donghu-county", accepted: false, reason: RAPID_CHANGE, patientInformedAt: "2026-11-28T09:00:00+08:00", supersedes: "${decision.split('/')[1]}") { provenance { id entity { role what { reference } } } } }`);
    expect(correction.recordRecognitionDecision.provenance.entity).toEqual([{ role: 'revision', what: { reference: decision } }]);
    expect((await read(decision)).resourceType).toBe('Provenance');
    const facts = await database.connection.db.collection('recognition_facts').find({ _id: { $in: [decision.split('/')[1], correction.recordRecognitionDecision.provenance.id] } as never }).toArray();
    expect(facts.map((fact) => String(fact._id))).toEqual([correction.recordRecognitionDecision.provenance.id]);
    const other = await graphql(hub.url, `mutation { recordRecognitionDecision(result: "Observation/rec-glu-inside", at: "org-jiangnan-provincial", accepted: true, supersedes: "${decision.split('/')[1]}") { provenance { id } } }`, undefined, tokens['his-jiangnan-provincial']);
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

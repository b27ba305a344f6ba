/**
 * Remote reading and critical values (issue 15, items 1 and 2): the rules at their boundaries, and against the
 * real database through GraphQL with member tokens — request, the centre's queue order and pages, the claim race
 * (exactly one of two wins), the report back to the requester, a STEMI that notifies it, acknowledgement,
 * escalation when missed, the green-channel shortcut, a critical lab value on ingest (notified once), statistics.
 */
import type { Communication, Observation } from '@medplum/fhirtypes';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { ReadingService } from '../../src/reading/reading-service.ts';
import { criticalRulesBroken, dueAt, overdue, queueKey, turnaroundMinutes } from '../../src/reading/rules.ts';
import { seedDemoRecognition } from '../../src/demo/recognition.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

describe('reading rules', () => {
  it('has turnaround targets per modality and urgency, and overdue past the due time only', () => {
    expect(turnaroundMinutes.ECG).toEqual({ ROUTINE: 30, URGENT: 10, STAT: 10 });
    const requested = new Date('2026-11-26T08:00:00Z');
    expect(dueAt(requested, 'ECG', 'URGENT').toISOString()).toBe('2026-11-26T08:10:00.000Z');
    expect(overdue(requested, 'ECG', 'URGENT', 'REQUESTED', new Date('2026-11-26T08:10:00Z'))).toBe(false);
    expect(overdue(requested, 'ECG', 'URGENT', 'REQUESTED', new Date('2026-11-26T08:10:00.001Z'))).toBe(true);
    expect(overdue(requested, 'ECG', 'URGENT', 'REPORTED', new Date('2026-11-27T00:00:00Z'))).toBe(false);
  });

  it('queues STAT before URGENT before ROUTINE, each oldest first', () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 10, 26, 8, minute));
    const keys = [queueKey(at(5), 'ROUTINE'), queueKey(at(30), 'STAT'), queueKey(at(1), 'URGENT'), queueKey(at(0), 'ROUTINE'), queueKey(at(20), 'URGENT')];
    const order = keys.map((key, i) => [key.getTime(), i] as const).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
    expect(order).toEqual([1, 2, 4, 3, 0]);
  });

  it.each([
    ['K+ 6.5 mmol/L is not critical', 'http://loinc.org|2823-3', 6.5, 'mmol/L', []],
    ['K+ 6.51 mmol/L is', 'http://loinc.org|2823-3', 6.51, 'mmol/L', ['LAB-K-HIGH']],
    ['K+ 2.5 is not', 'http://loinc.org|2823-3', 2.5, 'mmol/L', []],
    ['K+ 2.49 is', 'http://loinc.org|2823-3', 2.49, 'mmol/L', ['LAB-K-LOW']],
    ['Hb 60 g/L is not', 'http://loinc.org|718-7', 60, 'g/L', []],
    ['Hb 59 g/L is', 'http://loinc.org|718-7', 59, 'g/L', ['LAB-HGB-LOW']],
    ['glucose 22.2 is not', 'http://loinc.org|2345-7', 22.2, 'mmol/L', []],
    ['glucose 22.3 is', 'http://loinc.org|2345-7', 22.3, 'mmol/L', ['LAB-GLU-HIGH']],
    ['a value in another unit is never compared', 'http://loinc.org|718-7', 5.9, 'g/dL', []],
  ])('%s', (_name, code, value, unit, expected) => {
    expect(criticalRulesBroken({ codes: [code as string], findings: [], value: { value: value as number, unit: unit as string } }).map((rule) => rule.id)).toEqual(expected);
  });

  it('flags coded ECG findings: STEMI', () => {
    expect(criticalRulesBroken({ codes: [], findings: ['http://snomed.info/sct|401303003'] }).map((rule) => rule.id)).toEqual(['ECG-STEMI']);
    expect(criticalRulesBroken({ codes: [], findings: ['http://snomed.info/sct|164865005'] })).toEqual([]);
  });
});

let database: TestDatabase;
let hub: Hub;
const tokens: Record<string, string> = {};
const CENTRE = 'org-jiangnan-provincial';

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('reading'));
  await seedDemoRecognition(database.store);
  for (const client of ['his-taolin-township', 'his-changtang-township', 'his-jiangnan-provincial', 'his-donghu-county', 'consortium-admin']) tokens[client] = await token(hub.url, client);
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const REQUEST = `mutation($patient: ID!, $modality: ReadingModality!, $urgency: ReadingUrgency) {
  requestReading(patient: $patient, modality: $modality, urgency: $urgency, centre: "${CENTRE}", reason: "胸痛待查") { id version status modality urgency dueAt requester { name } centre { name } }
}`;
const request = async (client: string, patient: string, modality: string, urgency: string) => {
  const answer = await graphql(hub.url, REQUEST, { patient, modality, urgency }, tokens[client]);
  expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
  return answer.data!.requestReading as { id: string; version: string };
};

describe('remote reading', () => {
  it('queues a centre\'s readings STAT first, pages them, and keeps other members out', async () => {
    const routine = await request('his-taolin-township', 'pat-taolin-township-001', 'ECG', 'ROUTINE');
    const stat = await request('his-changtang-township', 'pat-changtang-township-001', 'ECG', 'STAT');
    const urgent = await request('his-taolin-township', 'pat-taolin-township-002', 'CT', 'URGENT');
    const query = `query($cursor: String, $modality: ReadingModality) { readingQueue(centre: "${CENTRE}", status: REQUESTED, modality: $modality, _count: 2, cursor: $cursor) { items { id modality urgency requester { name } patient { id } } next } }`;
    const first = await graphql(hub.url, query, {}, tokens['his-jiangnan-provincial']);
    expect(first.errors, JSON.stringify(first.errors)).toBeUndefined();
    expect(first.data!.readingQueue.items.map((item: { id: string }) => item.id)).toEqual([stat.id, urgent.id]);
    const second = await graphql(hub.url, query, { cursor: first.data!.readingQueue.next }, tokens['his-jiangnan-provincial']);
    expect(second.data!.readingQueue.items.map((item: { id: string }) => item.id)).toEqual([routine.id]);
    expect(second.data!.readingQueue.next).toBeNull();
    const ecgOnly = await graphql(hub.url, query, { modality: 'ECG' }, tokens['his-jiangnan-provincial']);
    expect(ecgOnly.data!.readingQueue.items.map((item: { id: string }) => item.id)).toEqual([stat.id, routine.id]);
    const urgentOnly = await graphql(hub.url, `{ readingQueue(centre: "${CENTRE}", urgency: URGENT, _count: 1) { items { id } next } }`, undefined, tokens['his-jiangnan-provincial']);
    expect(urgentOnly.data!.readingQueue).toEqual({ items: [{ id: urgent.id }], next: null });
    const consortium = await graphql(hub.url, `{ readingStatistics(from: "2026-01", to: "2026-11") { rows { readings } } }`, undefined, tokens['his-donghu-county']);
    expect(consortium.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const outsider = await graphql(hub.url, query, {}, tokens['his-donghu-county']);
    expect(outsider.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('lets exactly one of two readers claim a study', async () => {
    const reading = await request('his-taolin-township', 'pat-taolin-township-001', 'DR', 'ROUTINE');
    const claim = (reader: string) => graphql(hub.url, `mutation($id: ID!, $reader: String!) { claimReading(id: $id, reader: $reader) { status reader } }`, { id: reading.id, reader }, tokens['his-jiangnan-provincial']);
    const [a, b] = await Promise.all([claim('李医生'), claim('张医生')]);
    const winners = [a, b].filter((answer) => !answer.errors);
    expect(winners).toHaveLength(1);
    const loser = [a, b].find((answer) => answer.errors)!;
    expect(['CONFLICT', 'ILLEGAL_TRANSITION']).toContain(loser.errors![0]!.extensions!.code);
    const stored = await graphql(hub.url, `query($id: ID!) { reading(id: $id) { status reader } }`, { id: reading.id }, tokens['his-jiangnan-provincial']);
    expect(stored.data!.reading).toEqual(winners[0]!.data!.claimReading);
  });

  it('reports back to the requester; a STEMI notifies it, which acknowledges, or opens a green channel in one call', async () => {
    const reading = await request('his-taolin-township', 'pat-taolin-township-001', 'ECG', 'STAT');
    await graphql(hub.url, `mutation($id: ID!) { claimReading(id: $id, reader: "王主任") { status } }`, { id: reading.id }, tokens['his-jiangnan-provincial']);
    const reported = await graphql(
      hub.url,
      `mutation($id: ID!) { reportReading(id: $id, conclusion: "窦性心律，V1-V4 导联ST段抬高，考虑急性前壁心肌梗死", findings: ["http://snomed.info/sct|401303003"]) {
        reading { status report { id conclusion } } report { id status performer { reference } } criticalValues { id rule text status ackDueAt to { name } from { name } patient { id } } } }`,
      { id: reading.id },
      tokens['his-jiangnan-provincial'],
    );
    expect(reported.errors, JSON.stringify(reported.errors)).toBeUndefined();
    const result = reported.data!.reportReading;
    expect(result.reading.status).toBe('REPORTED');
    expect(result.reading.report.conclusion).toContain('ST段抬高');
    expect(result.criticalValues).toEqual([expect.objectContaining({ rule: 'ECG-STEMI', status: 'in-progress', to: { name: '东湖县桃林镇卫生院' }, from: { name: '江南省人民医院' }, patient: { id: 'pat-taolin-township-001' } })]);
    // The requester reads its report and its open critical values.
    const report = await graphql(hub.url, `query($id: ID!) { DiagnosticReport(id: $id) { conclusion } }`, { id: result.report.id }, tokens['his-taolin-township']);
    expect(report.data!.DiagnosticReport.conclusion).toContain('心肌梗死');
    const open = await graphql(hub.url, `{ criticalValues(organization: "org-taolin-township", open: true) { id rule } }`, undefined, tokens['his-taolin-township']);
    expect(open.data!.criticalValues.map((value: { id: string }) => value.id)).toContain(result.criticalValues[0].id);
    // Only the requesting side acknowledges.
    const foreign = await graphql(hub.url, `mutation($id: ID!) { acknowledgeCriticalValue(id: $id, by: "某人") { status } }`, { id: result.criticalValues[0].id }, tokens['his-changtang-township']);
    expect(foreign.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const green = await graphql(hub.url, `mutation($id: ID!) { criticalValueGreenChannel(id: $id) { id type status from { id } to { id } form { supportingInfo { reference } } } }`, { id: result.criticalValues[0].id }, tokens['his-taolin-township']);
    expect(green.errors, JSON.stringify(green.errors)).toBeUndefined();
    expect(green.data!.criticalValueGreenChannel).toMatchObject({ type: 'GREEN_CHANNEL', status: 'ACCEPTED', from: { id: 'org-taolin-township' }, to: { id: CENTRE } });
    expect(JSON.stringify(green.data!.criticalValueGreenChannel.form)).toContain(`DiagnosticReport/${result.report.id}`);
    const ack = await graphql(hub.url, `mutation($id: ID!) { acknowledgeCriticalValue(id: $id, by: "刘医生") { status acknowledgedBy acknowledgedAt escalated } }`, { id: result.criticalValues[0].id }, tokens['his-taolin-township']);
    expect(ack.data!.acknowledgeCriticalValue).toMatchObject({ status: 'completed', acknowledgedBy: '刘医生', escalated: false });
    const again = await graphql(hub.url, `mutation($id: ID!) { acknowledgeCriticalValue(id: $id, by: "刘医生") { status } }`, { id: result.criticalValues[0].id }, tokens['his-taolin-township']);
    expect(again.errors?.[0]?.extensions?.code).toBe('ILLEGAL_TRANSITION');
  });

  it('notifies a critical lab value on ingest once, and escalates it when not acknowledged in time', async () => {
    const potassium: Observation = {
      resourceType: 'Observation',
      id: 'crit-k-test',
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
      code: { coding: [{ system: 'http://loinc.org', code: '2823-3', display: 'Potassium' }], text: '血钾' },
      subject: { reference: 'Patient/pat-changtang-township-001' },
      effectiveDateTime: new Date().toISOString(),
      performer: [{ reference: 'Organization/org-changtang-township' }],
      valueQuantity: { value: 7.1, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    };
    await database.store.put(potassium);
    await database.store.put({ ...potassium, note: [{ text: '复核后同上' }] } as Observation);
    const open = (await database.store.search('Communication', { _count: 100 })).resources.filter((resource) => (resource as Communication).about?.[0]?.reference === 'Observation/crit-k-test') as Communication[];
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ status: 'in-progress', recipient: [{ reference: 'Organization/org-changtang-township' }], topic: { coding: [{ code: 'LAB-K-HIGH' }] } });
    const later = new ReadingService(database.store, undefined, database.collections, { clientId: 'hub', anySide: true }, () => new Date(Date.now() + 16 * 60_000));
    expect(await later.escalate()).toBeGreaterThanOrEqual(1);
    expect(await later.escalate()).toBe(0);
    const escalated = await graphql(hub.url, `{ criticalValues(organization: "org-changtang-township", open: true) { rule escalated } }`, undefined, tokens['his-changtang-township']);
    expect(escalated.data!.criticalValues).toEqual(expect.arrayContaining([{ rule: 'LAB-K-HIGH', escalated: true }]));
  });

  it('streams critical values to the requesting organisation as they happen (WebSocket), and only its own', async () => {
    const received: { id: string; state: string; rule: string }[] = [];
    const errors: unknown[] = [];
    let connected!: () => void;
    const ready = new Promise<void>((resolve) => (connected = resolve));
    const client = createClient({ url: `${hub.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${tokens['his-taolin-township']}` }, retryAttempts: 0, lazy: false, on: { connected: () => connected() } });
    try {
      client.subscribe(
        { query: `subscription { criticalValueEvents(organization: "org-taolin-township") { id state rule text result to from at } }` },
        { next: (message) => (message.errors ? errors.push(message.errors) : received.push((message.data as { criticalValueEvents: { id: string; state: string; rule: string } }).criticalValueEvents)), error: (error) => errors.push(error), complete: () => {} },
      );
      await ready;
      await new Promise((resolve) => setTimeout(resolve, 300));
      const reading = await request('his-taolin-township', 'pat-taolin-township-002', 'ECG', 'URGENT');
      await graphql(hub.url, `mutation($id: ID!) { claimReading(id: $id, reader: "王主任") { status } }`, { id: reading.id }, tokens['his-jiangnan-provincial']);
      const reported = await graphql(hub.url, `mutation($id: ID!) { reportReading(id: $id, conclusion: "心室颤动", findings: ["http://snomed.info/sct|71908006"]) { criticalValues { id } } }`, { id: reading.id }, tokens['his-jiangnan-provincial']);
      const id = reported.data!.reportReading.criticalValues[0].id as string;
      await graphql(hub.url, `mutation($id: ID!) { acknowledgeCriticalValue(id: $id, by: "值班医生") { status } }`, { id }, tokens['his-taolin-township']);
      for (let waited = 0; waited < 5000 && received.filter((event) => event.id === id).length < 2; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(errors).toEqual([]);
      expect(received.filter((event) => event.id === id).map((event) => [event.state, event.rule])).toEqual([['SENT', 'ECG-VF'], ['ACKNOWLEDGED', 'ECG-VF']]);
      const foreign = await new Promise<unknown>((resolve) => {
        client.subscribe({ query: `subscription { criticalValueEvents(organization: "org-changtang-township") { id } }` }, { next: (message) => resolve(message.errors?.[0]?.extensions?.code), error: (error) => resolve(error), complete: () => resolve('complete') });
      });
      expect(JSON.stringify(foreign)).toContain('FORBIDDEN');
    } finally {
      await client.dispose();
    }
  });

  it('counts turnaround, late readings and critical values', async () => {
    const month = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 7);
    const answer = await graphql(hub.url, `query($m: String!) { readingStatistics(from: $m, to: $m, centre: "${CENTRE}") { rows { modality urgency readings late medianMinutes targetMinutes critical } criticalValues { sent acknowledged escalated medianAckMinutes } } }`, { m: month }, tokens['consortium-admin']);
    expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
    const ecgStat = answer.data!.readingStatistics.rows.find((row: { modality: string; urgency: string }) => row.modality === 'ECG' && row.urgency === 'STAT');
    expect(ecgStat).toMatchObject({ readings: 1, late: 0, targetMinutes: 10, critical: 1 });
    // The centre's: the STEMI and the ventricular fibrillation, both acknowledged (the potassium came from a lab).
    expect(answer.data!.readingStatistics.criticalValues).toMatchObject({ sent: 2, acknowledged: 2, escalated: 0 });
    const all = await graphql(hub.url, `query($m: String!) { readingStatistics(from: $m, to: $m) { criticalValues { sent acknowledged escalated } } }`, { m: month }, tokens['consortium-admin']);
    expect(all.data!.readingStatistics.criticalValues).toEqual({ sent: 3, acknowledged: 2, escalated: 1 });
  });
});

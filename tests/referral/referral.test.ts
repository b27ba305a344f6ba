/**
 * Two-way referral (issue 12) against the real database: the whole path, every illegal transition of the state
 * machine (table-driven), which side may act, two receivers accepting at once, the green channel, pre-admission
 * with its admission certificate, follow-ups, and the referral centre's inbox.
 */
import type { DocumentReference, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { ReferralService } from '../../src/referral/referral-service.ts';
import { transitions, type ReferralAction, type ReferralStatus } from '../../src/referral/rules.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { readsDuring } from '../support/commands.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('referral'));
  for (const client of ['his-taolin-township', 'his-donghu-county', 'his-xishan-county', 'his-baiyangtian-township', 'his-jiangnan-provincial', 'his-chengnan-community', 'consortium-admin']) tokens[client] = await token(hub.url, client);
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const FIELDS = 'id type status priority version dueAt overdue overdueMinutes statusReason appointment department patient { id } from { id } to { id } form { id reasonCode { text } note { text } } timeline { status version by }';

async function ask(client: string, query: string, variables?: Record<string, unknown>) {
  return graphql(hub.url, query, variables, tokens[client]);
}

async function submit(client: string, input: Record<string, unknown>) {
  const answer = await ask(client, `mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { ${FIELDS} } }`, { input });
  expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
  return answer.data!.referralSubmit;
}

const up = (extra: Record<string, unknown> = {}) => ({ type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '2型糖尿病血糖控制不佳，需上级医院调整治疗方案', consent: true, ...extra });

const mutationOf: Record<Exclude<ReferralAction, 'markNoShow'>, { name: string; args: string }> = {
  startReview: { name: 'referralStartReview', args: '' },
  accept: { name: 'referralAccept', args: '' },
  reject: { name: 'referralReject', args: ', reason: "床位已满"' },
  recordArrival: { name: 'referralRecordArrival', args: '' },
  complete: { name: 'referralComplete', args: ', outcome: "Patient/pat-taolin-township-001"' },
  acknowledge: { name: 'referralAcknowledge', args: '' },
  cancel: { name: 'referralCancel', args: '' },
};

async function act(client: string, action: Exclude<ReferralAction, 'markNoShow'>, id: string, args = mutationOf[action].args) {
  const { name } = mutationOf[action];
  return ask(client, `mutation { ${name}(id: "${id}"${args}) { ${FIELDS} } }`);
}

/** The receiving side's outcome document (a discharge summary). */
async function outcomeDocument(): Promise<string> {
  const document = await database.store.create<DocumentReference>({
    resourceType: 'DocumentReference',
    status: 'current',
    type: { text: '出院小结' },
    subject: { reference: 'Patient/pat-taolin-township-001' },
    custodian: { reference: 'Organization/org-donghu-county' },
    content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('出院小结：血糖控制平稳').toString('base64') } }],
  });
  return `DocumentReference/${document.id}`;
}

describe('a referral up and back', () => {
  it('runs submit → review → accept → arrival → complete → acknowledge, one Task version per step, with its trail', async () => {
    const referral = await submit('his-taolin-township', up({ impression: '2型糖尿病', allergies: '青霉素过敏', insuranceType: '城乡居民医保', department: '内分泌科' }));
    expect(referral).toMatchObject({ type: 'UP', status: 'SUBMITTED', priority: 'routine', version: '1', overdue: false, patient: { id: 'pat-taolin-township-001' }, from: { id: 'org-taolin-township' }, to: { id: 'org-donghu-county' } });
    expect(referral.form.reasonCode[0].text).toBe('2型糖尿病血糖控制不佳，需上级医院调整治疗方案');
    expect(referral.form.note.map((n: { text: string }) => n.text)).toContain('过敏史 Allergies: 青霉素过敏');
    expect(Date.parse(referral.dueAt) - Date.now()).toBeGreaterThan(23.9 * 3600_000);

    expect((await act('his-donghu-county', 'startReview', referral.id)).data?.referralStartReview.status).toBe('UNDER_REVIEW');
    const accepted = await ask('his-donghu-county', `mutation { referralAccept(id: "${referral.id}", ifMatch: "W/\\"2\\"", appointment: "2099-12-01T09:00:00+08:00", department: "内分泌科") { ${FIELDS} } }`);
    expect(accepted.data?.referralAccept).toMatchObject({ status: 'ACCEPTED', version: '3', appointment: '2099-12-01T09:00:00+08:00', department: '内分泌科' });
    expect((await act('his-donghu-county', 'recordArrival', referral.id)).data?.referralRecordArrival.status).toBe('ARRIVED');
    const outcome = await outcomeDocument();
    const completed = await ask('his-donghu-county', `mutation { referralComplete(id: "${referral.id}", outcome: "${outcome}") { status outcome followUp { id } } }`);
    expect(completed.data?.referralComplete).toEqual({ status: 'COMPLETED', outcome: expect.objectContaining({ resourceType: 'DocumentReference' }), followUp: null });
    const closed = (await act('his-taolin-township', 'acknowledge', referral.id)).data?.referralAcknowledge;
    expect(closed.status).toBe('CLOSED');
    expect(closed.timeline.map((t: { status: string }) => t.status)).toEqual(['SUBMITTED', 'UNDER_REVIEW', 'ACCEPTED', 'ARRIVED', 'COMPLETED', 'CLOSED']);
    expect(closed.timeline.map((t: { version: string }) => t.version)).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(closed.timeline[1].by).toBe('his-donghu-county');

    // The Task is plain FHIR: status and business status as referral.md maps them.
    const task = await database.store.read<Task>('Task', referral.id);
    expect(task.status).toBe('completed');
    expect(task.businessStatus?.coding?.[0]?.code).toBe('CLOSED');
  });

  it('lets only the right side act, and changes nothing when it refuses', async () => {
    const referral = await submit('his-taolin-township', up());
    for (const [client, action] of [
      ['his-taolin-township', 'accept'],
      ['his-xishan-county', 'accept'],
      ['his-xishan-county', 'cancel'],
      ['his-donghu-county', 'cancel'],
    ] as const) {
      const answer = await act(client, action, referral.id);
      expect(answer.errors?.[0]?.extensions?.code, `${client} ${action}`).toBe('FORBIDDEN');
    }
    expect((await database.store.read<Task>('Task', referral.id)).meta?.versionId).toBe('1');
    // A member refers only from its own organisation.
    const foreign = await ask('his-xishan-county', 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: up({ from: 'org-taolin-township' }) });
    expect(foreign.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('refuses bad input with BAD_USER_INPUT and writes nothing', async () => {
    const before = await database.store.count('Task');
    for (const input of [up({ consent: false }), up({ patient: 'pat-does-not-exist' }), up({ to: 'org-taolin-township' }), up({ attachments: ['Observation/none'] }), up({ reason: '  ' })]) {
      const answer = await ask('his-taolin-township', 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input });
      expect(answer.errors?.[0]?.extensions?.code, JSON.stringify(input)).toBe('BAD_USER_INPUT');
    }
    expect(await database.store.count('Task')).toBe(before);
    const referral = await submit('his-taolin-township', up());
    expect((await act('his-donghu-county', 'reject', referral.id, ', reason: " "')).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await act('his-donghu-county', 'accept', referral.id, ', appointment: "next tuesday"')).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await database.store.read<Task>('Task', referral.id)).meta?.versionId).toBe('1');
    const rejected = (await act('his-donghu-county', 'reject', referral.id, ', reason: "本院无此专科", suggestedReceiver: "org-jiangnan-provincial"')).data?.referralReject;
    expect(rejected).toMatchObject({ status: 'REJECTED', statusReason: '本院无此专科' });
  });

  it('lets exactly one of two receivers accepting at once win; the other gets CONFLICT', async () => {
    for (let round = 0; round < 3; round++) {
      const referral = await submit('his-taolin-township', up());
      const answers = await Promise.all([act('his-donghu-county', 'accept', referral.id), act('consortium-admin', 'accept', referral.id)]);
      const codes = answers.map((answer) => answer.errors?.[0]?.extensions?.code ?? 'OK');
      // The loser either raced the winner's write (CONFLICT) or read the Task after it (ILLEGAL_TRANSITION).
      expect(codes.filter((code) => code === 'OK')).toHaveLength(1);
      expect(codes.filter((code) => code !== 'OK').every((code) => code === 'CONFLICT' || code === 'ILLEGAL_TRANSITION')).toBe(true);
      const history = await database.store.history('Task', referral.id);
      expect(history.map((entry) => entry.versionId)).toEqual(['2', '1']);
    }
  });
});

describe('the state machine', () => {
  const service = () => new ReferralService(database.store, undefined, { clientId: 'test', anySide: true });
  /** A referral brought into a status through legal transitions. */
  async function inStatus(status: ReferralStatus): Promise<string> {
    const s = service();
    const { id } = await s.submit({ ...up(), from: 'org-taolin-township' } as never);
    const path: Record<ReferralStatus, [Exclude<ReferralAction, 'markNoShow'>, Record<string, unknown>][]> = {
      DRAFT: [],
      SUBMITTED: [],
      UNDER_REVIEW: [['startReview', {}]],
      ACCEPTED: [['accept', {}]],
      REJECTED: [['reject', { reason: '不符合转诊指征' }]],
      ARRIVED: [['accept', {}], ['recordArrival', {}]],
      NO_SHOW: [['accept', { appointment: '2026-01-05T09:00:00+08:00' }]],
      CANCELLED: [['cancel', {}]],
      COMPLETED: [['accept', {}], ['recordArrival', {}], ['complete', { outcome: 'Patient/pat-taolin-township-001' }]],
      CLOSED: [['accept', {}], ['recordArrival', {}], ['complete', { outcome: 'Patient/pat-taolin-township-001' }], ['acknowledge', {}]],
    };
    for (const [action, input] of path[status]) await s.transition(id, action, input);
    if (status === 'NO_SHOW') expect(await s.markNoShows()).toBeGreaterThanOrEqual(1);
    expect((await s.referral(id)).facts.status).toBe(status);
    return id;
  }

  const statuses: ReferralStatus[] = ['SUBMITTED', 'UNDER_REVIEW', 'ACCEPTED', 'REJECTED', 'ARRIVED', 'NO_SHOW', 'CANCELLED', 'COMPLETED', 'CLOSED'];
  const actions = Object.keys(mutationOf) as Exclude<ReferralAction, 'markNoShow'>[];
  it.each(statuses)('from %s refuses every transition the table does not allow, naming both states, and writes nothing', async (status) => {
    const id = await inStatus(status);
    const version = (await database.store.read<Task>('Task', id)).meta?.versionId;
    const illegal = actions.filter((action) => !transitions[action].from.includes(status));
    expect(illegal.length).toBeGreaterThan(0);
    for (const action of illegal) {
      const answer = await act('consortium-admin', action, id);
      expect(answer.errors?.[0]?.extensions?.code, `${status} ${action}`).toBe('ILLEGAL_TRANSITION');
      expect(answer.errors?.[0]?.message).toContain(status);
      expect(answer.errors?.[0]?.message).toContain(transitions[action].to);
    }
    expect((await database.store.read<Task>('Task', id)).meta?.versionId).toBe(version);
  });
});

describe('green channel, pre-admission and follow-up', () => {
  it('accepts a green-channel referral at once, as stat, due in 10 minutes, first in the inbox', async () => {
    const green = await submit('his-donghu-county', { type: 'GREEN_CHANNEL', patient: 'pat-donghu-county-002', to: 'org-jiangnan-provincial', reason: '急性胸痛，心电图ST段抬高', consent: true, department: '胸痛中心' });
    expect(green).toMatchObject({ status: 'ACCEPTED', priority: 'stat', version: '1' });
    expect(Math.abs(Date.parse(green.dueAt) - Date.now() - 10 * 60_000)).toBeLessThan(60_000);
    await submit('his-donghu-county', { type: 'UP', priority: 'urgent', patient: 'pat-donghu-county-001', to: 'org-jiangnan-provincial', reason: '肺部阴影待查', consent: true });
    const inbox = await ask('his-jiangnan-provincial', '{ referralInbox(organization: "org-jiangnan-provincial", direction: INCOMING, _count: 50) { items { id type } } }');
    expect(inbox.errors).toBeUndefined();
    const items = inbox.data!.referralInbox.items as { id: string; type: string }[];
    const firstOther = items.findIndex((item) => item.type !== 'GREEN_CHANNEL');
    expect(items.slice(firstOther).some((item) => item.type === 'GREEN_CHANNEL')).toBe(false);
    expect(items.some((item) => item.id === green.id)).toBe(true);
  });

  it('issues the electronic admission certificate when a pre-admission is accepted, and refuses acceptance without one', async () => {
    const pre = await submit('his-taolin-township', { type: 'PRE_ADMISSION', priority: 'urgent', patient: 'pat-taolin-township-002', to: 'org-donghu-county', reason: '慢性阻塞性肺疾病急性加重，申请预住院', consent: true });
    expect(pre.status).toBe('SUBMITTED');
    expect((await act('his-donghu-county', 'accept', pre.id)).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const accepted = await ask('his-donghu-county', `mutation { referralAccept(id: "${pre.id}", certificate: { ward: "呼吸内科二病区", bed: "12床", validFrom: "2026-11-26", validTo: "2026-12-03" }) { status admissionCertificate { id identifier { system value } occurrencePeriod { start end } note { text } } } }`);
    expect(accepted.errors).toBeUndefined();
    const certificate = accepted.data!.referralAccept.admissionCertificate;
    expect(certificate.identifier[0].value).toMatch(/^ZY\d{8}/);
    expect(certificate.note[0].text).toBe('病区 Ward: 呼吸内科二病区; 床位 Bed: 12床');
    expect(certificate.occurrencePeriod).toEqual({ start: '2026-11-26', end: '2026-12-03' });
  });

  it('creates a follow-up for the home organisation due in 14 days when a down-referral completes, once, and records it done', async () => {
    const down = await submit('his-jiangnan-provincial', { type: 'DOWN', patient: 'pat-jiangnan-provincial-003', to: 'org-baiyangtian-township', reason: '脑梗死恢复期，病情稳定，转回基层康复治疗', consent: true });
    await act('his-baiyangtian-township', 'accept', down.id);
    await act('his-baiyangtian-township', 'recordArrival', down.id);
    const completed = await ask('his-baiyangtian-township', `mutation { referralComplete(id: "${down.id}", outcome: "Patient/pat-jiangnan-provincial-003") { status followUp { id status owner { reference } restriction { period { end } } } } }`);
    expect(completed.errors).toBeUndefined();
    const followUp = completed.data!.referralComplete.followUp;
    expect(followUp).toMatchObject({ status: 'requested', owner: { reference: 'Organization/org-baiyangtian-township' } });
    expect(Math.abs(Date.parse(followUp.restriction.period.end) - Date.now() - 14 * 24 * 3600_000)).toBeLessThan(120_000);
    expect((await ask('his-jiangnan-provincial', `mutation { referralFollowUpComplete(id: "${followUp.id}") { id } }`)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const done = await ask('his-baiyangtian-township', `mutation { referralFollowUpComplete(id: "${followUp.id}", note: "已电话随访，恢复良好") { status note { text } } }`);
    expect(done.data?.referralFollowUpComplete).toEqual({ status: 'completed', note: [{ text: '已电话随访，恢复良好' }] });
  });
});

describe('the referral centre inbox', () => {
  it('pages green channel first then by due time with a cursor, filters by status, type and overdue, with a fixed number of reads', async () => {
    const past = new ReferralService(database.store, undefined, { clientId: 'test', organization: 'Organization/org-taolin-township', anySide: true }, () => new Date(Date.now() - 3 * 24 * 3600_000));
    const overdueOne = await past.submit({ ...up(), to: 'org-chengnan-community' } as never);
    for (let i = 0; i < 6; i++) await submit('his-taolin-township', up({ to: 'org-chengnan-community', priority: i % 2 ? 'urgent' : 'routine', reason: `复诊 ${i}` }));
    await submit('his-donghu-county', { type: 'GREEN_CHANNEL', patient: 'pat-donghu-county-002', to: 'org-chengnan-community', reason: '卒中', consent: true });
    const page = (count: number, cursor?: string, extra = '') =>
      ask('his-chengnan-community', `{ referralInbox(organization: "org-chengnan-community", direction: INCOMING, _count: ${count}${cursor ? `, _cursor: "${cursor}"` : ''}${extra}) { items { id type dueAt overdue patient { id } form { id } from { id } } next } }`);
    const seen: { id: string; type: string; dueAt: string }[] = [];
    let cursor: string | undefined;
    do {
      const answer = await page(3, cursor);
      expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
      seen.push(...answer.data!.referralInbox.items);
      cursor = answer.data!.referralInbox.next ?? undefined;
    } while (cursor);
    expect(seen).toHaveLength(8);
    expect(new Set(seen.map((item) => item.id)).size).toBe(8);
    expect(seen[0]!.type).toBe('GREEN_CHANNEL');
    const dues = seen.slice(1).map((item) => Date.parse(item.dueAt));
    expect(dues).toEqual([...dues].sort((a, b) => a - b));
    expect(seen[1]!.id).toBe(overdueOne.id);

    const overdue = await page(50, undefined, ', overdue: true');
    expect(overdue.data!.referralInbox.items.map((item: { id: string }) => item.id)).toEqual([overdueOne.id]);
    const green = await page(50, undefined, ', type: GREEN_CHANNEL');
    expect(green.data!.referralInbox.items).toHaveLength(1);
    const submitted = await page(50, undefined, ', status: [ACCEPTED]');
    expect(submitted.data!.referralInbox.items.map((item: { type: string }) => item.type)).toEqual(['GREEN_CHANNEL']);

    // The same number of database reads for a page of 2 and a page of 8, patients, forms and organisations included.
    const reads = async (count: number) => {
      const sent = await readsDuring(hub, () => page(count));
      return sent.finds.length + sent.statements.length;
    };
    expect(await reads(8)).toBe(await reads(2));
  });

  it('is read by its own organisation and administrators only', async () => {
    const other = await ask('his-xishan-county', '{ referralInbox(organization: "org-donghu-county", direction: INCOMING) { items { id } } }');
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const admin = await ask('consortium-admin', '{ referralInbox(organization: "org-donghu-county", direction: INCOMING) { items { id } } }');
    expect(admin.errors).toBeUndefined();
    const bad = await ask('his-donghu-county', '{ referralInbox(organization: "org-donghu-county", direction: INCOMING, _cursor: "not-a-cursor") { items { id } } }');
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    // A resident (the county health app) sees its referrals through its own records, not the workflow.
    const resident = await token(hub.url, 'county-health-app', { patient_identifier: '43062120021114011X' });
    for (const query of [
      '{ referral(id: "task-ref-001") { id } }',
      '{ referralInbox(organization: "org-donghu-county", direction: INCOMING) { items { id } } }',
      '{ referralStatistics(from: "2026-01-01", to: "2026-11-30", organization: "org-donghu-county", groupBy: MONTH) { key } }',
    ]) {
      expect((await graphql(hub.url, query, undefined, resident)).errors?.[0]?.extensions?.code, query).toBe('FORBIDDEN');
    }
  });
});

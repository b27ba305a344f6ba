/**
 * Demo referrals: a year of two-way referral among the demo members, run through the real workflow
 * (ReferralService, with a clock set to each step's time) so the Tasks, their versions, the statistics' facts and
 * the events are exactly what live use writes. Deterministic (a seeded generator): the same 320 referrals each
 * time, about as many down as up, a few percent green channel and pre-admission, some rejected, cancelled,
 * no-show, still waiting (some overdue), most closed, with follow-ups after down-referrals.
 */
import type { DocumentReference } from '@medplum/fhirtypes';
import type { FhirRepository } from '../fhir/repository.ts';
import { ReferralLog } from '../referral/referral-log.ts';
import { followUpId, ReferralService } from '../referral/referral-service.ts';
import type { ReferralType } from '../referral/rules.ts';
import type { SideCollections } from '../fhir/side-collections.ts';

export const DEMO_REFERRALS = 320;
/** The demo year ends here (China time): referrals from 2025-11-21 to 2026-11-20. */
export const DEMO_REFERRALS_END = new Date('2026-11-20T12:00:00+08:00');

const levels: Record<string, number> = {
  'org-jiangnan-provincial': 3,
  'org-donghu-county': 2,
  'org-xishan-county': 2,
  'org-taolin-township': 1,
  'org-changtang-township': 1,
  'org-baiyangtian-township': 1,
  'org-chengnan-community': 1,
};
const patientsOf: Record<string, number> = {
  'org-jiangnan-provincial': 12,
  'org-donghu-county': 20,
  'org-xishan-county': 11,
  'org-taolin-township': 10,
  'org-changtang-township': 10,
  'org-baiyangtian-township': 8,
  'org-chengnan-community': 8,
};
const upReasons = ['2型糖尿病血糖控制不佳，需上级医院调整治疗方案', '反复胸闷气短，需进一步检查', '肺部阴影待查', '慢性肾病进展，需专科评估', '高血压3级，靶器官损害待评估', '消化道出血待查'];
const downReasons = ['脑梗死恢复期，病情稳定，转回基层康复治疗', '冠脉支架术后，转回基层随访', '2型糖尿病已调整方案，回基层管理', '髋关节置换术后康复', '慢性阻塞性肺疾病稳定期管理'];
const greenReasons = ['急性胸痛，心电图ST段抬高，疑似急性心肌梗死', '突发言语不清伴右侧肢体无力，疑似急性脑卒中', '车祸致多发伤'];

/** A small deterministic generator (mulberry32). */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DemoReferralPlan {
  index: number;
  type: ReferralType;
  priority: 'routine' | 'urgent' | 'stat';
  from: string;
  to: string;
  patient: string;
  reason: string;
  submittedAt: Date;
  /** where the referral ends, and the minutes after submission of each step */
  fate: 'CLOSED' | 'COMPLETED' | 'ARRIVED' | 'ACCEPTED' | 'REJECTED' | 'CANCELLED' | 'NO_SHOW' | 'SUBMITTED' | 'UNDER_REVIEW';
  acceptAfterMinutes: number;
  followUpDone: boolean;
}

/** The demo referrals, planned (pure; the tests count their expected figures from this). */
export function planDemoReferrals(count = DEMO_REFERRALS): DemoReferralPlan[] {
  const random = generator(20261120);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const orgs = Object.keys(levels);
  const plans: DemoReferralPlan[] = [];
  const yearMs = 365 * 24 * 3600_000;
  for (let index = 0; index < count; index++) {
    const roll = random();
    const type: ReferralType = roll < 0.04 ? 'GREEN_CHANNEL' : roll < 0.07 ? 'PRE_ADMISSION' : roll < 0.53 ? 'UP' : 'DOWN';
    const downward = type === 'DOWN';
    const from = pick(orgs.filter((org) => (downward ? levels[org]! > 1 : levels[org]! < 3)));
    const to = pick(orgs.filter((org) => (downward ? levels[org]! < levels[from]! : levels[org]! > levels[from]!)));
    const patient = `pat-${from.slice(4)}-${String(1 + Math.floor(random() * patientsOf[from]!)).padStart(3, '0')}`;
    // Spread over the year; the last ones (the newest) are still under way.
    const submittedAt = new Date(DEMO_REFERRALS_END.getTime() - yearMs + Math.floor(((index + random()) / count) * yearMs));
    const fateRoll = random();
    let fate: DemoReferralPlan['fate'];
    // The newest 3 % (at least two) are still under way at the end of the demo year.
    if (index >= count - Math.max(2, Math.round(count * 0.03))) fate = (['SUBMITTED', 'UNDER_REVIEW', 'ACCEPTED'] as const)[(count - 1 - index) % 3]!;
    else if (type !== 'GREEN_CHANNEL' && fateRoll < 0.06) fate = 'REJECTED';
    else if (type !== 'GREEN_CHANNEL' && fateRoll < 0.08) fate = 'CANCELLED';
    else if (type !== 'GREEN_CHANNEL' && fateRoll < 0.11) fate = 'NO_SHOW';
    else if (fateRoll < 0.2) fate = 'COMPLETED';
    else fate = 'CLOSED';
    const priority = type === 'GREEN_CHANNEL' ? 'stat' : random() < 0.2 ? 'urgent' : 'routine';
    const acceptAfterMinutes = type === 'GREEN_CHANNEL' ? 0 : Math.round((priority === 'urgent' ? 30 : 180) + random() * (priority === 'urgent' ? 150 : 1500));
    const reason = type === 'GREEN_CHANNEL' ? pick(greenReasons) : downward ? pick(downReasons) : pick(upReasons);
    plans.push({ index, type, priority, from, to, patient, reason, submittedAt, fate, acceptAfterMinutes, followUpDone: random() < 0.8 });
  }
  return plans;
}

/** Runs the planned referrals through the workflow; returns how many were written (none when already seeded). */
export async function seedDemoReferrals(store: FhirRepository, collections: SideCollections, count = DEMO_REFERRALS): Promise<number> {
  const log = new ReferralLog(collections);
  await log.ensureIndexes();
  if ((await log.facts.estimatedDocumentCount()) > 0) return 0;
  const plans = planDemoReferrals(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plans.length) await runPlan(store, log, plans[next++]!);
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return plans.length;
}

async function runPlan(store: FhirRepository, log: ReferralLog, plan: DemoReferralPlan): Promise<void> {
  let clock = plan.submittedAt;
  const at = (minutes: number): void => {
    clock = new Date(plan.submittedAt.getTime() + minutes * 60_000);
  };
  const service = new ReferralService(store, undefined, { clientId: 'demo-seed', anySide: true }, () => clock, log);
  const { id } = await service.submit({ type: plan.type, priority: plan.priority, patient: plan.patient, from: plan.from, to: plan.to, reason: plan.reason, consent: true });
  if (plan.fate === 'SUBMITTED') return;
  if (plan.type !== 'GREEN_CHANNEL') {
    at(Math.min(20, plan.acceptAfterMinutes / 2));
    await service.transition(id, 'startReview');
    if (plan.fate === 'UNDER_REVIEW') return;
    at(plan.acceptAfterMinutes);
    if (plan.fate === 'REJECTED') {
      await service.transition(id, 'reject', { reason: '本院暂无床位，建议转往其他医院' });
      return;
    }
    const appointment = new Date(clock.getTime() + 24 * 3600_000).toISOString();
    await service.transition(id, 'accept', {
      appointment,
      department: plan.type === 'DOWN' ? '全科' : '专科门诊',
      ...(plan.type === 'PRE_ADMISSION' ? { certificate: { ward: '内科一病区', validFrom: appointment.slice(0, 10), validTo: new Date(clock.getTime() + 7 * 24 * 3600_000).toISOString().slice(0, 10) } } : {}),
    });
    if (plan.fate === 'ACCEPTED') return;
    if (plan.fate === 'CANCELLED') {
      at(plan.acceptAfterMinutes + 60);
      await service.transition(id, 'cancel', { reason: '患者要求取消' });
      return;
    }
    if (plan.fate === 'NO_SHOW') {
      at(plan.acceptAfterMinutes + 3 * 24 * 60);
      await service.markNoShow(id);
      return;
    }
  }
  // Arrival: the next day, or minutes after a green-channel submission.
  at(plan.type === 'GREEN_CHANNEL' ? 6 + (plan.index % 9) : plan.acceptAfterMinutes + 24 * 60 + 30);
  await service.transition(id, 'recordArrival');
  if (plan.fate === 'ARRIVED') return;
  at(plan.type === 'GREEN_CHANNEL' ? 7 * 24 * 60 : plan.acceptAfterMinutes + 5 * 24 * 60);
  const summary = await store.create<DocumentReference>({
    resourceType: 'DocumentReference',
    status: 'current',
    type: { text: plan.type === 'DOWN' ? '回转单' : '出院小结' },
    subject: { reference: `Patient/${plan.patient}` },
    custodian: { reference: `Organization/${plan.to}` },
    date: clock.toISOString(),
    content: [{ attachment: { contentType: 'text/plain; charset=utf-8', title: plan.type === 'DOWN' ? '回转单' : '出院小结', data: Buffer.from(`${plan.reason}：诊疗完成，病情稳定。`).toString('base64') } }],
  });
  await service.transition(id, 'complete', { outcome: `DocumentReference/${summary.id}` });
  if (plan.followUpDone && (plan.type === 'DOWN' || plan.type === 'GREEN_CHANNEL')) {
    at((plan.type === 'GREEN_CHANNEL' ? 7 * 24 * 60 : plan.acceptAfterMinutes + 5 * 24 * 60) + 7 * 24 * 60);
    await service.completeFollowUp(followUpId(id), '已随访');
  }
  if (plan.fate === 'COMPLETED') return;
  at((plan.type === 'GREEN_CHANNEL' ? 7 * 24 * 60 : plan.acceptAfterMinutes + 5 * 24 * 60) + 24 * 60);
  await service.transition(id, 'acknowledge');
}

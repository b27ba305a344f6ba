/**
 * Critical values (危急值) as FHIR: each rule a result breaks becomes a `Communication` to the requesting (or
 * issuing) organisation — category critical-value, priority stat, `about` the result, `topic` the rule, `sent` —
 * in progress until the receiving side acknowledges it (then completed, `received` and who in `note`). Its id is
 * derived from the result and the rule, so writing the result again (a re-import, a re-applied code map) never
 * notifies twice. Facts for the statistics in `critical_facts`.
 */
import { createHash } from 'node:crypto';
import type { Communication, DiagnosticReport, Observation, Resource } from '@medplum/fhirtypes';
import type { SideCollections } from '../fhir/side-collections.ts';
import { normalisedValueOf } from '../shared/normalized-value.ts';
import { eventKey } from '../database/event-feed.ts';
import { monthOf } from '../shared/calendar.ts';
import { criticalRulesBroken, type CriticalRule } from './rules.ts';

export const CRITICAL_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/critical-value';
/** The derived key of a critical-value Communication (an anchor): its recipient's and sender's queues. */
export const CRITICAL_KEY = 'crit';

export interface CriticalFact {
  _id: string;
  month: string;
  to: string;
  from: string;
  rule: string;
  sentAt: Date;
  acknowledged: number;
  ackMinutes: number | null;
  escalated: number;
}

const finalStatuses = new Set(['final', 'amended', 'corrected']);

/** The rules a final report (its coded findings) or lab result (its normalised value) breaks. */
export function criticalRulesOf(result: DiagnosticReport | Observation, rules: readonly CriticalRule[]): CriticalRule[] {
  if (!finalStatuses.has(result.status ?? '')) return [];
  const codes = (result.code?.coding ?? []).map((coding) => `${coding.system}|${coding.code}`);
  const findings = result.resourceType === 'DiagnosticReport' ? (result.conclusionCode ?? []).flatMap((concept) => (concept.coding ?? []).map((coding) => `${coding.system}|${coding.code}`)) : [];
  const normal = result.resourceType === 'Observation' ? normalisedValueOf(result) : undefined;
  const value = normal?.value !== undefined && normal.code ? { value: normal.value, unit: normal.code } : undefined;
  return criticalRulesBroken({ codes, findings, ...(value ? { value } : {}) }, rules);
}

/** The notifications of a result's critical values (not yet written), with ids derived from result and rule. */
export function criticalNotifications(result: DiagnosticReport | Observation, to: string, from: string, now: Date, rules: readonly CriticalRule[], ackMinutes: number): Communication[] {
  if (!to) return [];
  return criticalRulesOf(result, rules).map((rule) => ({
    resourceType: 'Communication',
    id: `crit-${createHash('sha256').update(`${result.resourceType}/${result.id}|${rule.id}`).digest('hex').slice(0, 40)}`,
    status: 'in-progress',
    category: [{ coding: [{ system: CRITICAL_SYSTEM, code: 'critical-value', display: '危急值' }] }],
    priority: 'stat',
    ...(result.subject?.reference ? { subject: { reference: result.subject.reference } } : {}),
    about: [{ reference: `${result.resourceType}/${result.id}` }],
    topic: { coding: [{ system: CRITICAL_SYSTEM, code: rule.id }], text: rule.text },
    sent: now.toISOString(),
    recipient: [{ reference: to }],
    ...(from ? { sender: { reference: from } } : {}),
    payload: [{ contentString: `危急值：${rule.text}。请在${ackMinutes}分钟内确认并处置。` }],
  }));
}

export interface CriticalEvent {
  /** `<Communication id>|<state>` */
  _id: string;
  /** `<organisation>|<UTC day>` of the recipient and the sender: what a subscription reads */
  keys: string[];
  communication: string;
  state: 'SENT' | 'ACKNOWLEDGED' | 'ESCALATED';
  rule: string;
  text: string;
  result: string;
  to: string;
  from: string;
  at: Date;
}

/** Records a step of a critical value for the live feed (a duplicate, from a retry, is ignored). */
export async function recordCriticalEvent(collections: SideCollections, communication: Communication, state: CriticalEvent['state'], at: Date): Promise<void> {
  const to = communication.recipient?.[0]?.reference ?? '';
  const from = communication.sender?.reference ?? '';
  await collections
    .collection<CriticalEvent>('critical_events')
    .insertOne({ _id: `${communication.id}|${state}`, keys: [...new Set([to, from].filter(Boolean))].map((org) => eventKey(org, at)), communication: communication.id!, state, rule: communication.topic?.coding?.[0]?.code ?? '', text: communication.topic?.text ?? '', result: communication.about?.[0]?.reference ?? '', to, from, at })
    .catch((error: { code?: number }) => {
      if (error.code !== 11000) throw error;
    });
}

/** The facts of notifications just written (a duplicate, from a retry, is ignored), and their SENT events. */
export async function recordCriticalFacts(collections: SideCollections, notifications: Communication[]): Promise<void> {
  for (const communication of notifications) {
    const sent = new Date(communication.sent!);
    await recordCriticalEvent(collections, communication, 'SENT', sent);
    await collections
      .collection<CriticalFact>('critical_facts')
      .insertOne({ _id: communication.id!, month: monthOf(sent), to: communication.recipient?.[0]?.reference ?? '', from: communication.sender?.reference ?? '', rule: communication.topic?.coding?.[0]?.code ?? '', sentAt: sent, acknowledged: 0, ackMinutes: null, escalated: 0 })
      .catch((error: { code?: number }) => {
        if (error.code !== 11000) throw error;
      });
  }
}

/** The queue keys of a critical-value Communication: to its recipient (open or not), from its sender, all open. */
export function criticalKeys(resource: Resource): string[] | undefined {
  if (resource.resourceType !== 'Communication') return undefined;
  const communication = resource as Communication;
  if (!communication.category?.some((concept) => concept.coding?.some((coding) => coding.system === CRITICAL_SYSTEM))) return undefined;
  const open = communication.status === 'in-progress';
  const to = communication.recipient?.[0]?.reference;
  const from = communication.sender?.reference;
  return [...(to ? [`to|${to}`, ...(open ? [`to|${to}|open`] : [])] : []), ...(from ? [`from|${from}`] : []), ...(open ? ['open'] : [])];
}

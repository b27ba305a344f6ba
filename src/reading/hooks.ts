/**
 * What the reading domain adds to every write of a reading Task (registered in src/hub-store.ts):
 *
 * - `readq` (an anchor): the queue keys — `centre|<centre>|<status>|<modality>|<urgency>` with `*` for any, in every
 *   combination, and `req|<requester>` —, so a queue page starts from one top-level equality on an indexed field;
 * - `_rqueue`: the queue order (STAT, then URGENT, then ROUTINE, each oldest first) as one date the page is read in;
 * - `_rdue`: when the report is due, while it is owed (an overdue filter is `_rdue < now`).
 *
 * Computed from the Task alone; the FHIR resource is never changed.
 */
import type { Communication, DiagnosticReport, Observation, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import type { DomainHooks } from '../fhir/hooks.ts';
import type { WorkflowRecord } from '../fhir/workflow-records.ts';
import { READING_REPORT_CODE, READING_SYSTEM, readingOf } from './reading-task.ts';
import { CRITICAL_KEY, CRITICAL_SYSTEM, criticalKeys, criticalNotifications, recordCriticalFacts } from './critical.ts';

/** The reading workflow's name: its own writes act in its scope (fhir/scope.ts). */
export const READING_WORKFLOW = 'reading';

const codedAs = (codings: { system?: string; code?: string }[] | undefined, code: string, system = READING_SYSTEM): boolean => (codings ?? []).some((coding) => coding.system === system && coding.code === code);

/**
 * The reading's records (docs/reading.md): the request, its work item, the report (its findings, conclusion and
 * who read it; recognition may still add standard codings and the mark) and the critical-value notification.
 * Changed only by the reading workflow (workflow-records.ts).
 */
export function readingRecordOf(resource: Resource): WorkflowRecord | undefined {
  const record = (what: string, use: string, fields?: readonly string[]): WorkflowRecord => ({ workflow: READING_WORKFLOW, record: what, use, ...(fields ? { fields } : {}) });
  switch (resource.resourceType) {
    case 'Task':
      return readingOf(resource as Task) ? record("a remote reading's work item", 'claimReading and reportReading') : undefined;
    case 'ServiceRequest':
      return (resource as ServiceRequest).category?.some((category) => codedAs(category.coding, 'remote-reading')) ? record('a remote reading request', 'requestReading') : undefined;
    case 'DiagnosticReport':
      return (resource as DiagnosticReport).category?.some((category) => codedAs(category.coding, READING_REPORT_CODE))
        ? record("a remote reading's report", 'reportReading', ['status', 'category', 'subject', 'basedOn', 'effectiveDateTime', 'issued', 'performer', 'resultsInterpreter', 'imagingStudy', 'conclusion', 'conclusionCode', 'presentedForm'])
        : undefined;
    case 'Communication':
      return (resource as Communication).category?.some((category) => codedAs(category.coding, 'critical-value', CRITICAL_SYSTEM)) ? record('a critical-value notification', 'acknowledgeCriticalValue') : undefined;
    default:
      return undefined;
  }
}
import { DEFAULT_ACK_MINUTES, defaultCriticalRules, dueAt, queueKey, type CriticalRule } from './rules.ts';

/** The derived keys of a reading Task: its queue keys (an anchor), its place in the queue, when its report is due. */
export const QUEUE_KEY = 'readq';
export const ORDER_KEY = '_rqueue';
export const DUE_KEY = '_rdue';

/** The queue key of a centre narrowed by any of status, modality and urgency (`*`: any). */
export function queueAnchor(centre: string, status?: string, modality?: string, urgency?: string): string {
  return ['centre', centre, status ?? '*', modality ?? '*', urgency ?? '*'].join('|');
}

/**
 * The reading domain's hooks. Besides the queue keys: `crit` on critical-value Communications (critical.ts), and
 * after every write of a final lab Observation, the notification of the critical values it carries (to the issuing
 * organisation, whose clinicians must act on it), written once whatever the number of writes of the result.
 */
export function readingHooks(options: { rules?: CriticalRule[]; ackMinutes?: number } = {}): DomainHooks {
  return {
    name: 'reading',
    index: {
      derive: (resource: Resource) => {
        const critical = criticalKeys(resource);
        if (critical) return { [CRITICAL_KEY]: critical };
        return readingKeys(resource);
      },
      anchors: { Task: [QUEUE_KEY], Communication: [CRITICAL_KEY] },
      orders: { Task: [ORDER_KEY] },
      fingerprint: 'reading-1',
    },
    workflowRecords: { recordOf: readingRecordOf },
    afterWrite: async (written, context) => {
      const observations = written.filter((item) => item.operation !== 'delete' && item.resource.resourceType === 'Observation').map((item) => item.resource as Observation);
      const now = new Date();
      const notifications = observations.flatMap((observation) => {
        const issuer = (observation.performer ?? []).map((performer) => performer.reference).find((reference) => reference?.startsWith('Organization/'));
        return issuer ? criticalNotifications(observation, issuer, issuer, now, options.rules ?? defaultCriticalRules, options.ackMinutes ?? DEFAULT_ACK_MINUTES) : [];
      });
      if (notifications.length === 0) return;
      await context.store.writeMany(notifications.map((resource) => ({ resource, mode: 'create' as const })));
      await recordCriticalFacts(context.collections, notifications);
    },
  };
}

function readingKeys(resource: Resource): Record<string, unknown> {
  if (resource.resourceType !== 'Task') return {};
  const reading = readingOf(resource as Task);
  if (!reading) return {};
  const keys = [
    // Every combination of status, modality and urgency (8 keys): a queue page, however narrowed, starts from one.
    ...(reading.centre
      ? [undefined, reading.status].flatMap((status) => [undefined, reading.modality].flatMap((modality) => [undefined, reading.urgency].map((urgency) => queueAnchor(reading.centre!, status, modality, urgency))))
      : []),
    ...(reading.requester ? [`req|${reading.requester}`] : []),
  ];
  const owed = reading.status === 'REQUESTED' || reading.status === 'CLAIMED';
  return {
    [QUEUE_KEY]: keys,
    [ORDER_KEY]: queueKey(reading.requestedAt, reading.urgency),
    ...(owed ? { [DUE_KEY]: dueAt(reading.requestedAt, reading.modality, reading.urgency) } : {}),
  };
}

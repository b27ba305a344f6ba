/**
 * What the referral domain adds to every write of a referral Task (registered in src/hub-store.ts):
 *
 * - `refbox` (an anchor): the inbox keys of the Task — `in|<receiving organisation>` and `out|<referring organisation>`,
 *   each also with `|<status>` — so an inbox page starts from one top-level equality on an indexed field;
 * - `_queue`: the inbox order (green channel first, then due time) as one date the page is read in;
 * - `_rtype`, `_awaitsUntil`: the referral type, and the due time while the receiving side owes its response;
 * - workflowRecords: the referral's records, changed only by its workflow.
 *
 * Computed from the Task alone; the FHIR resource is never changed.
 */
import type { Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import type { DomainHooks } from '../fhir/hooks.ts';
import type { WorkflowRecord } from '../fhir/workflow-records.ts';
import { referralOf } from './referral-task.ts';
import { ADMISSION_CERTIFICATE_SYSTEM, awaitsResponse, dueAt, queueKey, REFERRAL_NUMBER_SYSTEM, REFERRAL_TASK_SYSTEM, REFERRAL_TYPE_SYSTEM } from './rules.ts';

/** The referral workflow's name: its own writes act in its scope (fhir/scope.ts). */
export const REFERRAL_WORKFLOW = 'referral';

const TRANSITIONS = 'the referral mutations (referralStartReview, referralAccept, referralReject, referralRecordArrival, referralComplete, referralAcknowledge, referralCancel)';

/**
 * The referral's records (docs/referral.md): its workflow Task and follow-up Task, its form and admission
 * certificate, and the slots referrals book. Changed only by the referral workflow (workflow-records.ts).
 */
export function referralRecordOf(resource: Resource): WorkflowRecord | undefined {
  const record = (what: string, use: string): WorkflowRecord => ({ workflow: REFERRAL_WORKFLOW, record: what, use });
  if (resource.resourceType === 'Task') {
    const task = resource as Task;
    if (referralOf(task)) return record("a referral's workflow Task", TRANSITIONS);
    if (task.code?.coding?.some((coding) => coding.system === REFERRAL_TASK_SYSTEM)) return record("a referral's follow-up Task", 'referralFollowUpComplete');
  }
  if (resource.resourceType === 'ServiceRequest') {
    const request = resource as ServiceRequest;
    const systems = (request.identifier ?? []).map((identifier) => identifier.system);
    const form = systems.includes(REFERRAL_NUMBER_SYSTEM) || (request.category ?? []).some((category) => category.coding?.some((coding) => coding.system === REFERRAL_TYPE_SYSTEM));
    if (form) return record("a referral's form (双向转诊单)", `referralSubmit for a new referral, ${TRANSITIONS} for this one`);
    if (systems.includes(ADMISSION_CERTIFICATE_SYSTEM)) return record('an electronic admission certificate (电子住院证)', 'referralAccept(certificate:)');
  }
  if (resource.resourceType === 'Slot') return record('a slot referrals book (a bed or an appointment)', 'referralPublishSlots to publish slots and referralAccept(slot:) to book one');
  return undefined;
}

/** The derived keys of a referral Task: its inbox keys (an anchor), its place in the inbox, its type, its response due time. */
export const INBOX_KEY = 'refbox';
export const QUEUE_KEY = '_queue';
export const TYPE_KEY = '_rtype';
export const AWAITS_KEY = '_awaitsUntil';

export function inboxKey(direction: 'in' | 'out', organization: string, status?: string): string {
  return `${direction}|${organization}${status ? `|${status}` : ''}`;
}

export const referralHooks: DomainHooks = {
  name: 'referral',
  index: {
    derive: (resource: Resource) => {
      if (resource.resourceType !== 'Task') return {};
      const referral = referralOf(resource as Task);
      if (!referral) return {};
      const keys = [
        ...(referral.to ? [inboxKey('in', referral.to), inboxKey('in', referral.to, referral.status)] : []),
        ...(referral.from ? [inboxKey('out', referral.from), inboxKey('out', referral.from, referral.status)] : []),
        `any|${referral.status}`,
      ];
      const due = dueAt(referral.submittedAt, referral.type, referral.priority);
      return {
        [INBOX_KEY]: keys,
        [QUEUE_KEY]: queueKey(referral.type, due),
        [TYPE_KEY]: referral.type,
        // Present while the receiving side owes its response: an overdue filter is `_awaitsUntil < now`.
        ...(awaitsResponse(referral.type, referral.status) ? { [AWAITS_KEY]: due } : {}),
      };
    },
    anchors: { Task: [INBOX_KEY] },
    orders: { Task: [QUEUE_KEY] },
  },
  workflowRecords: { recordOf: referralRecordOf },
};

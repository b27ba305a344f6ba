/**
 * What the referral domain adds to every write of a referral Task (registered in src/hub-store.ts):
 *
 * - `t_refbox`: the inbox keys of the Task — `in|<receiving organisation>` and `out|<referring organisation>`,
 *   each also with `|<status>` — so an inbox page starts from one top-level equality on an indexed field;
 * - `_queue`: the inbox order (green channel first, then due time) as one date the page is read in.
 *
 * Computed from the Task alone; the FHIR resource is never changed.
 */
import type { Resource, Task } from '@medplum/fhirtypes';
import type { StoreExtension } from '../fhir/store.ts';
import { referralOf } from './referral-task.ts';
import { awaitsResponse, dueAt, queueKey } from './rules.ts';

export const REFERRAL_INBOX_FIELD = 't_refbox';
export const REFERRAL_QUEUE_PATH = 'sp._queue';

export function inboxKey(direction: 'in' | 'out', organization: string, status?: string): string {
  return `${direction}|${organization}${status ? `|${status}` : ''}`;
}

export const referralExtension: StoreExtension = {
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
      [REFERRAL_INBOX_FIELD]: keys,
      _queue: queueKey(referral.type, due),
      _rtype: referral.type,
      // Present while the receiving side owes its response: an overdue filter is `_awaitsUntil < now`.
      ...(awaitsResponse(referral.type, referral.status) ? { _awaitsUntil: due } : {}),
    };
  },
  indexes: { Task: [REFERRAL_INBOX_FIELD] },
  orders: { Task: [REFERRAL_QUEUE_PATH] },
};

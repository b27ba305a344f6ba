/** Reading and writing the referral's two FHIR resources: the form (ServiceRequest) and the workflow (Task). */
import type { Task } from '@medplum/fhirtypes';
import { REFERRAL_STATUS_SYSTEM, REFERRAL_TYPE_SYSTEM, referralStatuses, referralTypes, taskStatusOf, type ReferralPriority, type ReferralStatus, type ReferralType } from './rules.ts';

export interface ReferralFacts {
  status: ReferralStatus;
  type: ReferralType;
  priority: ReferralPriority;
  /** `Organization/<id>` of the referring and receiving sides */
  from?: string;
  to?: string;
  submittedAt: Date;
}

/** The referral facts of a Task, or undefined when the Task is not a referral's workflow. */
export function referralOf(task: Task): ReferralFacts | undefined {
  const status = task.businessStatus?.coding?.find((coding) => coding.system === REFERRAL_STATUS_SYSTEM)?.code as ReferralStatus | undefined;
  if (!status || !referralStatuses.includes(status)) return undefined;
  const code = task.code?.coding?.find((coding) => coding.system === REFERRAL_TYPE_SYSTEM)?.code as ReferralType | undefined;
  const type: ReferralType = code && referralTypes.includes(code) ? code : task.priority === 'stat' ? 'GREEN_CHANNEL' : 'UP';
  const priority = (task.priority === 'asap' ? 'urgent' : (task.priority ?? 'routine')) as ReferralPriority;
  return {
    status,
    type,
    priority,
    ...(task.requester?.reference?.startsWith('Organization/') ? { from: task.requester.reference } : {}),
    ...(task.owner?.reference?.startsWith('Organization/') ? { to: task.owner.reference } : {}),
    submittedAt: new Date(task.authoredOn ?? task.meta?.lastUpdated ?? 0),
  };
}

/** The Task with a new business status (and its Task.status), as one new version. */
export function withStatus(task: Task, status: ReferralStatus, at: Date): Task {
  return {
    ...task,
    status: taskStatusOf[status] as Task['status'],
    businessStatus: { coding: [{ system: REFERRAL_STATUS_SYSTEM, code: status }], text: status },
    lastModified: at.toISOString(),
  };
}

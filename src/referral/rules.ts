/**
 * The rules of two-way referral (docs/referral.md), as plain functions over plain values: the state
 * machine (which action leads from which business status to which, and which side may take it), the Task status
 * of each business status, the response-time targets and the inbox order. No database here.
 */

export const REFERRAL_STATUS_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/referral-status';
export const REFERRAL_TYPE_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/referral-type';
export const REFERRAL_TASK_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/referral-task';
export const REFERRAL_NUMBER_SYSTEM = 'https://demo.consortium-hub.cn/sid/referral-number';
export const ADMISSION_CERTIFICATE_SYSTEM = 'https://demo.consortium-hub.cn/sid/admission-certificate';

export const referralTypes = ['UP', 'DOWN', 'GREEN_CHANNEL', 'PRE_ADMISSION'] as const;
export type ReferralType = (typeof referralTypes)[number];
export const referralPriorities = ['routine', 'urgent', 'stat'] as const;
export type ReferralPriority = (typeof referralPriorities)[number];

export const referralStatuses = ['DRAFT', 'SUBMITTED', 'UNDER_REVIEW', 'ACCEPTED', 'REJECTED', 'ARRIVED', 'NO_SHOW', 'CANCELLED', 'COMPLETED', 'CLOSED'] as const;
export type ReferralStatus = (typeof referralStatuses)[number];

/** Task.status of each business status (the table of referral.md). */
export const taskStatusOf: Record<ReferralStatus, string> = {
  DRAFT: 'draft',
  SUBMITTED: 'requested',
  UNDER_REVIEW: 'received',
  ACCEPTED: 'accepted',
  REJECTED: 'rejected',
  ARRIVED: 'in-progress',
  NO_SHOW: 'failed',
  CANCELLED: 'cancelled',
  COMPLETED: 'completed',
  CLOSED: 'completed',
};

export const referralActions = ['startReview', 'accept', 'reject', 'recordArrival', 'complete', 'acknowledge', 'cancel', 'markNoShow'] as const;
export type ReferralAction = (typeof referralActions)[number];

/** Who takes an action: the referring side, the receiving side, or the hub itself. */
export type Side = 'referring' | 'receiving' | 'system';

interface Transition {
  from: readonly ReferralStatus[];
  to: ReferralStatus;
  side: Side;
}

/** The state machine: every transition there is. Anything else is ILLEGAL_TRANSITION. */
export const transitions: Record<ReferralAction, Transition> = {
  startReview: { from: ['SUBMITTED'], to: 'UNDER_REVIEW', side: 'receiving' },
  accept: { from: ['SUBMITTED', 'UNDER_REVIEW'], to: 'ACCEPTED', side: 'receiving' },
  reject: { from: ['SUBMITTED', 'UNDER_REVIEW'], to: 'REJECTED', side: 'receiving' },
  recordArrival: { from: ['ACCEPTED'], to: 'ARRIVED', side: 'receiving' },
  complete: { from: ['ARRIVED'], to: 'COMPLETED', side: 'receiving' },
  acknowledge: { from: ['COMPLETED'], to: 'CLOSED', side: 'referring' },
  cancel: { from: ['SUBMITTED', 'UNDER_REVIEW', 'ACCEPTED'], to: 'CANCELLED', side: 'referring' },
  markNoShow: { from: ['ACCEPTED'], to: 'NO_SHOW', side: 'system' },
};

export class IllegalTransition extends Error {
  constructor(
    readonly current: ReferralStatus,
    readonly action: ReferralAction,
  ) {
    super(`A referral in status ${current} cannot ${action} (it would become ${transitions[action].to}); allowed from ${transitions[action].from.join(', ')}`);
  }
}

/** The status an action leads to from the current one, or IllegalTransition. */
export function nextStatus(current: ReferralStatus, action: ReferralAction): ReferralStatus {
  const transition = transitions[action];
  if (!transition.from.includes(current)) throw new IllegalTransition(current, action);
  return transition.to;
}

/** The status a newly submitted referral starts in: the green channel skips review. */
export function initialStatus(type: ReferralType): ReferralStatus {
  return type === 'GREEN_CHANNEL' ? 'ACCEPTED' : 'SUBMITTED';
}

/** Response-time targets in minutes: green channel 10 min, urgent 2 h, routine 24 h (stat counts as urgent). */
export function responseTargetMinutes(type: ReferralType, priority: ReferralPriority): number {
  if (type === 'GREEN_CHANNEL') return 10;
  return priority === 'routine' ? 24 * 60 : 120;
}

/** When the receiving side must have responded. */
export function dueAt(submittedAt: Date, type: ReferralType, priority: ReferralPriority): Date {
  return new Date(submittedAt.getTime() + responseTargetMinutes(type, priority) * 60_000);
}

/**
 * Statuses in which the receiving side still owes its response: review and decision; for the green channel
 * (accepted at once) the patient's reception on arrival.
 */
export function awaitsResponse(type: ReferralType, status: ReferralStatus): boolean {
  if (type === 'GREEN_CHANNEL') return status === 'ACCEPTED';
  return status === 'SUBMITTED' || status === 'UNDER_REVIEW';
}

/** How many minutes past its target a referral is now (0 when not overdue or no longer waiting). */
export function overdueMinutes(type: ReferralType, status: ReferralStatus, due: Date, now: Date): number {
  if (!awaitsResponse(type, status)) return 0;
  return Math.max(0, Math.floor((now.getTime() - due.getTime()) / 60_000));
}

/** Statuses still open (the inbox's default): neither finished nor refused. */
export const openStatuses: readonly ReferralStatus[] = ['SUBMITTED', 'UNDER_REVIEW', 'ACCEPTED', 'ARRIVED', 'COMPLETED'];

/**
 * The inbox order as one date: green channel first (moved a thousand years earlier), then by due time. One
 * stored key serves the whole order, so a page is read in order from the database.
 */
export function queueKey(type: ReferralType, due: Date): Date {
  const GREEN_FIRST_MS = 1000 * 365.25 * 24 * 3600 * 1000;
  return new Date(due.getTime() - (type === 'GREEN_CHANNEL' ? GREEN_FIRST_MS : 0));
}

/** Down-referrals and returned emergency referrals are followed up by the patient's home organisation within 14 days. */
export const FOLLOW_UP_DAYS = 14;
export function needsFollowUp(type: ReferralType): boolean {
  return type === 'DOWN' || type === 'GREEN_CHANNEL';
}

/** Thin resolvers over the referral domain (src/referral): submit, one mutation per transition, the inbox, one referral. */
import type { Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import { organizationReference } from '../fhir/references.ts';
import type { MutationResolvers, QueryResolvers } from '../generated/graphql.ts';
import { followUpId, ReferralService, type Referral } from '../referral/referral-service.ts';
import { referralEvents } from '../referral/referral-events.ts';
import { stoppable } from '../database/event-feed.ts';
import { referralStatistics } from '../referral/referral-stats.ts';
import { referralOf } from '../referral/referral-task.ts';
import { dueAt, overdueMinutes, type ReferralStatus } from '../referral/rules.ts';
import { changedByOf } from '../referral/referral-service.ts';
import type { RequestContext } from '../request/context.ts';

const INBOX_DEFAULT = 20;
const INBOX_MAX = 200;

/** The referral service acting for the caller of this request. */
function referrals(context: RequestContext): ReferralService {
  const access = context.access;
  if (access?.isResident) throw new HubError('FORBIDDEN', 'Residents read their referrals through their own records, not the referral workflow');
  return new ReferralService(
    context.store,
    access,
    {
      clientId: context.caller,
      ...(access?.caller.organization ? { organization: access.caller.organization } : {}),
      anySide: !access || access.isAdmin,
    },
    () => new Date(),
    context.referralLog,
    context.identity.people,
  );
}

const load = async (context: RequestContext, reference: string | undefined): Promise<Resource | null> => (reference ? context.resources.load(reference) : null);
const output = (task: Task, name: string) => task.output?.find((item) => item.type?.text === name);

export const referralQueryResolvers: Pick<QueryResolvers, 'referral' | 'referralFormLink' | 'referralInbox' | 'referralStatistics' | 'referralSlots'> = {
  referralSlots: (_parent, args, context) => referrals(context).slots(args.organization, args.all ?? false) as never,
  referralStatistics: (_parent, args, context) => {
    const access = context.access;
    const organization = args.organization ? organizationReference(args.organization) : undefined;
    if (access && !access.isAdmin && (access.isResident || !organization || organization !== access.caller.organization)) {
      throw new HubError('FORBIDDEN', 'A member reads the statistics of its own organisation; the whole consortium is for administrators');
    }
    const from = new Date(args.from);
    const to = new Date(args.to);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw new HubError('BAD_USER_INPUT', '`from` and `to` are dates, e.g. 2026-01-01');
    return referralStatistics(context.referralLog, { from, to, groupBy: args.groupBy, ...(organization ? { organization } : {}) }) as never;
  },
  referral: (_parent, { id }, context) => referrals(context).referral(id) as never,
  referralFormLink: async (_parent, { id }, context) => {
    if (!context.formLink) throw new HubError('FORBIDDEN', 'Form links are given to authenticated callers only (AUTH_REQUIRED is off here)');
    // The caller must be able to read the referral now; the page reads it again as the caller when opened.
    await referrals(context).referral(id);
    return context.formLink(id);
  },
  referralInbox: (_parent, args, context) => {
    const count = args._count ?? INBOX_DEFAULT;
    if (count < 1 || count > INBOX_MAX) throw new HubError('BAD_USER_INPUT', `_count must be between 1 and ${INBOX_MAX}`);
    return referrals(context).inbox({
      organization: args.organization,
      direction: args.direction,
      ...(args.status ? { status: args.status as ReferralStatus[] } : {}),
      ...(args.type ? { type: args.type } : {}),
      ...(args.overdue !== null && args.overdue !== undefined ? { overdue: args.overdue } : {}),
      count,
      ...(args._cursor ? { cursor: args._cursor } : {}),
      now: new Date(),
    }) as never;
  },
};

export const referralMutationResolvers: Pick<
  MutationResolvers,
  | 'referralSubmit'
  | 'referralStartReview'
  | 'referralAccept'
  | 'referralReject'
  | 'referralRecordArrival'
  | 'referralComplete'
  | 'referralAcknowledge'
  | 'referralCancel'
  | 'referralFollowUpComplete'
  | 'referralPublishSlots'
> = {
  referralPublishSlots: (_parent, args, context) =>
    referrals(context).publishSlots(args.organization, args.kind, args.department, args.slots.map((slot) => ({ start: slot.start, end: slot.end, ...(slot.note ? { note: slot.note } : {}) }))) as never,
  referralSubmit: (_parent, { input }, context) =>
    referrals(context).submit(Object.fromEntries(Object.entries(input).filter(([, value]) => value !== null && value !== undefined)) as never) as never,
  referralStartReview: (_parent, { id, ifMatch }, context) => referrals(context).transition(id, 'startReview', { ...(ifMatch ? { ifMatch } : {}) }) as never,
  referralAccept: (_parent, { id, ifMatch, appointment, department, certificate, slot }, context) =>
    referrals(context).transition(id, 'accept', {
      ...(ifMatch ? { ifMatch } : {}),
      ...(slot ? { slot } : {}),
      ...(appointment ? { appointment } : {}),
      ...(department ? { department } : {}),
      ...(certificate ? { certificate: { ward: certificate.ward, validFrom: certificate.validFrom, validTo: certificate.validTo, ...(certificate.bed ? { bed: certificate.bed } : {}) } } : {}),
    }) as never,
  referralReject: (_parent, { id, ifMatch, reason, suggestedReceiver }, context) =>
    referrals(context).transition(id, 'reject', { reason, ...(ifMatch ? { ifMatch } : {}), ...(suggestedReceiver ? { suggestedReceiver } : {}) }) as never,
  referralRecordArrival: (_parent, { id, ifMatch, encounter }, context) =>
    referrals(context).transition(id, 'recordArrival', { ...(ifMatch ? { ifMatch } : {}), ...(encounter ? { encounter } : {}) }) as never,
  referralComplete: (_parent, { id, ifMatch, outcome }, context) => referrals(context).transition(id, 'complete', { outcome, ...(ifMatch ? { ifMatch } : {}) }) as never,
  referralAcknowledge: (_parent, { id, ifMatch }, context) => referrals(context).transition(id, 'acknowledge', { ...(ifMatch ? { ifMatch } : {}) }) as never,
  referralCancel: (_parent, { id, ifMatch, reason }, context) =>
    referrals(context).transition(id, 'cancel', { ...(ifMatch ? { ifMatch } : {}), ...(reason ? { reason } : {}) }) as never,
  referralFollowUpComplete: (_parent, { id, note }, context) => referrals(context).completeFollowUp(id, note ?? undefined) as never,
};

export const referralTypeResolvers = {
  Referral: {
    type: (referral: Referral) => referral.facts.type,
    status: (referral: Referral) => referral.facts.status,
    priority: (referral: Referral) => referral.facts.priority,
    version: (referral: Referral) => referral.task.meta?.versionId ?? '',
    submittedAt: (referral: Referral) => referral.facts.submittedAt.toISOString(),
    dueAt: (referral: Referral) => dueAt(referral.facts.submittedAt, referral.facts.type, referral.facts.priority).toISOString(),
    overdue: (referral: Referral) => overdueMinutes(referral.facts.type, referral.facts.status, dueAt(referral.facts.submittedAt, referral.facts.type, referral.facts.priority), new Date()) > 0,
    overdueMinutes: (referral: Referral) => overdueMinutes(referral.facts.type, referral.facts.status, dueAt(referral.facts.submittedAt, referral.facts.type, referral.facts.priority), new Date()),
    patient: (referral: Referral, _args: unknown, context: RequestContext) => load(context, referral.task.for?.reference),
    from: (referral: Referral, _args: unknown, context: RequestContext) => load(context, referral.facts.from),
    to: (referral: Referral, _args: unknown, context: RequestContext) => load(context, referral.facts.to),
    form: (referral: Referral, _args: unknown, context: RequestContext) => load(context, referral.task.focus?.reference),
    task: (referral: Referral) => referral.task,
    attachments: async (referral: Referral, _args: unknown, context: RequestContext) => {
      const form = (await load(context, referral.task.focus?.reference)) as ServiceRequest | null;
      const references = (form?.supportingInfo ?? []).map((info) => info.reference).filter((reference): reference is string => Boolean(reference));
      return (await context.resources.loadMany(references)).filter((resource) => resource && !(resource instanceof Error));
    },
    statusReason: (referral: Referral) => referral.task.statusReason?.text ?? null,
    appointment: (referral: Referral) => referral.task.restriction?.period?.start ?? null,
    department: (referral: Referral) => output(referral.task, 'department')?.valueString ?? null,
    slot: (referral: Referral, _args: unknown, context: RequestContext) => load(context, output(referral.task, 'slot')?.valueReference?.reference),
    admissionCertificate: (referral: Referral, _args: unknown, context: RequestContext) => load(context, output(referral.task, 'admission-certificate')?.valueReference?.reference),
    outcome: (referral: Referral, _args: unknown, context: RequestContext) => load(context, output(referral.task, 'outcome')?.valueReference?.reference),
    followUp: (referral: Referral, _args: unknown, context: RequestContext) => (referral.facts.status === 'COMPLETED' || referral.facts.status === 'CLOSED' ? load(context, `Task/${followUpId(referral.id)}`) : null),
    timeline: async (referral: Referral, _args: unknown, context: RequestContext) => {
      const versions = await context.store.history('Task', referral.id);
      return versions
        .filter((entry) => entry.resource)
        .map((entry) => {
          const task = entry.resource as Task;
          return {
            status: referralOf(task)?.status ?? 'DRAFT',
            at: task.lastModified ?? entry.lastUpdated,
            version: entry.versionId,
            by: changedByOf(task) ?? null,
          };
        })
        .reverse();
    },
  },
};

/** Subscription.referralEvents: transitions of one organisation's referrals, polled from the database. */
export const referralSubscriptionResolvers = {
  referralEvents: {
    subscribe: (_parent: unknown, args: { organization: string }, context: RequestContext): AsyncIterableIterator<unknown> => {
      const organization = organizationReference(args.organization);
      const access = context.access;
      if (access && !access.isAdmin && (access.isResident || access.caller.organization !== organization)) {
        throw new HubError('FORBIDDEN', `A member follows its own organisation's referrals, not ${organization}'s`);
      }
      // Stopped when the client unsubscribes or goes away (an async generator alone would poll on until its next event).
      return stoppable((signal) => referralEvents(context.referralLog, organization, signal));
    },
  },
};

/** Thin resolvers over remote reading and critical values (src/reading). */
import type { Communication, Resource } from '@medplum/fhirtypes';
import { eventFeed, stoppable } from '../database/event-feed.ts';
import { HubError } from '../errors.ts';
import { organizationReference } from '../fhir/references.ts';
import type { CriticalEvent } from '../reading/critical.ts';
import type { MutationResolvers, QueryResolvers } from '../generated/graphql.ts';
import { ReadingService, type Reading } from '../reading/reading-service.ts';
import { ReferralService } from '../referral/referral-service.ts';
import { dueAt, overdue } from '../reading/rules.ts';
import { ESCALATED_TAG } from '../reading/reading-service.ts';
import { DEFAULT_ACK_MINUTES } from '../reading/rules.ts';
import type { RequestContext } from '../request/context.ts';

const QUEUE_DEFAULT = 20;
const QUEUE_MAX = 200;

const actorOf = (context: RequestContext) => ({ clientId: context.caller, ...(context.access?.caller.organization ? { organization: context.access.caller.organization } : {}), anySide: !context.access || context.access.isAdmin });

function readings(context: RequestContext): ReadingService {
  const access = context.access;
  if (access?.isResident) throw new HubError('FORBIDDEN', 'Residents read their reports through their own records');
  return new ReadingService(context.store, access, context.collections, actorOf(context), () => new Date(), { people: context.identity.people, ...context.reading });
}

const load = async (context: RequestContext, reference: string | undefined): Promise<Resource | null> => (reference ? context.resources.load(reference) : null);

function criticalView(communication: Communication, ackMinutes = DEFAULT_ACK_MINUTES) {
  const sent = new Date(communication.sent ?? 0);
  const acknowledgement = communication.status === 'completed' ? communication.note?.at(-1) : undefined;
  return {
    id: communication.id!,
    rule: communication.topic?.coding?.[0]?.code ?? '',
    text: communication.topic?.text ?? '',
    status: communication.status,
    sentAt: sent.toISOString(),
    ackDueAt: new Date(sent.getTime() + ackMinutes * 60_000).toISOString(),
    acknowledgedAt: communication.received ?? null,
    acknowledgedBy: acknowledgement?.authorString ?? null,
    escalated: communication.meta?.tag?.some((tag) => tag.system === ESCALATED_TAG.system && tag.code === ESCALATED_TAG.code) ?? false,
    result: communication.about?.[0]?.reference ?? '',
    communication,
  };
}

type CriticalView = ReturnType<typeof criticalView>;

export const readingQueryResolvers: Pick<QueryResolvers, 'readingQueue' | 'reading' | 'criticalValues' | 'readingStatistics'> = {
  readingQueue: async (_parent, args, context) => {
    const count = args._count ?? QUEUE_DEFAULT;
    if (count < 1 || count > QUEUE_MAX) throw new HubError('BAD_USER_INPUT', `_count must be between 1 and ${QUEUE_MAX}`);
    const page = await readings(context).queue({ centre: args.centre, count, ...(args.status ? { status: args.status } : {}), ...(args.modality ? { modality: args.modality } : {}), ...(args.urgency ? { urgency: args.urgency } : {}), ...(args.overdue !== null && args.overdue !== undefined ? { overdue: args.overdue } : {}), ...(args.cursor ? { cursor: args.cursor } : {}) });
    return { items: page.items, next: page.next ?? null } as never;
  },
  reading: (_parent, args, context) => readings(context).reading(args.id) as never,
  criticalValues: async (_parent, args, context) => (await readings(context).criticalValues(args.organization, args.open ?? false)).map((communication) => criticalView(communication, context.reading.ackMinutes)) as never,
  readingStatistics: async (_parent, args, context) => {
    // Checked before anything is read: a member reads its own centre's, the consortium's are for administrators.
    const service = readings(context);
    if (context.access && !context.access.isAdmin && (!args.centre || organizationReference(args.centre) !== context.access.caller.organization)) throw new HubError('FORBIDDEN', 'A member reads the statistics of its own reading centre');
    const statistics = await service.statistics(args.from, args.to, args.centre ?? undefined);
    return { rows: statistics.rows, criticalValues: statistics.critical } as never;
  },
};

export const readingMutationResolvers: Pick<MutationResolvers, 'requestReading' | 'claimReading' | 'reportReading' | 'acknowledgeCriticalValue' | 'criticalValueGreenChannel'> = {
  requestReading: (_parent, args, context) =>
    readings(context).request({ patient: args.patient, modality: args.modality, centre: args.centre, ...(args.urgency ? { urgency: args.urgency } : {}), ...(args.from ? { from: args.from } : {}), ...(args.study ? { study: args.study } : {}), ...(args.reason ? { reason: args.reason } : {}) }) as never,
  claimReading: (_parent, args, context) => readings(context).claim(args.id, args.reader, args.ifMatch ?? undefined) as never,
  reportReading: async (_parent, args, context) => {
    const result = await readings(context).report(args.id, { conclusion: args.conclusion, ...(args.findings ? { findings: args.findings } : {}), ...(args.ifMatch ? { ifMatch: args.ifMatch } : {}) });
    return { reading: result.reading, report: result.report, criticalValues: result.critical.map((communication) => criticalView(communication, context.reading.ackMinutes)) } as never;
  },
  acknowledgeCriticalValue: async (_parent, args, context) => criticalView(await readings(context).acknowledge(args.id, args.by), context.reading.ackMinutes) as never,
  criticalValueGreenChannel: async (_parent, args, context) => {
    const referral = await readings(context).greenChannelReferral(args.id, args.reason ?? undefined);
    // The reading side has checked that the caller received the critical value; the referral workflow submits it.
    return new ReferralService(context.store, undefined, actorOf(context), () => new Date(), context.referralLog).submit(referral) as never;
  },
};

export const readingTypeResolvers = {
  Reading: {
    version: (reading: Reading) => reading.task.meta?.versionId ?? '',
    modality: (reading: Reading) => reading.facts.modality,
    urgency: (reading: Reading) => reading.facts.urgency,
    status: (reading: Reading) => reading.facts.status,
    requestedAt: (reading: Reading) => reading.facts.requestedAt.toISOString(),
    dueAt: (reading: Reading) => dueAt(reading.facts.requestedAt, reading.facts.modality, reading.facts.urgency).toISOString(),
    overdue: (reading: Reading) => overdue(reading.facts.requestedAt, reading.facts.modality, reading.facts.urgency, reading.facts.status, new Date()),
    reader: (reading: Reading) => reading.facts.reader ?? null,
    requester: (reading: Reading, _args: unknown, context: RequestContext) => load(context, reading.facts.requester),
    centre: (reading: Reading, _args: unknown, context: RequestContext) => load(context, reading.facts.centre),
    patient: (reading: Reading, _args: unknown, context: RequestContext) => load(context, reading.facts.patient),
    study: (reading: Reading) => reading.facts.study ?? null,
    request: (reading: Reading, _args: unknown, context: RequestContext) => load(context, reading.facts.request),
    report: (reading: Reading, _args: unknown, context: RequestContext) => load(context, reading.facts.report),
  },
  CriticalValue: {
    patient: (view: CriticalView, _args: unknown, context: RequestContext) => load(context, view.communication.subject?.reference),
    to: (view: CriticalView, _args: unknown, context: RequestContext) => load(context, view.communication.recipient?.[0]?.reference),
    from: (view: CriticalView, _args: unknown, context: RequestContext) => load(context, view.communication.sender?.reference),
  },
};

/** Subscription.criticalValueEvents: the critical values of one organisation, polled from the database. */
export const readingSubscriptionResolvers = {
  criticalValueEvents: {
    subscribe: (_parent: unknown, args: { organization: string }, context: RequestContext): AsyncIterableIterator<unknown> => {
      const organization = organizationReference(args.organization);
      const access = context.access;
      if (access && !access.isAdmin && (access.isResident || access.caller.organization !== organization)) throw new HubError('FORBIDDEN', `A member follows its own organisation's critical values, not ${organization}'s`);
      return stoppable((signal) =>
        eventFeed(context.collections.collection<CriticalEvent>('critical_events'), organization, signal, (event) => ({
          criticalValueEvents: { id: event.communication, state: event.state, rule: event.rule, text: event.text, result: event.result, to: event.to, from: event.from, at: event.at.toISOString() },
        })),
      );
    },
  },
};

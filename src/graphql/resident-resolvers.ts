/** Thin resolvers of the county health app's API (src/resident): a resident token's own records only. */
import { HUB_SCOPE } from '../fhir/scope.ts';
import type { Patient } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import type { MutationResolvers, QueryResolvers } from '../generated/graphql.ts';
import { RecognitionService } from '../recognition/recognition-service.ts';
import { ReferralService } from '../referral/referral-service.ts';
import { listSize, ResidentView } from '../resident/resident-service.ts';
import type { RequestContext } from '../request/context.ts';

/** The resident's view, or FORBIDDEN for any other token. */
async function residentView(context: RequestContext): Promise<ResidentView> {
  const records = context.access?.residentRecords;
  if (!records) throw new HubError('FORBIDDEN', 'me and myAccessLog are for a resident token (the county health app)');
  const found = await context.store.readMany('Patient', records);
  return new ResidentView(context.store, records.map((id) => found.get(id)).filter((record): record is Patient => Boolean(record)));
}

/** A national ID shown with its middle digits hidden (430621********011X). */
function masked(records: Patient[], system: string): string | null {
  const value = records.flatMap((record) => record.identifier ?? []).find((identifier) => identifier.system === system)?.value;
  return value && value.length === 18 ? `${value.slice(0, 6)}********${value.slice(14)}` : null;
}

export const residentQueryResolvers: Pick<QueryResolvers, 'me' | 'myAccessLog'> = {
  me: async (_parent, _args, context) => {
    const view = await residentView(context);
    return { view, nationalIdMasked: masked(view.records, context.identity.nationalIdSystem), name: view.records[0]?.name?.[0]?.text ?? null } as never;
  },
  myAccessLog: async (_parent, args, context) => (await (await residentView(context)).accessLog(listSize(args._count, 100))) as never,
};

export const residentMutationResolvers: Pick<MutationResolvers, 'cancelMyReferral'> = {
  cancelMyReferral: async (_parent, args, context) => {
    const view = await residentView(context);
    if (!args.reason.trim()) throw new HubError('BAD_USER_INPUT', 'reason: why the referral is cancelled');
    // Read through the resident's token: only a referral of one of its own records is found.
    const referral = (await view.referrals()).find((item) => item.id === args.id);
    if (!referral) throw new HubError('NOT_FOUND', `Referral ${args.id} is not one of yours`);
    if (!['SUBMITTED', 'UNDER_REVIEW', 'ACCEPTED'].includes(referral.facts.status)) throw new HubError('ILLEGAL_TRANSITION', `A referral ${referral.facts.status} can no longer be cancelled (only before arrival)`);
    // The workflow writes for the resident (whose token writes nothing itself); who is recorded with the change.
    const service = new ReferralService(context.store.scoped(HUB_SCOPE), undefined, { clientId: context.caller, anySide: true }, () => new Date(), context.referralLog);
    return (await service.transition(args.id, 'cancel', { reason: `患者本人通过健康App取消：${args.reason.trim()}`, ifMatch: referral.task.meta?.versionId ?? '' })) as never;
  },
};

type MeParent = { view: ResidentView };

export const residentTypeResolvers = {
  Me: {
    records: async ({ view }: MeParent, _args: unknown, context: RequestContext) =>
      Promise.all(view.records.map(async (patient) => ({ patient, organization: patient.managingOrganization?.reference ? await context.resources.load(patient.managingOrganization.reference) : null }))),
    encounters: ({ view }: MeParent, args: { _count?: number | null }) => view.list('Encounter', listSize(args._count), '-date'),
    labResults: async ({ view }: MeParent, args: { _count?: number | null }, context: RequestContext) => {
      context.recognitionData ??= new RecognitionService(context.store.scoped(HUB_SCOPE), context.recognitionMark).data();
      return view.labResults(listSize(args._count), await context.recognitionData);
    },
    reports: ({ view }: MeParent, args: { _count?: number | null }) => view.list('DiagnosticReport', listSize(args._count), '-date'),
    medications: ({ view }: MeParent, args: { _count?: number | null }) => view.list('MedicationRequest', listSize(args._count)),
    allergies: ({ view }: MeParent) => view.list('AllergyIntolerance', 100),
    referrals: ({ view }: MeParent) => view.referrals(),
    followUps: ({ view }: MeParent) => view.followUps(),
    readingReports: ({ view }: MeParent) => view.readingReports(),
  },
  MyLabResult: {
    issuedBy: (result: { issuer?: string }, _args: unknown, context: RequestContext) => (result.issuer ? context.resources.load(result.issuer) : null),
  },
  MyAccessLogEntry: {
    organization: (entry: { organization?: string }, _args: unknown, context: RequestContext) => (entry.organization ? context.resources.load(entry.organization) : null),
  },
};

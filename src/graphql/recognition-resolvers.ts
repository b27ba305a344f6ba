/** Thin resolvers over result recognition (src/recognition): the catalog and the candidates of a person. */
import { HUB_SCOPE } from '../fhir/scope.ts';
import type { CodeSystem, Organization } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import { organizationReference } from '../fhir/references.ts';
import type { MutationResolvers, QueryResolvers } from '../generated/graphql.ts';
import { RecognitionDecisions, type DecisionInput } from '../recognition/decisions.ts';
import type { DeclineReason } from '../recognition/rules.ts';
import { CATALOG_ID, catalogItems } from '../recognition/catalog.ts';
import { translate, unmappedCodes } from '../recognition/code-maps.ts';
import { issuerOf, type RecognitionResult } from '../recognition/normalise.ts';
import { queueReapply, reapplyJob, reapplyJobs, type ReapplyJob } from '../recognition/reapply-jobs.ts';
import { candidateOf, levelOf, RecognitionService, type RecognitionCandidate } from '../recognition/recognition-service.ts';
import { decide, itemFor, type CatalogItem } from '../recognition/rules.ts';
import type { RequestContext } from '../request/context.ts';

function dateArgument(value: string | null | undefined, name: string): Date {
  if (!value) return new Date();
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new HubError('BAD_USER_INPUT', `${name} is not a date: ${value}`);
  return date;
}

const itemView = (item: CatalogItem) => ({ ...item, standardCodes: item.codes, effectiveTo: item.effectiveTo ?? null });

function decisions(context: RequestContext): RecognitionDecisions {
  const access = context.access;
  if (access?.isResident) throw new HubError('FORBIDDEN', 'Recognition decisions are made and counted by member hospitals');
  return new RecognitionDecisions(context.store, context.collections, context.recognitionMark, { ...(access && !access.isAdmin && access.caller.organization ? { organization: access.caller.organization } : {}), ...(access ? { access } : {}) });
}

/** The organisation named, when the caller may look after its code maps: administrators, or the member itself. */
function mapKeeper(context: RequestContext, organization: string): string {
  const reference = organizationReference(organization);
  const access = context.access;
  if (access && !access.isAdmin && (access.isResident || access.caller.organization !== reference)) {
    throw new HubError('FORBIDDEN', 'A member looks after its own code map; the consortium\'s are for administrators');
  }
  return reference;
}

function terminology(context: RequestContext) {
  context.recognitionData ??= new RecognitionService(context.store, context.recognitionMark).data();
  return context.recognitionData;
}

const iso = (date: Date | undefined): string | null => date?.toISOString() ?? null;
const jobView = (job: ReapplyJob) => ({
  id: job._id,
  organization: job.organization,
  reason: job.reason,
  state: job.state.toUpperCase() as 'QUEUED' | 'RUNNING' | 'DONE' | 'FAILED',
  queuedAt: job.queuedAt.toISOString(),
  startedAt: iso(job.startedAt),
  finishedAt: iso(job.finishedAt),
  total: job.total,
  done: job.done,
  changed: job.changed,
  error: job.error ?? null,
});

export const recognitionMutationResolvers: Pick<MutationResolvers, 'recordRecognitionDecision' | 'reapplyCodeMaps'> = {
  reapplyCodeMaps: async (_parent, args, context) => {
    const organization = mapKeeper(context, args.organization);
    return jobView(await queueReapply(context.collections, organization, `requested by ${context.caller}`, 0)) as never;
  },
  recordRecognitionDecision: async (_parent, args, context) => {
    const input: DecisionInput = {
      result: args.result,
      at: args.at,
      accepted: args.accepted,
      ...(args.reason ? { reason: args.reason as DeclineReason } : {}),
      ...(args.text ? { text: args.text } : {}),
      ...(args.patientInformedAt ? { patientInformedAt: args.patientInformedAt } : {}),
      ...(args.orderRepeat !== null && args.orderRepeat !== undefined ? { orderRepeat: args.orderRepeat } : {}),
      ...(args.supersedes ? { supersedes: args.supersedes } : {}),
    };
    return (await decisions(context).record(input)) as never;
  },
};

export const recognitionQueryResolvers: Pick<
  QueryResolvers,
  'recognitionCatalog' | 'recognitionCandidates' | 'recognitionStatistics' | 'unmappedCodes' | 'translateCode' | 'recognitionJob' | 'recognitionJobs'
> = {
  unmappedCodes: async (_parent, args, context) => {
    const organization = mapKeeper(context, args.organization);
    // Codes and counts only, no patient data: read for the hub, past the caller's per-request budget.
    return (await unmappedCodes(context.store.scoped(HUB_SCOPE), organization, await terminology(context))) as never;
  },
  translateCode: async (_parent, args, context) => {
    const asOf = dateArgument(args.asOf, 'asOf');
    return translate(await terminology(context), organizationReference(args.organization), args.system ?? undefined, args.code, asOf).map((translation) => ({ ...translation, item: translation.item ? itemView(translation.item) : null })) as never;
  },
  recognitionJob: async (_parent, args, context) => {
    const job = await reapplyJob(context.collections, args.id);
    if (!job) return null;
    mapKeeper(context, job.organization);
    return jobView(job) as never;
  },
  recognitionJobs: async (_parent, args, context) => {
    const organization = args.organization ? mapKeeper(context, args.organization) : undefined;
    if (!organization && context.access && !context.access.isAdmin) throw new HubError('FORBIDDEN', 'A member lists the jobs of its own organisation');
    return (await reapplyJobs(context.collections, organization)).map(jobView) as never;
  },
  recognitionStatistics: async (_parent, args, context) => {
    const organization = args.organization ? organizationReference(args.organization) : undefined;
    const access = context.access;
    if (access && !access.isAdmin && (!organization || organization !== access.caller.organization)) throw new HubError('FORBIDDEN', 'A member reads the statistics of its own organisation; the consortium\'s are for administrators');
    return (await decisions(context).statistics({ from: dateArgument(args.from, 'from'), to: dateArgument(args.to, 'to'), groupBy: args.groupBy, ...(organization ? { organization } : {}) })) as never;
  },
  recognitionCatalog: async (_parent, args, context) => {
    const asOf = dateArgument(args.asOf, 'asOf');
    const found = await context.store.readMany('CodeSystem', [CATALOG_ID]);
    const items = found.has(CATALOG_ID) ? catalogItems(found.get(CATALOG_ID) as CodeSystem) : [];
    // The version of each item in force on the day.
    return items.filter((item) => itemFor(item.codes, [item], asOf)).map(itemView) as never;
  },
  recognitionCandidates: async (_parent, args, context) => {
    const asOf = dateArgument(args.asOf, 'asOf');
    const person = await context.identity.directory.person({ patient: args.patient });
    const found = await new RecognitionService(context.store, context.recognitionMark).candidates(person.records, args.at, asOf, args.codes ?? undefined);
    return found.map(candidateView) as never;
  },
};

/** A decided candidate as the API shows it. */
function candidateView(candidate: RecognitionCandidate) {
  return {
      result: candidate.result,
      resultReference: `${candidate.result.resourceType}/${candidate.result.id}`,
      decision: candidate.verdict.decision,
      cause: candidate.verdict.cause ?? null,
      item: candidate.verdict.item ? itemView(candidate.verdict.item) : null,
      ageDays: candidate.verdict.ageDays,
      daysLeft: candidate.verdict.daysLeft ?? null,
      issuer: candidate.issuer ?? null,
      issuerLevel: candidate.issuerLevel ?? null,
      mark: candidate.verdict.mark ?? null,
      standardCodes: candidate.standardCodes,
  };
}

/**
 * `recognition(at:)` on an Observation, DiagnosticReport or ImagingStudy: the catalog, QC records and code maps once per
 * request, the organisations through the request's loader (batched), so a list of results costs no query per result.
 */
async function recognitionOf(result: RecognitionResult, args: { at: string; asOf?: string | null }, context: RequestContext) {
  const asOf = dateArgument(args.asOf, 'asOf');
  const data = await terminology(context);
  const at = organizationReference(args.at);
  const issuerRef = issuerOf(result);
  const [receiver, issuer] = await Promise.all([context.resources.load(at), issuerRef ? context.resources.load(issuerRef) : Promise.resolve(null)]);
  const issuerLevel = levelOf((issuer ?? undefined) as Organization | undefined);
  const candidate = candidateOf(result, data.maps, issuerLevel);
  const verdict = decide(candidate, { catalog: data.catalog, qualifications: data.qualifications, receiverLevel: levelOf((receiver ?? undefined) as Organization | undefined) ?? 1, asOf, markText: context.recognitionMark });
  return candidateView({ result, verdict, ...(issuer ? { issuer: issuer as Organization } : {}), ...(issuerLevel !== undefined ? { issuerLevel } : {}), ...(issuerRef ? { issuerRef } : {}), standardCodes: candidate.standardCodes });
}

export const recognitionTypeResolvers = {
  recognition: (result: RecognitionResult, args: { at: string; asOf?: string | null }, context: RequestContext) => recognitionOf(result, args, context),
};


/** Thin resolvers over the members' FHIR endpoints and their sync (src/sync/): administrators only. */
import { HubError } from '../errors.ts';
import type { MutationResolvers, QueryResolvers } from '../generated/graphql.ts';
import type { MemberSync } from '../sync/member-sync.ts';
import { requireAdmin, type RequestContext } from '../request/context.ts';

const iso = (date: Date | undefined): string | null => date?.toISOString() ?? null;

function memberSync(context: RequestContext): MemberSync {
  requireAdmin(context);
  if (!context.memberSync) throw new HubError('SERVICE_UNAVAILABLE', 'Member sync is not set up on this hub');
  return context.memberSync;
}

async function statusOf(sync: MemberSync, organization: string) {
  const all = await sync.status();
  const found = all.find((item) => item.organization === organization.replace(/^Organization\//, ''));
  if (!found) throw new HubError('NOT_FOUND', `Organization/${organization} has no registered FHIR endpoint`);
  return view(found);
}

function view(item: Awaited<ReturnType<MemberSync['status']>>[number]) {
  const status = item.status;
  return {
    organization: item.organization,
    baseUrl: item.baseUrl,
    types: item.types,
    enabled: item.enabled,
    state: status?.state ?? 'idle',
    lastStartedAt: iso(status?.lastStartedAt),
    lastSuccessAt: iso(status?.lastSuccessAt),
    lastError: status?.lastError ?? null,
    lastErrorAt: iso(status?.lastErrorAt),
    failures: status?.failures ?? 0,
    nextRunAt: iso(status?.nextRunAt),
    lagSeconds: item.lagSeconds,
    written: status?.written ?? 0,
    deleted: status?.deleted ?? 0,
    invalid: status?.invalid ?? 0,
  };
}

export const syncQueryResolvers: Pick<QueryResolvers, 'memberSyncStatus'> = {
  memberSyncStatus: async (_parent, _args, context) => (await memberSync(context).status()).map(view) as never,
};

export const syncMutationResolvers: Pick<MutationResolvers, 'registerMemberEndpoint' | 'syncMemberNow'> = {
  registerMemberEndpoint: async (_parent, args, context) => {
    const sync = memberSync(context);
    const defined = Object.fromEntries(Object.entries(args).filter(([, value]) => value !== null && value !== undefined));
    const registered = await sync.register(defined as never);
    return (await statusOf(sync, registered.organization)) as never;
  },
  syncMemberNow: async (_parent, args, context) => {
    const sync = memberSync(context);
    await sync.due(args.organization);
    return (await statusOf(sync, args.organization)) as never;
  },
};

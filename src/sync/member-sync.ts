/**
 * Pulling members' FHIR servers into the hub (issue 14, item 2), with fhir-kit-client.
 *
 * Each member may register an endpoint (`member_endpoints`: base URL, auth none / bearer / client credentials —
 * secrets encrypted with a key derived from TOKEN_SECRET and never returned —, types, interval). A sync of a member:
 *
 * 1. takes the member's lease: the insert of `<member>|<run>` into `member_sync_claims` under its unique `_id`
 *    (the one write FerretDB v1 and MongoDB both make atomic), so with several hub instances one syncs a member
 *    at a time; a lease that runs out (its instance died) is taken over by the next run;
 * 2. per type, searches `_lastUpdated=ge<checkpoint>&_sort=_lastUpdated` and follows the `next` links; every page
 *    is mapped to hub ids (mapping.ts) and written (invalid resources are counted and left out, never written),
 *    and only then the checkpoint moves to the page's newest `lastUpdated` — a sync killed at any point runs the
 *    page again (the same hub ids: nothing twice, nothing lost);
 * 3. per type, reads the member's `_history?_since=<checkpoint>` for deletions and deletes those resources here;
 * 4. records the member's status (last success, last error, failures, lag); a failing member is retried with
 *    backoff (30 s doubling to an hour).
 *
 * Every request to a member has a time limit; garbage (not a Bundle, resources of another type, no id) is an
 * error of that run, reported, with nothing of the page written.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Bundle } from '@medplum/fhirtypes';
import { Client } from 'fhir-kit-client';
import type { Collection } from 'mongodb';
import type { SideCollections } from '../fhir/side-collections.ts';
import { z } from 'zod';
import { HubError, badInput } from '../errors.ts';
import { isServedResourceType } from '../fhir/resource-types.ts';
import type { FhirRepository } from '../fhir/repository.ts';
import { hubId, isMemberItself, toHubResource, type MemberContext } from './mapping.ts';
import { assertEndpoint, assertWithin, defaultEndpointPolicy, type EndpointPolicy } from './endpoint-policy.ts';
import { ID_PATTERN, ID_SOURCE, idOrReferencePattern } from '../fhir/references.ts';

/** Types in the order a sync takes them: what others refer to first. */
export const DEFAULT_SYNC_TYPES = ['Organization', 'Practitioner', 'Location', 'Patient', 'Encounter', 'Condition', 'Observation', 'DiagnosticReport', 'Procedure', 'MedicationRequest', 'AllergyIntolerance', 'Immunization', 'ImagingStudy', 'DocumentReference'];

export const endpointInput = z.object({
  organization: z.string().regex(idOrReferencePattern('Organization')),
  baseUrl: z.string().url().max(500),
  auth: z.enum(['NONE', 'BEARER', 'CLIENT_CREDENTIALS']).default('NONE'),
  bearerToken: z.string().max(4000).optional(),
  tokenUrl: z.string().url().max(500).optional(),
  clientId: z.string().max(200).optional(),
  clientSecret: z.string().max(500).optional(),
  types: z.array(z.string()).min(1).max(50).default(DEFAULT_SYNC_TYPES),
  intervalMinutes: z.number().int().min(1).max(10_080).default(15),
  memberOrganizationId: z.string().regex(ID_PATTERN).optional(),
  enabled: z.boolean().default(true),
});
export type EndpointInput = z.input<typeof endpointInput>;

interface EndpointDocument {
  _id: string;
  baseUrl: string;
  auth: 'NONE' | 'BEARER' | 'CLIENT_CREDENTIALS';
  /** encrypted: bearer token or client secret */
  secret?: string;
  tokenUrl?: string;
  clientId?: string;
  types: string[];
  intervalMinutes: number;
  memberOrganizationId?: string;
  enabled: boolean;
  registeredAt: Date;
}

export interface SyncStatus {
  _id: string;
  runs: number;
  state: 'idle' | 'running';
  leaseOwner?: string;
  leaseUntil?: Date;
  lastStartedAt?: Date;
  lastSuccessAt?: Date;
  lastError?: string;
  lastErrorAt?: Date;
  failures: number;
  nextRunAt: Date;
  /** resources written, deleted, refused as invalid in the last run */
  written: number;
  deleted: number;
  invalid: number;
}

interface Checkpoint {
  /** `<member>|<type>` */
  _id: string;
  /** the member's lastUpdated of the newest resource written */
  since?: string;
  /** the member's time of the newest deletion applied */
  deletionsSince?: string;
}

export interface SyncProgress {
  organization: string;
  type: string;
  pages: number;
  written: number;
  deleted: number;
  invalid: number;
}

export interface SyncOptions {
  /** this instance, as the lease owner */
  instance: string;
  /** TOKEN_SECRET: the key of the stored secrets is derived from it */
  secret: string;
  requestTimeoutMs?: number;
  leaseMs?: number;
  pageSize?: number;
  now?: () => Date;
  onProgress?: (progress: SyncProgress) => void;
  /** tests: called after a page was written and before its checkpoint moves (a crash there) */
  afterPageWritten?: (progress: SyncProgress) => void;
  /** where requests may go (endpoint-policy.ts): https only and nothing of this machine unless configured */
  policy?: EndpointPolicy;
}

export class SyncError extends Error {}

export class MemberSync {
  private readonly endpoints: Collection<EndpointDocument>;
  private readonly statuses: Collection<SyncStatus>;
  private readonly checkpoints: Collection<Checkpoint>;
  private readonly claims: Collection<{ _id: string; owner: string; at: Date }>;
  private readonly key: Buffer;

  constructor(
    /** a store without an access policy: the sync writes for the member */
    private readonly store: FhirRepository,
    private readonly collections: SideCollections,
    private readonly options: SyncOptions,
  ) {
    this.endpoints = collections.collection('member_endpoints');
    this.statuses = collections.collection('member_sync');
    this.checkpoints = collections.collection('sync_checkpoints');
    this.claims = collections.collection('member_sync_claims');
    this.key = createHash('sha256').update(`member-endpoint-secrets|${options.secret}`).digest();
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  async ensureIndexes(): Promise<void> {
    for (const name of ['member_endpoints', 'sync_checkpoints', 'member_sync_claims']) await this.collections.ensureIndexes(name, []);
    // The runner looks members up by state (idle and due, or running with a lapsed lease).
    await this.collections.ensureIndexes('member_sync', [{ key: { state: 1 }, name: 'state' }]);
  }

  private seal(text: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const sealed = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return [iv, cipher.getAuthTag(), sealed].map((part) => part.toString('base64url')).join('.');
  }

  private open(text: string): string {
    const [iv, tag, sealed] = text.split('.').map((part) => Buffer.from(part, 'base64url'));
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv!);
    decipher.setAuthTag(tag!);
    return Buffer.concat([decipher.update(sealed!), decipher.final()]).toString('utf8');
  }

  /** Registers (or replaces) a member's endpoint; the member's sync is due at once. */
  async register(input: EndpointInput): Promise<{ organization: string; baseUrl: string; types: string[] }> {
    const parsed = endpointInput.safeParse(input);
    if (!parsed.success) throw badInput(`Invalid endpoint: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
    const endpoint = parsed.data;
    const organization = endpoint.organization.replace(/^Organization\//, '');
    const unknown = endpoint.types.filter((type) => !isServedResourceType(type));
    if (unknown.length > 0) throw badInput(`The hub does not serve ${unknown.join(', ')}`);
    if ((await this.store.readMany('Organization', [organization])).size === 0) throw badInput(`Organization/${organization} is not a member of the consortium`);
    await assertEndpoint(endpoint.baseUrl, this.policy, 'baseUrl');
    if (endpoint.tokenUrl) await assertEndpoint(endpoint.tokenUrl, this.policy, 'tokenUrl');
    if (endpoint.auth === 'BEARER' && !endpoint.bearerToken) throw badInput('auth BEARER needs bearerToken');
    if (endpoint.auth === 'CLIENT_CREDENTIALS' && !(endpoint.tokenUrl && endpoint.clientId && endpoint.clientSecret)) throw badInput('auth CLIENT_CREDENTIALS needs tokenUrl, clientId and clientSecret');
    const secret = endpoint.auth === 'BEARER' ? endpoint.bearerToken : endpoint.auth === 'CLIENT_CREDENTIALS' ? endpoint.clientSecret : undefined;
    const document: EndpointDocument = {
      _id: organization,
      baseUrl: endpoint.baseUrl.replace(/\/+$/, ''),
      auth: endpoint.auth,
      ...(secret ? { secret: this.seal(secret) } : {}),
      ...(endpoint.tokenUrl ? { tokenUrl: endpoint.tokenUrl } : {}),
      ...(endpoint.clientId ? { clientId: endpoint.clientId } : {}),
      types: endpoint.types,
      intervalMinutes: endpoint.intervalMinutes,
      ...(endpoint.memberOrganizationId ? { memberOrganizationId: endpoint.memberOrganizationId } : {}),
      enabled: endpoint.enabled,
      registeredAt: this.now(),
    };
    await this.endpoints.replaceOne({ _id: organization }, document, { upsert: true });
    const existing = await this.statuses.findOne({ _id: organization });
    if (existing) await this.statuses.updateOne({ _id: organization }, { $set: { nextRunAt: this.now() } });
    else await this.statuses.insertOne({ _id: organization, runs: 0, state: 'idle', failures: 0, nextRunAt: this.now(), written: 0, deleted: 0, invalid: 0 });
    return { organization, baseUrl: document.baseUrl, types: document.types };
  }

  /** Every registered member with its sync status (no secrets). */
  async status(): Promise<{ organization: string; baseUrl: string; types: string[]; enabled: boolean; status: SyncStatus | null; lagSeconds: number | null }[]> {
    const [endpoints, statuses] = await Promise.all([this.endpoints.find({}).toArray(), this.statuses.find({}).toArray()]);
    const now = this.now().getTime();
    return endpoints
      .sort((a, b) => a._id.localeCompare(b._id))
      .map((endpoint) => {
        const status = statuses.find((item) => item._id === endpoint._id) ?? null;
        return { organization: endpoint._id, baseUrl: endpoint.baseUrl, types: endpoint.types, enabled: endpoint.enabled, status, lagSeconds: status?.lastSuccessAt ? Math.round((now - status.lastSuccessAt.getTime()) / 1000) : null };
      });
  }

  /** Makes a member's sync due now (the background runner of some instance picks it up). */
  async due(organizationId: string): Promise<void> {
    const organization = organizationId.replace(/^Organization\//, '');
    const updated = await this.statuses.updateOne({ _id: organization }, { $set: { nextRunAt: this.now() } });
    if (updated.matchedCount === 0) throw badInput(`Organization/${organization} has no registered FHIR endpoint`);
  }

  /** Takes the member's lease, or null when another instance holds it. */
  private async claim(organization: string): Promise<SyncStatus | null> {
    const status = await this.statuses.findOne({ _id: organization });
    if (!status) return null;
    const now = this.now();
    if (status.state === 'running' && status.leaseUntil && status.leaseUntil > now) return null;
    const run = status.runs + 1;
    try {
      await this.claims.insertOne({ _id: `${organization}|${run}`, owner: this.options.instance, at: now });
    } catch (error) {
      if ((error as { code?: number }).code === 11000) return null;
      throw error;
    }
    const lease = { state: 'running' as const, runs: run, leaseOwner: this.options.instance, leaseUntil: new Date(now.getTime() + (this.options.leaseMs ?? 120_000)), lastStartedAt: now };
    await this.statuses.updateOne({ _id: organization }, { $set: lease });
    return { ...status, ...lease };
  }

  /** Members whose sync is due, each synced in turn (those another instance is syncing are left to it). */
  async runDue(): Promise<number> {
    const now = this.now();
    const due = (await this.statuses.find({ state: 'idle' }).toArray()).filter((status) => status.nextRunAt <= now);
    const lapsed = (await this.statuses.find({ state: 'running' }).toArray()).filter((status) => !status.leaseUntil || status.leaseUntil < now);
    if (due.length + lapsed.length === 0) return 0;
    const enabled = new Set((await this.endpoints.find({}).toArray()).filter((endpoint) => endpoint.enabled).map((endpoint) => endpoint._id));
    let ran = 0;
    for (const status of [...due, ...lapsed]) {
      if (!enabled.has(status._id)) continue;
      // A failure is recorded in the member's status (and retried with backoff); the other members go on.
      if ((await this.sync(status._id).catch(() => undefined)) !== null) ran++;
    }
    return ran;
  }

  private get policy(): EndpointPolicy {
    return this.options.policy ?? defaultEndpointPolicy;
  }

  private async client(endpoint: EndpointDocument): Promise<Client> {
    // Checked again at every run: a name may resolve elsewhere than when it was registered.
    await assertEndpoint(endpoint.baseUrl, this.policy, 'the registered baseUrl');
    const client = new Client({ baseUrl: endpoint.baseUrl });
    if (endpoint.auth === 'BEARER' && endpoint.secret) client.bearerToken = this.open(endpoint.secret);
    if (endpoint.auth === 'CLIENT_CREDENTIALS' && endpoint.secret) {
      await assertEndpoint(endpoint.tokenUrl!, this.policy, 'the registered tokenUrl');
      const response = await fetch(endpoint.tokenUrl!, {
        redirect: 'error',
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${endpoint.clientId}:${this.open(endpoint.secret)}`).toString('base64')}` },
        body: 'grant_type=client_credentials',
        signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 30_000),
      });
      const body = (await response.json().catch(() => ({}))) as { access_token?: string };
      if (!response.ok || !body.access_token) throw new SyncError(`the member's token endpoint answered ${response.status}`);
      client.bearerToken = body.access_token;
    }
    return client;
  }

  /**
   * Syncs one member now: what changed since its checkpoints, then deletions. Resolves with the run's counts;
   * rejects (after recording the error and the next try) when the member could not be synced. Null when another
   * instance holds the member's lease.
   */
  async sync(organizationId: string): Promise<{ written: number; deleted: number; invalid: number } | null> {
    const organization = organizationId.replace(/^Organization\//, '');
    const endpoint = await this.endpoints.findOne({ _id: organization });
    if (!endpoint) throw badInput(`Organization/${organization} has no registered FHIR endpoint`);
    const claimed = await this.claim(organization);
    if (!claimed) return null;
    const owned = { _id: organization, leaseOwner: this.options.instance };
    const counts = { written: 0, deleted: 0, invalid: 0 };
    try {
      const client = await this.client(endpoint);
      const member: MemberContext = { organizationId: organization, baseUrl: endpoint.baseUrl, ...(endpoint.memberOrganizationId ? { memberOrganizationId: endpoint.memberOrganizationId } : {}) };
      for (const type of endpoint.types) {
        const progress: SyncProgress = { organization, type, pages: 0, written: 0, deleted: 0, invalid: 0 };
        await this.pullChanges(client, member, type, progress, owned);
        await this.pullDeletions(client, member, type, progress, owned);
        counts.written += progress.written;
        counts.deleted += progress.deleted;
        counts.invalid += progress.invalid;
      }
      await this.statuses.updateOne(owned, {
        $set: { state: 'idle', lastSuccessAt: this.now(), failures: 0, nextRunAt: new Date(this.now().getTime() + endpoint.intervalMinutes * 60_000), ...counts },
        $unset: { leaseOwner: '', leaseUntil: '', lastError: '' },
      });
      return counts;
    } catch (error) {
      const message = describe(error);
      const failures = claimed.failures + 1;
      const backoff = Math.min(30_000 * 2 ** (failures - 1), 3_600_000);
      await this.statuses.updateOne(owned, {
        $set: { state: 'idle', lastError: message, lastErrorAt: this.now(), failures, nextRunAt: new Date(this.now().getTime() + backoff), ...counts },
        $unset: { leaseOwner: '', leaseUntil: '' },
      });
      throw new SyncError(`sync of Organization/${organization} failed: ${message}`);
    }
  }

  /** Each request's options: its time limit, and no redirects (a redirect could lead anywhere, with the credentials). */
  private timeout(): { signal: AbortSignal; redirect: 'error' } {
    return { signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 30_000), redirect: 'error' };
  }

  /** A `next` link to follow: on the member's registered server only, checked like the endpoint itself. */
  private async follow(link: string, member: MemberContext): Promise<string> {
    const url = assertWithin(link, member.baseUrl, "the member's next link");
    await assertEndpoint(url, this.policy, "the member's next link");
    return url;
  }

  private async renew(owned: { _id: string; leaseOwner: string }): Promise<void> {
    const kept = await this.statuses.updateOne(owned, { $set: { leaseUntil: new Date(this.now().getTime() + (this.options.leaseMs ?? 120_000)) } });
    if (kept.matchedCount === 0) throw new SyncError('the lease was taken over by another instance');
  }

  private async pullChanges(client: Client, member: MemberContext, type: string, progress: SyncProgress, owned: { _id: string; leaseOwner: string }): Promise<void> {
    const key = `${member.organizationId}|${type}`;
    const checkpoint = await this.checkpoints.findOne({ _id: key });
    let bundle = bundleOf(
      await client.search({ resourceType: type, searchParams: { ...(checkpoint?.since ? { _lastUpdated: `ge${checkpoint.since}` } : {}), _sort: '_lastUpdated', _count: this.options.pageSize ?? 100 }, options: this.timeout() }),
      type,
    );
    for (;;) {
      const resources = (bundle.entry ?? []).filter((entry) => entry.search?.mode !== 'include' && entry.resource).map((entry) => entry.resource!);
      for (const resource of resources) if (resource.resourceType !== type || !resource.id) throw new SyncError(`the member's ${type} search returned a ${resource.resourceType} without the type or an id`);
      const mapped = resources.filter((resource) => !isMemberItself(member, resource)).map((resource) => toHubResource(member, resource));
      if (mapped.length > 0) {
        const outcomes = await this.store.putMany(mapped, { atomic: false });
        for (const outcome of outcomes) {
          if (outcome.outcome === 'failed') progress.invalid++;
          else if (outcome.outcome !== 'unchanged') progress.written++;
        }
      }
      progress.pages++;
      this.options.afterPageWritten?.(progress);
      const newest = resources.map((resource) => resource.meta?.lastUpdated).filter((value): value is string => typeof value === 'string').sort().at(-1);
      if (newest) await this.checkpoints.updateOne({ _id: key }, { $set: { since: newest } }, { upsert: true });
      await this.renew(owned);
      this.options.onProgress?.({ ...progress });
      const next = bundle.link?.find((link) => link.relation === 'next')?.url;
      if (!next) return;
      bundle = bundleOf(await client.request(await this.follow(next, member), { options: this.timeout() }), type);
    }
  }

  private async pullDeletions(client: Client, member: MemberContext, type: string, progress: SyncProgress, owned: { _id: string; leaseOwner: string }): Promise<void> {
    const key = `${member.organizationId}|${type}`;
    const checkpoint = await this.checkpoints.findOne({ _id: key });
    let url: string | undefined = `${type}/_history?_count=${this.options.pageSize ?? 100}${checkpoint?.deletionsSince ? `&_since=${encodeURIComponent(checkpoint.deletionsSince)}` : ''}`;
    while (url) {
      let history: Bundle;
      try {
        history = bundleOf(await client.request(url, { options: this.timeout() }), type);
      } catch (error) {
        // A server without type history: deletions cannot be seen there (reported in the status by their absence).
        if ((error as { response?: { status?: number } }).response?.status && [400, 404, 405, 501].includes((error as { response: { status: number } }).response.status)) return;
        throw error;
      }
      let newest = checkpoint?.deletionsSince;
      for (const entry of history.entry ?? []) {
        const when = entry.response?.lastModified;
        if (when && (!newest || when > newest)) newest = when;
        if (entry.request?.method !== 'DELETE') continue;
        const match = new RegExp(`^${type}/(${ID_SOURCE})`).exec(entry.request.url ?? '');
        if (!match) continue;
        try {
          await this.store.delete(type, hubId(member, type, match[1]!));
          progress.deleted++;
        } catch (error) {
          if (!(error instanceof HubError && (error.code === 'NOT_FOUND' || error.code === 'GONE'))) throw error;
        }
      }
      if (newest) await this.checkpoints.updateOne({ _id: key }, { $set: { deletionsSince: newest } }, { upsert: true });
      await this.renew(owned);
      const next = history.link?.find((link) => link.relation === 'next')?.url;
      url = next ? await this.follow(next, member) : undefined;
    }
  }
}

/** A member's answer as a Bundle, or a SyncError when it is not one. */
function bundleOf(answer: unknown, type: string): Bundle {
  const bundle = answer as Bundle;
  if (!bundle || typeof bundle !== 'object' || bundle.resourceType !== 'Bundle' || (bundle.entry !== undefined && !Array.isArray(bundle.entry))) {
    throw new SyncError(`the member answered the ${type} request with something that is not a Bundle`);
  }
  return bundle;
}

/** What failed, in the hub's words: never what the member's server (or whatever answered) said. */
function describe(error: unknown): string {
  const response = (error as { response?: { status?: number } }).response;
  if (response?.status) return `the member answered HTTP ${response.status}`;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'the member did not answer in time';
  // A request that could not be made (refused, reset, unresolvable, a redirect refused): the kind, not the details.
  const cause = (error as { cause?: { code?: string } }).cause;
  if (error instanceof TypeError && /fetch failed|redirect/i.test(error.message)) {
    return `the member's server could not be reached${typeof cause?.code === 'string' && /^[A-Z_]+$/.test(cause.code) ? ` (${cause.code})` : ''}`;
  }
  if (error instanceof Error) return error.message.slice(0, 300);
  return String(error).slice(0, 300);
}

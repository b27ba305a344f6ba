/**
 * The FHIR resource store: the one path through which resources are written and read, implementing the
 * repository (repository.ts) in a named scope (scope.ts) within a request's bounds (bounds.ts).
 *
 * What it does itself: the access policy on every read and write, the domains' hooks by phase (hooks.ts:
 * prepare, check, index, owner, after-write), workflow-owned records (workflow-records.ts) and FHIR
 * validation. How resources are kept is the storage's (storage/): collections and layouts, the crash-safe
 * versions, reads and their FerretDB short cuts, bulk creates, maintenance. Batches: batch-write.ts; queries:
 * queries.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Db, Filter } from 'mongodb';
import type { Resource } from '@medplum/fhirtypes';
import { HubError, badInput, conflict, notFound } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import { writeBatch } from './batch-write.ts';
import { RequestBounds, type RequestDeadline } from './bounds.ts';
import { sameContent } from './content.ts';
import { StoreHooks, type DomainHooks, type HookContext, type WrittenResource } from './hooks.ts';
import { compileConditions, type Condition, type IndexedQuery } from './indexed-query.ts';
import { Queries } from './queries.ts';
import { assertValidId, ID_PATTERN, parseVersion } from './references.ts';
import type { FhirRepository, FoundResource, HistoryEntry, PageRequest, PageRow, ScanPosition, SearchResult, StoreAccess, WriteItem, WriteOutcome } from './repository.ts';
import { HUB_SCOPE, HUB_WORKFLOW_SCOPE, callerScope, scopeRules, type Scope } from './scope.ts';
import { allOf, type ResourceDocument, type SearchArguments } from './search-query.ts';
import { SideCollections } from './side-collections.ts';
import { assertServedType, parseResource, Storage } from './storage/collections.ts';
import { matcher } from './storage/layout.ts';
import { Reads } from './storage/reads.ts';
import { stamped, writeDeletion, writeNewVersion } from './storage/versions.ts';
import { StoreMaintenance } from './storage/maintenance.ts';
import { validateFhirResource } from './validation.ts';
import { validationPool } from './validation-pool.ts';
import { assertWorkflowWrite, type WorkflowGrant } from './workflow-records.ts';

export type { RequestDeadline } from './bounds.ts';
export type { DomainHooks, HookContext, WrittenResource } from './hooks.ts';
export type { FhirRepository, ScanPosition, SearchResult, StoreAccess, WriteOutcome } from './repository.ts';
export { sameContent } from './content.ts';
export { assertValidId, parseVersion } from './references.ts';

export interface StoreOptions {
  /** Lists without `_count` refuse when more than this many resources match. */
  listMaxResults: number;
  /** The domains' hooks (hooks.ts), registered once for the process. */
  hooks?: StoreHooks | readonly DomainHooks[];
  /** Where a domain's failed follow-up of a write is told (default: warnings on stderr). */
  logger?: Logger;
}

const fallbackLogger = createLogger('warn');

/** The store over a database and its maintenance, beside it (what `createHubStore` hands out). */
export function openStore(db: Db, options: StoreOptions): { store: FhirStore; maintenance: StoreMaintenance } {
  const store = new FhirStore(db, options);
  return { store, maintenance: store.maintenance };
}

interface Binding {
  storage: Storage;
  scope: Scope;
  bounds: RequestBounds;
}

export class FhirStore implements FhirRepository {
  readonly scopeName: Scope['name'];
  private readonly storage: Storage;
  private readonly scope: Scope;
  private readonly access: StoreAccess | undefined;
  private readonly grant: WorkflowGrant | undefined;
  private readonly bounds: RequestBounds;
  private readonly reads: Reads;
  private readonly queries: Queries;

  constructor(
    db: Db,
    private readonly options: StoreOptions,
    binding?: Binding,
  ) {
    const hooks = options.hooks instanceof StoreHooks ? options.hooks : new StoreHooks(options.hooks ?? []);
    this.storage = binding?.storage ?? new Storage(db, hooks);
    this.scope = binding?.scope ?? HUB_SCOPE;
    this.scopeName = this.scope.name;
    ({ access: this.access, grant: this.grant } = scopeRules(this.scope));
    this.bounds = binding?.bounds ?? new RequestBounds();
    this.reads = new Reads(this.storage, this.bounds);
    this.queries = new Queries(this.storage, this.reads, options.listMaxResults, {
      rowFilter: (type, filter, permission) => this.rowFiltered(type, filter, permission),
      reveal: (json) => this.reveal(json),
      seen: (resources) => this.seen(resources),
    });
  }

  private bind(scope: Scope, bounds: RequestBounds): FhirStore {
    return new FhirStore(this.storage.db, this.options, { storage: this.storage, scope, bounds });
  }

  /** The store's maintenance (indexes, reindex, recovery): for the hub's start, its schedule and scripts. */
  get maintenance(): StoreMaintenance {
    return new StoreMaintenance(this.storage);
  }

  /**
   * The store for one request: the caller's scope, within the request's time. Reads ask the server to stop when
   * the time is up (maxTimeMS) and are abandoned when the signal aborts; once aborted, nothing reaches the database.
   * Without an access policy (AUTH_REQUIRED=false) the request acts in the hub's scope.
   */
  forRequest(access: StoreAccess | undefined, deadline?: RequestDeadline): FhirStore {
    return this.bind(access ? callerScope(access) : HUB_SCOPE, new RequestBounds(deadline));
  }

  scoped(scope: Scope): FhirStore {
    return this.bind(scope, this.bounds);
  }

  /** The access policy's row conditions for a type, compiled (undefined: none). */
  private policyFilter(type: string, permission: 'r' | 's'): Filter<ResourceDocument> | undefined {
    const conditions: Condition[] | undefined = this.access?.readFilter(type, permission);
    return conditions ? compileConditions(type, conditions, this.storage.hooks) : undefined;
  }

  /** A filter with the access policy's added, keeping plain equalities at the top level (where they are pushed down). */
  private rowFiltered(type: string, filter: Filter<ResourceDocument>, permission: 'r' | 's'): Filter<ResourceDocument> {
    const extra = this.policyFilter(type, permission);
    return extra ? allOf([filter, extra]) : filter;
  }

  /** WORKFLOW_OWNED when a write would change a workflow's record outside its workflow (workflow-records.ts). */
  private guardWorkflowRecords(operation: 'c' | 'u' | 'd', next: Resource | undefined, existing: Resource | undefined): void {
    assertWorkflowWrite(this.storage.hooks.workflowRecords, this.grant, operation, next, existing);
  }

  /** With an access policy: NOT_FOUND unless the caller may read the resource's current version. */
  private async assertReadable(type: string, id: string): Promise<void> {
    if (!this.access) return;
    const [visible] = await this.reads.byIds(type, [id], { _id: 1 } as Record<string, 1>, this.policyFilter(type, 'r'));
    if (visible) return;
    // A deleted resource's versions stay readable by callers whose reads of the type have no row filter (members,
    // administrators); a resident's compartment cannot be checked on a deletion, so for them it is not found.
    if (!this.access.readFilter(type, 'r') && (await this.storage.tombstones().findOne({ _id: `${type}/${id}` }, { projection: { _id: 1 } }))) return;
    throw notFound(`${type}/${id} not found`);
  }

  /** The workflow-records guard and the access policy's check of one write (seen by the audit trail once it passes). */
  private async checkWrite(operation: 'c' | 'u' | 'd', resource: Resource, existingJson?: string, context: { owner?: string; batch?: ReadonlyMap<string, Resource> } = {}): Promise<void> {
    const existing = existingJson ? parseResource(existingJson) : undefined;
    this.guardWorkflowRecords(operation, operation === 'd' ? undefined : resource, existing);
    if (!this.access) return;
    const claimedOwner = this.storage.hooks.owner(resource, {});
    await this.access.checkWrite(operation, resource, existing, { store: this.bind(HUB_SCOPE, this.bounds), ...context, ...(claimedOwner ? { claimedOwner } : {}) });
    this.access.observe?.([resource], operation.toUpperCase() as 'C' | 'U' | 'D');
  }

  /** A stored resource as the caller is shown it (the access policy may leave out what is not theirs to see). */
  private reveal(json: string): Resource {
    const resource = parseResource(json);
    return this.access?.present ? this.access.present(resource) : resource;
  }

  /** Passes what was read to the access policy's observer; returns it unchanged. */
  private seen<T extends Resource[]>(resources: T): T {
    this.access?.observe?.(resources, 'R');
    return resources;
  }

  /** The hooks act as the hub within the request's bounds: their follow-ups (a critical value's notification) are workflow writes. */
  private hookContext(): HookContext {
    return { store: this.bind(HUB_WORKFLOW_SCOPE, this.bounds), collections: new SideCollections(this.storage.db) };
  }

  /** The resources with what the domains add before a write (the `prepare` phase), in the order given. */
  private async prepared<T>(resources: T[]): Promise<T[]> {
    let current = resources;
    for (const { run } of this.storage.hooks.prepare) {
      // Only what looks like a resource is handed over; anything else goes on to validation as it is.
      const indexes = current.flatMap((item, index) => (item && typeof item === 'object' && typeof (item as { resourceType?: unknown }).resourceType === 'string' ? [index] : []));
      if (indexes.length === 0) continue;
      const changed = await run(indexes.map((index) => current[index] as unknown as Resource), this.hookContext());
      const next = [...current];
      indexes.forEach((index, i) => (next[index] = changed[i] as unknown as T));
      current = next;
    }
    return current;
  }

  /** Tells the domains what was written (the `afterWrite` phase); their failures are logged, the write stands. */
  private async written(written: WrittenResource[]): Promise<void> {
    if (written.length === 0) return;
    for (const { name, run } of this.storage.hooks.afterWrite) {
      await run(written, this.hookContext()).catch((error: unknown) => {
        (this.options.logger ?? fallbackLogger).warn('a domain could not follow up a write', { domain: name, types: [...new Set(written.map((item) => item.resource.resourceType))].join(','), error: error instanceof Error ? error.message : String(error) });
      });
    }
  }

  /** FHIR validation plus the domains' checks (a Patient's national ID must be valid); `refusal` from the validation threads. */
  private validate(resource: unknown, refusal?: HubError | null): Resource {
    if (refusal) throw refusal;
    const valid = refusal === null ? (resource as Resource) : validateFhirResource(resource);
    for (const check of this.storage.hooks.checks) check(valid);
    return valid;
  }

  /** For a large batch, its FHIR validation on the validation threads: per resource null (valid) or its refusal. */
  private async validateAll(resources: unknown[]): Promise<(HubError | null | undefined)[]> {
    const pool = validationPool();
    if (!pool.takes(resources.length)) return [];
    const refusals = await pool.validate(resources);
    return refusals ? refusals.map((refusal) => refusal ?? null) : [];
  }

  /** Validates and creates a resource; the store assigns the id unless one is given (seed, PUT-as-create). */
  async create<T extends Resource>(resource: T, options: { id?: string } = {}): Promise<T> {
    return this.bounds.guard(async () => {
      const [input] = await this.prepared([resource]);
      const stored = await this.createValid(this.validate(input), options);
      await this.written([{ resource: stored, operation: 'create' }]);
      return stored as T;
    });
  }

  private async createValid(valid: Resource, options: { id?: string }): Promise<Resource> {
    this.access?.assertMayWrite(valid.resourceType, 'c');
    const id = options.id ?? randomUUID();
    assertValidId(id);
    await this.checkWrite('c', { ...valid, id } as Resource);
    const ts = new Date();
    const stored = stamped(valid, id, 1, ts);
    await writeNewVersion(this.storage, stored, 1, ts, 'create', this.access?.writerOrganization);
    return stored;
  }

  async read<T extends Resource = Resource>(type: string, id: string): Promise<T> {
    return this.bounds.guard(async () => {
      assertValidId(id);
      assertServedType(type);
      const [document] = await this.reads.byIds(type, [id], { json: 1, sp: 1 } as Record<string, 1>, this.policyFilter(type, 'r'));
      if (document) return this.seen([this.reveal(document.json)])[0] as T;
      if (this.access?.readFilter(type, 'r')) throw notFound(`${type}/${id} not found`);
      const deleted = await this.storage.tombstones().findOne({ _id: `${type}/${id}` }, { projection: { _id: 1 } });
      if (deleted) throw new HubError('GONE', `${type}/${id} was deleted`);
      throw notFound(`${type}/${id} not found`);
    });
  }

  /**
   * Reads many resources of one type; missing ones are absent from the map. On MongoDB one `$in` query; on
   * FerretDB one equality query per id (sent together), as its `$in` decodes the whole collection.
   */
  async readMany(type: string, ids: readonly string[]): Promise<Map<string, Resource>> {
    return this.bounds.guard(async () => {
      assertServedType(type);
      const valid = [...new Set(ids)].filter((id) => ID_PATTERN.test(id));
      const found = new Map<string, Resource>();
      if (valid.length === 0) return found;
      for (const document of await this.reads.byIds(type, valid, { json: 1, sp: 1 } as Record<string, 1>, this.policyFilter(type, 'r'))) found.set(document._id, this.reveal(document.json));
      this.seen([...found.values()]);
      return found;
    });
  }

  async readVersion<T extends Resource = Resource>(type: string, id: string, versionId: string | number): Promise<T> {
    return this.bounds.guard(async () => {
      assertValidId(id);
      const version = parseVersion(versionId);
      await this.assertReadable(type, id);
      const document = await this.storage.versions(type).findOne({ _id: `${id}/${version}` });
      if (!document) throw notFound(`${type}/${id} has no version ${version}`);
      if (document.json === null) throw new HubError('GONE', `${type}/${id} version ${version} is a deletion`);
      return this.reveal(document.json) as T;
    });
  }

  async history(type: string, id: string): Promise<HistoryEntry[]> {
    return this.bounds.guard(async () => {
      assertValidId(id);
      await this.assertReadable(type, id);
      const documents = await this.storage.versions(type).find({ rid: id }).sort({ v: -1 }).toArray();
      if (documents.length === 0) throw notFound(`${type}/${id} not found`);
      return documents.map((document) => ({
        versionId: String(document.v),
        lastUpdated: document.ts.toISOString(),
        deleted: document.json === null,
        ...(document.json === null ? {} : { resource: this.reveal(document.json) }),
      }));
    });
  }

  /**
   * The current document of a resource that the caller is about to change: NOT_FOUND when there is none or
   * the caller may not read it (so a refusal never tells that someone else's resource exists).
   */
  private async changing(type: string, id: string): Promise<ResourceDocument> {
    const current = await this.reads.one(type, id);
    const extra = current && this.policyFilter(type, 'r');
    if (!current || (extra && !matcher(extra)(current))) throw notFound(`${type}/${id} not found`);
    return current;
  }

  /**
   * Validates and updates a resource. `ifMatch` (or the resource's meta.versionId) names the version the
   * caller read; if the resource has moved on since, the update fails with CONFLICT and nothing is written.
   */
  async update<T extends Resource>(resource: T, options: { ifMatch?: string | number } = {}): Promise<T> {
    return this.bounds.guard(async () => {
      const [input] = await this.prepared([resource]);
      const stored = await this.updateValid(this.validate(input), options);
      await this.written([{ resource: stored, operation: 'update' }]);
      return stored as T;
    });
  }

  private async updateValid(valid: Resource, options: { ifMatch?: string | number }): Promise<Resource> {
    const id = valid.id;
    if (!id) throw badInput('An update needs the resource id', ['id']);
    assertValidId(id);
    const type = valid.resourceType;
    this.access?.assertMayWrite(type, 'u');
    const current = await this.changing(type, id);
    const expectedRaw = options.ifMatch ?? valid.meta?.versionId;
    const expected = expectedRaw === undefined ? current.v : parseVersion(expectedRaw);
    if (expected !== current.v) throw conflict(`${type}/${id} is at version ${current.v}, not ${expected}; read it again and retry`);
    await this.checkWrite('u', valid, current.json, current.owner ? { owner: current.owner } : {});
    const ts = new Date();
    const stored = stamped(valid, id, expected + 1, ts);
    await writeNewVersion(this.storage, stored, expected + 1, ts, 'update', current.owner ?? this.access?.writerOrganization);
    return stored;
  }

  /** Deletes a resource; its versions stay readable in history. Returns the version that records the deletion. */
  async delete(type: string, id: string, options: { ifMatch?: string | number } = {}): Promise<string> {
    return this.bounds.guard(async () => {
      assertValidId(id);
      this.access?.assertMayWrite(type, 'd');
      const current = await this.changing(type, id);
      const expected = options.ifMatch === undefined ? current.v : parseVersion(options.ifMatch);
      if (expected !== current.v) throw conflict(`${type}/${id} is at version ${current.v}, not ${expected}`);
      await this.checkWrite('d', parseResource(current.json), current.json, current.owner ? { owner: current.owner } : {});
      const version = await writeDeletion(this.storage, type, id, expected, current.owner);
      await this.written([{ resource: parseResource(current.json), operation: 'delete' }]);
      return String(version);
    });
  }

  /**
   * Creates or updates a resource with a given id, writing a new version only when its content differs
   * from what is stored (used by the seed: running it twice changes nothing). An id that was deleted is
   * created again as its next version, as its owner's.
   */
  async put(resource: Resource, batch?: ReadonlyMap<string, Resource>): Promise<WriteOutcome> {
    return this.bounds.guard(async () => {
      const [input] = await this.prepared([resource]);
      const outcome = await this.putValid(this.validate(input), batch);
      if (outcome.outcome === 'created' || outcome.outcome === 'updated') await this.written([{ resource: outcome.resource, operation: outcome.outcome === 'created' ? 'create' : 'update' }]);
      return outcome;
    });
  }

  private async putValid(valid: Resource, batch?: ReadonlyMap<string, Resource>): Promise<WriteOutcome> {
    if (!valid.id) throw badInput('A put needs the resource id', ['id']);
    assertValidId(valid.id);
    const type = valid.resourceType;
    const existing = await this.reads.one(type, valid.id);
    if (!existing) {
      const tombstone = await this.storage.tombstones().findOne({ _id: `${type}/${valid.id}` });
      if (!tombstone) return { resource: await this.createValid(valid, { id: valid.id }), outcome: 'created' };
      // Put after a deletion creates the resource again as its next version (FHIR update-as-create).
      this.access?.assertMayWrite(type, 'c');
      await this.checkWrite('c', valid, undefined, { ...(tombstone.owner ? { owner: tombstone.owner } : {}), ...(batch ? { batch } : {}) });
      const ts = new Date();
      const stored = stamped(valid, valid.id, tombstone.v + 1, ts);
      await writeNewVersion(this.storage, stored, tombstone.v + 1, ts, 'recreate', tombstone.owner ?? this.access?.writerOrganization);
      return { resource: stored, outcome: 'created' };
    }
    const stored = parseResource(existing.json);
    if (sameContent(stored, valid)) return { resource: stored, outcome: 'unchanged' };
    const { meta: _meta, ...withoutMeta } = valid;
    const updated = await this.updateValid({ ...withoutMeta, meta: { ...valid.meta, versionId: String(existing.v) } } as Resource, {});
    return { resource: updated, outcome: 'updated' };
  }

  async putMany(resources: Resource[], options: { atomic?: boolean; labels?: string[] } = {}): Promise<WriteOutcome[]> {
    return this.writeMany(resources.map((resource) => ({ resource, mode: 'put' as const })), options);
  }

  /** Many resources with ids, a few bulk operations per type (batch-write.ts). */
  async writeMany(items: WriteItem[], options: { atomic?: boolean; labels?: string[] } = {}): Promise<WriteOutcome[]> {
    return this.bounds.guard(async () => {
      const inputs = await this.prepared(items.map((item) => item.resource));
      const refusals = await this.validateAll(inputs);
      const outcomes = await writeBatch(items, inputs, options, refusals, {
        storage: this.storage,
        reads: this.reads,
        access: this.access,
        validate: (resource, refusal) => this.validate(resource, refusal),
        guardWorkflowRecords: (operation, next, existing) => this.guardWorkflowRecords(operation, next, existing),
        checkWrite: (operation, resource, existingJson, context) => this.checkWrite(operation, resource, existingJson, context),
        putValid: (resource, batch) => this.putValid(resource, batch),
      });
      await this.written(outcomes.filter((outcome) => outcome.outcome === 'created' || outcome.outcome === 'updated').map((outcome) => ({ resource: outcome.resource, operation: outcome.outcome === 'created' ? 'create' : 'update' })));
      return outcomes;
    });
  }

  search(type: string, args: SearchArguments): Promise<SearchResult> {
    return this.bounds.guard(() => this.queries.search(type, args));
  }

  searchReferencing(type: string, parameterName: string, targets: readonly string[], args: SearchArguments): Promise<Map<string, Resource[] | HubError>> {
    return this.bounds.guard(() => this.queries.referencing(type, parameterName, targets, args));
  }

  page(type: string, request: PageRequest): Promise<PageRow[]> {
    return this.bounds.guard(() => this.queries.page(type, request));
  }

  find(type: string, query: IndexedQuery): Promise<FoundResource[]> {
    return this.bounds.guard(() => this.queries.find(type, query));
  }

  count(type: string, query: SearchArguments | { where: Condition[] } = {}): Promise<number> {
    return this.bounds.guard(() => this.queries.count(type, query));
  }

  /** Every current resource holding one anchor value, a page at a time (storage/reads.ts `scan`): the hub's jobs only. */
  async *scan(type: string, anchor: { key: string; eq: string }, options: { batch?: number; after?: ScanPosition } = {}): AsyncGenerator<{ resources: Resource[]; after: ScanPosition }> {
    if (this.access) throw new HubError('FORBIDDEN', "A scan is for the hub's own jobs");
    yield* this.queries.scan(type, anchor, options);
  }

  async deletionsSince(type: string, since: Date | undefined, limit: number): Promise<{ id: string; version: number; at: Date }[]> {
    return this.bounds.guard(async () => {
      assertServedType(type);
      // Callers with a row filter on the type (residents) get none: a deletion cannot be checked against a compartment.
      if (this.access?.readFilter(type, 'r')) return [];
      const found = await this.storage.tombstones().find({ type }).toArray();
      return found
        .filter((tombstone) => !since || tombstone.ts > since)
        .sort((a, b) => a.ts.getTime() - b.ts.getTime())
        .slice(0, limit)
        .map((tombstone) => ({ id: tombstone._id.slice(type.length + 1), version: tombstone.v, at: tombstone.ts }));
    });
  }
}

/**
 * The FHIR resource store: the one path through which resources are written and read.
 *
 * Storage: one collection per resource type holding the current version of each resource, and one
 * `<Type>_history` collection holding every version ever written (including the current one and deletions).
 *
 * Writes without multi-document transactions: a write first inserts the new version into history under the
 * unique key `<id>/<version>`; that insert is the claim on the version number, so of two concurrent updates
 * of one version exactly one wins and the other gets CONFLICT. Then the current document is replaced with a
 * compare-and-set on the previous version. If a process dies between the two steps, the next writer finds the
 * claimed version in history and rolls the current document forward to it, so no written version is lost.
 */
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { AnyBulkWriteOperation, Collection, Db, Filter } from 'mongodb';
import { ferretDbStorageOf, type CompactOrder, type CompactRow } from '../database/ferretdb-storage.ts';
import type { Resource } from '@medplum/fhirtypes';
import { createMissingIndexes, type IndexSpec } from '../database/indexes.ts';
import { databaseProfile } from '../database/profile.ts';
import { Semaphore } from '../database/semaphore.ts';

/** The index a transaction's marks are found (and removed) by: sparse, since marks exist only while one writes. */
const PENDING_INDEX: IndexSpec = { key: { [PENDING_FIELD]: 1 }, name: 'pending', sparse: true };

/** Resources the recovery of cut-off writes rolls forward at once. */
const RECOVERY_CONCURRENCY = 16;
import { HubError, badInput, conflict, notFound, translateDatabaseError } from '../errors.ts';
import { isServedResourceType, servedResourceTypes, indexedSearchParameters } from './resource-types.ts';
import { TOP_LEVEL_PREFIX, findSearchParameter, searchParametersOf, searchIndexFingerprint, storedField } from './search-parameters.ts';
import { allOf, compileSearch, type ResourceDocument, type SearchArguments } from './search-query.ts';
import { compactQueries, encodeCurrent, matcher, orderKey, viewOf, type LayoutName, type VersionFields } from './document-layout.ts';
import { extractSearchValues, registerTokenNormalizer, type SearchValues } from './search-index.ts';
import { validateFhirResource } from './validation.ts';
import { validationPool } from './validation-pool.ts';
import { createLogger, type Logger } from '../log.ts';
import { ID_PATTERN } from './references.ts';
import { assertWorkflowWrite, type WorkflowGrant, type WorkflowRecords } from './workflow-records.ts';
import { commitTransaction, PENDING_FIELD, PENDING_TIMEOUT_MS, rollBack, unmark, visibleDocuments } from './transaction-visibility.ts';

export interface HistoryDocument {
  /** `<id>/<version>` */
  _id: string;
  rid: string;
  v: number;
  ts: Date;
  /** The version's FHIR JSON; null for a deletion. */
  json: string | null;
  /** recreate: put again after a deletion */
  op: 'create' | 'update' | 'delete' | 'recreate';
  /** the organisation the resource belongs to, decided when its id was first written */
  owner?: string;
  /** the transaction it was written in, while that is not committed (transaction-visibility.ts) */
  p?: string;
}

/** What remains of a deleted id: its last version and owner, so putting it again continues both. */
interface Tombstone {
  /** `Type/id` */
  _id: string;
  /** the resource type (an equality the type's deletions are found by) */
  type?: string;
  v: number;
  owner?: string;
  ts: Date;
}

/**
 * A write in progress: the ids it is about to write. Removed when the write is complete; one left behind by a
 * process that died mid-write tells the next start which resources to roll forward (recoverCutOffWrites).
 */
interface WriteIntent {
  _id: string;
  /** the ids of one type */
  type: string;
  ids: string[];
  /** the ids of further types written under the same intent (a Bundle's batch: one intent for all its types) */
  more?: { type: string; ids: string[] }[];
  at: Date;
  /** a transaction's: pending until it commits (transaction-visibility.ts); single writes have none */
  state?: 'pending' | 'committed';
}

/**
 * What a domain adds to every write, handed to the store where the hub is put together (src/hub-store.ts), so
 * the store never imports a domain. Each hook sees the resource alone, never the database.
 */
export interface StoreExtension {
  /** Refuses what the domain does not allow (e.g. an invalid national ID) with BAD_USER_INPUT; nothing is written. */
  check?(resource: Resource): void;
  /** Values stored beside the search values, computed at every write: keys starting with `t_` (`t_person`) at the top level, where an equality on them is pushed down, the rest under `sp` (`sp._when`). */
  derive?(resource: Resource, searchValues: SearchValues): Record<string, unknown>;
  /** The organisation a resource written without a member's organisation belongs to (seed, import, administrators). */
  owner?(resource: Resource, searchValues: SearchValues): string | undefined;
  /** Codes of these systems are stored and searched in a normal form (the national ID's `x` as `X`). */
  tokenNormalizers?: Record<string, (code: string) => string>;
  /** Top-level fields (by resource type) that the domain's queries start from: they get indexes. */
  indexes?: Record<string, string[]>;
  /** Date paths (by resource type) that the domain's queries sort by, with a limit (`sp._when`): read in that order. */
  orders?: Record<string, string[]>;
  /**
   * What the domain adds to resources before they are validated and written (recognition: the standard coding
   * beside a local code, the normalised value, the mark), for a whole batch at once so the domain reads what it
   * needs once. Must be idempotent: applied to its own output it changes nothing (a re-import is `unchanged`).
   * Resources it does not recognise are returned as they are, for validation to judge.
   */
  prepareWrites?(resources: Resource[], context: ExtensionContext): Promise<Resource[]>;
  /**
   * Told after resources were written (created, updated or deleted); the write has happened whatever this does,
   * so a failure here is logged, not reported to the writer (recognition queues the re-apply of an edited map).
   */
  afterWrite?(written: WrittenResource[], context: ExtensionContext): Promise<void>;
  /** Changes when what `derive` stores changes: the stored values of earlier writes are then stale (`npm run reindex`). */
  fingerprint?: string;
  /** The records the domain's workflow owns: changed only through it, whatever the door (workflow-records.ts). */
  workflowRecords?: WorkflowRecords;
}

/** What an extension's hooks may use: the store without an access policy (within the request's bounds) and the database. */
export interface ExtensionContext {
  store: FhirStore;
  db: Db;
}

/** Where a scan's page ended: the order key's value and the `_id` (see FhirStore.scanAnchor). */
export interface ScanPosition {
  ord?: number | null;
  id: string;
}

export interface WrittenResource {
  resource: Resource;
  operation: 'create' | 'update' | 'delete';
}

export interface StoreOptions {
  /** Lists without `_count` refuse when more than this many resources match. */
  listMaxResults: number;
  extensions?: StoreExtension[];
  /** Where a domain's failed follow-up of a write is told (default: warnings on stderr). */
  logger?: Logger;
}

/**
 * What a caller may read and write (src/auth/access-policy.ts). A store with an access policy adds the
 * policy's filter to every query and checks every write, so no read path can forget it.
 */
export interface StoreAccess {
  /** An extra filter for reading a type, or undefined for none; throws FORBIDDEN when the type may not be read. */
  readFilter(type: string, permission: 'r' | 's'): Filter<ResourceDocument> | undefined;
  /**
   * Throws FORBIDDEN unless the caller may make this kind of write to the type at all (scopes, residents,
   * the audit trail): checked before anything about the resource is looked up, so a refusal tells nothing
   * about whether it exists.
   */
  assertMayWrite(type: string, operation: 'c' | 'u' | 'd'): void;
  /**
   * Throws FORBIDDEN unless the caller may write `resource` (replacing `existing`, for updates and deletes).
   * `owner` is the organisation the resource (or, for a re-created id, its deleted predecessor) belongs to;
   * `batch` holds the other resources of the same Bundle, by `Type/id`.
   */
  checkWrite(
    operation: 'c' | 'u' | 'd',
    resource: Resource,
    existing: Resource | undefined,
    unrestricted: FhirStore,
    context?: { owner?: string; batch?: ReadonlyMap<string, Resource> },
  ): Promise<void>;
  /** The organisation a resource this caller creates belongs to (a member's own); undefined to let the store decide. */
  readonly writerOrganization?: string | undefined;
  /** Told of every resource read or written for the caller (the audit trail). */
  observe?(resources: Resource[], action: 'R' | 'C' | 'U' | 'D'): void;
  /** What the caller is shown of a resource it may read (every read path passes through it). */
  present?(resource: Resource): Resource;
}

export interface SearchResult {
  resources: Resource[];
  /** Whether more resources match after this page. */
  hasMore: boolean;
}

export interface WriteOutcome {
  resource: Resource;
  outcome: 'created' | 'updated' | 'unchanged' | 'failed';
  /** Why a resource failed (putMany with atomic: false). */
  error?: HubError;
}

/** The most documents one batched reverse-reference query may return. */
const REVERSE_REFERENCE_CAP = 50_000;
/** Resources of a bulk create prepared between two turns of the event loop. */
const SLICE = 16;

export function assertValidId(id: string): void {
  if (!ID_PATTERN.test(id)) throw badInput(`"${id.slice(0, 80)}" is not a valid FHIR id`, ['id']);
}

function assertServedType(type: string): void {
  if (!isServedResourceType(type)) throw badInput(`Resource type ${type} is not served by this hub`, ['resourceType']);
}

/** `W/"3"`, `"3"` or `3` -> 3. */
export function parseVersion(value: string | number): number {
  const match = /^(?:W\/)?"?(\d{1,9})"?$/.exec(String(value).trim());
  if (!match) throw badInput(`"${String(value).slice(0, 40)}" is not a resource version (use e.g. W/"3" or 3)`, ['ifMatch']);
  return Number(match[1]);
}

function parseResource(json: string): Resource {
  return JSON.parse(json) as Resource;
}

/** Compares two resources as FHIR content, ignoring the store's own meta.versionId and meta.lastUpdated. */
/** Whether two resources have the same content, their version and last update aside. */
export function sameContent(a: Resource, b: Resource): boolean {
  const strip = (resource: Resource): string => {
    const { meta, ...rest } = resource;
    const { versionId: _v, lastUpdated: _l, ...restMeta } = meta ?? {};
    return canonicalJson(Object.keys(restMeta).length > 0 ? { ...rest, meta: restMeta } : rest);
  };
  return strip(a) === strip(b);
}

function canonicalJson(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A request's bounds on its database reads: they carry the time left (maxTimeMS), stop at the signal, and at
 * most `reads` of them run at once (thirty aliased lists become thirty reads, a few at a time, so one
 * request cannot take every database connection and core).
 */
export interface RequestDeadline {
  signal: AbortSignal;
  /** epoch milliseconds */
  at: number;
  reads?: Semaphore;
  /**
   * How many more resources the request's reads may bring back (MAX_RESOURCES_PER_REQUEST): what one request
   * may cost the hub's single thread in decoding and answering, whatever its aliases and lists.
   */
  budget?: { left: number; limit: number };
}

const fallbackLogger = createLogger('warn');

/** A projection that keeps the pending mark, which every read of current documents looks at (transaction-visibility.ts). */
function withPendingMark<T extends Record<string, 0 | 1>>(projection: T): T {
  return Object.values(projection).some((value) => value === 1) ? { ...projection, [PENDING_FIELD]: 1 } : projection;
}

export class FhirStore {
  private readonly extensions: StoreExtension[];

  constructor(
    private readonly db: Db,
    private readonly options: StoreOptions,
    private readonly access?: StoreAccess,
    private readonly deadline?: RequestDeadline,
    /** whose workflow records this store may write (workflow-records.ts): none unless a domain or the hub asks */
    private readonly grant?: WorkflowGrant,
  ) {
    this.extensions = options.extensions ?? [];
    for (const extension of this.extensions) {
      for (const [system, normalize] of Object.entries(extension.tokenNormalizers ?? {})) registerTokenNormalizer(system, normalize);
    }
  }

  /**
   * The same store, reading and writing as a caller with this access policy, within a request's time. Reads
   * ask the server to stop when the time is up (maxTimeMS) and are abandoned when the signal aborts (the
   * request timed out or its client went away); once aborted, no further operation reaches the database.
   */
  withAccess(access: StoreAccess | undefined, deadline?: RequestDeadline): FhirStore {
    return new FhirStore(this.db, this.options, access, deadline);
  }

  /**
   * The same store within the same request bounds, for a domain acting on the caller's behalf under its own
   * rules (the referral workflow checks which side may act, then writes with an access that keeps the caller's
   * reads, audit and scopes but not the member-writes-its-own rule).
   */
  actingAs(access: StoreAccess | undefined): FhirStore {
    return new FhirStore(this.db, this.options, access, this.deadline, this.grant);
  }

  /** The same store, writing also the records of a domain's workflow (its own transitions, never a caller's edits). */
  forWorkflow(workflow: string): FhirStore {
    const grant = this.grant === 'hub' ? 'hub' : new Set([...(this.grant ?? []), workflow]);
    return new FhirStore(this.db, this.options, this.access, this.deadline, grant);
  }

  /** The same store, acting as the hub itself: it may write every workflow's records (the demo seed's fixture). */
  asHub(): FhirStore {
    return new FhirStore(this.db, this.options, this.access, this.deadline, 'hub');
  }

  /** WORKFLOW_OWNED when a write would change a workflow's record outside its workflow (workflow-records.ts). */
  private guardWorkflowRecords(operation: 'c' | 'u' | 'd', next: Resource | undefined, existing: Resource | undefined): void {
    assertWorkflowWrite(this.workflowRecords, this.grant, operation, next, existing);
  }

  private get workflowRecords(): WorkflowRecords[] {
    return this.extensions.flatMap((extension) => (extension.workflowRecords ? [extension.workflowRecords] : []));
  }

  /** Runs a read within the request's share of concurrent reads. */
  private bounded<T>(read: () => Promise<T>): Promise<T> {
    const deadline = this.deadline;
    if (!deadline?.reads) return read();
    return deadline.reads.run(() => {
      // The request may have run out of time while this read waited for its turn.
      if (deadline.signal.aborted) throw new HubError('TIMEOUT', 'The request ran out of time');
      if (deadline.budget && deadline.budget.left < 0) this.charge([]);
      return read();
    });
  }

  /** Counts what a read brought back against the request's budget; past it the request fails with TOO_MANY_RESULTS. */
  private charge<T>(documents: T[]): T[] {
    const budget = this.deadline?.budget;
    if (!budget) return documents;
    budget.left -= documents.length;
    if (budget.left < 0) {
      throw new HubError('TOO_MANY_RESULTS', `This request reads more than ${budget.limit} resources in all (MAX_RESOURCES_PER_REQUEST); ask for fewer or smaller lists, or page with _count and a connection's cursor`);
    }
    return documents;
  }

  /** Options for a read within the request's time (none outside a request). */
  private timed(): { maxTimeMS?: number; signal?: AbortSignal } {
    if (!this.deadline) return {};
    return { maxTimeMS: Math.max(1, Math.round(this.deadline.at - Date.now())), signal: this.deadline.signal };
  }

  /** A filter with the access policy's added, keeping plain equalities at the top level (where they are pushed down). */
  private scoped(type: string, filter: Filter<ResourceDocument>, permission: 'r' | 's'): Filter<ResourceDocument> {
    const extra = this.access?.readFilter(type, permission);
    return extra ? allOf([filter, extra]) : filter;
  }

  /** With an access policy: NOT_FOUND unless the caller may read the resource's current version. */
  private async assertReadable(type: string, id: string): Promise<void> {
    if (!this.access) return;
    const [visible] = await this.documentsById(type, [id], { _id: 1 } as Record<string, 1>);
    if (visible) return;
    // A deleted resource's versions stay readable by callers whose reads of the type have no row filter (members,
    // administrators); a resident's compartment cannot be checked on a deletion, so for them it is not found.
    if (!this.access.readFilter(type, 'r') && (await this.tombstones().findOne({ _id: `${type}/${id}` }, { projection: { _id: 1 } }))) return;
    throw notFound(`${type}/${id} not found`);
  }

  private async checkWrite(
    operation: 'c' | 'u' | 'd',
    resource: Resource,
    existingJson?: string,
    context: { owner?: string; batch?: ReadonlyMap<string, Resource> } = {},
  ): Promise<void> {
    this.guardWorkflowRecords(operation, operation === 'd' ? undefined : resource, existingJson ? parseResource(existingJson) : undefined);
    if (!this.access) return;
    await this.access.checkWrite(operation, resource, existingJson ? parseResource(existingJson) : undefined, this.withAccess(undefined), context);
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

  /** The resources with what the domains add before a write (their `prepareWrites`), in the order given. */
  private async prepared<T>(resources: T[]): Promise<T[]> {
    let current = resources;
    for (const extension of this.extensions) {
      if (!extension.prepareWrites) continue;
      // Only what looks like a resource is handed over; anything else goes on to validation as it is.
      const indexes = current.flatMap((item, index) => (item && typeof item === 'object' && typeof (item as { resourceType?: unknown }).resourceType === 'string' ? [index] : []));
      if (indexes.length === 0) continue;
      const changed = await extension.prepareWrites(indexes.map((index) => current[index] as unknown as Resource), this.extensionContext());
      const next = [...current];
      indexes.forEach((index, i) => (next[index] = changed[i] as unknown as T));
      current = next;
    }
    return current;
  }

  /** The domains' hooks act as the hub: their follow-ups (a critical value's notification) are workflow writes. */
  private extensionContext(): ExtensionContext {
    return { store: this.actingAs(undefined).asHub(), db: this.db };
  }

  /** Tells the extensions what was written; their failures are logged, the write stands. */
  private async written(written: WrittenResource[]): Promise<void> {
    if (written.length === 0) return;
    for (const extension of this.extensions) {
      if (!extension.afterWrite) continue;
      await extension.afterWrite(written, this.extensionContext()).catch((error: unknown) => {
        (this.options.logger ?? fallbackLogger).warn('a domain could not follow up a write', { types: [...new Set(written.map((item) => item.resource.resourceType))].join(','), error: error instanceof Error ? error.message : String(error) });
      });
    }
  }

  /** FHIR validation plus the domains' rules for what is stored (a Patient's national ID must be valid). */
  private validate(resource: unknown, refusal?: HubError | null): Resource {
    if (refusal) throw refusal;
    // null: the validation threads found it valid (see validateAll)
    const valid = refusal === null ? (resource as Resource) : validateFhirResource(resource);
    for (const extension of this.extensions) extension.check?.(valid);
    return valid;
  }

  /**
   * For a large batch, its FHIR validation on the validation threads (validation-pool.ts): per resource null
   * (valid) or its refusal. Undefined entries (a small batch, no thread ready) are validated in place.
   */
  private async validateAll(resources: unknown[]): Promise<(HubError | null | undefined)[]> {
    const pool = validationPool();
    if (!pool.takes(resources.length)) return [];
    const refusals = await pool.validate(resources);
    return refusals ? refusals.map((refusal) => refusal ?? null) : [];
  }

  /**
   * The stored search fields of a resource: the values of its search parameters and what the domains derive
   * from it, equality values as top-level `t_` fields, the rest under `sp` (see storedField).
   */
  private searchFields(resource: Resource): { sp: Record<string, unknown>; top: Record<string, unknown> } {
    const values = extractSearchValues(resource);
    const sp: Record<string, unknown> = {};
    const top: Record<string, unknown> = {};
    const parameters = searchParametersOf(resource.resourceType);
    for (const [key, value] of Object.entries(values)) {
      const parameter = findSearchParameter(resource.resourceType, key) ?? parameters.get(key);
      const field = parameter ? storedField(parameter) : `sp.${key}`;
      if (field.startsWith('sp.')) sp[key] = value;
      else top[field] = value;
    }
    for (const extension of this.extensions) {
      for (const [key, value] of Object.entries(extension.derive?.(resource, values) ?? {})) {
        if (key.startsWith(TOP_LEVEL_PREFIX)) top[key] = value;
        else sp[key] = value;
      }
    }
    return { sp, top };
  }

  /**
   * The history entry and the current document of one version of a resource. Its owner is inherited from
   * the id's earlier versions; a new id belongs to the writing member's organisation, or else to the
   * organisation its content names (the domains' `owner` hook).
   */
  private versionDocuments(
    resource: Resource,
    version: number,
    ts: Date,
    op: HistoryDocument['op'],
    inheritedOwner?: string,
  ): { history: HistoryDocument; current: VersionFields } {
    const id = resource.id as string;
    const json = JSON.stringify(resource);
    const { sp, top } = this.searchFields(resource);
    const owner = inheritedOwner ?? this.access?.writerOrganization ?? this.extensionOwner(resource, { ...sp, ...top });
    return {
      history: { _id: `${id}/${version}`, rid: id, v: version, ts, json, op, ...(owner ? { owner } : {}) },
      current: { _id: id, v: version, ts, json, sp, top, ...(owner ? { owner } : {}) },
    };
  }

  /** The layout of current documents on this server (see document-layout.ts): compact on FerretDB. */
  private async layout(): Promise<LayoutName> {
    return (await databaseProfile(this.db)).ferretdb ? 'compact' : 'structured';
  }

  /** The top-level fields a query of a type can start from: the indexed equality parameters and the domains' keys. */
  private anchorFields(type: string): Set<string> {
    const available = searchParametersOf(type);
    const fields = new Set<string>();
    for (const code of indexedSearchParameters) {
      const parameter = available.get(code);
      if (parameter && storedField(parameter).startsWith(TOP_LEVEL_PREFIX)) fields.add(storedField(parameter));
    }
    for (const extension of this.extensions) for (const field of extension.indexes?.[type] ?? []) fields.add(field);
    return fields;
  }

  /** The date paths a type's queries sort by, which get order keys in the compact layout (`sp.date.lo`, `sp._when`). */
  private orderPaths(type: string): string[] {
    const available = searchParametersOf(type);
    const paths = indexedSearchParameters.filter((code) => available.get(code)?.type === 'date').map((code) => `sp.${available.get(code)!.key}.lo`);
    for (const extension of this.extensions) paths.push(...(extension.orders?.[type] ?? []));
    // The last update (`_lastUpdated`): REST paging in that order, type history and members' syncs.
    paths.push('ts');
    return [...new Set(paths)];
  }

  /** The stored document of a version, in this server's layout. */
  private async encode(type: string, fields: VersionFields): Promise<ResourceDocument> {
    return encodeCurrent(await this.layout(), fields, this.anchorFields(type), this.orderPaths(type)) as ResourceDocument;
  }

  /** The current document of a resource, structured (whatever the layout), or null. */
  private async currentDocument(type: string, id: string): Promise<ResourceDocument | null> {
    const direct = (await this.layout()) === 'compact' ? await this.readCompact(type, '_id', [id]) : undefined;
    const document = direct ? (direct[0] ?? null) : await this.current(type).findOne({ _id: id });
    return document ? viewOf(document) : null;
  }

  /**
   * Compact documents read straight from FerretDB's PostgreSQL (database/ferretdb-storage.ts) by `_id` or by
   * anchor, or all of a type (`values` undefined); undefined where that is not possible (FerretDB on SQLite,
   * an unexpected storage layout): the caller asks FerretDB.
   */
  private async readCompact(type: string, field: '_id' | 't', values: readonly string[] | undefined, order?: CompactOrder): Promise<CompactRow[] | undefined> {
    const storage = ferretDbStorageOf(this.db);
    if (!storage) return undefined;
    const timeoutMs = this.deadline ? this.deadline.at - Date.now() : 120_000;
    if (timeoutMs <= 0) throw new HubError('TIMEOUT', 'The request ran out of time');
    return storage.readCompact(this.db.databaseName, type, values === undefined ? { all: true } : { field, values }, timeoutMs, order);
  }

  /**
   * A page of a compact-layout query sorted first by a date with an order key, read from PostgreSQL a batch at
   * a time in that order until the page is full (and the documents tied with its last one are read), instead
   * of reading every document of the anchor: the work stays that of a page however many documents the anchor
   * holds. Undefined where the query does not have that form or PostgreSQL cannot be read directly.
   */
  private async orderedPage(
    type: string,
    filter: Filter<ResourceDocument>,
    condition: { field: '_id' | 't'; values: string[] } | undefined,
    sort: Record<string, 1 | -1>,
    need: number,
  ): Promise<ResourceDocument[] | undefined> {
    const [first] = Object.entries(sort);
    if (!first || !this.orderPaths(type).includes(first[0]) || !ferretDbStorageOf(this.db)) return undefined;
    const [path, direction] = first;
    const matches = matcher(filter);
    const kept: ResourceDocument[] = [];
    const batch = Math.min(1000, Math.max(64, need * 2));
    // A lower bound on the order value itself (`_lastUpdated=ge…` read in that order) starts the read there.
    let after: CompactOrder['after'] = direction === 1 ? lowerBound(filter, path) : undefined;
    let boundary: number | null | undefined;
    for (;;) {
      const rows = await this.bounded(() => this.readCompact(type, condition?.field ?? 't', condition?.values, { key: orderKey(path), direction, limit: batch, ...(after ? { after } : {}) }));
      if (!rows) return undefined;
      for (const row of rows) {
        // Past the page's last order value: nothing further can come before it.
        if (boundary !== undefined && row.ord !== boundary) return kept;
        const view = viewOf(row);
        if (!matches(view)) continue;
        kept.push(view);
        if (kept.length === need) boundary = row.ord ?? null;
      }
      if (rows.length < batch) return kept;
      const last = rows[rows.length - 1]!;
      after = { ord: last.ord ?? null, id: last._id };
    }
  }

  /** The organisation the domains attribute a resource to by its content (a member's code map: that member). */
  claimedOwner(resource: Resource): string | undefined {
    return this.extensionOwner(resource, {});
  }

  private extensionOwner(resource: Resource, searchValues: Record<string, unknown>): string | undefined {
    for (const extension of this.extensions) {
      const owner = extension.owner?.(resource, searchValues as SearchValues);
      if (owner) return owner;
    }
    return undefined;
  }

  private current(type: string): Collection<ResourceDocument> {
    assertServedType(type);
    return this.db.collection<ResourceDocument>(type);
  }

  private versions(type: string): Collection<HistoryDocument> {
    assertServedType(type);
    return this.db.collection<HistoryDocument>(`${type}_history`);
  }

  private tombstones(): Collection<Tombstone> {
    return this.db.collection<Tombstone>('tombstones');
  }

  private intents(): Collection<WriteIntent> {
    return this.db.collection<WriteIntent>('write_intents');
  }

  /** Records that a write of these ids begins (see WriteIntent); a transaction's begins pending. */
  private async intend(type: string, ids: string[], more: { type: string; ids: string[] }[] = [], state?: 'pending'): Promise<string> {
    const _id = randomUUID();
    await this.intents().insertOne({ _id, type, ids, ...(more.length > 0 ? { more } : {}), at: new Date(), ...(state ? { state } : {}) });
    return _id;
  }

  /** The write is complete: nothing to roll forward. (A write that failed half-way keeps its intent.) */
  private async completed(intent: string): Promise<void> {
    await this.intents().deleteOne({ _id: intent });
  }

  /**
   * Finishes writes that a process left half done (killed between a version's history entry and its current
   * document): every intent's resources are rolled forward to their latest version in history. Run at every
   * start and then every minute; safe beside live writers (a write finds its version already in place and
   * counts as done). Intents older than `settleMs` are then removed.
   */
  async recoverCutOffWrites(settleMs = 30_000): Promise<{ intents: number; resources: number }> {
    return this.guard(async () => {
      const intents = await this.intents().find({}).limit(1000).toArray();
      let resources = 0;
      // Several resources at once: each takes a few round trips, and a transaction's intent names all of its
      // entries (a recovery one at a time took minutes on a busy machine).
      const together = new Semaphore(RECOVERY_CONCURRENCY);
      for (const intent of intents) {
        // A transaction still pending is invisible: its writer may still be at it; cut off long ago, it is rolled back.
        if (intent.state === 'pending') {
          if (Date.now() - intent.at.getTime() < PENDING_TIMEOUT_MS) continue;
          await rollBack(this.db, intent);
          await this.completed(intent._id);
          continue;
        }
        // A committed one is finished: marks removed, then rolled forward like any other write.
        if (intent.state === 'committed') await unmark(this.db, intent);
        const work: Promise<void>[] = [];
        for (const { type, ids } of [{ type: intent.type, ids: intent.ids }, ...(intent.more ?? [])]) {
          if (!isServedResourceType(type)) continue;
          for (const id of ids) work.push(together.run(() => this.rollForward(type, id)));
          resources += ids.length;
        }
        await Promise.all(work);
        if (Date.now() - intent.at.getTime() >= settleMs) await this.completed(intent._id);
      }
      return { intents: intents.length, resources };
    });
  }

  /**
   * Creates the indexes the store's queries use (see createMissingIndexes for what each server gets); safe to
   * call at every start.
   */
  async ensureIndexes(): Promise<void> {
    const compact = (await this.layout()) === 'compact';
    for (const type of servedResourceTypes) {
      if (compact) {
        // FerretDB: `_id` and the anchors `t` (GIN in PostgreSQL), nothing else it could use; and the pending mark.
        await createMissingIndexes(this.db, type, [
          { key: { t: 1 }, name: 'anchors' },
          PENDING_INDEX,
          ...this.orderPaths(type).map((path): IndexSpec => ({ key: { [orderKey(path)]: -1 }, name: orderKey(path), range: true })),
        ]);
        await createMissingIndexes(this.db, `${type}_history`, [{ key: { rid: 1, v: -1 }, name: 'resource_version' }, PENDING_INDEX]);
        continue;
      }
      const available = searchParametersOf(type);
      const wanted: IndexSpec[] = [
        { key: { ts: 1 }, name: 'lastUpdated', range: true },
        ...indexedSearchParameters
          .filter((code) => available.has(code))
          .map((code): IndexSpec => {
            const parameter = available.get(code)!;
            const field = parameter.type === 'date' ? `sp.${parameter.key}.lo` : storedField(parameter);
            return { key: { [field]: 1 as const }, name: field.replace(/\./g, '_'), ...(parameter.type === 'date' ? { range: true } : {}) };
          }),
      ];
      for (const extension of this.extensions) for (const field of extension.indexes?.[type] ?? []) wanted.push({ key: { [field]: 1 }, name: field });
      wanted.push(PENDING_INDEX);
      await createMissingIndexes(this.db, type, wanted);
      await createMissingIndexes(this.db, `${type}_history`, [{ key: { rid: 1, v: -1 }, name: 'resource_version' }, PENDING_INDEX]);
    }
    await createMissingIndexes(this.db, 'tombstones', [{ key: { type: 1 }, name: 'type' }]);
    await createMissingIndexes(this.db, 'write_intents', []);
  }

  /**
   * Whether the search values in the database were extracted with the parameters this hub knows. An empty
   * database is marked current. `stale` means searches on new parameters miss old resources until
   * `npm run reindex` has run.
   */
  async searchIndexStatus(): Promise<'current' | 'stale'> {
    return this.guard(async () => {
      const stored = await this.meta().findOne({ _id: 'search-index' });
      if (stored?.fingerprint === this.fingerprint()) return 'current';
      for (const type of servedResourceTypes) {
        if ((await this.db.collection(type).estimatedDocumentCount()) > 0) return 'stale';
      }
      await this.markSearchIndexCurrent();
      return 'current';
    });
  }

  /** The search parameters' fingerprint and the extensions' (what `derive` stores). */
  private fingerprint(): string {
    const own = this.extensions.map((extension) => extension.fingerprint).filter((value): value is string => value !== undefined);
    return [searchIndexFingerprint(), ...own].join('+');
  }

  private meta(): Collection<{ _id: string; fingerprint: string; at: Date }> {
    return this.db.collection('hub_meta');
  }

  private async markSearchIndexCurrent(): Promise<void> {
    await this.meta().updateOne({ _id: 'search-index' }, { $set: { fingerprint: this.fingerprint(), at: new Date() } }, { upsert: true });
  }

  /**
   * Re-extracts the search values of every current resource, a page at a time, and records the fingerprint.
   * Each update is a compare-and-set on the version, so a resource written meanwhile keeps its own values.
   */
  async reindex(onProgress?: (type: string, done: number) => void, batch = 200): Promise<{ documents: number; changed: number }> {
    return this.guard(async () => {
      let documents = 0;
      let changed = 0;
      for (const type of servedResourceTypes) {
        let done = 0;
        let updates: AnyBulkWriteOperation<ResourceDocument>[] = [];
        const write = async (): Promise<void> => {
          if (updates.length > 0) changed += (await this.current(type).bulkWrite(updates, { ordered: false })).modifiedCount;
          updates = [];
        };
        // One pass over the collection (FerretDB would decode it again for every page of a range query).
        for await (const stored of this.current(type).find({}, { batchSize: batch })) {
          const view = viewOf(stored);
          const { sp, top } = this.searchFields(parseResource(view.json));
          const replacement = await this.encode(type, { _id: view._id, v: view.v, ts: view.ts, json: view.json, sp, top, ...(view.owner ? { owner: view.owner } : {}) });
          if (canonicalJson(replacement) !== canonicalJson(stored)) {
            // A compare-and-set on the version: a resource written meanwhile keeps its own values.
            updates.push({ replaceOne: { filter: { _id: view._id, v: view.v }, replacement } });
          }
          documents++;
          done++;
          if (updates.length >= batch) {
            await write();
            onProgress?.(type, done);
          }
        }
        await write();
        onProgress?.(type, done);
      }
      await this.markSearchIndexCurrent();
      return { documents, changed };
    });
  }

  private prepare(resource: Resource, id: string, version: number, lastUpdated: Date): Resource {
    const meta = { ...(resource.meta ?? {}), versionId: String(version), lastUpdated: lastUpdated.toISOString() };
    return { ...resource, id, meta } as Resource;
  }

  /**
   * Writes one version: the history entry first (its unique `<id>/<version>` is the claim on the version), then
   * the current document. A write intent brackets both, so a process killed between them leaves a pointer
   * for the next start to finish the write.
   */
  private async writeNewVersion(stored: Resource, version: number, ts: Date, op: HistoryDocument['op'], inheritedOwner?: string): Promise<void> {
    const type = stored.resourceType;
    const id = stored.id as string;
    const { history, current: fields } = this.versionDocuments(stored, version, ts, op, inheritedOwner);
    const document = await this.encode(type, fields);
    const intent = await this.intend(type, [id]);
    try {
      await this.versions(type).insertOne(history);
    } catch (error) {
      if (isDuplicateKey(error)) {
        await this.completed(intent);
        await this.rollForward(type, id);
        throw conflict(`${type}/${id} was changed by someone else (version ${version} already exists); read it again and retry`);
      }
      throw error;
    }
    // Version 1, or a resource put again after its deletion: there is no current document to move forward.
    if (version === 1 || op === 'recreate') {
      await this.current(type).insertOne(document).catch(async (error: unknown) => {
        // A recovery may have finished this very write already; anything else holds the id.
        if (!isDuplicateKey(error) || !(await this.isAtVersion(type, id, version))) throw isDuplicateKey(error) ? conflict(`${type}/${id} already exists`) : error;
      });
      if (op === 'recreate') await this.tombstones().deleteOne({ _id: `${type}/${id}` });
    } else {
      const replaced = await this.current(type).replaceOne({ _id: id, v: version - 1 }, document);
      // Not at the version before: a cut-off earlier write, or a recovery that already moved it here.
      if (replaced.matchedCount === 0) await this.rollForward(type, id);
    }
    await this.completed(intent);
  }

  private async isAtVersion(type: string, id: string, version: number): Promise<boolean> {
    const current = await this.current(type).findOne({ _id: id }, { projection: { v: 1 } });
    return current?.v === version;
  }

  /**
   * Repairs a write that was cut off between its two steps: if history holds a newer version than the
   * current document, the current document is moved forward to it (a deletion removes it and leaves its
   * tombstone).
   */
  private async rollForward(type: string, id: string): Promise<void> {
    const current = await this.current(type).findOne({ _id: id }, { projection: { v: 1 } });
    // Versions after the current one (or after the deletion, or from the first) are looked up by their
    // `<id>/<version>` key, one by one: an equality every server answers without a scan.
    let version = current?.v ?? (await this.tombstones().findOne({ _id: `${type}/${id}` }, { projection: { v: 1 } }))?.v ?? 0;
    let latest: HistoryDocument | null = null;
    for (;;) {
      const next = await this.versions(type).findOne({ _id: `${id}/${version + 1}` });
      if (!next) break;
      latest = next;
      version = next.v;
    }
    if (!latest) return;
    if (latest.json === null) {
      await this.tombstones().replaceOne({ _id: `${type}/${id}` }, { type, v: latest.v, ts: latest.ts, ...(latest.owner ? { owner: latest.owner } : {}) }, { upsert: true });
      await this.current(type).deleteOne({ _id: id, v: { $lt: latest.v } });
      return;
    }
    const { sp, top } = this.searchFields(parseResource(latest.json));
    const document = await this.encode(type, { _id: id, v: latest.v, ts: latest.ts, json: latest.json, sp, top, ...(latest.owner ? { owner: latest.owner } : {}) });
    if (current) await this.current(type).replaceOne({ _id: id, v: current.v }, document);
    // No current document: a cut-off create or put-after-delete; a concurrent repair may win the insert.
    else await this.current(type).insertOne(document).catch((error: unknown) => {
      if (!isDuplicateKey(error)) throw error;
    });
  }

  /** Validates and creates a resource; the store assigns the id unless one is given (seed, PUT-as-create). */
  async create<T extends Resource>(resource: T, options: { id?: string } = {}): Promise<T> {
    return this.guard(async () => {
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
    const stored = this.prepare(valid, id, 1, ts);
    await this.writeNewVersion(stored, 1, ts, 'create');
    return stored;
  }

  /**
   * The current documents of some ids, as the caller may see them. Reads by plain `_id` equality, the one
   * shape every server answers with its primary key (FerretDB's SQLite backend pushes down nothing else); the
   * access policy's filter is then applied to the documents found, so it cannot turn the read into a scan.
   */
  private async documentsById(type: string, ids: string[], projection: Record<string, 1>): Promise<ResourceDocument[]> {
    return this.bounded(() => this.documentsByIdNow(type, ids, projection));
  }

  private async documentsByIdNow(type: string, ids: string[], projection: Record<string, 1>): Promise<ResourceDocument[]> {
    const extra = this.access?.readFilter(type, 'r');
    const collection = this.current(type);
    let documents: ResourceDocument[];
    const compact = (await this.layout()) === 'compact';
    // A compact document is read whole (its fields are in one blob); a structured one as projected.
    const options = { ...(compact ? {} : { projection: withPendingMark(projection) }), ...this.timed() };
    const direct = compact ? await this.readCompact(type, '_id', ids) : undefined;
    if (direct) {
      documents = direct as unknown as ResourceDocument[];
    } else if (ids.length === 1) {
      const one = await collection.findOne({ _id: ids[0]! }, options);
      documents = one ? [one] : [];
    } else if (compact) {
      documents = (await mapWithConcurrency(ids, 16, (id) => collection.findOne({ _id: id }, options))).filter((d): d is ResourceDocument => d !== null);
    } else {
      documents = await collection.find({ _id: { $in: ids } }, { ...options, limit: ids.length, batchSize: ids.length + 1 }).toArray();
    }
    const views = await visibleDocuments(this.db, documents.map(viewOf));
    return this.charge(extra ? views.filter(matcher(extra)) : views);
  }

  async read<T extends Resource = Resource>(type: string, id: string): Promise<T> {
    return this.guard(async () => {
      assertValidId(id);
      const [document] = await this.documentsById(type, [id], { json: 1, sp: 1 } as Record<string, 1>);
      if (document) return this.seen([this.reveal(document.json)])[0] as T;
      if (this.access?.readFilter(type, 'r')) throw notFound(`${type}/${id} not found`);
      const deleted = await this.tombstones().findOne({ _id: `${type}/${id}` }, { projection: { _id: 1 } });
      if (deleted) throw new HubError('GONE', `${type}/${id} was deleted`);
      throw notFound(`${type}/${id} not found`);
    });
  }

  /**
   * Reads many resources of one type; missing ones are absent from the map. On MongoDB one `$in` query; on
   * FerretDB, up to FERRETDB_EQUALITY_BATCH ids are read with one equality query each (sent together), as its
   * `$in` decodes the whole collection.
   */
  async readMany(type: string, ids: readonly string[]): Promise<Map<string, Resource>> {
    return this.guard(async () => {
      const valid = [...new Set(ids)].filter((id) => ID_PATTERN.test(id));
      const found = new Map<string, Resource>();
      if (valid.length === 0) return found;
      for (const document of await this.documentsById(type, valid, { json: 1, sp: 1 } as Record<string, 1>)) found.set(document._id, this.reveal(document.json));
      this.seen([...found.values()]);
      return found;
    });
  }

  async readVersion<T extends Resource = Resource>(type: string, id: string, versionId: string | number): Promise<T> {
    return this.guard(async () => {
      assertValidId(id);
      const version = parseVersion(versionId);
      await this.assertReadable(type, id);
      const document = await this.versions(type).findOne({ _id: `${id}/${version}` });
      if (!document) throw notFound(`${type}/${id} has no version ${version}`);
      if (document.json === null) throw new HubError('GONE', `${type}/${id} version ${version} is a deletion`);
      return this.reveal(document.json) as T;
    });
  }

  /** Every version of a resource, newest first; a deletion appears as `deleted: true`. */
  async history(type: string, id: string): Promise<{ versionId: string; lastUpdated: string; deleted: boolean; resource?: Resource }[]> {
    return this.guard(async () => {
      assertValidId(id);
      await this.assertReadable(type, id);
      const documents = await this.versions(type).find({ rid: id }).sort({ v: -1 }).toArray();
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
    const current = await this.currentDocument(type, id);
    const extra = current && this.access?.readFilter(type, 'r');
    if (!current || (extra && !matcher(extra)(current))) throw notFound(`${type}/${id} not found`);
    return current;
  }

  /**
   * Validates and updates a resource. `ifMatch` (or the resource's meta.versionId) names the version the
   * caller read; if the resource has moved on since, the update fails with CONFLICT and nothing is written.
   */
  async update<T extends Resource>(resource: T, options: { ifMatch?: string | number } = {}): Promise<T> {
    return this.guard(async () => {
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
    if (expected !== current.v) {
      throw conflict(`${type}/${id} is at version ${current.v}, not ${expected}; read it again and retry`);
    }
    await this.checkWrite('u', valid, current.json, current.owner ? { owner: current.owner } : {});
    const ts = new Date();
    const stored = this.prepare(valid, id, expected + 1, ts);
    await this.writeNewVersion(stored, expected + 1, ts, 'update', current.owner);
    return stored;
  }

  /** Deletes a resource; its versions stay readable in history. Returns the version that records the deletion. */
  async delete(type: string, id: string, options: { ifMatch?: string | number } = {}): Promise<string> {
    return this.guard(async () => {
      assertValidId(id);
      this.access?.assertMayWrite(type, 'd');
      const current = await this.changing(type, id);
      const expected = options.ifMatch === undefined ? current.v : parseVersion(options.ifMatch);
      if (expected !== current.v) throw conflict(`${type}/${id} is at version ${current.v}, not ${expected}`);
      await this.checkWrite('d', parseResource(current.json), current.json, current.owner ? { owner: current.owner } : {});
      const version = expected + 1;
      const ts = new Date();
      const intent = await this.intend(type, [id]);
      try {
        await this.versions(type).insertOne({ _id: `${id}/${version}`, rid: id, v: version, ts, json: null, op: 'delete', ...(current.owner ? { owner: current.owner } : {}) });
      } catch (error) {
        if (isDuplicateKey(error)) {
          await this.completed(intent);
          throw conflict(`${type}/${id} was changed by someone else; read it again and retry`);
        }
        throw error;
      }
      // The id stays its owner's: putting it again continues its versions and is checked against that owner.
      await this.tombstones().replaceOne({ _id: `${type}/${id}` }, { type, v: version, ts, ...(current.owner ? { owner: current.owner } : {}) }, { upsert: true });
      await this.current(type).deleteOne({ _id: id, v: expected });
      await this.completed(intent);
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
    return this.guard(async () => {
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
    const existing = await this.currentDocument(type, valid.id);
    if (!existing) {
      const tombstone = await this.tombstones().findOne({ _id: `${type}/${valid.id}` });
      if (!tombstone) return { resource: await this.createValid(valid, { id: valid.id }), outcome: 'created' };
      // Put after a deletion creates the resource again as its next version (FHIR update-as-create).
      this.access?.assertMayWrite(type, 'c');
      await this.checkWrite('c', valid, undefined, { ...(tombstone.owner ? { owner: tombstone.owner } : {}), ...(batch ? { batch } : {}) });
      const ts = new Date();
      const stored = this.prepare(valid, valid.id, tombstone.v + 1, ts);
      await this.writeNewVersion(stored, tombstone.v + 1, ts, 'recreate', tombstone.owner);
      return { resource: stored, outcome: 'created' };
    }
    const stored = parseResource(existing.json);
    if (sameContent(stored, valid)) return { resource: stored, outcome: 'unchanged' };
    const { meta: _meta, ...withoutMeta } = valid;
    const updated = await this.updateValid({ ...withoutMeta, meta: { ...valid.meta, versionId: String(existing.v) } } as Resource, {});
    return { resource: updated, outcome: 'updated' };
  }

  /** `put` for many resources (see writeMany). */
  async putMany(resources: Resource[], options: { atomic?: boolean; labels?: string[] } = {}): Promise<WriteOutcome[]> {
    return this.writeMany(resources.map((resource) => ({ resource, mode: 'put' as const })), options);
  }

  /**
   * Writes many resources with ids with a few bulk operations per resource type.
   *
   * - `create` (create if absent, as a POST with a stable id): two bulk inserts, history then current, and
   *   no read at all; an id that exists already is `unchanged` (the unique keys say so), never overwritten.
   * - `put` (create or update): one read of what exists, bulk inserts for the new ones, `update` for those
   *   whose content changed, `unchanged` for the rest.
   *
   * Atomic (the default): every resource is validated before anything is written, and the first invalid one
   * refuses the whole call, named by its label. Not atomic: invalid resources get a `failed` outcome and the
   * others are written.
   */
  async writeMany(
    items: { resource: Resource; mode: 'create' | 'put' }[],
    options: { atomic?: boolean; labels?: string[] } = {},
  ): Promise<WriteOutcome[]> {
    return this.guard(async () => {
      const atomic = options.atomic ?? true;
      const outcomes = new Map<Resource, WriteOutcome>();
      const valid: { resource: Resource; mode: 'create' | 'put' }[] = [];
      const inputs = await this.prepared(items.map((item) => item.resource));
      const refusals = await this.validateAll(inputs);
      // The outcome of item i is kept under keys[i]: its validated resource, or the item itself when it failed.
      const keys: Resource[] = items.map((item) => item.resource);
      items.forEach(({ resource, mode }, index) => {
        try {
          const checked = this.validate(inputs[index], refusals[index]);
          if (!checked.id) throw badInput(`A ${checked.resourceType} to write has no id`, ['id']);
          assertValidId(checked.id);
          // A batch (a Bundle, an import, a sync) writes no workflow's record, new or not (an existing one that
          // a plain resource would replace is refused where it is replaced: checkWrite).
          this.guardWorkflowRecords('c', checked, undefined);
          keys[index] = checked;
          valid.push({ resource: checked, mode });
        } catch (error) {
          const label = options.labels?.[index];
          const named =
            error instanceof HubError && label ? new HubError(error.code, `${label}: ${error.message}`, error.outcome) : error;
          if (atomic || !(named instanceof HubError)) throw named;
          outcomes.set(resource, { resource, outcome: 'failed', error: named });
        }
      });
      const batch = new Map(valid.map(({ resource }) => [`${resource.resourceType}/${resource.id}`, resource]));
      // Every write is checked before any is made: the access policy, and whether it would change a workflow's
      // record (an import or a sync has no access policy, but its puts are checked against what they replace).
      const checked = await this.checkWrites(this.access ? valid : valid.filter(({ mode }) => mode === 'put' && this.workflowRecords.length > 0), batch, atomic, outcomes);
      if (!atomic) valid.splice(0, valid.length, ...valid.filter(({ resource }) => !outcomes.has(resource) || checked.has(resource)));
      const groups = new Map<string, { create: Resource[]; put: Resource[] }>();
      for (const { resource, mode } of valid) {
        const group = groups.get(resource.resourceType) ?? { create: [], put: [] };
        group[mode].push(resource);
        groups.set(resource.resourceType, group);
      }
      // One write intent covers the bulk creates of every type of the batch (two round trips, not two per type).
      // A transaction's (atomic, several resources) begins pending: its new resources are marked with it and
      // become visible together when it commits (transaction-visibility.ts).
      const creates = [...groups].filter(([, group]) => group.create.length > 0).map(([type, group]) => ({ type, ids: group.create.map((resource) => resource.id as string) }));
      const transaction = atomic && valid.length > 1 ? [...groups].map(([type, group]) => ({ type, ids: [...group.create, ...group.put].map((resource) => resource.id as string) })) : undefined;
      const intent = transaction
        ? await this.intend(transaction[0]!.type, transaction[0]!.ids, transaction.slice(1), 'pending')
        : creates.length > 1
          ? await this.intend(creates[0]!.type, creates[0]!.ids, creates.slice(1))
          : undefined;
      const pending = transaction ? intent : undefined;
      try {
        for (const [type, group] of groups) {
          if (group.create.length > 0) await this.createIfAbsent(type, group.create, outcomes, intent !== undefined, pending);
          if (group.put.length > 0) await this.putGroup(type, group.put, outcomes, batch, pending);
        }
        if (pending) {
          await commitTransaction(this.intents(), pending);
          await unmark(this.db, { _id: pending, type: transaction![0]!.type, ids: [], more: transaction!.slice(1), at: new Date() });
        }
      } catch (error) {
        // Nothing of a transaction that failed part-way is visible; what it wrote goes (recovery would, later).
        if (pending) await rollBack(this.db, { _id: pending, type: transaction![0]!.type, ids: [], more: transaction!.slice(1), at: new Date() }).then(() => this.completed(pending), () => undefined);
        throw error;
      }
      if (intent) await this.completed(intent);
      const result = keys.map((key) => outcomes.get(key)!);
      await this.written(result.filter((outcome) => outcome.outcome === 'created' || outcome.outcome === 'updated').map((outcome) => ({ resource: outcome.resource, operation: outcome.outcome === 'created' ? 'create' : 'update' })));
      return result;
    });
  }

  /**
   * The current documents of ids, whoever may read them (for the store's own checks), by `_id` equality: one
   * query per id on FerretDB (up to the batch size), one `$in` on MongoDB.
   */
  private async existingDocuments(type: string, ids: string[], projection: Record<string, 1>): Promise<Map<string, ResourceDocument>> {
    const unrestricted = this.access ? this.withAccess(undefined, this.deadline) : this;
    return new Map((await unrestricted.documentsByIdNow(type, [...new Set(ids)], projection)).map((document) => [document._id, document]));
  }

  /**
   * Every write of a batch is checked before any is made: one read of existing resources per type (and of
   * the tombstones of ids that are gone), and the Bundle's own resources stand in for what they refer to.
   */
  private async checkWrites(
    items: { resource: Resource; mode: 'create' | 'put' }[],
    batch: ReadonlyMap<string, Resource>,
    atomic: boolean,
    outcomes: Map<Resource, WriteOutcome>,
  ): Promise<Set<Resource>> {
    const passed = new Set<Resource>();
    if (items.length === 0) return passed;
    const idsByType = new Map<string, string[]>();
    for (const { resource } of items) idsByType.set(resource.resourceType, [...(idsByType.get(resource.resourceType) ?? []), resource.id as string]);
    const existing = new Map<string, ResourceDocument>();
    const owners = new Map<string, string>();
    for (const [type, ids] of idsByType) {
      for (const [id, document] of await this.existingDocuments(type, ids, { json: 1, owner: 1 } as Record<string, 1>)) existing.set(`${type}/${id}`, document);
      if (!this.access) continue;
      const gone = ids.filter((id) => !existing.has(`${type}/${id}`)).map((id) => `${type}/${id}`);
      for (const tombstone of await mapWithConcurrency(gone, 16, (key) => this.tombstones().findOne({ _id: key }))) {
        if (tombstone?.owner) owners.set(tombstone._id, tombstone.owner);
      }
    }
    for (const { resource, mode } of items) {
      try {
        this.access?.assertMayWrite(resource.resourceType, mode === 'put' ? 'u' : 'c');
        const key = `${resource.resourceType}/${resource.id}`;
        const document = existing.get(key);
        const owner = document?.owner ?? owners.get(key);
        // A create of an existing id writes nothing (unchanged), so only the content is checked.
        await this.checkWrite(document && mode === 'put' ? 'u' : 'c', resource, mode === 'put' ? document?.json : undefined, { ...(owner ? { owner } : {}), batch });
        passed.add(resource);
      } catch (error) {
        // A batch refuses the entry alone; a transaction (atomic) all of it.
        if (atomic || !(error instanceof HubError)) throw error;
        outcomes.set(resource, { resource, outcome: 'failed', error });
      }
    }
    return passed;
  }

  /** `covered`: the caller's write intent names these ids already; `pending`: the transaction they are written in. */
  private async createIfAbsent(type: string, resources: Resource[], outcomes: Map<Resource, WriteOutcome>, covered = false, pending?: string): Promise<void> {
    const ts = new Date();
    const prepared: Resource[] = [];
    const documents: ReturnType<FhirStore['versionDocuments']>[] = [];
    const currents: ResourceDocument[] = [];
    // A slice at a time, letting other requests in between (200 audit events in one go held the event loop for
    // 25 ms: a read arriving then waited for all of it).
    for (let start = 0; start < resources.length; start += SLICE) {
      if (start > 0) await yieldToEventLoop();
      for (const resource of resources.slice(start, start + SLICE)) {
        const version = this.prepare(resource, resource.id as string, 1, ts);
        const document = this.versionDocuments(version, 1, ts, 'create');
        if (pending) {
          document.history.p = pending;
          document.current.p = pending;
        }
        prepared.push(version);
        documents.push(document);
        currents.push(await this.encode(type, document.current));
      }
    }
    const intent = covered ? undefined : await this.intend(type, resources.map((resource) => resource.id as string));
    const historyFailed = await this.insertNew(this.versions(type), documents.map((d) => d.history));
    const currentFailed = await this.insertNew(this.current(type), currents);
    for (const [i, resource] of resources.entries()) {
      if (!historyFailed.has(i)) outcomes.set(resource, { resource: prepared[i]!, outcome: 'created' });
      else if (currentFailed.has(i)) outcomes.set(resource, { resource, outcome: 'unchanged' });
      else {
        // History had version 1 but the current document was missing: an earlier write was cut off. The
        // current document must hold what history holds, so roll forward from history.
        await this.current(type).deleteOne({ _id: resource.id as string, v: 1 });
        await this.rollForward(type, resource.id as string);
        outcomes.set(resource, { resource, outcome: 'unchanged' });
      }
    }
    if (intent) await this.completed(intent);
  }

  /**
   * Inserts new documents, reporting the indexes of those whose `_id` was taken. On the embedded FerretDB they go
   * straight into its PostgreSQL table in one statement (ferretdb-storage.ts `insertDocuments`: FerretDB spent more
   * CPU on an import's inserts than PostgreSQL), else through the driver.
   */
  private async insertNew<T extends { _id: string }>(collection: Collection<T>, documents: T[]): Promise<Set<number>> {
    const direct = await ferretDbStorageOf(this.db)?.insertDocuments(this.db, collection.collectionName, documents as unknown as Record<string, unknown>[]);
    return direct ?? insertManyReportingDuplicates(collection, documents);
  }

  private async putGroup(type: string, group: Resource[], outcomes: Map<Resource, WriteOutcome>, batch: ReadonlyMap<string, Resource>, pending?: string): Promise<void> {
    const existing = await this.existingDocuments(type, group.map((r) => r.id as string), { json: 1, v: 1 } as Record<string, 1>);
    const fresh: Resource[] = [];
    for (const resource of group) {
      const document = existing.get(resource.id as string);
      if (!document) fresh.push(resource);
      else {
        const stored = parseResource(document.json);
        outcomes.set(resource, sameContent(stored, resource) ? { resource: stored, outcome: 'unchanged' } : await this.putValid(resource, batch));
      }
    }
    if (fresh.length === 0) return;
    // New ids are created in bulk; an id taken meanwhile (a concurrent writer, or a deleted resource whose
    // history remains) goes through `put`, which updates or re-creates it.
    const created = new Map<Resource, WriteOutcome>();
    await this.createIfAbsent(type, fresh, created, false, pending);
    for (const resource of fresh) {
      const outcome = created.get(resource)!;
      outcomes.set(resource, outcome.outcome === 'created' ? outcome : await this.putWithRetry(resource, batch));
    }
  }

  private async putWithRetry(resource: Resource, batch?: ReadonlyMap<string, Resource>): Promise<WriteOutcome> {
    try {
      return await this.putValid(resource, batch);
    } catch (error) {
      // A concurrent writer or a cut-off earlier write: `put` rolled it forward; one more look settles it.
      if (error instanceof HubError && error.code === 'CONFLICT') return this.putValid(resource, batch);
      throw error;
    }
  }

  /** compileSearch with `_count` capped at the list maximum. */
  private compile(type: string, args: SearchArguments): ReturnType<typeof compileSearch> {
    const compiled = compileSearch(type, args);
    if (compiled.count !== undefined && compiled.count > this.options.listMaxResults) {
      throw badInput(`_count may be at most ${this.options.listMaxResults}`, ['_count']);
    }
    return compiled;
  }

  /**
   * The documents matching a filter, as structured views. MongoDB evaluates the filter, sort and page itself.
   * On FerretDB (compact layout) the hub asks for the documents holding the filter's anchor value — one
   * equality query per value of an `$in` (FerretDB would decode the whole collection for the `$in`), sent
   * within the request's share of concurrent reads — and checks the whole filter, sorts and pages here.
   */
  private async findDocuments(
    type: string,
    filter: Filter<ResourceDocument>,
    options: { projection: Record<string, 0 | 1>; sort?: Record<string, 1 | -1>; skip?: number; limit?: number; uncounted?: boolean },
  ): Promise<ResourceDocument[]> {
    const { sort, skip = 0, limit } = options;
    const projection = withPendingMark(options.projection);
    if ((await this.layout()) === 'structured') {
      return this.bounded(() => {
        const cursor = this.current(type).find(filter, { projection, ...(limit !== undefined ? { limit, batchSize: limit + 1 } : {}), ...this.timed() });
        if (sort) cursor.sort(sort);
        if (skip > 0) cursor.skip(skip);
        return cursor.toArray();
      })
        .then((documents) => visibleDocuments(this.db, documents))
        .then((documents) => (options.uncounted ? documents : this.charge(documents)));
    }
    const queries = compactQueries(filter, this.anchorFields(type));
    const field = Object.keys(queries[0]!)[0] as '_id' | 't' | undefined;
    const values = field ? queries.map((query) => query[field] as string) : undefined;
    if (sort && limit !== undefined && !(field === '_id')) {
      const page = await this.orderedPage(type, filter, field && values ? { field, values } : undefined, sort, skip + limit);
      // The page comes in the order of its date and then `_id` ascending; another sort key needs a sort here.
      const [, ...rest] = Object.entries(sort);
      const inOrder = rest.every(([key, direction]) => key === '_id' && direction === 1);
      if (page) return this.charge(await visibleDocuments(this.db, (inOrder ? page : page.sort(documentOrder(sort))).slice(skip, skip + limit)));
    }
    const direct = await this.bounded(() => this.readCompact(type, field ?? 't', values));
    // Through FerretDB: one batch per query, a round trip per query whatever the number of documents.
    const found = direct
      ? [direct]
      : await Promise.all(queries.map((query) => this.bounded(() => this.current(type).find(query, { batchSize: 100_000, ...this.timed() }).toArray())));
    const seen = new Set<string>();
    const matches = matcher(filter);
    const views = found
      .flat()
      .filter((document) => !seen.has(document._id) && seen.add(document._id))
      .map(viewOf)
      .filter(matches);
    if (sort) views.sort(documentOrder(sort));
    const page = await visibleDocuments(this.db, views.slice(skip, limit === undefined ? undefined : skip + limit));
    return options.uncounted ? page : this.charge(page);
  }

  /** How many documents match. */
  private async countDocuments(type: string, filter: Filter<ResourceDocument>): Promise<number> {
    if ((await this.layout()) === 'compact') return (await this.findDocuments(type, filter, { projection: { _id: 1 }, uncounted: true })).length;
    const [all, marked] = await Promise.all([
      this.bounded(() => this.current(type).countDocuments(filter, this.timed())),
      // Documents of a transaction not committed yet are not counted (transaction-visibility.ts).
      this.bounded(() => this.current(type).find(allOf([filter, { [PENDING_FIELD]: { $exists: true } } as Filter<ResourceDocument>]), { projection: { [PENDING_FIELD]: 1 }, ...this.timed() }).toArray()),
    ]);
    return all - (marked.length - (await visibleDocuments(this.db, marked)).length);
  }

  /** Searches one type with FHIR search arguments; `_count` bounds the page, otherwise the list maximum applies. */
  async search(type: string, args: SearchArguments): Promise<SearchResult> {
    return this.guard(async () => {
      assertServedType(type);
      const compiled = this.compile(type, args);
      const pageSize = compiled.count ?? this.options.listMaxResults;
      // `_count: 0` asks for no resources: nothing to read.
      if (pageSize === 0) {
        this.access?.readFilter(type, 's');
        return { resources: [], hasMore: false };
      }
      // One batch for the whole page: a round trip per request, not per 101 documents.
      const documents = await this.findDocuments(type, this.scoped(type, compiled.filter, 's'), {
        projection: { json: 1, ...sortProjection(compiled.sort as Record<string, 1 | -1>) },
        sort: compiled.sort as Record<string, 1 | -1>,
        skip: compiled.offset,
        limit: pageSize + 1,
      });
      const hasMore = documents.length > pageSize;
      if (hasMore && compiled.count === undefined) {
        throw new HubError(
          'TOO_MANY_RESULTS',
          `More than ${this.options.listMaxResults} ${type} resources match; narrow the search or page with _count and _offset`,
        );
      }
      return { resources: this.seen(documents.slice(0, pageSize).map((document) => this.reveal(document.json))), hasMore };
    });
  }

  /**
   * Reverse references for many targets in one query: the resources of `type` whose reference parameter
   * `parameter` points at any of `targets` (`Patient/1`, ...), also matching `args`, grouped by target.
   * `_count`/`_offset` apply per target; without `_count` a target with more than the list maximum is an error.
   */
  async searchReferencing(
    type: string,
    parameterName: string,
    targets: readonly string[],
    args: SearchArguments,
  ): Promise<Map<string, Resource[] | HubError>> {
    return this.guard(async () => {
      assertServedType(type);
      const parameter = findSearchParameter(type, parameterName);
      if (!parameter || parameter.type !== 'reference') {
        throw badInput(`"${parameterName}" is not a reference search parameter of ${type}`, ['_reference']);
      }
      const compiled = this.compile(type, args);
      const field = storedField(parameter);
      const unique = [...new Set(targets)];
      const filter = this.scoped(type, allOf([compiled.filter, { [field]: unique.length === 1 ? unique[0] : { $in: unique } }]), 's');
      const perTarget = compiled.count ?? this.options.listMaxResults;
      const cap = Math.min((compiled.offset + perTarget + 1) * unique.length, REVERSE_REFERENCE_CAP);
      const sort = compiled.sort as Record<string, 1 | -1>;
      const documents = await this.findDocuments(type, filter, { projection: { json: 1, [field]: 1, ...sortProjection(sort) }, sort, limit: cap });
      const grouped = new Map<string, Resource[]>(unique.map((target) => [target, []]));
      for (const document of documents) {
        const references = document[field as `t_${string}`];
        const resource = this.reveal(document.json);
        for (const reference of Array.isArray(references) ? references : []) grouped.get(reference as string)?.push(resource);
      }
      this.seen([...new Set([...grouped.values()].flat())]);
      const results = new Map<string, Resource[] | HubError>();
      for (const [target, resources] of grouped) {
        const tooMany =
          (compiled.count === undefined && resources.length > this.options.listMaxResults) || documents.length >= REVERSE_REFERENCE_CAP;
        results.set(
          target,
          tooMany
            ? new HubError('TOO_MANY_RESULTS', `More than ${Math.min(this.options.listMaxResults, REVERSE_REFERENCE_CAP)} ${type} resources refer to ${target}; narrow the search or page with _count`)
            : resources.slice(compiled.offset, compiled.offset + perTarget),
        );
      }
      return results;
    });
  }

  /**
   * For many values of one token, reference or uri parameter (`identifier` = `system|value`, ...): the ids of
   * the resources holding each value, in one query. Used to answer many conditional creates at once.
   */
  async idsByParameterValues(type: string, parameterName: string, values: string[]): Promise<Map<string, string[]> | undefined> {
    return this.guard(async () => {
      const parameter = findSearchParameter(type, parameterName);
      if (!parameter || !['token', 'reference', 'uri'].includes(parameter.type)) return undefined;
      const field = storedField(parameter);
      const wanted = new Set(values);
      const found = new Map<string, string[]>(values.map((value) => [value, []]));
      const documents = await this.findDocuments(type, this.scoped(type, { [field]: wanted.size === 1 ? [...wanted][0] : { $in: [...wanted] } }, 's'), { projection: { [field]: 1 } });
      for (const document of documents) {
        const held = document[field as `t_${string}`];
        for (const value of Array.isArray(held) ? held : []) if (wanted.has(value as string)) found.get(value as string)!.push(document._id);
      }
      return found;
    });
  }

  /** One page for keyset paging: resources matching `filter` in `sort` order, with the values of the sort fields. */
  async findPage(
    type: string,
    filter: Filter<ResourceDocument>,
    sort: Record<string, 1 | -1>,
    limit: number,
  ): Promise<{ resource: Resource; sortValues: unknown[] }[]> {
    return this.guard(async () => {
      const fields = Object.keys(sort);
      const projection = Object.fromEntries([['json', 1], ...fields.filter((f) => f !== '_id').map((f) => [f, 1])]);
      const documents = await this.findDocuments(type, this.scoped(type, filter, 's'), { projection, sort, limit });
      const page = documents.map((document) => ({
        resource: this.reveal(document.json),
        sortValues: fields.map((field) => field.split('.').reduce<unknown>((value, part) => (value as Record<string, unknown> | undefined)?.[part], document) ?? null),
      }));
      this.seen(page.map((item) => item.resource));
      return page;
    });
  }

  /**
   * Resources matching a filter over stored values, with the stored values named in `values` (e.g.
   * `person`, `_when`): for the identity and history queries, which filter on values of their own.
   */
  async findWithValues(
    type: string,
    filter: Filter<ResourceDocument>,
    options: { sort?: Record<string, 1 | -1>; limit?: number; values?: string[] } = {},
  ): Promise<{ resource: Resource; values: Record<string, unknown> }[]> {
    return this.guard(async () => {
      // A value is stored under sp or, for equality values and derived keys, at the top level.
      const projection = Object.fromEntries([['json', 1], ...(options.values ?? []).flatMap((key) => [[`sp.${key}`, 1], [`${TOP_LEVEL_PREFIX}${key}`, 1]])]);
      const documents = await this.findDocuments(type, this.scoped(type, filter, 's'), {
        projection: { ...projection, ...(options.sort ? sortProjection(options.sort) : {}) },
        ...(options.sort ? { sort: options.sort } : {}),
        ...(options.limit ? { limit: options.limit } : {}),
      });
      const found = documents.map((document) => ({ resource: this.reveal(document.json), values: valuesOf(document, options.values ?? []) }));
      this.seen(found.map((item) => item.resource));
      return found;
    });
  }

  /**
   * Every current resource of a type holding one anchor value (`field` is a top-level equality field the
   * extensions index, e.g. `t_recog`), a page at a time, for background jobs: read in the order of the type's
   * first date order key and then `_id` from PostgreSQL directly (each page costs a page, however many the anchor
   * holds), by `_id` order on MongoDB. `after` resumes where a previous scan's page ended. Without an access
   * policy only (a job acts for the hub).
   */
  async *scanAnchor(type: string, field: string, value: string, options: { batch?: number; after?: ScanPosition } = {}): AsyncGenerator<{ resources: Resource[]; after: ScanPosition }> {
    if (this.access) throw new HubError('FORBIDDEN', 'A scan is for the hub\'s own jobs');
    if (!this.anchorFields(type).has(field)) throw new Error(`${type}.${field} is not an anchor field`);
    const batch = options.batch ?? 200;
    let after = options.after;
    const [path] = this.orderPaths(type);
    const compact = (await this.layout()) === 'compact';
    if (compact && path && ferretDbStorageOf(this.db)) {
      for (;;) {
        const rows = await this.readCompact(type, 't', [value], { key: orderKey(path), direction: 1, limit: batch, ...(after?.id !== undefined ? { after: { ord: after.ord ?? null, id: after.id } } : {}) });
        if (!rows) break;
        if (rows.length === 0) return;
        const last = rows[rows.length - 1]!;
        after = { ord: last.ord ?? null, id: last._id };
        yield { resources: (await visibleDocuments(this.db, rows.map(viewOf))).map((view) => parseResource(view.json)), after };
        if (rows.length < batch) return;
      }
    }
    if (compact) {
      // FerretDB without direct reads: the anchor's documents at once, handed out a page at a time.
      const all = (await visibleDocuments(this.db, (await this.current(type).find({ t: value } as Filter<ResourceDocument>, { batchSize: 100_000 }).toArray()).map(viewOf))).sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
      const rest = after ? all.filter((document) => document._id > after!.id) : all;
      for (let i = 0; i < rest.length; i += batch) {
        const page = rest.slice(i, i + batch);
        yield { resources: page.map((document) => parseResource(document.json)), after: { ord: null, id: page[page.length - 1]!._id } };
      }
      return;
    }
    for (;;) {
      const page = await this.current(type)
        .find({ [field]: value, ...(after ? { _id: { $gt: after.id } } : {}) } as Filter<ResourceDocument>, { projection: { json: 1, p: 1 } })
        .sort({ _id: 1 })
        .limit(batch)
        .toArray();
      if (page.length === 0) return;
      after = { ord: null, id: page[page.length - 1]!._id };
      yield { resources: (await visibleDocuments(this.db, page)).map((document) => parseResource(document.json)), after };
      if (page.length < batch) return;
    }
  }

  /**
   * Resources of a type deleted since an instant (and still deleted), oldest first: their id, the version that
   * recorded the deletion and when. For the type's `_history` (a member's sync finds deletions there). Callers
   * with a row filter on the type (residents) get none: a deletion cannot be checked against a compartment.
   */
  async deletionsSince(type: string, since: Date | undefined, limit: number): Promise<{ id: string; version: number; at: Date }[]> {
    return this.guard(async () => {
      assertServedType(type);
      if (this.access?.readFilter(type, 'r')) return [];
      const found = await this.tombstones().find({ type }).toArray();
      return found
        .filter((tombstone) => !since || tombstone.ts > since)
        .sort((a, b) => a.ts.getTime() - b.ts.getTime())
        .slice(0, limit)
        .map((tombstone) => ({ id: tombstone._id.slice(type.length + 1), version: tombstone.v, at: tombstone.ts }));
    });
  }

  async countMatching(type: string, filter: Filter<ResourceDocument>): Promise<number> {
    return this.guard(() => this.countDocuments(type, this.scoped(type, filter, 's')));
  }

  async count(type: string, args: SearchArguments = {}): Promise<number> {
    return this.guard(async () => this.countDocuments(type, this.scoped(type, compileSearch(type, args).filter, 's')));
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    if (this.deadline?.signal.aborted) throw new HubError('TIMEOUT', 'The request ran out of time');
    try {
      return await work();
    } catch (error) {
      throw translateDatabaseError(error);
    }
  }
}

/**
 * Where an ascending read in `path` order may start: just below the filter's `$gte` (or above its `$gt`) on that
 * very path, as a keyset position no stored value equals (order values are whole milliseconds).
 */
function lowerBound(filter: Filter<ResourceDocument>, path: string): CompactOrder['after'] | undefined {
  const conditions = [filter, ...(((filter as { $and?: Filter<ResourceDocument>[] }).$and) ?? [])] as Record<string, unknown>[];
  let tightest: CompactOrder['after'] | undefined;
  for (const condition of conditions) {
    // A range on the order value (`_lastUpdated=ge…`), or a keyset page's `$or` of "after this value, or at it and
    // after this id" (connection.ts): without the latter each page of a long read started again from the beginning.
    const branches = Array.isArray(condition.$or) ? (condition.$or as Record<string, unknown>[]) : undefined;
    const bounds = branches ? branches.map((branch) => boundOf(branch, path)) : [boundOf(condition, path)];
    if (bounds.length === 0 || bounds.some((bound) => bound === undefined)) continue;
    const bound = (bounds as NonNullable<CompactOrder['after']>[]).reduce((low, other) => (compareBound(other, low) < 0 ? other : low));
    if (!tightest || compareBound(bound, tightest) > 0) tightest = bound;
  }
  return tightest;
}

/** Where a read in ascending order may start for one condition: after `(ord, id)`; undefined when it bounds nothing. */
function boundOf(condition: Record<string, unknown>, path: string): NonNullable<CompactOrder['after']> | undefined {
  const value = condition[path];
  const millis = (given: unknown): number => (given instanceof Date ? given.getTime() : typeof given === 'string' ? Date.parse(given) : typeof given === 'number' ? given : Number.NaN);
  if (value instanceof Date || typeof value === 'string') {
    // At this value: after the given id, or from the first id.
    const ms = millis(value);
    if (Number.isNaN(ms)) return undefined;
    const id = (condition._id as { $gt?: unknown } | undefined)?.$gt;
    return typeof id === 'string' ? { ord: ms, id } : { ord: ms - 0.5, id: '' };
  }
  if (!value || typeof value !== 'object') return undefined;
  const range = value as { $gte?: unknown; $gt?: unknown };
  const ms = millis(range.$gte ?? range.$gt);
  if (Number.isNaN(ms)) return undefined;
  return { ord: range.$gte !== undefined ? ms - 0.5 : ms + 0.5, id: '' };
}

function compareBound(a: NonNullable<CompactOrder['after']>, b: NonNullable<CompactOrder['after']>): number {
  const ord = (a.ord ?? -Infinity) - (b.ord ?? -Infinity);
  return ord !== 0 ? ord : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The sort fields (other than `_id`) as a projection, so merged results can be ordered. */
function sortProjection(sort: Record<string, 1 | -1>): Record<string, 1> {
  return Object.fromEntries(Object.keys(sort).filter((field) => field !== '_id').map((field) => [field, 1]));
}

/** MongoDB's order of BSON types for sorting: null (and missing) < numbers < strings < objects < booleans < dates. */
function typeRank(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return 1;
  if (typeof value === 'string') return 2;
  if (value instanceof Date) return 9;
  if (typeof value === 'boolean') return 8;
  return 3;
}

function compareValues(a: unknown, b: unknown): number {
  const rank = typeRank(a) - typeRank(b);
  if (rank !== 0) return rank;
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return 0;
}

/** Orders documents as MongoDB sorts them (an array sorts by its smallest element ascending, its largest descending). */
function documentOrder(sort: Record<string, 1 | -1>): (a: ResourceDocument, b: ResourceDocument) => number {
  const fields = Object.entries(sort);
  const valueAt = (document: ResourceDocument, path: string, direction: 1 | -1): unknown => {
    const value = path.split('.').reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), document);
    if (!Array.isArray(value)) return value;
    if (value.length === 0) return undefined;
    return value.reduce((best, item) => (compareValues(item, best) * direction < 0 ? item : best));
  };
  return (a, b) => {
    for (const [field, direction] of fields) {
      const order = compareValues(valueAt(a, field, direction), valueAt(b, field, direction)) * direction;
      if (order !== 0) return order;
    }
    return 0;
  };
}

/** The stored values named by key, from `sp.<key>` or the top-level `t_<key>`. */
function valuesOf(document: ResourceDocument, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, document.sp?.[key] ?? document[`${TOP_LEVEL_PREFIX}${key}` as `t_${string}`]]).filter(([, value]) => value !== undefined));
}

/** Runs `work` on every item with at most `limit` running at once; results in the order of the items. */
async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!);
      }
    }),
  );
  return results;
}

/** Inserts with ordered: false; returns the indexes refused as duplicates. Any other failure is thrown. */
async function insertManyReportingDuplicates<T extends { _id: string }>(collection: Collection<T>, documents: T[]): Promise<Set<number>> {
  try {
    await collection.insertMany(documents as never, { ordered: false });
    return new Set();
  } catch (error) {
    const writeErrors = (error as { writeErrors?: { code?: number; index: number }[] | { code?: number; index: number } }).writeErrors;
    const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
    if (list.length === 0 || list.some((writeError) => writeError.code !== 11000)) throw error;
    return new Set(list.map((writeError) => writeError.index));
  }
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}

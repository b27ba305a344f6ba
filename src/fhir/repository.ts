/**
 * The FHIR repository: what every layer above the store (GraphQL, REST, Bundles, the domains, sync, import)
 * reads and writes resources through, at the FHIR level. The store (store.ts) implements it over the storage
 * protocols (storage/); its maintenance (indexes, reindex, recovery) is a separate object
 * (storage/maintenance.ts). In the spirit of Medplum's `FhirRepository` in `packages/fhir-router`.
 *
 * Every repository acts in a named scope (scope.ts): a caller's, a domain workflow's or the hub's own.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { HubError } from '../errors.ts';
import type { Condition, IndexedQuery, Order } from './indexed-query.ts';
import type { SearchArguments } from './search-query.ts';
import type { ScanPosition } from './storage/reads.ts';
import type { Scope } from './scope.ts';

export type { ScanPosition } from './storage/reads.ts';

/**
 * What a caller may read and write (src/auth/access-policy.ts). A repository in the caller's scope adds the
 * policy's row conditions to every query and checks every write, so no read path can forget it.
 */
export interface StoreAccess {
  /** Extra conditions for reading a type, or undefined for none; throws FORBIDDEN when the type may not be read. */
  readFilter(type: string, permission: 'r' | 's'): Condition[] | undefined;
  /**
   * Throws FORBIDDEN unless the caller may make this kind of write to the type at all (scopes, residents,
   * the audit trail): checked before anything about the resource is looked up, so a refusal tells nothing
   * about whether it exists.
   */
  assertMayWrite(type: string, operation: 'c' | 'u' | 'd'): void;
  /**
   * Throws FORBIDDEN unless the caller may write `resource` (replacing `existing`, for updates and deletes).
   * `context.owner` is the organisation the resource (or, for a re-created id, its deleted predecessor) belongs
   * to; `claimedOwner` the one the domains attribute it to by its content; `batch` the other resources of the
   * same Bundle, by `Type/id`; `store` reads in the hub's scope.
   */
  checkWrite(operation: 'c' | 'u' | 'd', resource: Resource, existing: Resource | undefined, context: WriteCheckContext): Promise<void>;
  /** The organisation a resource this caller creates belongs to (a member's own); undefined to let the store decide. */
  readonly writerOrganization?: string | undefined;
  /** Told of every resource read or written for the caller (the audit trail). */
  observe?(resources: Resource[], action: 'R' | 'C' | 'U' | 'D'): void;
  /** What the caller is shown of a resource it may read (every read path passes through it). */
  present?(resource: Resource): Resource;
}

export interface WriteCheckContext {
  store: FhirRepository;
  owner?: string;
  claimedOwner?: string;
  batch?: ReadonlyMap<string, Resource>;
}

export interface SearchResult {
  resources: Resource[];
  /** Whether more resources match after this page. */
  hasMore: boolean;
}

export interface WriteOutcome {
  resource: Resource;
  outcome: 'created' | 'updated' | 'unchanged' | 'failed';
  /** Why a resource failed (writeMany with atomic: false). */
  error?: HubError;
}

export interface WriteItem {
  resource: Resource;
  /** create if absent (a POST with a stable id), or put (create or update) */
  mode: 'create' | 'put';
}

export interface HistoryEntry {
  versionId: string;
  lastUpdated: string;
  deleted: boolean;
  resource?: Resource;
}

/** A resource found by an indexed query, with the stored values asked for. */
export interface FoundResource {
  resource: Resource;
  values: Record<string, unknown>;
}

/** A keyset page of a FHIR search (connections): `after` the previous page's last key, in `sort` order. */
export interface PageRequest {
  args: SearchArguments;
  sort: Record<string, 1 | -1>;
  after?: readonly unknown[];
  limit: number;
}

export interface PageRow {
  resource: Resource;
  /** the values of the sort keys, the id last: the position of the next page */
  key: unknown[];
}

export interface FhirRepository {
  /** The name of the scope this repository acts in (scope.ts). */
  readonly scopeName: Scope['name'];
  /** The same repository, within the same request bounds, acting in another scope. */
  scoped(scope: Scope): FhirRepository;

  read<T extends Resource = Resource>(type: string, id: string): Promise<T>;
  /** Many resources of one type; missing ones are absent from the map. */
  readMany(type: string, ids: readonly string[]): Promise<Map<string, Resource>>;
  readVersion<T extends Resource = Resource>(type: string, id: string, versionId: string | number): Promise<T>;
  /** Every version of a resource, newest first; a deletion appears as `deleted: true`. */
  history(type: string, id: string): Promise<HistoryEntry[]>;
  /** Resources of a type deleted since an instant (and still deleted), oldest first. */
  deletionsSince(type: string, since: Date | undefined, limit: number): Promise<{ id: string; version: number; at: Date }[]>;

  create<T extends Resource>(resource: T, options?: { id?: string }): Promise<T>;
  update<T extends Resource>(resource: T, options?: { ifMatch?: string | number }): Promise<T>;
  /** Creates or updates a resource with a given id, writing only when its content differs. */
  put(resource: Resource, batch?: ReadonlyMap<string, Resource>): Promise<WriteOutcome>;
  delete(type: string, id: string, options?: { ifMatch?: string | number }): Promise<string>;
  /** Many resources with ids, a few bulk operations per type; atomic by default (a transaction). */
  writeMany(items: WriteItem[], options?: { atomic?: boolean; labels?: string[] }): Promise<WriteOutcome[]>;
  putMany(resources: Resource[], options?: { atomic?: boolean; labels?: string[] }): Promise<WriteOutcome[]>;

  /** FHIR search of one type; `_count` bounds the page, otherwise the list maximum applies. */
  search(type: string, args: SearchArguments): Promise<SearchResult>;
  /** Reverse references for many targets in one query, grouped by target. */
  searchReferencing(type: string, parameter: string, targets: readonly string[], args: SearchArguments): Promise<Map<string, Resource[] | HubError>>;
  /** A keyset page of a FHIR search. */
  page(type: string, request: PageRequest): Promise<PageRow[]>;
  /** A domain's query by search parameters and derived keys (indexed-query.ts). */
  find(type: string, query: IndexedQuery): Promise<FoundResource[]>;
  /** How many resources match FHIR search arguments, or a domain's conditions. */
  count(type: string, query?: SearchArguments | { where: Condition[] }): Promise<number>;
  /** Every resource holding one anchor value, a page at a time: the hub's own jobs only. */
  scan(type: string, anchor: { key: string; eq: string }, options?: { batch?: number; after?: ScanPosition }): AsyncGenerator<{ resources: Resource[]; after: ScanPosition }>;
}

export type { IndexedQuery, Condition, Order };

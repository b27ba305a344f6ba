/**
 * What the domains add to every write, by phase, registered once where the hub is put together
 * (src/hub-store.ts), so the store imports no domain. The phases, in the order a write meets them:
 *
 * - `prepare`: what a domain adds to resources before they are validated (recognition: the standard coding
 *   beside a local code), for a whole batch at once;
 * - `check`: refuses what the domain does not allow (an invalid national ID), BAD_USER_INPUT, nothing written;
 * - `index`: values stored beside the search values (`derive`), the keys queries start from (`anchors`) and
 *   sort by (`orders`), token normal forms and a fingerprint of it all;
 * - `owner`: the organisation a resource written without a member's organisation belongs to;
 * - `afterWrite`: told after resources were written (a critical value's notification).
 *
 * Plus `workflowRecords`: the records a domain's workflow owns, changed only through it (workflow-records.ts).
 * Domains name their derived keys plainly (`person`, `_when`); where they are stored is the store's business
 * (`StoreHooks.fieldOf`), and domains query them by those names (indexed-query.ts).
 */
import type { Resource } from '@medplum/fhirtypes';
import { registerTokenNormalizer, type SearchValues } from './search-index.ts';
import type { SideCollections } from './side-collections.ts';
import type { FhirStore } from './store.ts';
import type { WorkflowRecords } from './workflow-records.ts';

/** What a hook may use: the store acting as the hub within the request's bounds, and the domains' side collections. */
export interface HookContext {
  store: FhirStore;
  collections: SideCollections;
}

export interface WrittenResource {
  resource: Resource;
  operation: 'create' | 'update' | 'delete';
}

export interface IndexHooks {
  /**
   * Values stored beside the search values, computed at every write from the resource alone, by plain key
   * (`person`, `_when`). Keys listed in `anchors` for the type are stored where an equality on them is pushed
   * down and indexed; the rest beside the search values (ranges, sorting, `exists`).
   */
  derive?(resource: Resource, searchValues: SearchValues): Record<string, unknown>;
  /** Derived keys (by resource type) that the domain's queries start from with an equality: they get indexes. */
  anchors?: Record<string, string[]>;
  /** Derived date keys (by resource type) that the domain's queries sort by with a limit: read in that order. */
  orders?: Record<string, string[]>;
  /** Codes of these systems are stored and searched in a normal form (the national ID's `x` as `X`). */
  tokenNormalizers?: Record<string, (code: string) => string>;
  /** Changes when what `derive` stores changes: the stored values of earlier writes are then stale (`npm run reindex`). */
  fingerprint?: string;
}

export interface DomainHooks {
  /** The domain's name, for the logs. */
  name: string;
  /**
   * Must be idempotent: applied to its own output it changes nothing (a re-import is `unchanged`). Resources
   * it does not recognise are returned as they are, for validation to judge.
   */
  prepare?(resources: Resource[], context: HookContext): Promise<Resource[]>;
  check?(resource: Resource): void;
  index?: IndexHooks;
  /** The organisation a resource written without a member's organisation belongs to (seed, import, administrators). */
  owner?(resource: Resource, searchValues: SearchValues): string | undefined;
  /** The write has happened whatever this does: a failure is logged, not reported to the writer. */
  afterWrite?(written: WrittenResource[], context: HookContext): Promise<void>;
  workflowRecords?: WorkflowRecords;
}

/** The prefix of a derived or equality value stored at the top level (search-parameters.ts `storedField`). */
const TOP = 't_';

/** Every domain's hooks, grouped by phase; built once per process. */
export class StoreHooks {
  readonly prepare: { name: string; run: NonNullable<DomainHooks['prepare']> }[];
  readonly checks: NonNullable<DomainHooks['check']>[];
  readonly afterWrite: { name: string; run: NonNullable<DomainHooks['afterWrite']> }[];
  readonly workflowRecords: WorkflowRecords[];
  private readonly owners: NonNullable<DomainHooks['owner']>[];
  private readonly index: IndexHooks[];
  private readonly anchorsByType = new Map<string, Set<string>>();
  private readonly ordersByType = new Map<string, string[]>();

  constructor(domains: readonly DomainHooks[]) {
    this.prepare = domains.flatMap((domain) => (domain.prepare ? [{ name: domain.name, run: domain.prepare.bind(domain) }] : []));
    this.checks = domains.flatMap((domain) => (domain.check ? [domain.check.bind(domain)] : []));
    this.afterWrite = domains.flatMap((domain) => (domain.afterWrite ? [{ name: domain.name, run: domain.afterWrite.bind(domain) }] : []));
    this.workflowRecords = domains.flatMap((domain) => (domain.workflowRecords ? [domain.workflowRecords] : []));
    this.owners = domains.flatMap((domain) => (domain.owner ? [domain.owner.bind(domain)] : []));
    this.index = domains.flatMap((domain) => (domain.index ? [domain.index] : []));
    for (const index of this.index) {
      for (const [type, keys] of Object.entries(index.anchors ?? {})) this.anchorsByType.set(type, new Set([...(this.anchorsByType.get(type) ?? []), ...keys]));
      for (const [type, keys] of Object.entries(index.orders ?? {})) this.ordersByType.set(type, [...(this.ordersByType.get(type) ?? []), ...keys]);
      // Once per process: the normal forms are the same for every request.
      for (const [system, normalize] of Object.entries(index.tokenNormalizers ?? {})) registerTokenNormalizer(system, normalize);
    }
  }

  /** What the domains store beside a resource's search values: `top` (stored fields `t_<key>`) and `sp` (plain keys). */
  derived(resource: Resource, searchValues: SearchValues): { top: Record<string, unknown>; sp: Record<string, unknown> } {
    const top: Record<string, unknown> = {};
    const sp: Record<string, unknown> = {};
    const anchors = this.anchorsByType.get(resource.resourceType);
    for (const index of this.index) {
      for (const [key, value] of Object.entries(index.derive?.(resource, searchValues) ?? {})) {
        if (anchors?.has(key)) top[`${TOP}${key}`] = value;
        else sp[key] = value;
      }
    }
    return { top, sp };
  }

  /** The derived keys of a type stored at the top level, as stored fields (`t_person`). */
  anchorFields(type: string): string[] {
    return [...(this.anchorsByType.get(type) ?? [])].map((key) => `${TOP}${key}`);
  }

  /** Whether a derived key is one of the type's anchors. */
  isAnchor(type: string, key: string): boolean {
    return this.anchorsByType.get(type)?.has(key) ?? false;
  }

  /** The derived date keys a type's queries sort by, as stored paths (`sp._when`). */
  orderPaths(type: string): string[] {
    return (this.ordersByType.get(type) ?? []).map((key) => `sp.${key}`);
  }

  owner(resource: Resource, searchValues: SearchValues): string | undefined {
    for (const owner of this.owners) {
      const found = owner(resource, searchValues);
      if (found) return found;
    }
    return undefined;
  }

  fingerprints(): string[] {
    return this.index.map((index) => index.fingerprint).filter((value): value is string => value !== undefined);
  }
}

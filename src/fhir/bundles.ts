/**
 * Import of FHIR transaction and batch Bundles through the store.
 *
 * - `urn:uuid:` references between entries are rewritten to the ids the entries get.
 * - Conditional references (`Practitioner?identifier=system|value`) are resolved by search; exactly one
 *   match is required.
 * - `ifNoneExist` (conditional create) reuses the match instead of creating another resource.
 * - Ids are stable: an entry whose fullUrl is `urn:uuid:X` becomes resource X (a conditional create without
 *   one gets an id derived from its condition). Importing the same data again therefore finds every resource
 *   in place and changes nothing, and two imports of the same data running at once cannot both create it:
 *   the store lets exactly one insert of an id succeed.
 * - A transaction is all-or-nothing: every entry is validated and every reference resolved before anything
 *   is written; the first failure refuses the Bundle and names the entry. (Without multi-document
 *   transactions a database failure in the middle of the write can leave part of it written; importing the
 *   Bundle again completes it, as ids are stable.) A batch reports an outcome per entry.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { HubError, badInput, type ErrorCode } from '../errors.ts';
import { isServedResourceType } from './resource-types.ts';
import { findSearchParameter } from './search-parameters.ts';
import type { FhirRepository, WriteOutcome } from './repository.ts';
import { ID_PATTERN } from './references.ts';
import { conditionalCreateId, conditionArguments } from './conditional-create.ts';
import { assertJsonDepth } from './json-depth.ts';

export type EntryOutcome = 'created' | 'updated' | 'unchanged' | 'failed';

export interface EntryResult {
  index: number;
  resourceType: string;
  id?: string;
  outcome: EntryOutcome;
  message?: string;
  /** why a failed entry failed (BAD_USER_INPUT, FORBIDDEN, WORKFLOW_OWNED, …) */
  code?: ErrorCode;
}

export interface BundleImportResult {
  type: 'transaction' | 'batch';
  entries: EntryResult[];
  /** Counts by outcome, and by resource type and outcome. */
  summary: Record<EntryOutcome, number>;
  byType: Record<string, Record<EntryOutcome, number>>;
}

/** A reference that could not be resolved (yet): a later import may make it resolvable. */
export class UnresolvedReferenceError extends HubError {}

const MAX_ENTRIES = 20_000;

interface PlannedEntry {
  index: number;
  entry: BundleEntry;
  resourceType: string;
  id?: string;
  /** An existing resource matched by ifNoneExist: nothing to write. */
  matched?: boolean;
  /** POST creates only if absent; PUT creates or updates. */
  mode: 'create' | 'put';
  error?: HubError;
}

function label(index: number, resourceType: string): string {
  return `entry ${index} (${resourceType})`;
}

/** `identifier=system|value&status=final` -> search arguments; refuses what is not plain name=value pairs. */
/** `Patient?identifier=…`: a reference to whatever a search finds. */
const conditionalReference = /^[A-Z][A-Za-z]+\?/;

export class BundleImporter {
  /** Conditional references resolved in this import, so each search runs once. */
  private readonly conditionalCache = new Map<string, Promise<string>>();

  constructor(private readonly store: FhirRepository) {}

  /** Answers of conditional creates looked up in advance, by `Type?condition`. */
  private readonly knownMatches = new Map<string, string[]>();

  /**
   * Looks up every single-parameter ifNoneExist condition of the Bundle with one query per type and
   * parameter, instead of one search per entry.
   */
  private async prefetchConditions(entries: BundleEntry[]): Promise<void> {
    const groups = new Map<string, { type: string; parameter: string; values: Set<string> }>();
    for (const entry of entries) {
      const condition = entry.request?.method === 'POST' ? entry.request.ifNoneExist?.replace(/^[A-Za-z]+\?/, '') : undefined;
      const type = entry.resource?.resourceType;
      if (!condition || !type || condition.includes('&') || !isServedResourceType(type)) continue;
      const [parameter, ...rest] = condition.split('=');
      const value = decodeURIComponent(rest.join('='));
      if (!parameter || !value || value.includes(',')) continue;
      const key = `${type}?${parameter}`;
      const group = groups.get(key) ?? { type, parameter, values: new Set<string>() };
      group.values.add(value);
      groups.set(key, group);
    }
    for (const { type, parameter, values } of groups.values()) {
      // One query for every value of a token, reference or uri parameter (identifier = system|value, ...).
      if (!['token', 'reference', 'uri'].includes(findSearchParameter(type, parameter)?.type ?? '')) continue;
      const found = await this.store.find(type, { where: [{ key: parameter, in: [...values] }], values: [parameter] });
      const ids = new Map<string, string[]>([...values].map((value) => [value, []]));
      for (const { resource, values: held } of found) {
        for (const value of (held[parameter] as unknown[] | undefined) ?? []) ids.get(value as string)?.push(resource.id as string);
      }
      for (const [value, matches] of ids) this.knownMatches.set(`${type}?${parameter}=${value}`, matches);
    }
  }

  private async searchOne(resourceType: string, condition: string, where: string): Promise<string[]> {
    const known = this.knownMatches.get(`${resourceType}?${decodeURIComponent(condition)}`);
    if (known) return known;
    if (!isServedResourceType(resourceType)) throw badInput(`${where}: resource type ${resourceType} is not served`);
    const { resources } = await this.store.search(resourceType, { ...conditionArguments(condition, where), _count: 2 });
    return resources.map((resource) => resource.id as string);
  }

  /** `Practitioner?identifier=…` -> `Practitioner/<id>`; exactly one match or an error. */
  private resolveConditional(reference: string, where: string): Promise<string> {
    let pending = this.conditionalCache.get(reference);
    if (!pending) {
      const [resourceType, condition] = reference.split('?', 2) as [string, string];
      pending = this.searchOne(resourceType, condition, where).then((ids) => {
        if (ids.length !== 1) {
          throw new UnresolvedReferenceError('BAD_USER_INPUT', `${where}: conditional reference ${reference} matches ${ids.length === 0 ? 'nothing' : 'more than one resource'}`);
        }
        return `${resourceType}/${ids[0]}`;
      });
      pending.catch(() => this.conditionalCache.delete(reference));
      this.conditionalCache.set(reference, pending);
    }
    return pending;
  }

  private async plan(index: number, entry: BundleEntry): Promise<PlannedEntry> {
    const resource = entry.resource;
    const resourceType = resource?.resourceType ?? entry.request?.url?.split(/[/?]/)[0] ?? 'unknown';
    const planned: PlannedEntry = { index, entry, resourceType, mode: entry.request?.method === 'PUT' ? 'put' : 'create' };
    const where = label(index, resourceType);
    try {
      const method = entry.request?.method;
      if (!resource) throw badInput(`${where}: has no resource`);
      if (!isServedResourceType(resourceType)) throw badInput(`${where}: resource type ${resourceType} is not served`);
      const fullUrlId = entry.fullUrl?.startsWith('urn:uuid:') ? entry.fullUrl.slice('urn:uuid:'.length) : undefined;
      if (method === 'PUT') {
        const url = entry.request?.url ?? '';
        const [path, condition] = url.split('?', 2);
        if (condition !== undefined) {
          const ids = await this.searchOne(resourceType, condition, where);
          if (ids.length > 1) throw badInput(`${where}: conditional update ${url} matches more than one resource`);
          planned.id = ids[0] ?? fullUrlId ?? conditionalCreateId(resourceType, condition);
        } else {
          const id = path?.split('/')[1];
          if (!id || !ID_PATTERN.test(id) || path !== `${resourceType}/${id}`) throw badInput(`${where}: PUT needs a url like ${resourceType}/<id>`);
          if (resource.id !== undefined && resource.id !== id) throw badInput(`${where}: the resource id does not match the PUT url ${url}`, ['id']);
          planned.id = id;
        }
      } else if (method === 'POST') {
        const condition = entry.request?.ifNoneExist;
        if (condition) {
          const ids = await this.searchOne(resourceType, condition.replace(/^[A-Za-z]+\?/, ''), where);
          if (ids.length > 1) throw badInput(`${where}: ifNoneExist ${condition} matches more than one resource`);
          planned.matched = ids.length === 1;
          // The id the condition claims, not the entry's fullUrl: two Bundles creating "the practitioner with
          // this NPI" at once must create one (conditional-create.ts); the fullUrl still names it in this Bundle.
          planned.id = ids[0] ?? conditionalCreateId(resourceType, condition);
        } else {
          planned.id = fullUrlId && ID_PATTERN.test(fullUrlId) ? fullUrlId : resource.id && ID_PATTERN.test(resource.id) ? resource.id : randomUUID();
        }
      } else {
        throw badInput(`${where}: request method ${method ?? '(none)'} is not supported here; use POST or PUT`);
      }
    } catch (error) {
      if (!(error instanceof HubError)) throw error;
      planned.error = error;
    }
    return planned;
  }

  /** Rewrites `reference` values: fullUrls of this Bundle and conditional references. */
  /**
   * A copy of a resource with its references rewritten: Bundle-internal ones to the entries' ids, conditional
   * ones (`Patient?identifier=…`) to what they find. The walk is synchronous (it runs over every element of
   * every imported resource); only the conditional references are looked up, in the order they appear, and an
   * unresolvable `urn:uuid:` stops the import where it appears, as before any lookup after it.
   */
  private async rewriteReferences(value: unknown, fullUrls: Map<string, string>, where: string): Promise<unknown> {
    const pending: string[] = [];
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) {
        for (const item of node) visit(item);
        return;
      }
      if (!node || typeof node !== 'object') return;
      for (const key in node) {
        const item = (node as Record<string, unknown>)[key];
        if (key === 'reference' && typeof item === 'string') {
          if (!fullUrls.has(item) && (conditionalReference.test(item) || item.startsWith('urn:uuid:'))) pending.push(item);
        } else if (item && typeof item === 'object') visit(item);
      }
    };
    visit(value);
    const resolved = new Map<string, string>();
    for (const item of pending) {
      if (item.startsWith('urn:uuid:')) throw new UnresolvedReferenceError('BAD_USER_INPUT', `${where}: reference ${item} names no entry of this Bundle`);
      resolved.set(item, await this.resolveConditional(item, where));
    }
    const rewrite = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(rewrite);
      if (!node || typeof node !== 'object') return node;
      const result: Record<string, unknown> = {};
      for (const key in node) {
        const item = (node as Record<string, unknown>)[key];
        result[key] = key === 'reference' && typeof item === 'string' ? (fullUrls.get(item) ?? resolved.get(item) ?? item) : rewrite(item);
      }
      return result;
    };
    return rewrite(value);
  }

  async import(input: unknown): Promise<BundleImportResult> {
    const bundle = input as Bundle;
    if (!bundle || typeof bundle !== 'object' || bundle.resourceType !== 'Bundle') throw badInput('Not a FHIR Bundle');
    // Before anything walks it (reference rewriting, validation): whatever door it came through.
    assertJsonDepth(bundle, 'The Bundle');
    if (bundle.type !== 'transaction' && bundle.type !== 'batch') throw badInput(`Bundle type ${String(bundle.type)} cannot be imported; use transaction or batch`);
    const entries = bundle.entry ?? [];
    if (!Array.isArray(entries)) throw badInput('Bundle.entry must be a list');
    if (entries.length > MAX_ENTRIES) throw badInput(`A Bundle may have at most ${MAX_ENTRIES} entries`);
    entries.forEach((entry, index) => {
      if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw badInput(`Bundle.entry[${index}] is not an object`, [`Bundle.entry[${index}]`]);
    });
    const atomic = bundle.type === 'transaction';

    await this.prefetchConditions(entries);
    const planned: PlannedEntry[] = [];
    for (const [index, entry] of entries.entries()) planned.push(await this.plan(index, entry));
    const firstError = planned.find((entry) => entry.error);
    if (atomic && firstError) throw firstError.error;

    const fullUrls = new Map<string, string>();
    for (const entry of planned) {
      if (entry.id && entry.entry.fullUrl) fullUrls.set(entry.entry.fullUrl, `${entry.resourceType}/${entry.id}`);
    }
    const toWrite: PlannedEntry[] = [];
    const resources: { resource: Resource; mode: 'create' | 'put' }[] = [];
    for (const entry of planned) {
      if (entry.error || entry.matched) continue;
      try {
        const rewritten = (await this.rewriteReferences(entry.entry.resource, fullUrls, label(entry.index, entry.resourceType))) as Resource;
        resources.push({ resource: { ...rewritten, id: entry.id } as Resource, mode: entry.mode });
        toWrite.push(entry);
      } catch (error) {
        if (!(error instanceof HubError) || atomic) throw error;
        entry.error = error;
      }
    }
    const outcomes: WriteOutcome[] = await this.store.writeMany(resources, {
      atomic,
      labels: toWrite.map((entry) => label(entry.index, entry.resourceType)),
    });
    const results = new Map<number, EntryResult>();
    toWrite.forEach((entry, i) => {
      const outcome = outcomes[i]!;
      results.set(entry.index, {
        index: entry.index,
        resourceType: entry.resourceType,
        id: entry.id,
        outcome: outcome.outcome,
        ...(outcome.error ? { message: outcome.error.message, code: outcome.error.code } : {}),
      });
    });
    for (const entry of planned) {
      if (results.has(entry.index)) continue;
      results.set(entry.index, entry.error
        ? { index: entry.index, resourceType: entry.resourceType, outcome: 'failed', message: entry.error.message, code: entry.error.code }
        : { index: entry.index, resourceType: entry.resourceType, id: entry.id, outcome: 'unchanged' });
    }
    return summarize(bundle.type, [...results.values()].sort((a, b) => a.index - b.index));
  }
}

function emptyCounts(): Record<EntryOutcome, number> {
  return { created: 0, updated: 0, unchanged: 0, failed: 0 };
}

export function summarize(type: 'transaction' | 'batch', entries: EntryResult[]): BundleImportResult {
  const summary = emptyCounts();
  const byType: Record<string, Record<EntryOutcome, number>> = {};
  for (const entry of entries) {
    summary[entry.outcome]++;
    byType[entry.resourceType] ??= emptyCounts();
    byType[entry.resourceType]![entry.outcome]++;
  }
  return { type, entries, summary, byType };
}

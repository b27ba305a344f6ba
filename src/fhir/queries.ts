/**
 * The store's queries: FHIR search (search-query.ts), reverse references, keyset pages of a search, and the
 * domains' indexed queries (indexed-query.ts) — each with the access policy's row filter added, read through
 * the storage (storage/reads.ts), shown as the caller may see it and observed by the audit trail.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Filter } from 'mongodb';
import { HubError, badInput } from '../errors.ts';
import { compileConditions, compileIndexedQuery, fieldOf, keyset, valuesOf, type Condition, type IndexedQuery } from './indexed-query.ts';
import type { FoundResource, PageRequest, PageRow, ScanPosition, SearchResult } from './repository.ts';
import { findSearchParameter, storedField } from './search-parameters.ts';
import { allOf, compileSearch, type ResourceDocument, type SearchArguments } from './search-query.ts';
import { assertServedType, parseResource, type Storage } from './storage/collections.ts';
import type { Reads } from './storage/reads.ts';
import { sortProjection } from './storage/sort-order.ts';

/** The most documents one batched reverse-reference query may return. */
const REVERSE_REFERENCE_CAP = 50_000;

/** What the queries need of the store's scope. */
export interface QueryScope {
  rowFilter(type: string, filter: Filter<ResourceDocument>, permission: 'r' | 's'): Filter<ResourceDocument>;
  reveal(json: string): Resource;
  seen<T extends Resource[]>(resources: T): T;
}

const pathValue = (document: ResourceDocument, path: string): unknown => path.split('.').reduce<unknown>((value, part) => (value as Record<string, unknown> | undefined)?.[part], document);

export class Queries {
  constructor(
    private readonly storage: Storage,
    private readonly reads: Reads,
    private readonly listMaxResults: number,
    private readonly scope: QueryScope,
  ) {}

  /** compileSearch with `_count` capped at the list maximum. */
  private compile(type: string, args: SearchArguments): ReturnType<typeof compileSearch> {
    const compiled = compileSearch(type, args);
    if (compiled.count !== undefined && compiled.count > this.listMaxResults) throw badInput(`_count may be at most ${this.listMaxResults}`, ['_count']);
    return compiled;
  }

  async search(type: string, args: SearchArguments): Promise<SearchResult> {
    assertServedType(type);
    const compiled = this.compile(type, args);
    const pageSize = compiled.count ?? this.listMaxResults;
    const filter = this.scope.rowFilter(type, compiled.filter, 's');
    // `_count: 0` asks for no resources: nothing to read.
    if (pageSize === 0) return { resources: [], hasMore: false };
    const sort = compiled.sort as Record<string, 1 | -1>;
    // One batch for the whole page: a round trip per request, not per 101 documents.
    const documents = await this.reads.find(type, filter, { projection: { json: 1, ...sortProjection(sort) }, sort, skip: compiled.offset, limit: pageSize + 1 });
    const hasMore = documents.length > pageSize;
    if (hasMore && compiled.count === undefined) {
      throw new HubError('TOO_MANY_RESULTS', `More than ${this.listMaxResults} ${type} resources match; narrow the search or page with _count and _offset`);
    }
    return { resources: this.scope.seen(documents.slice(0, pageSize).map((document) => this.scope.reveal(document.json))), hasMore };
  }

  /**
   * Reverse references for many targets in one query: the resources of `type` whose reference parameter
   * points at any of `targets` (`Patient/1`, ...), also matching `args`, grouped by target. `_count`/`_offset`
   * apply per target; without `_count` a target with more than the list maximum is an error.
   */
  async referencing(type: string, parameterName: string, targets: readonly string[], args: SearchArguments): Promise<Map<string, Resource[] | HubError>> {
    assertServedType(type);
    const parameter = findSearchParameter(type, parameterName);
    if (!parameter || parameter.type !== 'reference') throw badInput(`"${parameterName}" is not a reference search parameter of ${type}`, ['_reference']);
    const compiled = this.compile(type, args);
    const field = storedField(parameter);
    const unique = [...new Set(targets)];
    const filter = this.scope.rowFilter(type, allOf([compiled.filter, { [field]: unique.length === 1 ? unique[0] : { $in: unique } }]), 's');
    const perTarget = compiled.count ?? this.listMaxResults;
    const cap = Math.min((compiled.offset + perTarget + 1) * unique.length, REVERSE_REFERENCE_CAP);
    const sort = compiled.sort as Record<string, 1 | -1>;
    const documents = await this.reads.find(type, filter, { projection: { json: 1, [field]: 1, ...sortProjection(sort) }, sort, limit: cap });
    const grouped = new Map<string, Resource[]>(unique.map((target) => [target, []]));
    for (const document of documents) {
      const references = document[field as `t_${string}`];
      const resource = this.scope.reveal(document.json);
      for (const reference of Array.isArray(references) ? references : []) grouped.get(reference as string)?.push(resource);
    }
    this.scope.seen([...new Set([...grouped.values()].flat())]);
    const results = new Map<string, Resource[] | HubError>();
    for (const [target, resources] of grouped) {
      const tooMany = (compiled.count === undefined && resources.length > this.listMaxResults) || documents.length >= REVERSE_REFERENCE_CAP;
      results.set(
        target,
        tooMany
          ? new HubError('TOO_MANY_RESULTS', `More than ${Math.min(this.listMaxResults, REVERSE_REFERENCE_CAP)} ${type} resources refer to ${target}; narrow the search or page with _count`)
          : resources.slice(compiled.offset, compiled.offset + perTarget),
      );
    }
    return results;
  }

  /** A keyset page of a FHIR search: the resources after `request.after` in `request.sort` order, with their keys. */
  async page(type: string, request: PageRequest): Promise<PageRow[]> {
    assertServedType(type);
    const { filter } = compileSearch(type, request.args);
    const position = request.after ? keyset(request.sort, request.after) : undefined;
    const fields = Object.keys(request.sort);
    const projection = Object.fromEntries([['json', 1], ...fields.filter((f) => f !== '_id').map((f) => [f, 1])]);
    const documents = await this.reads.find(type, this.scope.rowFilter(type, position ? allOf([filter, position.filter]) : filter, 's'), {
      projection,
      sort: request.sort,
      limit: request.limit,
      ...(position?.start ? { start: position.start } : {}),
    });
    const rows = documents.map((document) => ({ resource: this.scope.reveal(document.json), key: fields.map((field) => pathValue(document, field) ?? null) }));
    this.scope.seen(rows.map((row) => row.resource));
    return rows;
  }

  /** A domain's query (indexed-query.ts), with the stored values it names. */
  async find(type: string, query: IndexedQuery): Promise<FoundResource[]> {
    assertServedType(type);
    const compiled = compileIndexedQuery(type, query, this.storage.hooks);
    const valuePaths = Object.values(compiled.values).flat();
    const projection = Object.fromEntries([['json', 1], ...valuePaths.map((path) => [path, 1]), ...Object.keys(compiled.sort ?? {}).filter((f) => f !== '_id').map((f) => [f, 1])]);
    const documents = await this.reads.find(type, this.scope.rowFilter(type, compiled.filter, 's'), {
      projection,
      ...(compiled.sort ? { sort: compiled.sort } : {}),
      ...(compiled.limit !== undefined ? { limit: compiled.limit } : {}),
      ...(compiled.start ? { start: compiled.start } : {}),
    });
    const found = documents.map((document) => ({ resource: this.scope.reveal(document.json), values: valuesOf(document as unknown as Record<string, unknown>, compiled.values) }));
    this.scope.seen(found.map((item) => item.resource));
    return found;
  }

  async count(type: string, query: SearchArguments | { where: Condition[] }): Promise<number> {
    assertServedType(type);
    const where = (query as { where?: unknown }).where;
    const filter = Array.isArray(where) ? compileConditions(type, where as Condition[], this.storage.hooks) : compileSearch(type, query as SearchArguments).filter;
    return this.reads.count(type, this.scope.rowFilter(type, filter, 's'));
  }

  /** Every resource holding one anchor value, a page at a time (storage/reads.ts). */
  async *scan(type: string, anchor: { key: string; eq: string }, options: { batch?: number; after?: ScanPosition }): AsyncGenerator<{ resources: Resource[]; after: ScanPosition }> {
    assertServedType(type);
    const field = fieldOf(type, anchor.key, this.storage.hooks);
    if (!this.storage.anchorFields(type).has(field)) throw new Error(`${type}.${anchor.key} is not an anchor`);
    for await (const page of this.reads.scan(type, field, anchor.eq, options.batch ?? 200, options.after)) {
      yield { resources: page.documents.map((document) => parseResource(document.json)), after: page.after };
    }
  }
}

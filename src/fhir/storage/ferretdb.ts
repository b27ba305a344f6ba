/**
 * The FerretDB short cuts, behind this one module: how the store reads and writes the compact layout
 * (layout.ts) on the embedded FerretDB v1, whose queries push down nothing but a top-level equality and which
 * decodes every document it reads in Go. Reads ask for the documents holding one anchor value (an `_id` or
 * an anchor in `t`), straight from FerretDB's PostgreSQL where the hub has it (database/ferretdb-storage.ts),
 * else through FerretDB one equality per value; the hub then checks the whole filter, sorts and pages. A page
 * sorted by a date with an order key is read from PostgreSQL a batch at a time in that order.
 *
 * The MongoDB path (reads.ts) never comes here; `STORAGE_FORMS=mongodb` (database/profile.ts) makes the
 * embedded database run that path too.
 */
import type { Collection, Db, Filter } from 'mongodb';
import { ferretDbStorageOf, type CompactOrder, type CompactRow, type FerretDbStorage } from '../../database/ferretdb-storage.ts';
import { mapWithConcurrency } from '../../database/semaphore.ts';
import type { RequestBounds } from '../bounds.ts';
import type { StartAfter } from '../indexed-query.ts';
import type { ResourceDocument } from '../search-query.ts';
import type { Storage } from './collections.ts';
import { compactQueries, matcher, orderKey, viewOf } from './layout.ts';
import { documentOrder, startPosition } from './sort-order.ts';

/** The direct PostgreSQL reads and inserts of the embedded FerretDB, where the hub has them. */
export class FerretDbShortcuts {
  constructor(
    private readonly db: Db,
    private readonly postgres: FerretDbStorage,
  ) {}

  /** Compact documents by `_id` or anchor, or all of a type (`values` undefined); undefined where PostgreSQL cannot be read. */
  read(type: string, field: '_id' | 't', values: readonly string[] | undefined, timeoutMs: number, order?: CompactOrder): Promise<CompactRow[] | undefined> {
    return this.postgres.readCompact(this.db.databaseName, type, values === undefined ? { all: true } : { field, values }, timeoutMs, order);
  }

  /**
   * New documents in one statement, with the indexes of those whose `_id` was taken (FerretDB spent more CPU on
   * an import's inserts than PostgreSQL); undefined where the hub may not write PostgreSQL directly.
   */
  insert(collection: string, documents: Record<string, unknown>[]): Promise<Set<number> | undefined> {
    return this.postgres.insertDocuments(this.db, collection, documents);
  }
}

export function ferretDbShortcuts(db: Db): FerretDbShortcuts | undefined {
  const postgres = ferretDbStorageOf(db);
  return postgres ? new FerretDbShortcuts(db, postgres) : undefined;
}

export interface FindOptions {
  projection: Record<string, 0 | 1>;
  sort?: Record<string, 1 | -1>;
  skip?: number;
  limit?: number;
  start?: StartAfter;
}

/** Reads of the compact layout within one request's bounds; documents come back as structured views. */
export class CompactReads {
  private readonly shortcuts: FerretDbShortcuts | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly bounds: RequestBounds,
  ) {
    this.shortcuts = storage.ferretdb();
  }

  private direct(type: string, field: '_id' | 't', values: readonly string[] | undefined, order?: CompactOrder): Promise<CompactRow[] | undefined> {
    if (!this.shortcuts) return Promise.resolve(undefined);
    return this.shortcuts.read(type, field, values, this.bounds.timeLeftMs(), order);
  }

  /** Current documents by id: one query per id through FerretDB (its `$in` decodes the whole collection). */
  async byIds(type: string, ids: string[]): Promise<ResourceDocument[]> {
    const direct = await this.direct(type, '_id', ids);
    if (direct) return direct.map(viewOf);
    const collection = this.storage.current(type);
    const found = await mapWithConcurrency(ids, 16, (id) => collection.findOne({ _id: id }, this.bounds.timed()));
    return found.filter((document): document is ResourceDocument => document !== null).map(viewOf);
  }

  /** The documents matching a filter: those holding its anchor value, checked, sorted and paged here. */
  async find(type: string, filter: Filter<ResourceDocument>, options: FindOptions): Promise<ResourceDocument[]> {
    const { sort, skip = 0, limit } = options;
    const queries = compactQueries(filter, this.storage.anchorFields(type));
    const field = Object.keys(queries[0]!)[0] as '_id' | 't' | undefined;
    const values = field ? queries.map((query) => query[field] as string) : undefined;
    if (sort && limit !== undefined && field !== '_id') {
      const page = await this.orderedPage(type, filter, field && values ? { field, values } : undefined, sort, skip + limit, options.start);
      // The page comes in the order of its date and then `_id` ascending; another sort key needs a sort here.
      const [, ...rest] = Object.entries(sort);
      const inOrder = rest.every(([key, direction]) => key === '_id' && direction === 1);
      if (page) return (inOrder ? page : page.sort(documentOrder(sort))).slice(skip, skip + limit);
    }
    const direct = await this.bounds.bounded(() => this.direct(type, field ?? 't', values));
    // Through FerretDB: one batch per query, a round trip per query whatever the number of documents.
    const found = direct
      ? [direct]
      : await Promise.all(queries.map((query) => this.bounds.bounded(() => this.storage.current(type).find(query, { batchSize: 100_000, ...this.bounds.timed() }).toArray())));
    const seen = new Set<string>();
    const matches = matcher(filter);
    const views = found
      .flat()
      .filter((document) => !seen.has(document._id) && seen.add(document._id))
      .map(viewOf)
      .filter(matches);
    if (sort) views.sort(documentOrder(sort));
    return views.slice(skip, limit === undefined ? undefined : skip + limit);
  }

  /**
   * A page sorted first by a date with an order key, read from PostgreSQL a batch at a time in that order until
   * the page is full (and the documents tied with its last one are read), instead of reading every document of
   * the anchor: the work stays that of a page however many documents the anchor holds. Undefined where the
   * query does not have that form or PostgreSQL cannot be read directly.
   */
  private async orderedPage(
    type: string,
    filter: Filter<ResourceDocument>,
    condition: { field: '_id' | 't'; values: string[] } | undefined,
    sort: Record<string, 1 | -1>,
    need: number,
    start: StartAfter | undefined,
  ): Promise<ResourceDocument[] | undefined> {
    const [first] = Object.entries(sort);
    if (!first || !this.storage.orderPaths(type).includes(first[0]) || !this.shortcuts) return undefined;
    const [path, direction] = first;
    const matches = matcher(filter);
    const kept: ResourceDocument[] = [];
    const batch = Math.min(1000, Math.max(64, need * 2));
    // A keyset position or a lower bound on the order value itself starts the read there.
    let after: CompactOrder['after'] = direction === 1 ? startPosition(filter, path, start) : undefined;
    let boundary: number | null | undefined;
    for (;;) {
      const rows = await this.bounds.bounded(() => this.direct(type, condition?.field ?? 't', condition?.values, { key: orderKey(path), direction, limit: batch, ...(after ? { after } : {}) }));
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

  /** How many documents match (read and checked here: FerretDB's count would decode them all too). */
  async count(type: string, filter: Filter<ResourceDocument>): Promise<ResourceDocument[]> {
    return this.find(type, filter, { projection: { _id: 1 } });
  }

  /**
   * Every document holding one anchor value, a page at a time: in the order of the type's first order key and
   * then `_id` from PostgreSQL directly (each page costs a page), else the anchor's documents at once by `_id`.
   */
  async *scan(type: string, value: string, batch: number, from?: { ord?: number | null; id: string }): AsyncGenerator<{ documents: ResourceDocument[]; after: { ord: number | null; id: string } }> {
    let after = from;
    const [path] = this.storage.orderPaths(type);
    if (path && this.shortcuts) {
      for (;;) {
        const rows = await this.direct(type, 't', [value], { key: orderKey(path), direction: 1, limit: batch, ...(after?.id !== undefined ? { after: { ord: after.ord ?? null, id: after.id } } : {}) });
        if (!rows) break;
        if (rows.length === 0) return;
        const last = rows[rows.length - 1]!;
        after = { ord: last.ord ?? null, id: last._id };
        yield { documents: rows.map(viewOf), after: { ord: last.ord ?? null, id: last._id } };
        if (rows.length < batch) return;
      }
    }
    const collection: Collection<ResourceDocument> = this.storage.current(type);
    const all = (await collection.find({ t: value } as Filter<ResourceDocument>, { batchSize: 100_000 }).toArray()).map(viewOf).sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
    const rest = after ? all.filter((document) => document._id > after!.id) : all;
    for (let i = 0; i < rest.length; i += batch) {
      const page = rest.slice(i, i + batch);
      yield { documents: page, after: { ord: null, id: page[page.length - 1]!._id } };
    }
  }
}

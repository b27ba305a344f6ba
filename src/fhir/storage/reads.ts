/**
 * Reads of current documents within one request's bounds, as structured views (layout.ts), only those
 * visible (a transaction's are not until it commits: transactions.ts), counted against the request's budget.
 * On MongoDB the server evaluates every filter, sort and page; the compact layout of FerretDB goes through
 * its own module (ferretdb.ts), so this path reads straight through.
 */
import type { Filter } from 'mongodb';
import type { RequestBounds } from '../bounds.ts';
import { allOf, type ResourceDocument } from '../search-query.ts';
import type { Storage } from './collections.ts';
import { CompactReads, type FindOptions } from './ferretdb.ts';
import { matcher, viewOf } from './layout.ts';
import { PENDING_FIELD, visibleDocuments } from './transactions.ts';

export type { FindOptions } from './ferretdb.ts';

/** A projection that keeps the pending mark, which every read of current documents looks at (transactions.ts). */
function withPendingMark<T extends Record<string, 0 | 1>>(projection: T): T {
  return Object.values(projection).some((value) => value === 1) ? { ...projection, [PENDING_FIELD]: 1 } : projection;
}

/** Where a scan's page ended: the order key's value and the `_id` (see Reads.scan). */
export interface ScanPosition {
  ord?: number | null;
  id: string;
}

export class Reads {
  private readonly compact: CompactReads;

  constructor(
    private readonly storage: Storage,
    private readonly bounds: RequestBounds,
  ) {
    this.compact = new CompactReads(storage, bounds);
  }

  private visible(documents: ResourceDocument[]): Promise<ResourceDocument[]> {
    return visibleDocuments(this.storage.db, documents);
  }

  /**
   * The current documents of some ids that pass `rowFilter` (the access policy's), by plain `_id` equality —
   * the one shape every server answers with its primary key; the filter is applied to the documents found, so
   * it cannot turn the read into a scan.
   */
  byIds(type: string, ids: string[], projection: Record<string, 1>, rowFilter?: Filter<ResourceDocument>): Promise<ResourceDocument[]> {
    return this.bounds.bounded(() => this.byIdsNow(type, ids, projection, rowFilter));
  }

  /** byIds outside the request's share of concurrent reads (a check within a write that holds one already). */
  async byIdsNow(type: string, ids: string[], projection: Record<string, 1>, rowFilter?: Filter<ResourceDocument>): Promise<ResourceDocument[]> {
    let documents: ResourceDocument[];
    if ((await this.storage.layout()) === 'compact') {
      documents = await this.compact.byIds(type, ids);
    } else {
      const collection = this.storage.current(type);
      const options = { projection: withPendingMark(projection), ...this.bounds.timed() };
      if (ids.length === 1) {
        const one = await collection.findOne({ _id: ids[0]! }, options);
        documents = one ? [one] : [];
      } else {
        documents = await collection.find({ _id: { $in: ids } }, { ...options, limit: ids.length, batchSize: ids.length + 1 }).toArray();
      }
    }
    const views = await this.visible(documents.map(viewOf));
    return this.bounds.charge(rowFilter ? views.filter(matcher(rowFilter)) : views);
  }

  /**
   * The current document of a resource as stored, whoever may read it and even while its transaction is
   * pending, or null: what a write compares and sets its version against.
   */
  async one(type: string, id: string): Promise<ResourceDocument | null> {
    if ((await this.storage.layout()) === 'compact') return (await this.compact.byIds(type, [id]))[0] ?? null;
    const document = await this.storage.current(type).findOne({ _id: id });
    return document ? viewOf(document) : null;
  }

  /** The documents matching a filter, sorted and paged; `uncounted`: not charged to the budget (a count). */
  async find(type: string, filter: Filter<ResourceDocument>, options: FindOptions & { uncounted?: boolean }): Promise<ResourceDocument[]> {
    let documents: ResourceDocument[];
    if ((await this.storage.layout()) === 'compact') {
      documents = await this.compact.find(type, filter, options);
    } else {
      const { sort, skip = 0, limit } = options;
      documents = await this.bounds.bounded(() => {
        const cursor = this.storage.current(type).find(filter, { projection: withPendingMark(options.projection), ...(limit !== undefined ? { limit, batchSize: limit + 1 } : {}), ...this.bounds.timed() });
        if (sort) cursor.sort(sort);
        if (skip > 0) cursor.skip(skip);
        return cursor.toArray();
      });
    }
    const visible = await this.visible(documents);
    return options.uncounted ? visible : this.bounds.charge(visible);
  }

  /** How many visible documents match. */
  async count(type: string, filter: Filter<ResourceDocument>): Promise<number> {
    if ((await this.storage.layout()) === 'compact') return (await this.visible(await this.compact.count(type, filter))).length;
    const collection = this.storage.current(type);
    const [all, marked] = await Promise.all([
      this.bounds.bounded(() => collection.countDocuments(filter, this.bounds.timed())),
      // Documents of a transaction not committed yet are not counted (transactions.ts).
      this.bounds.bounded(() => collection.find(allOf([filter, { [PENDING_FIELD]: { $exists: true } } as Filter<ResourceDocument>]), { projection: { [PENDING_FIELD]: 1 }, ...this.bounds.timed() }).toArray()),
    ]);
    return all - (marked.length - (await this.visible(marked)).length);
  }

  /**
   * Every current document of a type holding one anchor value (`field`, e.g. `t_recog`), a page at a time, for
   * background jobs: on MongoDB in `_id` order; on FerretDB see ferretdb.ts. `after` resumes a previous scan.
   */
  async *scan(type: string, field: string, value: string, batch: number, after?: ScanPosition): AsyncGenerator<{ documents: ResourceDocument[]; after: ScanPosition }> {
    if ((await this.storage.layout()) === 'compact') {
      for await (const page of this.compact.scan(type, value, batch, after)) yield { documents: await this.visible(page.documents), after: page.after };
      return;
    }
    let position = after;
    for (;;) {
      const page = await this.storage
        .current(type)
        .find({ [field]: value, ...(position ? { _id: { $gt: position.id } } : {}) } as Filter<ResourceDocument>, { projection: { json: 1, [PENDING_FIELD]: 1 } })
        .sort({ _id: 1 })
        .limit(batch)
        .toArray();
      if (page.length === 0) return;
      position = { ord: null, id: page[page.length - 1]!._id };
      yield { documents: await this.visible(page), after: position };
      if (page.length < batch) return;
    }
  }
}

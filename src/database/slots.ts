/**
 * Exact counting shared by all hub instances, with the one write that FerretDB v1 and MongoDB both make atomic:
 * inserting a document under a unique `_id`.
 *
 * A count is a set of numbered slots of a key: documents `<key>#0`, `<key>#1`, ... Taking n units inserts the
 * next n slot numbers; an insert refused as a duplicate means another request (or instance) took that slot
 * first, and the next number is tried. So the number of slots of a key is exactly the number of units taken,
 * and with a limit no more than `limit` can ever be taken, whatever the concurrency. Each instance keeps a hint
 * of the next free number per key, started from a count, so slots are taken bottom up without gaps.
 *
 * Why not `$inc` on one counter document: FerretDB v1 runs findAndModify and update as a read, a change in Go
 * and a separate write, so concurrent increments are lost (measured: 300 increments sent 30 at a time kept as 40;
 * rate-limiter-flexible's RateLimiterMongo admitted 27 of 32 requests at a limit of 10).
 */
import type { Collection, Db } from 'mongodb';
import { createMissingIndexes } from './indexes.ts';

interface SlotDocument {
  /** `<key>#<number>` */
  _id: string;
  /** the key the slot counts for */
  k: string;
  /** when the slot may be removed (its window is over) */
  until: Date;
}

export class SlotCounter {
  private readonly slots: Collection<SlotDocument>;
  private readonly db: Db;
  /** Next number to try, by key: a hint only (the unique insert decides). */
  private readonly next = new Map<string, number>();
  private lastCleanup = 0;

  constructor(
    db: Db,
    collection: string,
    private readonly now: () => number = Date.now,
  ) {
    this.db = db;
    this.slots = db.collection<SlotDocument>(collection);
  }

  async ensureIndexes(): Promise<void> {
    await createMissingIndexes(this.db, this.slots.collectionName, [
      { key: { k: 1 }, name: 'key' },
      { key: { until: 1 }, name: 'until' },
    ]);
  }

  /** How many units of a key are taken. */
  async count(key: string): Promise<number> {
    return this.slots.countDocuments({ k: key });
  }

  /**
   * Takes up to `units` of a key (fewer only when `limit` is reached); returns how many were taken and whether
   * slot 0, the key's first, was among them. `until` is when the key's slots may be removed.
   */
  async take(key: string, units: number, until: Date, limit = Number.POSITIVE_INFINITY): Promise<{ taken: number; first: boolean }> {
    if (!this.next.has(key)) {
      this.next.set(key, await this.count(key));
      await this.cleanup();
    }
    let taken = 0;
    let first = false;
    while (taken < units) {
      const start = this.next.get(key)!;
      const count = Math.min(units - taken, limit - start);
      if (count <= 0) break;
      this.next.set(key, start + count);
      const documents = Array.from({ length: count }, (_, i) => ({ _id: `${key}#${start + i}`, k: key, until }));
      const refused = await insertRefusingDuplicates(this.slots, documents);
      taken += count - refused.size;
      if (start === 0 && !refused.has(0)) first = true;
    }
    return { taken, first };
  }

  /** Removes slots whose time is over (at most once a minute per instance; FerretDB v1 has no TTL indexes). */
  private async cleanup(): Promise<void> {
    const now = this.now();
    if (now - this.lastCleanup < 60_000) return;
    this.lastCleanup = now;
    await this.slots.deleteMany({ until: { $lt: new Date(now) } });
    for (const key of this.next.keys()) if (this.next.size > 10_000) this.next.delete(key);
  }
}

/** Inserts with ordered: false; returns the positions refused as duplicates. Any other failure is thrown. */
async function insertRefusingDuplicates(collection: Collection<SlotDocument>, documents: SlotDocument[]): Promise<Set<number>> {
  try {
    await collection.insertMany(documents, { ordered: false });
    return new Set();
  } catch (error) {
    const writeErrors = (error as { writeErrors?: { code?: number; index: number }[] | { code?: number; index: number } }).writeErrors;
    const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
    if (list.length === 0 || list.some((writeError) => writeError.code !== 11000)) throw error;
    return new Set(list.map((writeError) => writeError.index));
  }
}

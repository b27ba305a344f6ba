/**
 * The store's maintenance, apart from what requests use (the repository, repository.ts): the indexes its
 * queries need, the fingerprint of the stored search values and their re-extraction (`npm run reindex`), and
 * the recovery of writes a process left half done. Run by the hub's start and its schedule, and by scripts.
 */
import type { AnyBulkWriteOperation } from 'mongodb';
import { createMissingIndexes, type IndexSpec } from '../../database/indexes.ts';
import { translateDatabaseError } from '../../errors.ts';
import { canonicalJson } from '../content.ts';
import { indexedSearchParameters, servedResourceTypes } from '../resource-types.ts';
import { searchIndexFingerprint, searchParametersOf, storedField } from '../search-parameters.ts';
import type { ResourceDocument } from '../search-query.ts';
import type { Storage } from './collections.ts';
import { orderKey, viewOf } from './layout.ts';
import { PENDING_FIELD } from './transactions.ts';
import { recoverCutOffWrites } from './versions.ts';

/** The index a transaction's marks are found (and removed) by: sparse, since marks exist only while one writes. */
const PENDING_INDEX: IndexSpec = { key: { [PENDING_FIELD]: 1 }, name: 'pending', sparse: true };

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translateDatabaseError(error);
  }
}

export class StoreMaintenance {
  constructor(private readonly storage: Storage) {}

  /** Creates the indexes the store's queries use (see createMissingIndexes for what each server gets); safe at every start. */
  async ensureIndexes(): Promise<void> {
    const { db } = this.storage;
    const compact = (await this.storage.layout()) === 'compact';
    for (const type of servedResourceTypes) {
      if (compact) {
        // FerretDB: `_id` and the anchors `t` (GIN in PostgreSQL), nothing else it could use; and the pending mark.
        await createMissingIndexes(db, type, [
          { key: { t: 1 }, name: 'anchors' },
          PENDING_INDEX,
          ...this.storage.orderPaths(type).map((path): IndexSpec => ({ key: { [orderKey(path)]: -1 }, name: orderKey(path), range: true })),
        ]);
        await createMissingIndexes(db, `${type}_history`, [{ key: { rid: 1, v: -1 }, name: 'resource_version' }, PENDING_INDEX]);
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
      for (const field of this.storage.hooks.anchorFields(type)) wanted.push({ key: { [field]: 1 }, name: field });
      wanted.push(PENDING_INDEX);
      await createMissingIndexes(db, type, wanted);
      await createMissingIndexes(db, `${type}_history`, [{ key: { rid: 1, v: -1 }, name: 'resource_version' }, PENDING_INDEX]);
    }
    await createMissingIndexes(db, 'tombstones', [{ key: { type: 1 }, name: 'type' }]);
    await createMissingIndexes(db, 'write_intents', []);
  }

  /** Finishes writes a process left half done (storage/versions.ts); intents older than `settleMs` are removed. */
  recoverCutOffWrites(settleMs = 30_000): Promise<{ intents: number; resources: number }> {
    return guarded(() => recoverCutOffWrites(this.storage, settleMs));
  }

  /**
   * Whether the search values in the database were extracted with the parameters this hub knows. An empty
   * database is marked current. `stale` means searches on new parameters miss old resources until
   * `npm run reindex` has run.
   */
  async searchIndexStatus(): Promise<'current' | 'stale'> {
    return guarded(async () => {
      const stored = await this.storage.meta().findOne({ _id: 'search-index' });
      if (stored?.fingerprint === this.fingerprint()) return 'current';
      for (const type of servedResourceTypes) {
        if ((await this.storage.db.collection(type).estimatedDocumentCount()) > 0) return 'stale';
      }
      await this.markSearchIndexCurrent();
      return 'current';
    });
  }

  /** The search parameters' fingerprint and the domains' (what `derive` stores). */
  private fingerprint(): string {
    return [searchIndexFingerprint(), ...this.storage.hooks.fingerprints()].join('+');
  }

  private async markSearchIndexCurrent(): Promise<void> {
    await this.storage.meta().updateOne({ _id: 'search-index' }, { $set: { fingerprint: this.fingerprint(), at: new Date() } }, { upsert: true });
  }

  /**
   * Re-extracts the search values of every current resource, a page at a time, and records the fingerprint.
   * Each update is a compare-and-set on the version, so a resource written meanwhile keeps its own values.
   */
  async reindex(onProgress?: (type: string, done: number) => void, batch = 200): Promise<{ documents: number; changed: number }> {
    return guarded(async () => {
      let documents = 0;
      let changed = 0;
      for (const type of servedResourceTypes) {
        let done = 0;
        let updates: AnyBulkWriteOperation<ResourceDocument>[] = [];
        const write = async (): Promise<void> => {
          if (updates.length > 0) changed += (await this.storage.current(type).bulkWrite(updates, { ordered: false })).modifiedCount;
          updates = [];
        };
        // One pass over the collection (FerretDB would decode it again for every page of a range query).
        for await (const stored of this.storage.current(type).find({}, { batchSize: batch })) {
          const view = viewOf(stored);
          const replacement = await this.storage.encodeVersion(type, view);
          if (canonicalJson(replacement) !== canonicalJson(stored)) {
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
}

import type { Db, Document } from 'mongodb';
import { databaseProfile } from './profile.ts';
import { ferretDbStorageOf } from './ferretdb-storage.ts';

export interface IndexSpec {
  key: Record<string, 1 | -1>;
  name: string;
  /** for ranges and sorting (MongoDB only: FerretDB filters and sorts those after reading) */
  range?: boolean;
  /** only documents that have the field (MongoDB; FerretDB's GIN index holds no entry for a missing field anyway) */
  sparse?: boolean;
}

/**
 * Creates the indexes a collection's queries need; safe to call at every start.
 *
 * - MongoDB: the missing ones, with createIndexes (FerretDB v1.24 drops the connection when createIndexes names
 *   an index that already exists, so only missing ones are ever requested).
 * - FerretDB on PostgreSQL: GIN indexes on `_id` and on the leading top-level field of each spec, the one
 *   kind that serves the equalities FerretDB pushes down (ferretdb-storage.ts). FerretDB's own btree indexes
 *   serve none of its queries, so they are not created (they would only slow writes); nor are indexes on
 *   nested fields (FerretDB filters those after reading).
 * - FerretDB on SQLite (or without access to its PostgreSQL): none; SQLite answers only `_id`, with its own.
 */
export async function createMissingIndexes<T extends Document>(db: Db, collectionName: string, wanted: IndexSpec[]): Promise<void> {
  if ((await databaseProfile(db)).ferretdb) {
    const postgres = ferretDbStorageOf(db);
    if (!postgres) return;
    await db.createCollection(collectionName).catch((error: unknown) => {
      if ((error as { code?: number }).code !== 48) throw error; // NamespaceExists
    });
    // The leading field of each index: the equality a query starts from.
    const fields = wanted.filter((index) => !index.range).map((index) => Object.keys(index.key)[0]!).filter((field) => !field.includes('.'));
    // Range indexes on top-level fields (the compact layout's order keys): btree, for ordered reads.
    const ordered = wanted.filter((index) => index.range).map((index) => Object.keys(index.key)[0]!).filter((field) => !field.includes('.'));
    await postgres.ensure(db.databaseName, collectionName, [...new Set(['_id', ...fields])], [...new Set(ordered)]);
    return;
  }
  const collection = db.collection<T>(collectionName);
  const existing = new Set(
    (await collection.listIndexes().toArray().catch((error: unknown) => {
      if ((error as { code?: number }).code === 26) return []; // NamespaceNotFound: no collection yet
      throw error;
    })).map((index) => index.name as string),
  );
  const missing = wanted.filter((index) => !existing.has(index.name));
  // Only what MongoDB knows of an index (`range` is the hub's own note).
  if (missing.length > 0) await collection.createIndexes(missing.map(({ key, name, sparse }) => ({ key, name, ...(sparse ? { sparse } : {}) })));
}

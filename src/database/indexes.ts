import type { Collection, Document } from 'mongodb';

export interface IndexSpec {
  key: Record<string, 1 | -1>;
  name: string;
}

/**
 * Creates the indexes of a collection that do not exist yet; safe to call at every start. Only missing
 * indexes are requested: FerretDB v1.24 drops the connection when createIndexes names an existing one.
 */
export async function createMissingIndexes<T extends Document>(collection: Collection<T>, wanted: IndexSpec[]): Promise<void> {
  const existing = new Set(
    (await collection.listIndexes().toArray().catch((error: unknown) => {
      if ((error as { code?: number }).code === 26) return []; // NamespaceNotFound: no collection yet
      throw error;
    })).map((index) => index.name as string),
  );
  const missing = wanted.filter((index) => !existing.has(index.name));
  if (missing.length > 0) await collection.createIndexes(missing);
}

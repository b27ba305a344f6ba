/**
 * The collections a domain keeps beside the resources (the person links, the referral facts, the reapply
 * jobs, the terminology version, the critical-value facts): named plainly, never a resource type's collection,
 * its history or the store's own bookkeeping — those are reached only through the repository, its access
 * policy and its versioning. Domains get this instead of the database.
 */
import type { Collection, Db, Document, WithId } from 'mongodb';
import { findByValues } from '../database/equalities.ts';
import { createMissingIndexes, type IndexSpec } from '../database/indexes.ts';
import { isServedResourceType } from './resource-types.ts';

/** The store's own collections (storage/collections.ts), which no domain may open. */
const STORE_COLLECTIONS = new Set(['tombstones', 'write_intents', 'hub_meta']);

export class SideCollections {
  constructor(private readonly db: Db) {}

  private checked(name: string): string {
    const base = name.endsWith('_history') ? name.slice(0, -'_history'.length) : name;
    if (isServedResourceType(base) || STORE_COLLECTIONS.has(name)) throw new Error(`${name} is a store collection: read and write resources through the repository`);
    return name;
  }

  /** A domain's own collection; throws for a resource type's collection or the store's own. */
  collection<T extends Document = Document>(name: string): Collection<T> {
    return this.db.collection<T>(this.checked(name));
  }

  /** The indexes a side collection's queries start from (database/indexes.ts: what each server gets). */
  ensureIndexes(name: string, wanted: IndexSpec[]): Promise<void> {
    return createMissingIndexes(this.db, this.checked(name), wanted);
  }

  /** The documents whose `field` equals one of `values`, in the form each server answers from its index. */
  findByValues<T extends Document>(name: string, field: string, values: readonly string[]): Promise<WithId<T>[]> {
    return findByValues<T>(this.db, this.checked(name), field, values);
  }

  /** Creates a side collection if it does not exist (some servers need one before certain writes). */
  async create(name: string): Promise<void> {
    await this.db.createCollection(this.checked(name)).catch((error: unknown) => {
      if ((error as { code?: number }).code !== 48) throw error; // NamespaceExists
    });
  }
}

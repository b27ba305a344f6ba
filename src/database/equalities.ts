/**
 * The query-shape rule for collections outside the FHIR store: a query starts with a top-level equality on an
 * indexed field. For "any of these values", MongoDB answers one `$in` from its index; FerretDB v1 pushes down
 * no `$in` (it would read and decode the whole collection), so there it becomes one equality query per value,
 * sent together.
 */
import type { Db, Document, Filter, WithId } from 'mongodb';
import { databaseProfile } from './profile.ts';

/** The documents of a collection whose `field` equals one of `values` (each document once). */
export async function findByValues<T extends Document>(db: Db, collectionName: string, field: string, values: readonly string[]): Promise<WithId<T>[]> {
  const collection = db.collection<T>(collectionName);
  const distinct = [...new Set(values)];
  if (distinct.length === 0) return [];
  if (!(await databaseProfile(db)).ferretdb) return collection.find({ [field]: { $in: distinct } } as Filter<T>).toArray();
  const seen = new Set<unknown>();
  const found = await Promise.all(distinct.map((value) => collection.find({ [field]: value } as Filter<T>).toArray()));
  return found.flat().filter((document) => !seen.has(document._id) && seen.add(document._id));
}

/**
 * Bulk creates: many new resources of one type with two bulk inserts, history then current documents, and no
 * read at all. An id that exists already is `unchanged` (the unique keys say so), never overwritten; an id
 * whose history has version 1 but no current document (an earlier write cut off) is rolled forward.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Collection } from 'mongodb';
import type { Resource } from '@medplum/fhirtypes';
import type { ResourceDocument } from '../search-query.ts';
import type { Storage, VersionDocuments } from './collections.ts';
import { completed, insertManyReportingDuplicates, intend, rollForward, stamped } from './versions.ts';

/** Resources of a bulk create prepared between two turns of the event loop. */
const SLICE = 16;

export interface CreatedOutcome {
  resource: Resource;
  outcome: 'created' | 'unchanged';
}

/**
 * Creates the resources that do not exist yet. `covered`: the caller's write intent names these ids already;
 * `pending`: the transaction they are written in (transactions.ts); `owner`: the writing member's organisation.
 */
export async function createAbsent(
  storage: Storage,
  type: string,
  resources: Resource[],
  options: { covered?: boolean; pending?: string; owner?: string } = {},
): Promise<Map<Resource, CreatedOutcome>> {
  const ts = new Date();
  const prepared: Resource[] = [];
  const documents: VersionDocuments[] = [];
  const currents: ResourceDocument[] = [];
  // A slice at a time, letting other requests in between (200 audit events in one go held the event loop for
  // 25 ms: a read arriving then waited for all of it).
  for (let start = 0; start < resources.length; start += SLICE) {
    if (start > 0) await yieldToEventLoop();
    for (const resource of resources.slice(start, start + SLICE)) {
      const version = stamped(resource, resource.id as string, 1, ts);
      const document = storage.versionDocuments(version, 1, ts, 'create', options.owner);
      if (options.pending) {
        document.history.p = options.pending;
        document.current.p = options.pending;
      }
      prepared.push(version);
      documents.push(document);
      currents.push(await storage.encode(type, document.current));
    }
  }
  const intent = options.covered ? undefined : await intend(storage, type, resources.map((resource) => resource.id as string));
  const historyFailed = await insertNew(storage, storage.versions(type), documents.map((d) => d.history));
  const currentFailed = await insertNew(storage, storage.current(type), currents);
  const outcomes = new Map<Resource, CreatedOutcome>();
  for (const [i, resource] of resources.entries()) {
    if (!historyFailed.has(i)) outcomes.set(resource, { resource: prepared[i]!, outcome: 'created' });
    else if (currentFailed.has(i)) outcomes.set(resource, { resource, outcome: 'unchanged' });
    else {
      // History had version 1 but the current document was missing: an earlier write was cut off. The
      // current document must hold what history holds, so roll forward from history.
      await storage.current(type).deleteOne({ _id: resource.id as string, v: 1 });
      await rollForward(storage, type, resource.id as string);
      outcomes.set(resource, { resource, outcome: 'unchanged' });
    }
  }
  if (intent) await completed(storage, intent);
  return outcomes;
}

/**
 * Inserts new documents, reporting the indexes of those whose `_id` was taken: on the embedded FerretDB straight
 * into its PostgreSQL table in one statement (ferretdb.ts), else through the driver.
 */
async function insertNew<T extends { _id: string }>(storage: Storage, collection: Collection<T>, documents: T[]): Promise<Set<number>> {
  const direct = await storage.ferretdb()?.insert(collection.collectionName, documents as unknown as Record<string, unknown>[]);
  return direct ?? insertManyReportingDuplicates(collection, documents);
}

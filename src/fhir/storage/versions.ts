/**
 * Versions without multi-document transactions: a write first inserts the new version into history under the
 * unique key `<id>/<version>`; that insert is the claim on the version number, so of two concurrent updates
 * of one version exactly one wins and the other gets CONFLICT. Then the current document is replaced with a
 * compare-and-set on the previous version. A write intent brackets both; if a process dies between the two
 * steps, the next writer (or the recovery at the next start) finds the claimed version in history and rolls
 * the current document forward to it, so no written version is lost.
 */
import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import type { Resource } from '@medplum/fhirtypes';
import { Semaphore } from '../../database/semaphore.ts';
import { conflict } from '../../errors.ts';
import { isServedResourceType } from '../resource-types.ts';
import type { HistoryDocument, Storage } from './collections.ts';
import { PENDING_TIMEOUT_MS, rollBack, unmark } from './transactions.ts';

/** Resources the recovery of cut-off writes rolls forward at once. */
const RECOVERY_CONCURRENCY = 16;

export function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}

/** Records that a write of these ids begins (see WriteIntent); a transaction's begins pending. */
export async function intend(storage: Storage, type: string, ids: string[], more: { type: string; ids: string[] }[] = [], state?: 'pending'): Promise<string> {
  const _id = randomUUID();
  await storage.intents().insertOne({ _id, type, ids, ...(more.length > 0 ? { more } : {}), at: new Date(), ...(state ? { state } : {}) });
  return _id;
}

/** The write is complete: nothing to roll forward. (A write that failed half-way keeps its intent.) */
export async function completed(storage: Storage, intent: string): Promise<void> {
  await storage.intents().deleteOne({ _id: intent });
}

/** The resource as stored at a version: its id, version and last update in meta. */
export function stamped(resource: Resource, id: string, version: number, lastUpdated: Date): Resource {
  const meta = { ...(resource.meta ?? {}), versionId: String(version), lastUpdated: lastUpdated.toISOString() };
  return { ...resource, id, meta } as Resource;
}

/**
 * Writes one version: the history entry first (its unique `<id>/<version>` is the claim on the version), then
 * the current document. `owner`: the id's (inherited) or the writer's organisation.
 */
export async function writeNewVersion(storage: Storage, stored: Resource, version: number, ts: Date, op: HistoryDocument['op'], owner?: string): Promise<void> {
  const type = stored.resourceType;
  const id = stored.id as string;
  const { history, current: fields } = storage.versionDocuments(stored, version, ts, op, owner);
  const document = await storage.encode(type, fields);
  const intent = await intend(storage, type, [id]);
  try {
    await storage.versions(type).insertOne(history);
  } catch (error) {
    if (isDuplicateKey(error)) {
      await completed(storage, intent);
      await rollForward(storage, type, id);
      throw conflict(`${type}/${id} was changed by someone else (version ${version} already exists); read it again and retry`);
    }
    throw error;
  }
  // Version 1, or a resource put again after its deletion: there is no current document to move forward.
  if (version === 1 || op === 'recreate') {
    await storage.current(type).insertOne(document).catch(async (error: unknown) => {
      // A recovery may have finished this very write already; anything else holds the id.
      if (!isDuplicateKey(error) || !(await isAtVersion(storage, type, id, version))) throw isDuplicateKey(error) ? conflict(`${type}/${id} already exists`) : error;
    });
    if (op === 'recreate') await storage.tombstones().deleteOne({ _id: `${type}/${id}` });
  } else {
    const replaced = await storage.current(type).replaceOne({ _id: id, v: version - 1 }, document);
    // Not at the version before: a cut-off earlier write, or a recovery that already moved it here.
    if (replaced.matchedCount === 0) await rollForward(storage, type, id);
  }
  await completed(storage, intent);
}

/** Deletes the current version `expected` of a resource: a deletion in history, a tombstone, the current document gone. */
export async function writeDeletion(storage: Storage, type: string, id: string, expected: number, owner?: string): Promise<number> {
  const version = expected + 1;
  const ts = new Date();
  const intent = await intend(storage, type, [id]);
  try {
    await storage.versions(type).insertOne({ _id: `${id}/${version}`, rid: id, v: version, ts, json: null, op: 'delete', ...(owner ? { owner } : {}) });
  } catch (error) {
    if (isDuplicateKey(error)) {
      await completed(storage, intent);
      throw conflict(`${type}/${id} was changed by someone else; read it again and retry`);
    }
    throw error;
  }
  // The id stays its owner's: putting it again continues its versions and is checked against that owner.
  await storage.tombstones().replaceOne({ _id: `${type}/${id}` }, { type, v: version, ts, ...(owner ? { owner } : {}) }, { upsert: true });
  await storage.current(type).deleteOne({ _id: id, v: expected });
  await completed(storage, intent);
  return version;
}

async function isAtVersion(storage: Storage, type: string, id: string, version: number): Promise<boolean> {
  const current = await storage.current(type).findOne({ _id: id }, { projection: { v: 1 } });
  return current?.v === version;
}

/**
 * Repairs a write that was cut off between its two steps: if history holds a newer version than the current
 * document, the current document is moved forward to it (a deletion removes it and leaves its tombstone).
 */
export async function rollForward(storage: Storage, type: string, id: string): Promise<void> {
  const current = await storage.current(type).findOne({ _id: id }, { projection: { v: 1 } });
  // Versions after the current one (or after the deletion, or from the first) are looked up by their
  // `<id>/<version>` key, one by one: an equality every server answers without a scan.
  let version = current?.v ?? (await storage.tombstones().findOne({ _id: `${type}/${id}` }, { projection: { v: 1 } }))?.v ?? 0;
  let latest: HistoryDocument | null = null;
  for (;;) {
    const next = await storage.versions(type).findOne({ _id: `${id}/${version + 1}` });
    if (!next) break;
    latest = next;
    version = next.v;
  }
  if (!latest) return;
  if (latest.json === null) {
    await storage.tombstones().replaceOne({ _id: `${type}/${id}` }, { type, v: latest.v, ts: latest.ts, ...(latest.owner ? { owner: latest.owner } : {}) }, { upsert: true });
    await storage.current(type).deleteOne({ _id: id, v: { $lt: latest.v } });
    return;
  }
  const document = await storage.encodeVersion(type, { _id: id, v: latest.v, ts: latest.ts, json: latest.json, ...(latest.owner ? { owner: latest.owner } : {}) });
  if (current) await storage.current(type).replaceOne({ _id: id, v: current.v }, document);
  // No current document: a cut-off create or put-after-delete; a concurrent repair may win the insert.
  else await storage.current(type).insertOne(document).catch((error: unknown) => {
    if (!isDuplicateKey(error)) throw error;
  });
}

/**
 * Finishes writes that a process left half done (killed between a version's history entry and its current
 * document): every intent's resources are rolled forward to their latest version in history. Run at every
 * start and then every minute; safe beside live writers (a write finds its version already in place and
 * counts as done). Intents older than `settleMs` are then removed.
 */
export async function recoverCutOffWrites(storage: Storage, settleMs: number): Promise<{ intents: number; resources: number }> {
  const intents = await storage.intents().find({}).limit(1000).toArray();
  let resources = 0;
  // Several resources at once: each takes a few round trips, and a transaction's intent names all of its
  // entries (a recovery one at a time took minutes on a busy machine).
  const together = new Semaphore(RECOVERY_CONCURRENCY);
  for (const intent of intents) {
    // A transaction still pending is invisible: its writer may still be at it; cut off long ago, it is rolled back.
    if (intent.state === 'pending') {
      if (Date.now() - intent.at.getTime() < PENDING_TIMEOUT_MS) continue;
      await rollBack(storage.db, intent);
      await completed(storage, intent._id);
      continue;
    }
    // A committed one is finished: marks removed, then rolled forward like any other write.
    if (intent.state === 'committed') await unmark(storage.db, intent);
    const work: Promise<void>[] = [];
    for (const { type, ids } of [{ type: intent.type, ids: intent.ids }, ...(intent.more ?? [])]) {
      if (!isServedResourceType(type)) continue;
      for (const id of ids) work.push(together.run(() => rollForward(storage, type, id)));
      resources += ids.length;
    }
    await Promise.all(work);
    if (Date.now() - intent.at.getTime() >= settleMs) await completed(storage, intent._id);
  }
  return { intents: intents.length, resources };
}

/** Inserts with ordered: false; returns the indexes refused as duplicates. Any other failure is thrown. */
export async function insertManyReportingDuplicates<T extends { _id: string }>(collection: Collection<T>, documents: T[]): Promise<Set<number>> {
  try {
    await collection.insertMany(documents as never, { ordered: false });
    return new Set();
  } catch (error) {
    const writeErrors = (error as { writeErrors?: { code?: number; index: number }[] | { code?: number; index: number } }).writeErrors;
    const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
    if (list.length === 0 || list.some((writeError) => writeError.code !== 11000)) throw error;
    return new Set(list.map((writeError) => writeError.index));
  }
}

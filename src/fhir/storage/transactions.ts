/**
 * A transaction's entries become visible together or not at all, also across a crash, without a multi-document
 * transaction (which FerretDB v1 lacks and a sharded MongoDB makes costly):
 *
 * 1. its write intent is inserted with `state: 'pending'`;
 * 2. its new versions are written — history, and current documents marked `p: <intent>` (pending);
 * 3. the intent is marked `committed` (one document: the commit point);
 * 4. the marks are removed (an equality on `p` per type) and the intent deleted.
 *
 * Every read of current documents passes them through `visibleDocuments`: a document with a mark whose intent is
 * not committed is not there yet (a page of readers sees none of a transaction's entries until all are written,
 * then all). Marks are rare (only while a transaction writes), so a read with none costs nothing more.
 *
 * After a crash, a committed transaction is finished (its marks removed, any missing current document rolled
 * forward from history); a pending one older than PENDING_TIMEOUT_MS is rolled back (its marked documents and
 * versions removed): it was never acknowledged, and was never visible.
 */
import type { Collection, Db } from 'mongodb';
import { findByValues } from '../../database/equalities.ts';
import { HubError } from '../../errors.ts';

/** The field of a current document (and a history version) written by a transaction not yet committed. */
export const PENDING_FIELD = 'p';

/** How long a transaction may stay pending before recovery takes it for cut off and rolls it back. */
export const PENDING_TIMEOUT_MS = 10 * 60_000;

/** A write intent of a transaction: the ids of its new versions, by type. */
export interface TransactionIntent {
  _id: string;
  type: string;
  ids: string[];
  more?: { type: string; ids: string[] }[];
  at: Date;
  /** transactions only (single writes have none: their history entry is their commit point) */
  state?: 'pending' | 'committed';
}

/** The documents a reader may see: those without a mark, or whose transaction has committed. */
export async function visibleDocuments<T extends { p?: string }>(db: Db, documents: T[]): Promise<T[]> {
  const marks = [...new Set(documents.map((document) => document.p).filter((mark): mark is string => typeof mark === 'string'))];
  if (marks.length === 0) return documents;
  const intents = await findByValues<TransactionIntent>(db, 'write_intents', '_id', marks);
  const committed = new Set(intents.filter((intent) => intent.state !== 'pending').map((intent) => intent._id));
  // A mark whose intent is gone belongs to a transaction finished (committed, marks being removed) or rolled back
  // (its documents being removed first): either way recovery has decided; only a pending intent hides.
  const known = new Set(intents.map((intent) => intent._id));
  return documents.filter((document) => !document.p || committed.has(document.p) || !known.has(document.p));
}

/**
 * The commit point: the intent moves from pending to committed, once. CONFLICT when it is no longer pending
 * (recovery rolled it back: the transaction took longer than PENDING_TIMEOUT_MS), and nothing of it is visible.
 */
export async function commitTransaction(intents: Collection<TransactionIntent>, id: string): Promise<void> {
  const committed = await intents.updateOne({ _id: id, state: 'pending' }, { $set: { state: 'committed' } });
  if (committed.matchedCount === 0) throw new HubError('CONFLICT', 'The transaction took too long and was rolled back; nothing of it was written. Send it again');
}

/** After the commit: the marks of the transaction's current documents and versions are removed. */
export async function unmark(db: Db, intent: TransactionIntent): Promise<void> {
  for (const type of [intent.type, ...(intent.more ?? []).map((more) => more.type)]) {
    await db.collection(type).updateMany({ [PENDING_FIELD]: intent._id }, { $unset: { [PENDING_FIELD]: '' } });
    await db.collection(`${type}_history`).updateMany({ [PENDING_FIELD]: intent._id }, { $unset: { [PENDING_FIELD]: '' } });
  }
}

/** A pending transaction cut off: what it wrote is removed (it was never visible, never acknowledged). */
export async function rollBack(db: Db, intent: TransactionIntent): Promise<void> {
  for (const type of [intent.type, ...(intent.more ?? []).map((more) => more.type)]) {
    await db.collection(type).deleteMany({ [PENDING_FIELD]: intent._id });
    await db.collection(`${type}_history`).deleteMany({ [PENDING_FIELD]: intent._id });
  }
}

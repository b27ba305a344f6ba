/**
 * What the hub asks its database: the commands a hub's driver sends while some work runs, and whether
 * FerretDB answers a find's filter in its storage (`explain` reports `filterPushdown`) or decodes the whole
 * collection.
 */
import { BSON, Binary, type CommandStartedEvent, type Db } from 'mongodb';
import type { Hub } from '../../src/app.ts';
import { ferretDbStorageOf } from '../../src/database/ferretdb-storage.ts';
import { viewOf } from '../../src/fhir/storage/layout.ts';
import type { ResourceDocument } from '../../src/fhir/search-query.ts';

export interface SentFind {
  collection: string;
  filter: Record<string, unknown>;
}

/** The `find` commands the hub sent while `work` ran. */
export async function findsDuring(hub: Hub, work: () => Promise<unknown>): Promise<SentFind[]> {
  const finds: SentFind[] = [];
  const listener = (event: CommandStartedEvent): void => {
    if (event.commandName === 'find') finds.push({ collection: String(event.command.find), filter: (event.command.filter ?? {}) as Record<string, unknown> });
  };
  hub.database.client.on('commandStarted', listener);
  try {
    await work();
  } finally {
    hub.database.client.off('commandStarted', listener);
  }
  return finds;
}

/** Whether FerretDB pushes the filter of a find down to its storage (true on MongoDB, which has no such flag). */
export async function pushedDown(db: Db, find: SentFind): Promise<boolean> {
  const plan = await db.command({ explain: { find: find.collection, filter: find.filter } });
  return plan.filterPushdown === undefined ? true : plan.filterPushdown === true;
}

/** A stored current document as the hub reads it (structured, whatever the server's layout). */
export async function storedView(db: Db, collection: string, id: string): Promise<ResourceDocument | null> {
  const document = await db.collection(collection).findOne({ _id: id as never });
  return document ? viewOf(document) : null;
}

/**
 * Changes the search values of a stored current document in place, in its own layout (to simulate values an
 * older hub extracted).
 */
export async function changeStoredValues(db: Db, collection: string, id: string, change: (sp: Record<string, unknown>) => void): Promise<void> {
  const document = await db.collection(collection).findOne({ _id: id as never });
  if (!document) throw new Error(`${collection}/${id} is not stored`);
  if (document.x) {
    const packed = BSON.deserialize((document.x as Binary).buffer);
    // The search values are BSON within the packed document (`s`), or a plain document (`sp`) in older ones.
    const sp = packed.s ? BSON.deserialize((packed.s as Binary).buffer) : packed.sp;
    change(sp);
    if (packed.s) packed.s = new Binary(BSON.serialize(sp));
    await db.collection(collection).updateOne({ _id: id as never }, { $set: { x: new Binary(BSON.serialize(packed)) } });
  } else {
    change(document.sp);
    await db.collection(collection).updateOne({ _id: id as never }, { $set: { sp: document.sp } });
  }
}

/** Every current resource of a collection, parsed, whatever the server's layout. */
export async function storedResources<T>(db: Db, collection: string): Promise<T[]> {
  return (await db.collection(collection).find({}).toArray()).map((document) => JSON.parse(viewOf(document).json) as T);
}

export interface SentStatement {
  text: string;
  values: unknown[];
}

/**
 * The reads the hub sent while `work` ran: its `find` commands to FerretDB or MongoDB, and the statements it
 * read current documents with straight from FerretDB's PostgreSQL tables (ferretdb-storage.ts), if it does.
 */
export async function readsDuring(hub: Hub, work: () => Promise<unknown>): Promise<{ finds: SentFind[]; statements: SentStatement[] }> {
  const statements: SentStatement[] = [];
  const unsubscribe = ferretDbStorageOf(hub.database.db)?.onStatement((text, values) => statements.push({ text, values }));
  try {
    const finds = await findsDuring(hub, work);
    return { finds, statements };
  } finally {
    unsubscribe?.();
  }
}

/** The ids a direct read by id asked for (`_jsonb->'_id' = ANY($1)`), or undefined for another statement. */
export function idsOfStatement(statement: SentStatement): string[] | undefined {
  if (!/_jsonb->'_id' = ANY\(\$1::jsonb\[\]\)/.test(statement.text)) return undefined;
  return (statement.values[0] as string[]).map((value) => JSON.parse(value) as string);
}

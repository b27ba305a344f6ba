/**
 * What the hub asks its database: the commands a hub's driver sends while some work runs, and whether
 * FerretDB answers a find's filter in its storage (`explain` reports `filterPushdown`) or decodes the whole
 * collection.
 */
import type { CommandStartedEvent, Db } from 'mongodb';
import type { Hub } from '../../src/app.ts';

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

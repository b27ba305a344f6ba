/**
 * A live feed read from an events collection that any hub instance writes to: each poll is one equality on the
 * indexed `keys` (`<organisation>|<UTC day>`) newer than what was delivered, so a subscriber on any instance gets
 * every event (the referral transitions, the critical values). No shared state in process memory.
 */
import type { Collection, Document } from 'mongodb';

export const eventKey = (organization: string, date: Date): string => `${organization}|${date.toISOString().slice(0, 10)}`;

/** Events written up to this long before the subscription started (clock skew between instances) are still sent. */
const SKEW_MS = 5000;

export async function* eventFeed<E extends Document & { _id: string; at: Date }, P>(
  events: Collection<E>,
  organization: string,
  signal: AbortSignal,
  map: (event: E) => P,
  pollMs = 500,
): AsyncGenerator<P> {
  let since = new Date(Date.now() - SKEW_MS);
  const delivered = new Map<string, number>();
  while (!signal.aborted) {
    const now = new Date();
    // Today's key, and yesterday's around midnight (UTC).
    const keys = [...new Set([eventKey(organization, now), eventKey(organization, new Date(now.getTime() - SKEW_MS - pollMs)), eventKey(organization, since)])];
    const found: E[] = [];
    for (const key of keys) found.push(...((await events.find({ keys: key, at: { $gte: since } } as never).toArray()) as E[]));
    found.sort((a, b) => a.at.getTime() - b.at.getTime() || a._id.localeCompare(b._id));
    for (const event of found) {
      if (delivered.has(event._id)) continue;
      delivered.set(event._id, event.at.getTime());
      yield map(event);
    }
    // Keep what may come again within the skew window; forget the rest.
    since = new Date(Date.now() - SKEW_MS);
    for (const [id, at] of delivered) if (at < since.getTime() - SKEW_MS) delivered.delete(id);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, pollMs);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}

/** An async iterator over a feed that stops polling when the subscriber unsubscribes or goes away. */
export function stoppable<T>(start: (signal: AbortSignal) => AsyncGenerator<T>): AsyncIterableIterator<T> {
  const stop = new AbortController();
  const events = start(stop.signal);
  const iterator: AsyncIterableIterator<T> = {
    next: () => events.next(),
    return: async () => {
      stop.abort();
      return events.return(undefined as never);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

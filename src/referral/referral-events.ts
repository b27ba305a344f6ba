/**
 * The live feed of referral transitions for one organisation, read from `referral_events` (written by whichever
 * hub instance made the change), so a subscriber on any instance gets every transition: each poll is one
 * equality on the indexed `keys` (organisation and day), newer than what was delivered.
 */
import { eventKey, type EventDocument, type ReferralLog } from './referral-log.ts';

export interface ReferralEventPayload {
  referralId: string;
  version: number;
  status: string;
  type: string;
  priority: string;
  from: string | null;
  to: string | null;
  at: string;
}

/** Events written up to this long before the subscription started (clock skew between instances) are still sent. */
const SKEW_MS = 5000;

export async function* referralEvents(log: ReferralLog, organization: string, signal: AbortSignal, pollMs = 500): AsyncGenerator<{ referralEvents: ReferralEventPayload }> {
  let since = new Date(Date.now() - SKEW_MS);
  const delivered = new Map<string, number>();
  while (!signal.aborted) {
    const now = new Date();
    // Today's key, and yesterday's around midnight (UTC).
    const keys = [...new Set([eventKey(organization, now), eventKey(organization, new Date(now.getTime() - SKEW_MS - pollMs)), eventKey(organization, since)])];
    const found: EventDocument[] = [];
    for (const key of keys) found.push(...(await log.events.find({ keys: key, at: { $gte: since } }).toArray()));
    found.sort((a, b) => a.at.getTime() - b.at.getTime() || a._id.localeCompare(b._id));
    for (const event of found) {
      if (delivered.has(event._id)) continue;
      delivered.set(event._id, event.at.getTime());
      yield {
        referralEvents: {
          referralId: event.referral,
          version: event.version,
          status: event.status,
          type: event.type,
          priority: event.priority,
          from: event.from ?? null,
          to: event.to ?? null,
          at: event.at.toISOString(),
        },
      };
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

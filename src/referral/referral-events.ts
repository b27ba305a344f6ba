/**
 * The live feed of referral transitions for one organisation, read from `referral_events` (written by whichever
 * hub instance made the change) through the shared event feed (database/event-feed.ts).
 */
import { eventFeed } from '../database/event-feed.ts';
import type { EventDocument, ReferralLog } from './referral-log.ts';

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

export function referralEvents(log: ReferralLog, organization: string, signal: AbortSignal, pollMs = 500): AsyncGenerator<{ referralEvents: ReferralEventPayload }> {
  return eventFeed(
    log.events,
    organization,
    signal,
    (event: EventDocument) => ({
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
    }),
    pollMs,
  );
}

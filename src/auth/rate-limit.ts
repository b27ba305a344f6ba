/**
 * Per-client request budget per minute, counted in the database so that every hub instance behind a load
 * balancer shares it, and exact under concurrency: each unit of a request's weight is a slot of the client's
 * minute (src/database/slots.ts), and at most the limit can be taken. A request weighs 1, a costly query more
 * (app.ts). rate-limiter-flexible's RateLimiterMongo is not used: it counts with `$inc`, which FerretDB v1
 * does not make atomic (it admitted 27 of 32 concurrent requests at a limit of 10 here), and its TTL index
 * is refused there as not implemented.
 */
import type { Db } from 'mongodb';
import { SlotCounter } from '../database/slots.ts';
import { HubError } from '../errors.ts';

const WINDOW_MS = 60_000;

export class RateLimiter {
  private readonly slots: SlotCounter;

  constructor(
    db: Db,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    // Ephemeral: a database crash may forget the current minute's counts (the client gets a fresh minute).
    this.slots = new SlotCounter(db, 'rate_limit_slots', now, true);
  }

  ensureIndexes(): Promise<void> {
    return this.slots.ensureIndexes();
  }

  /** Counts `weight` units of a client's request; RATE_LIMITED when its minute has fewer left (`why` is added to the message). */
  async take(clientId: string, weight = 1, why?: string): Promise<void> {
    if (weight <= 0) return;
    const minute = Math.floor(this.now() / WINDOW_MS);
    const until = new Date((minute + 1) * WINDOW_MS);
    const { taken } = await this.slots.take(`${clientId}@${minute}`, weight, until, this.perMinute);
    if (taken < weight) {
      const retry = Math.max(1, Math.ceil((until.getTime() - this.now()) / 1000));
      throw new HubError('RATE_LIMITED', `Client ${clientId} used its ${this.perMinute} requests of this minute${why ? ` (${why})` : ''}; retry in ${retry} s`);
    }
  }
}

/**
 * Per-client request budget per minute, counted in the database so that every hub instance behind a load
 * balancer shares it, and exact under concurrency. A request weighs 1, a costly query more (app.ts).
 *
 * - On MongoDB (and FerretDB without access to its PostgreSQL): each unit is a slot document of the client's
 *   minute (src/database/slots.ts), and at most the limit can be taken.
 * - On FerretDB's PostgreSQL: one upsert on the hub's counter table (ferretdb-storage.ts `takeUnits`), which
 *   PostgreSQL makes atomic: one round trip of well under a millisecond instead of an insert through FerretDB
 *   (three PostgreSQL round trips, 2–4 ms: most of a read by id). Every instance on one database chooses the same
 *   way, so they share one count.
 * rate-limiter-flexible's RateLimiterMongo is not used: it counts with `$inc`, which FerretDB v1
 * does not make atomic (it admitted 27 of 32 concurrent requests at a limit of 10 here), and its TTL index
 * is refused there as not implemented.
 */
import type { Db } from 'mongodb';
import { ferretDbStorageOf, type FerretDbStorage } from '../database/ferretdb-storage.ts';
import { SlotCounter } from '../database/slots.ts';
import { HubError } from '../errors.ts';

const WINDOW_MS = 60_000;

export class RateLimiter {
  private readonly slots: SlotCounter;
  /** PostgreSQL's counters when this database has them, decided once (see counters()). */
  private chosen: Promise<FerretDbStorage | undefined> | undefined;
  private lastCleanup = 0;

  constructor(
    private readonly db: Db,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.slots = new SlotCounter(db, 'rate_limit_slots', now);
  }

  async ensureIndexes(): Promise<void> {
    await this.slots.ensureIndexes();
    await this.counters();
  }

  /**
   * The counters of FerretDB's PostgreSQL, or undefined (slot documents). The slot collection is made first, so
   * that FerretDB has created the database's schema and every instance finds it. A failure (the database not
   * reachable) is not remembered: the next request decides again.
   */
  private counters(): Promise<FerretDbStorage | undefined> {
    this.chosen ??= (async () => {
      const storage = ferretDbStorageOf(this.db);
      if (!storage) return undefined;
      await this.db.createCollection('rate_limit_slots').catch((error: unknown) => {
        if ((error as { code?: number }).code !== 48) throw error; // NamespaceExists
      });
      return (await storage.countersReady(this.db.databaseName)) ? storage : undefined;
    })();
    this.chosen.catch(() => (this.chosen = undefined));
    return this.chosen;
  }

  /** Counts `weight` units of a client's request; RATE_LIMITED when its minute has fewer left (`why` is added to the message). */
  async take(clientId: string, weight = 1, why?: string): Promise<void> {
    if (weight <= 0) return;
    const minute = Math.floor(this.now() / WINDOW_MS);
    const until = new Date((minute + 1) * WINDOW_MS);
    const key = `${clientId}@${minute}`;
    const counters = await this.counters();
    const { taken } = counters ? await counters.takeUnits(this.db.databaseName, key, weight, this.perMinute, until) : await this.slots.take(key, weight, until, this.perMinute);
    if (counters && this.now() - this.lastCleanup >= WINDOW_MS) {
      this.lastCleanup = this.now();
      void counters.dropExpiredUnits(this.db.databaseName, new Date(this.now())).catch(() => undefined);
    }
    if (taken < weight) {
      const retry = Math.max(1, Math.ceil((until.getTime() - this.now()) / 1000));
      throw new HubError('RATE_LIMITED', `Client ${clientId} used its ${this.perMinute} requests of this minute${why ? ` (${why})` : ''}; retry in ${retry} s`);
    }
  }
}

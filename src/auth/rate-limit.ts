/**
 * Per-client rate limit, counted in the database (collection `rate_limits`, one document per client and
 * minute), so every hub instance behind a load balancer shares the count. One round trip per request.
 */
import type { Collection, Db } from 'mongodb';
import { HubError } from '../errors.ts';

interface WindowDocument {
  _id: string;
  n: number;
  client: string;
  /** when the window ends */
  until: Date;
}

export class RateLimiter {
  private readonly windows: Collection<WindowDocument>;

  constructor(
    db: Db,
    private readonly perMinute: number,
  ) {
    this.windows = db.collection<WindowDocument>('rate_limits');
  }


  /** Counts one request of the client; RATE_LIMITED when it is over the limit for this minute. */
  async hit(clientId: string): Promise<void> {
    const minute = Math.floor(Date.now() / 60_000);
    const window = await this.windows.findOneAndUpdate(
      { _id: `${clientId}@${minute}` },
      { $inc: { n: 1 }, $setOnInsert: { client: clientId, until: new Date((minute + 1) * 60_000) } },
      { upsert: true, returnDocument: 'after' },
    );
    // The first request of a minute removes the client's past windows (FerretDB v1 has no TTL indexes).
    if (window?.n === 1) await this.windows.deleteMany({ client: clientId, until: { $lt: new Date(minute * 60_000 + 1) } });
    if ((window?.n ?? 0) > this.perMinute) {
      const retry = Math.ceil(((minute + 1) * 60_000 - Date.now()) / 1000);
      throw new HubError('RATE_LIMITED', `Client ${clientId} made more than ${this.perMinute} requests this minute; retry in ${retry} s`);
    }
  }
}

/**
 * How many requests of one client an instance works on at once. A client that sends more waits for a turn
 * (at most `maxWaitMs`, then RATE_LIMITED), so one client flooding an instance with costly queries cannot take
 * the database and event loop from everyone else: other clients and `/health` keep their share.
 *
 * This protects the instance's own capacity, like a connection pool, and so lives in its memory; the
 * per-minute budget that all instances share is counted in the database (rate-limit.ts). A request holds its
 * turn until its work has really stopped, not only until it was answered (a timed-out request's database
 * work is cancelled first).
 */
import { HubError } from '../errors.ts';

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout;
}

export class ClientConcurrency {
  private readonly running = new Map<string, number>();
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(
    private readonly perClient: number,
    private readonly maxWaitMs: number,
  ) {}

  /** Waits for a turn of the client; returns the function that gives it back (call it exactly once). */
  async acquire(clientId: string): Promise<() => void> {
    const active = this.running.get(clientId) ?? 0;
    if (active < this.perClient) {
      this.running.set(clientId, active + 1);
      return this.releaser(clientId);
    }
    await new Promise<void>((resolve, reject) => {
      const queue = this.waiting.get(clientId) ?? [];
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const list = this.waiting.get(clientId) ?? [];
          list.splice(list.indexOf(waiter), 1);
          if (list.length === 0) this.waiting.delete(clientId);
          reject(new HubError('RATE_LIMITED', `Client ${clientId} has ${this.perClient} requests running on this instance; wait for them (at most ${this.perClient} at once per client)`));
        }, this.maxWaitMs),
      };
      queue.push(waiter);
      this.waiting.set(clientId, queue);
    });
    // The turn was handed over by a finishing request: the running count did not drop.
    return this.releaser(clientId);
  }

  private releaser(clientId: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const queue = this.waiting.get(clientId);
      const next = queue?.shift();
      if (queue && queue.length === 0) this.waiting.delete(clientId);
      if (next) next.grant();
      else {
        const active = (this.running.get(clientId) ?? 1) - 1;
        if (active <= 0) this.running.delete(clientId);
        else this.running.set(clientId, active);
      }
    };
  }

  /** Requests running now (for tests and status). */
  runningFor(clientId: string): number {
    return this.running.get(clientId) ?? 0;
  }
}

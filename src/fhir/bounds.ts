/**
 * A request's bounds on its database reads: they carry the time left (maxTimeMS), stop at the signal, at most
 * `reads` of them run at once (thirty aliased lists become thirty reads, a few at a time, so one request
 * cannot take every database connection and core), and what they bring back is counted against the request's
 * budget (MAX_RESOURCES_PER_REQUEST). Outside a request (jobs, scripts) there are none.
 */
import { HubError, translateDatabaseError } from '../errors.ts';
import type { Semaphore } from '../database/semaphore.ts';

export interface RequestDeadline {
  signal: AbortSignal;
  /** epoch milliseconds */
  at: number;
  reads?: Semaphore;
  /**
   * How many more resources the request's reads may bring back (MAX_RESOURCES_PER_REQUEST): what one request
   * may cost the hub's single thread in decoding and answering, whatever its aliases and lists.
   */
  budget?: { left: number; limit: number };
}

const outOfTime = (): HubError => new HubError('TIMEOUT', 'The request ran out of time');

export class RequestBounds {
  constructor(readonly deadline?: RequestDeadline) {}

  /** Runs a read within the request's share of concurrent reads. */
  bounded<T>(read: () => Promise<T>): Promise<T> {
    const deadline = this.deadline;
    if (!deadline?.reads) return read();
    return deadline.reads.run(() => {
      // The request may have run out of time while this read waited for its turn.
      if (deadline.signal.aborted) throw outOfTime();
      if (deadline.budget && deadline.budget.left < 0) this.charge([]);
      return read();
    });
  }

  /** Counts what a read brought back against the request's budget; past it the request fails with TOO_MANY_RESULTS. */
  charge<T>(documents: T[]): T[] {
    const budget = this.deadline?.budget;
    if (!budget) return documents;
    budget.left -= documents.length;
    if (budget.left < 0) {
      throw new HubError('TOO_MANY_RESULTS', `This request reads more than ${budget.limit} resources in all (MAX_RESOURCES_PER_REQUEST); ask for fewer or smaller lists, or page with _count and a connection's cursor`);
    }
    return documents;
  }

  /** Options for a read within the request's time (none outside a request). */
  timed(): { maxTimeMS?: number; signal?: AbortSignal } {
    if (!this.deadline) return {};
    return { maxTimeMS: Math.max(1, Math.round(this.deadline.at - Date.now())), signal: this.deadline.signal };
  }

  /** The milliseconds a read may take (`outside` outside a request); TIMEOUT when none are left. */
  timeLeftMs(outside = 120_000): number {
    const left = this.deadline ? this.deadline.at - Date.now() : outside;
    if (left <= 0) throw outOfTime();
    return left;
  }

  /** Runs one store operation: refused once the request is over, database failures translated (errors.ts). */
  async guard<T>(work: () => Promise<T>): Promise<T> {
    if (this.deadline?.signal.aborted) throw outOfTime();
    try {
      return await work();
    } catch (error) {
      throw translateDatabaseError(error);
    }
  }
}

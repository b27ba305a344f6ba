/**
 * Refusals in aggregate: failed logins at the token endpoint, requests with a bad token, requests over the rate
 * limit. One AuditEvent per kind, subject (a client id, or a source address) and 5-minute window records that
 * it began; every further one only adds to a count, so a flood of refusals cannot grow the audit trail without
 * bound. The counts are exact (slots of src/database/slots.ts, removed an hour after their window), shared by
 * all instances, readable by administrators (`refusalCounts`), and the token endpoint throttles a client id
 * or a source by them.
 */
import type { Db } from 'mongodb';
import { SlotCounter } from '../database/slots.ts';
import type { Caller } from '../auth/tokens.ts';
import type { AuditTrail } from './audit-trail.ts';

export type RefusalKind = 'TOKEN_REFUSED' | 'UNAUTHENTICATED' | 'RATE_LIMITED';

export const refusalKinds: RefusalKind[] = ['TOKEN_REFUSED', 'UNAUTHENTICATED', 'RATE_LIMITED'];

export const REFUSAL_WINDOW_MS = 5 * 60_000;
/** How long the counts of a window are kept after it ends. */
const KEEP_MS = 60 * 60_000;

export class RefusalLog {
  private readonly slots: SlotCounter;

  constructor(
    db: Db,
    private readonly trail: AuditTrail,
    private readonly now: () => number = Date.now,
  ) {
    this.slots = new SlotCounter(db, 'refusal_counts', now);
  }

  ensureIndexes(): Promise<void> {
    return this.slots.ensureIndexes();
  }

  private window(at = this.now()): number {
    return Math.floor(at / REFUSAL_WINDOW_MS) * REFUSAL_WINDOW_MS;
  }

  private key(kind: RefusalKind, subject: string, window: number): string {
    return `${kind}|${subject}|${new Date(window).toISOString()}`;
  }

  /** How many refusals of a kind a subject had in the current window. */
  current(kind: RefusalKind, subject: string): Promise<number> {
    return this.slots.count(this.key(kind, subject, this.window()));
  }

  /**
   * Counts one refusal for each subject (e.g. `client:his-x` and `source:10.0.0.5`); the first of a window
   * becomes an AuditEvent (naming the caller when known, the source address, and what was refused).
   */
  async record(kind: RefusalKind, subjects: string[], detail: string, context: { caller?: Caller; source?: string }): Promise<void> {
    const window = this.window();
    const until = new Date(window + REFUSAL_WINDOW_MS + KEEP_MS);
    for (const subject of subjects) {
      const { first } = await this.slots.take(this.key(kind, subject, window), 1, until);
      if (!first) continue;
      this.trail.record({
        ...(context.caller ? { caller: context.caller } : {}),
        ...(context.source ? { source: context.source } : {}),
        outcome: 'refused',
        detail: `${kind} (${subject}): ${detail}. Further ${kind} refusals of ${subject} until ${new Date(window + REFUSAL_WINDOW_MS).toISOString()} are counted, not recorded one by one.`,
      });
    }
  }
}

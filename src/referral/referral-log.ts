/**
 * What the referral workflow records beside its Tasks, in plain documents with top-level fields (no patient data:
 * organisations, types, statuses and times):
 *
 * - `referral_facts`, one per referral, the times of its steps and 0/1 counters, so the quality statistics are a
 *   `$match` + `$group` in the database (the same on FerretDB and MongoDB; no `$cond`, no `$lookup`);
 * - `referral_events`, one per transition, keyed by organisation and day, which the live subscription of every
 *   hub instance reads (nothing kept in process memory).
 *
 * Both are written after the Task version they describe; a referral's facts only move forward (`v`).
 */
import { monthOf } from '../shared/calendar.ts';
import { eventKey } from '../database/event-feed.ts';
import type { Collection } from 'mongodb';
import type { SideCollections } from '../fhir/side-collections.ts';
import { createLogger } from '../log.ts';
import type { ReferralFacts } from './referral-task.ts';
import type { ReferralStatus, ReferralType } from './rules.ts';

export interface FactDocument {
  _id: string;
  v: number;
  /** submission month, YYYY-MM in China time */
  month: string;
  /** both organisations (`Organization/<id>`): an equality on it starts an organisation's statistics */
  orgs: string[];
  from?: string;
  to?: string;
  type: ReferralType;
  priority: string;
  status: ReferralStatus;
  submittedAt: Date;
  acceptedAt?: Date;
  arrivedAt?: Date;
  completedAt?: Date;
  closedAt?: Date;
  /** minutes from submission to acceptance (not for the green channel, accepted at once) */
  acceptMinutes?: number;
  /** green channel: minutes from submission to arrival (the 10-minute target) */
  greenMinutes?: number;
  followUpDue?: Date;
  followUpDoneAt?: Date;
  // 0/1 counters for $sum
  up: number;
  down: number;
  green: number;
  responded: number;
  accepted: number;
  rejected: number;
  noShow: number;
  completed: number;
  closed: number;
  followUp: number;
  followUpOnTime: number;
  greenOnTime: number;
}

export interface EventDocument {
  _id: string;
  /** `<organisation>|<YYYY-MM-DD>` (UTC day) of both organisations: what a subscription reads */
  keys: string[];
  referral: string;
  version: number;
  status: ReferralStatus;
  type: ReferralType;
  priority: string;
  from?: string;
  to?: string;
  at: Date;
}

/** When a transition's record is tried again after a failure (recordWritten). */
const RETRY_DELAYS_MS = [1000, 5000, 30_000, 120_000, 600_000];
const fallbackLog = createLogger('warn');

export class ReferralLog {
  readonly facts: Collection<FactDocument>;
  readonly events: Collection<EventDocument>;

  constructor(private readonly collections: SideCollections) {
    this.facts = collections.collection<FactDocument>('referral_facts');
    this.events = collections.collection<EventDocument>('referral_events');
  }

  async ensureIndexes(): Promise<void> {
    await this.collections.ensureIndexes('referral_facts', [
      { key: { month: 1 }, name: 'month' },
      { key: { orgs: 1 }, name: 'orgs' },
    ]);
    await this.collections.ensureIndexes('referral_events', [{ key: { keys: 1 }, name: 'keys' }]);
  }

  /**
   * Records a transition that has been written. A failure (the database went away just after the Task's write)
   * does not undo the transition, so it is not the caller's: it is tried again in the background, a few times
   * over some minutes (the event and the facts are idempotent by the Task's version), and logged.
   */
  async recordWritten(id: string, version: number, facts: ReferralFacts, at: Date, extra: { followUpDue?: Date; followUpDoneAt?: Date } = {}): Promise<void> {
    const attempt = (delays: number[]): Promise<void> =>
      this.record(id, version, facts, at, extra).catch((error: unknown) => {
        const [delay, ...rest] = delays;
        if (delay === undefined) {
          fallbackLog.error('the facts and event of a referral transition could not be recorded', { referral: id, version, error: error instanceof Error ? error.message : String(error) });
          return;
        }
        setTimeout(() => void attempt(rest), delay).unref();
      });
    await attempt(RETRY_DELAYS_MS);
  }

  /** Records one transition (the new Task version) in the facts and the event stream. */
  async record(id: string, version: number, facts: ReferralFacts, at: Date, extra: { followUpDue?: Date; followUpDoneAt?: Date } = {}): Promise<void> {
    const orgs = [facts.from, facts.to].filter((org): org is string => Boolean(org));
    await this.events
      .insertOne({ _id: `${id}/${version}`, keys: orgs.map((org) => eventKey(org, at)), referral: id, version, status: facts.status, type: facts.type, priority: facts.priority, ...(facts.from ? { from: facts.from } : {}), ...(facts.to ? { to: facts.to } : {}), at })
      .catch((error: { code?: number }) => {
        if (error.code !== 11000) throw error; // recorded already (a retry)
      });
    const changes = stepChanges(facts, at, extra);
    if (version === 1) {
      const initial: FactDocument = {
        _id: id,
        v: 1,
        month: monthOf(facts.submittedAt),
        orgs,
        ...(facts.from ? { from: facts.from } : {}),
        ...(facts.to ? { to: facts.to } : {}),
        type: facts.type,
        priority: facts.priority,
        status: facts.status,
        submittedAt: facts.submittedAt,
        up: facts.type === 'DOWN' ? 0 : 1,
        down: facts.type === 'DOWN' ? 1 : 0,
        green: facts.type === 'GREEN_CHANNEL' ? 1 : 0,
        responded: 0,
        accepted: 0,
        rejected: 0,
        noShow: 0,
        completed: 0,
        closed: 0,
        followUp: 0,
        followUpOnTime: 0,
        greenOnTime: 0,
        ...changes,
      };
      await this.facts.insertOne(initial).catch((error: { code?: number }) => {
        if (error.code !== 11000) throw error;
      });
      return;
    }
    // Only forward: a slower writer of an earlier version changes nothing.
    await this.facts.updateOne({ _id: id, v: { $lt: version } }, { $set: { ...changes, status: facts.status, v: version } });
  }

  /** Marks a referral's follow-up done (and whether within its 14 days). */
  async followUpDone(referral: string, due: Date | undefined, at: Date): Promise<void> {
    await this.facts.updateOne({ _id: referral }, { $set: { followUpDoneAt: at, followUpOnTime: due && at <= due ? 1 : 0 } });
  }
}

/** The fact fields a transition into `facts.status` at `at` sets. */
export function stepChanges(facts: ReferralFacts, at: Date, extra: { followUpDue?: Date } = {}): Partial<FactDocument> {
  const minutes = (from: Date): number => Math.max(0, Math.round((at.getTime() - from.getTime()) / 60_000));
  switch (facts.status) {
    case 'ACCEPTED':
      return facts.type === 'GREEN_CHANNEL' ? { acceptedAt: at, accepted: 1, responded: 1 } : { acceptedAt: at, accepted: 1, responded: 1, acceptMinutes: minutes(facts.submittedAt) };
    case 'REJECTED':
      return { responded: 1, rejected: 1 };
    case 'ARRIVED':
      return facts.type === 'GREEN_CHANNEL' ? { arrivedAt: at, greenMinutes: minutes(facts.submittedAt), greenOnTime: minutes(facts.submittedAt) <= 10 ? 1 : 0 } : { arrivedAt: at };
    case 'NO_SHOW':
      return { noShow: 1 };
    case 'COMPLETED':
      return { completedAt: at, completed: 1, ...(extra.followUpDue ? { followUpDue: extra.followUpDue, followUp: 1 } : {}) };
    case 'CLOSED':
      return { closedAt: at, closed: 1 };
    default:
      return {};
  }
}


/**
 * The referral quality statistics of referral.md, computed in the database from `referral_facts`: one `$match` +
 * `$group` per submission month in the range (or one for the organisation when one is named), each starting from
 * a top-level equality on an indexed field and counting each combination of the 0/1 counters, and one projection of the accept and green-channel times for the
 * medians and 90th percentiles (FerretDB v1 has no percentile accumulator). At most 25 round trips.
 */
import type { Document } from 'mongodb';
import { HubError } from '../errors.ts';
import type { FactDocument, ReferralLog } from './referral-log.ts';
import { monthsBetween } from '../shared/calendar.ts';

export type StatisticsGroup = 'MONTH' | 'ORGANIZATION' | 'TYPE';

export interface ReferralStatisticsRow {
  key: string;
  referrals: number;
  up: number;
  down: number;
  downUpRatio: number | null;
  medianMinutesToAccept: number | null;
  p90MinutesToAccept: number | null;
  rejectionRate: number | null;
  noShowRate: number | null;
  closedLoopRate: number | null;
  followUps: number;
  followUpsWithin14Days: number;
  greenChannel: number;
  greenChannelMedianMinutes: number | null;
  greenChannelWithin10Minutes: number;
}

const counters = ['up', 'down', 'green', 'responded', 'accepted', 'rejected', 'noShow', 'completed', 'closed', 'followUp', 'followUpOnTime', 'greenOnTime'] as const;

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[index]!;
}

const ratio = (part: number, whole: number): number | null => (whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null);

export async function referralStatistics(log: ReferralLog, query: { from: Date; to: Date; organization?: string; groupBy: StatisticsGroup }): Promise<ReferralStatisticsRow[]> {
  if (query.to < query.from) throw new HubError('BAD_USER_INPUT', '`to` is before `from`');
  const months = monthsBetween(query.from, query.to);
  const groupKey = query.groupBy === 'MONTH' ? '$month' : query.groupBy === 'TYPE' ? '$type' : '$to';
  // One accumulator only: FerretDB v1.24 computes the first accumulator of a $group and returns 0 for the
  // others (tests/referral/statistics.test.ts would show it). So the database groups by the key and the 0/1
  // counters together and counts each combination (a few dozen rows per group); the hub adds them up.
  const group: Document = { _id: { k: groupKey, ...Object.fromEntries(counters.map((name) => [name, `$${name}`])) }, n: { $sum: 1 } };
  // Each query starts from one indexed top-level equality: the organisation, or one month.
  const matches: Document[] = query.organization ? [{ orgs: query.organization }] : months.map((month) => ({ month }));
  const wanted = new Set(months);
  const inRange = (fact: Pick<FactDocument, 'month'>): boolean => wanted.has(fact.month);
  const totals = new Map<string, Record<string, number>>();
  const times = new Map<string, { accept: number[]; green: number[] }>();
  for (const match of matches) {
    // The month filter of an organisation's query is a second condition on what its equality found.
    const pipeline: Document[] = [{ $match: match }, ...(query.organization ? [{ $match: { month: { $in: months } } }] : []), { $group: group }];
    for (const row of await log.facts.aggregate(pipeline).toArray()) {
      const { k, ...values } = row._id as Record<string, unknown>;
      const key = String(k ?? '');
      const n = Number(row.n);
      const total = totals.get(key) ?? {};
      total.referrals = (total.referrals ?? 0) + n;
      for (const name of counters) total[name] = (total[name] ?? 0) + n * Number(values[name] ?? 0);
      totals.set(key, total);
    }
    const projection = { _id: 0, month: 1, type: 1, to: 1, acceptMinutes: 1, greenMinutes: 1 } as const;
    for (const fact of await log.facts.find(match, { projection }).toArray()) {
      if (!inRange(fact) || (fact.acceptMinutes === undefined && fact.greenMinutes === undefined)) continue;
      const key = query.groupBy === 'MONTH' ? fact.month : query.groupBy === 'TYPE' ? fact.type : (fact.to ?? '');
      const entry = times.get(key) ?? { accept: [], green: [] };
      if (fact.acceptMinutes !== undefined) entry.accept.push(fact.acceptMinutes);
      if (fact.greenMinutes !== undefined) entry.green.push(fact.greenMinutes);
      times.set(key, entry);
    }
  }
  return [...totals.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, total]) => {
      const t = (name: string): number => total[name] ?? 0;
      const accept = (times.get(key)?.accept ?? []).sort((a, b) => a - b);
      const green = (times.get(key)?.green ?? []).sort((a, b) => a - b);
      return {
        key,
        referrals: t('referrals'),
        up: t('up'),
        down: t('down'),
        downUpRatio: ratio(t('down'), t('up')),
        medianMinutesToAccept: percentile(accept, 0.5),
        p90MinutesToAccept: percentile(accept, 0.9),
        rejectionRate: ratio(t('rejected'), t('responded')),
        noShowRate: ratio(t('noShow'), t('accepted')),
        closedLoopRate: ratio(t('closed'), t('completed')),
        followUps: t('followUp'),
        followUpsWithin14Days: t('followUpOnTime'),
        greenChannel: t('green'),
        greenChannelMedianMinutes: percentile(green, 0.5),
        greenChannelWithin10Minutes: t('greenOnTime'),
      };
    });
}

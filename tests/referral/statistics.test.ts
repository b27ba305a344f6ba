/**
 * Referral statistics (issue 12, item 8) and the demo year (item 10): the demo referrals are run through the
 * workflow, and the figures the database computes are checked against counts made here from the plan alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { DEMO_REFERRALS_END, planDemoReferrals, seedDemoReferrals, type DemoReferralPlan } from '../../src/demo/referrals.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

const COUNT = 60;
let database: TestDatabase;
let hub: Hub;
let admin: string;
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('referral_stats'));
  expect(await seedDemoReferrals(database.store, database.collections, COUNT)).toBe(COUNT);
  admin = await token(hub.url, 'consortium-admin');
}, 300_000);
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const month = (date: Date): string => new Date(date.getTime() + 8 * 3600_000).toISOString().slice(0, 7);
const accepted = (plan: DemoReferralPlan): boolean => plan.type === 'GREEN_CHANNEL' || ['ACCEPTED', 'ARRIVED', 'CANCELLED', 'NO_SHOW', 'COMPLETED', 'CLOSED'].includes(plan.fate);
const completed = (plan: DemoReferralPlan): boolean => plan.fate === 'COMPLETED' || plan.fate === 'CLOSED';

/** What the statistics must say, counted from the plan alone. */
function expected(plans: DemoReferralPlan[]) {
  const rejected = plans.filter((p) => p.fate === 'REJECTED').length;
  const acceptedCount = plans.filter(accepted).length;
  const completedCount = plans.filter(completed).length;
  const followUps = plans.filter((p) => completed(p) && (p.type === 'DOWN' || p.type === 'GREEN_CHANNEL'));
  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 10_000) / 10_000 : null);
  return {
    referrals: plans.length,
    up: plans.filter((p) => p.type !== 'DOWN').length,
    down: plans.filter((p) => p.type === 'DOWN').length,
    rejectionRate: ratio(rejected, rejected + acceptedCount),
    noShowRate: ratio(plans.filter((p) => p.fate === 'NO_SHOW').length, acceptedCount),
    closedLoopRate: ratio(plans.filter((p) => p.fate === 'CLOSED').length, completedCount),
    followUps: followUps.length,
    followUpsWithin14Days: followUps.filter((p) => p.followUpDone).length,
    greenChannel: plans.filter((p) => p.type === 'GREEN_CHANNEL').length,
  };
}

const FIELDS = 'key referrals up down downUpRatio medianMinutesToAccept p90MinutesToAccept rejectionRate noShowRate closedLoopRate followUps followUpsWithin14Days greenChannel greenChannelMedianMinutes greenChannelWithin10Minutes';

describe('referral statistics', () => {
  it('counts per month exactly what the demo plan says, computed in the database', async () => {
    const plans = planDemoReferrals(COUNT);
    const answer = await graphql(hub.url, `{ referralStatistics(from: "2025-11-01", to: "2026-11-30", groupBy: MONTH) { ${FIELDS} } }`, undefined, admin);
    expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
    const rows = answer.data!.referralStatistics as Record<string, unknown>[];
    const months = [...new Set(plans.map((p) => month(p.submittedAt)))].sort();
    expect(rows.map((row) => row.key)).toEqual(months);
    for (const row of rows) {
      const want = expected(plans.filter((p) => month(p.submittedAt) === row.key));
      expect(row, String(row.key)).toMatchObject(want);
    }
    const total = expected(plans);
    const sum = (name: string) => rows.reduce((acc, row) => acc + (row[name] as number), 0);
    expect(sum('up')).toBe(total.up);
    expect(sum('down')).toBe(total.down);
    expect(total.down).toBeGreaterThan(0.3 * COUNT); // about as many down as up
  });

  it('groups by type and by receiving organisation, with accept-time percentiles and the green channel against 10 minutes', async () => {
    const plans = planDemoReferrals(COUNT);
    const byType = (await graphql(hub.url, `{ referralStatistics(from: "2025-11-01", to: "2026-11-30", groupBy: TYPE) { ${FIELDS} } }`, undefined, admin)).data!.referralStatistics as Record<string, unknown>[];
    for (const row of byType) expect(row, String(row.key)).toMatchObject(expected(plans.filter((p) => p.type === row.key)));
    const acceptMinutes = plans.filter((p) => p.type !== 'GREEN_CHANNEL' && accepted(p)).map((p) => p.acceptAfterMinutes).sort((a, b) => a - b);
    const all = (await graphql(hub.url, `{ referralStatistics(from: "2025-11-01", to: "2026-11-30", groupBy: TYPE) { key medianMinutesToAccept } }`, undefined, admin)).data!.referralStatistics as { key: string; medianMinutesToAccept: number | null }[];
    const up = plans.filter((p) => p.type === 'UP' && accepted(p)).map((p) => p.acceptAfterMinutes).sort((a, b) => a - b);
    expect(all.find((row) => row.key === 'UP')?.medianMinutesToAccept).toBe(up[Math.ceil(0.5 * up.length) - 1]);
    expect(acceptMinutes.length).toBeGreaterThan(0);

    const byOrg = (await graphql(hub.url, `{ referralStatistics(from: "2025-11-01", to: "2026-11-30", groupBy: ORGANIZATION) { ${FIELDS} } }`, undefined, admin)).data!.referralStatistics as Record<string, unknown>[];
    for (const row of byOrg) expect(row, String(row.key)).toMatchObject(expected(plans.filter((p) => `Organization/${p.to}` === row.key)));
    const green = plans.filter((p) => p.type === 'GREEN_CHANNEL' && p.fate !== 'SUBMITTED');
    const greenRow = byType.find((row) => row.key === 'GREEN_CHANNEL');
    if (green.length > 0) expect(greenRow?.greenChannelWithin10Minutes).toBe(green.filter((p) => 6 + (p.index % 9) <= 10).length);
  });

  it("gives a member its own organisation's figures only", async () => {
    const member = await token(hub.url, 'his-donghu-county');
    const own = await graphql(hub.url, '{ referralStatistics(from: "2025-11-01", to: "2026-11-30", organization: "org-donghu-county", groupBy: MONTH) { key referrals } }', undefined, member);
    expect(own.errors).toBeUndefined();
    const plans = planDemoReferrals(COUNT).filter((p) => p.from === 'org-donghu-county' || p.to === 'org-donghu-county');
    expect((own.data!.referralStatistics as { referrals: number }[]).reduce((a, r) => a + r.referrals, 0)).toBe(plans.length);
    for (const query of ['organization: "org-jiangnan-provincial", ', '']) {
      const refused = await graphql(hub.url, `{ referralStatistics(from: "2025-11-01", to: "2026-11-30", ${query}groupBy: MONTH) { key } }`, undefined, member);
      expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    const tooLong = await graphql(hub.url, '{ referralStatistics(from: "2020-01-01", to: "2026-11-30", groupBy: MONTH) { key } }', undefined, admin);
    expect(tooLong.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('fills the inboxes of the demo members, with waiting and overdue referrals at the end of the demo year', async () => {
    const plans = planDemoReferrals(COUNT);
    const waiting = plans.filter((p) => (p.fate === 'SUBMITTED' || p.fate === 'UNDER_REVIEW') && p.type !== 'GREEN_CHANNEL');
    expect(waiting.length).toBeGreaterThan(0);
    const target = waiting[0]!.to;
    const inbox = await graphql(hub.url, `{ referralInbox(organization: "${target}", direction: INCOMING, status: [SUBMITTED, UNDER_REVIEW], _count: 50) { items { id status overdue } } }`, undefined, admin);
    expect(inbox.errors).toBeUndefined();
    expect((inbox.data!.referralInbox.items as unknown[]).length).toBe(waiting.filter((p) => p.to === target).length);
    // The demo year ended on DEMO_REFERRALS_END: every waiting referral is overdue now.
    expect(Date.now()).toBeGreaterThan(DEMO_REFERRALS_END.getTime());
    expect((inbox.data!.referralInbox.items as { overdue: boolean }[]).every((item) => item.overdue)).toBe(true);
  });
});

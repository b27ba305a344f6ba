/**
 * Issue 10, item 3: the per-minute rate limit admits exactly its limit under concurrency, across hub
 * instances, without errors of its own, and weighs a costly query by its cost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('ratelimit'));
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

/** Starts a measurement early in a minute, so the window cannot roll over in the middle of it. */
async function atStartOfMinute(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 20_000) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

async function statuses(url: string, accessToken: string, count: number, query = '{ hubStatus { name } }'): Promise<number[]> {
  return Promise.all(Array.from({ length: count }, () => graphql(url, query, undefined, accessToken).then((answer) => answer.status)));
}

describe('item 3: the rate limit', () => {
  it('admits exactly the limit of 32 concurrent requests, refuses the rest with 429, and never answers 500', async () => {
    const limited = await startTestHub(database.name, { AUTH_REQUIRED: 'true', RATE_LIMIT_PER_MINUTE: '10', MAX_CONCURRENT_REQUESTS_PER_CLIENT: '32' });
    try {
      const member = await token(limited.url, 'his-xishan-county');
      await atStartOfMinute();
      const answered = await statuses(limited.url, member, 32);
      expect(answered.filter((status) => status === 200)).toHaveLength(10);
      expect(answered.filter((status) => status === 429)).toHaveLength(22);
    } finally {
      await limited.stop();
    }
  });

  it('is shared exactly by two hub instances on one database', async () => {
    const first = await startTestHub(database.name, { AUTH_REQUIRED: 'true', RATE_LIMIT_PER_MINUTE: '12', MAX_CONCURRENT_REQUESTS_PER_CLIENT: '32' });
    const second = await startTestHub(database.name, { AUTH_REQUIRED: 'true', RATE_LIMIT_PER_MINUTE: '12', MAX_CONCURRENT_REQUESTS_PER_CLIENT: '32' });
    try {
      const member = await token(first.url, 'his-chengnan-community');
      await atStartOfMinute();
      const answered = (await Promise.all([statuses(first.url, member, 16), statuses(second.url, member, 16)])).flat();
      expect(answered.filter((status) => status === 200)).toHaveLength(12);
      expect(answered.filter((status) => status !== 200 && status !== 429)).toEqual([]);
    } finally {
      await first.stop();
      await second.stop();
    }
  });

  it('weighs a costly query by its cost, so aliases do not multiply the budget', async () => {
    // One unit per 5,000 of cost: five aliased lists of up to 1,000 items cost about 5,005, so weigh 2.
    const weighed = await startTestHub(database.name, { AUTH_REQUIRED: 'true', RATE_LIMIT_PER_MINUTE: '5', RATE_LIMIT_COST_UNIT: '5000' });
    try {
      const member = await token(weighed.url, 'his-changtang-township');
      const costly = `{ ${[1, 2, 3, 4, 5].map((i) => `a${i}: ObservationList(code: "http://loinc.org|718-7") { id }`).join(' ')} }`;
      await atStartOfMinute();
      expect((await graphql(weighed.url, costly, undefined, member)).status).toBe(200); // units 1-2
      expect((await graphql(weighed.url, costly, undefined, member)).status).toBe(200); // units 3-4
      const third = await graphql(weighed.url, costly, undefined, member); // needs 2, 1 left
      expect(third.status).toBe(429);
      expect(third.errors?.[0]).toMatchObject({ extensions: { code: 'RATE_LIMITED' } });
      expect(third.errors?.[0]?.message).toMatch(/weighs 2/);
    } finally {
      await weighed.stop();
    }
  });
});

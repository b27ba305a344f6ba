/**
 * Live referral events (issue 12, item 7) over a real WebSocket (graphql-ws): a transition made through one hub
 * instance reaches a subscriber connected to another instance within 2 s, only for its organisation.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Hub } from '../../src/app.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let first: Hub;
let second: Hub;
const clients: Client[] = [];
beforeAll(async () => {
  ({ database, hub: first } = await authenticatedDemoHub('referral_events'));
  second = await startTestHub(database.name, { AUTH_REQUIRED: 'true' });
});
afterAll(async () => {
  for (const client of clients) await client.dispose();
  await second.stop();
  await first.stop();
  await database.drop();
});

interface Received {
  referralId: string;
  status: string;
  version: number;
  at: number;
}

function subscribe(hub: Hub, bearer: string | undefined, organization: string): { received: Received[]; errors: unknown[]; ready: Promise<void> } {
  const received: Received[] = [];
  const errors: unknown[] = [];
  let connected: () => void;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  const client = createClient({
    url: `${hub.url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: bearer ? { authorization: `Bearer ${bearer}` } : {},
    retryAttempts: 0,
    lazy: false,
    on: { connected: () => connected(), closed: (event) => errors.push(event) },
  });
  clients.push(client);
  client.subscribe(
    { query: `subscription { referralEvents(organization: "${organization}") { referralId version status type priority from to at } }` },
    {
      next: (message) => {
        if (message.errors) errors.push(message.errors);
        const event = (message.data as { referralEvents?: Received } | undefined)?.referralEvents;
        if (event) received.push({ ...event, at: Date.now() });
      },
      error: (error) => errors.push(error),
      complete: () => {},
    },
  );
  return { received, errors, ready };
}

describe('referral events', () => {
  it('delivers every transition to the organisation’s subscribers on another instance within 2 s, and nothing of others', async () => {
    const receiving = subscribe(second, await token(second.url, 'his-donghu-county'), 'org-donghu-county');
    const bystander = subscribe(second, await token(second.url, 'his-changtang-township'), 'org-changtang-township');
    await Promise.all([receiving.ready, bystander.ready]);
    await new Promise((resolve) => setTimeout(resolve, 700)); // the subscriptions' first poll

    const sender = await token(first.url, 'his-taolin-township');
    const receiver = await token(first.url, 'his-donghu-county');
    const sentAt: number[] = [];
    sentAt.push(Date.now());
    const submitted = await graphql(first.url, 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '胸闷待查', consent: true } }, sender);
    expect(submitted.errors).toBeUndefined();
    const id = submitted.data!.referralSubmit.id as string;
    sentAt.push(Date.now());
    expect((await graphql(first.url, `mutation { referralStartReview(id: "${id}") { status } }`, undefined, receiver)).errors).toBeUndefined();
    sentAt.push(Date.now());
    expect((await graphql(first.url, `mutation { referralAccept(id: "${id}", department: "心内科") { status } }`, undefined, receiver)).errors).toBeUndefined();

    await expect.poll(() => receiving.received.filter((event) => event.referralId === id).map((event) => event.status), { timeout: 5000, interval: 100 }).toEqual(['SUBMITTED', 'UNDER_REVIEW', 'ACCEPTED']);
    const events = receiving.received.filter((event) => event.referralId === id);
    const delays = events.map((event, index) => event.at - sentAt[index]!);
    console.log('referral event delivery (ms after the mutation was sent):', JSON.stringify(delays));
    for (const delay of delays) expect(delay).toBeLessThan(2000);
    expect(events.map((event) => event.version)).toEqual([1, 2, 3]);
    expect(bystander.received.filter((event) => event.referralId === id)).toEqual([]);
    expect(receiving.errors).toEqual([]);
  });

  it('refuses a connection without a valid token, and another organisation’s feed', async () => {
    const anonymous = subscribe(second, undefined, 'org-donghu-county');
    await expect.poll(() => anonymous.errors.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect((anonymous.errors[0] as { code?: number }).code).toBe(4403);
    const nosy = subscribe(second, await token(second.url, 'his-xishan-county'), 'org-donghu-county');
    await nosy.ready;
    await expect.poll(() => nosy.errors.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(JSON.stringify(nosy.errors[0])).toContain('FORBIDDEN');
  });
});

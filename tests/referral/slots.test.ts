/**
 * Shared bed and appointment slots (issue 12, item 5): a member publishes them, accepting a referral reserves
 * one, and a slot is reserved at most once, even by two acceptances at the same moment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('referral_slots'));
  for (const client of ['his-taolin-township', 'his-donghu-county', 'his-xishan-county', 'consortium-admin']) tokens[client] = await token(hub.url, client);
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const ask = (client: string, query: string, variables?: Record<string, unknown>) => graphql(hub.url, query, variables, tokens[client]);

async function submit(): Promise<string> {
  const answer = await ask('his-taolin-township', 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'PRE_ADMISSION', patient: 'pat-taolin-township-002', to: 'org-donghu-county', reason: '慢阻肺急性加重', consent: true } });
  expect(answer.errors).toBeUndefined();
  return answer.data!.referralSubmit.id;
}

const certificate = 'certificate: { ward: "呼吸内科", validFrom: "2026-12-01", validTo: "2026-12-07" }';

describe('bed and appointment slots', () => {
  it('are published by their own organisation, listed free, and reserved at most once by two acceptances at once', async () => {
    const published = await ask('his-donghu-county', `mutation { referralPublishSlots(organization: "org-donghu-county", kind: BED, department: "呼吸内科", slots: [
      { start: "2026-12-01T08:00:00+08:00", end: "2026-12-02T08:00:00+08:00", note: "呼吸内科 12床" },
      { start: "2026-12-01T08:00:00+08:00", end: "2026-12-02T08:00:00+08:00", note: "呼吸内科 13床" },
      { start: "2026-12-02T08:00:00+08:00", end: "2026-12-03T08:00:00+08:00", note: "呼吸内科 14床" } ]) { id status start comment } }`);
    expect(published.errors, JSON.stringify(published.errors)).toBeUndefined();
    const [first, second, third] = published.data!.referralPublishSlots as { id: string; status: string }[];
    expect(first).toMatchObject({ status: 'free', comment: '呼吸内科 12床' });
    expect((await ask('his-xishan-county', 'mutation { referralPublishSlots(organization: "org-donghu-county", kind: BED, department: "x", slots: [{ start: "2026-12-01T08:00:00+08:00", end: "2026-12-02T08:00:00+08:00" }]) { id } }')).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    // Two referrals, one bed, accepted at the same moment: exactly one gets it.
    const [a, b] = [await submit(), await submit()];
    const answers = await Promise.all([a, b].map((id) => ask('his-donghu-county', `mutation { referralAccept(id: "${id}", slot: "${first!.id}", ${certificate}) { id status appointment slot { id status } } }`)));
    const won = answers.filter((answer) => !answer.errors);
    expect(won).toHaveLength(1);
    expect(answers.find((answer) => answer.errors)!.errors![0]!.extensions?.code).toBe('CONFLICT');
    expect(won[0]!.data!.referralAccept).toMatchObject({ status: 'ACCEPTED', slot: { id: first!.id, status: 'busy' } });
    expect(Date.parse(won[0]!.data!.referralAccept.appointment)).toBe(Date.parse('2026-12-01T08:00:00+08:00'));
    const loser = won[0]!.data!.referralAccept.id === a ? b : a;
    expect((await ask('his-donghu-county', `{ referral(id: "${loser}") { status } }`)).data!.referral.status).toBe('SUBMITTED');

    // The same referral accepted at once with two different beds: one acceptance wins, the other bed stays free.
    const c = await submit();
    const race = await Promise.all([
      ask('his-donghu-county', `mutation { referralAccept(id: "${c}", slot: "${second!.id}", ${certificate}) { status } }`),
      ask('consortium-admin', `mutation { referralAccept(id: "${c}", slot: "${third!.id}", ${certificate}) { status } }`),
    ]);
    expect(race.filter((answer) => !answer.errors)).toHaveLength(1);
    const free = await ask('his-taolin-township', '{ referralSlots(organization: "org-donghu-county") { id status } }');
    expect(free.errors).toBeUndefined();
    expect((free.data!.referralSlots as { id: string }[]).map((slot) => slot.id).sort()).toHaveLength(1);
    const all = await ask('his-taolin-township', '{ referralSlots(organization: "org-donghu-county", all: true) { status } }');
    expect((all.data!.referralSlots as { status: string }[]).map((slot) => slot.status).sort()).toEqual(['busy', 'busy', 'free']);
  });

  it("refuses another organisation's slot and a slot given with an appointment time", async () => {
    const published = await ask('his-xishan-county', 'mutation { referralPublishSlots(organization: "org-xishan-county", kind: APPOINTMENT, department: "心内科门诊", slots: [{ start: "2026-12-05T09:00:00+08:00", end: "2026-12-05T09:30:00+08:00" }]) { id } }');
    const slot = published.data!.referralPublishSlots[0].id as string;
    const id = await submit();
    expect((await ask('his-donghu-county', `mutation { referralAccept(id: "${id}", slot: "${slot}", ${certificate}) { status } }`)).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await ask('his-donghu-county', `mutation { referralAccept(id: "${id}", slot: "${slot}", appointment: "2026-12-05T09:00:00+08:00", ${certificate}) { status } }`)).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await ask('his-donghu-county', `{ referral(id: "${id}") { status version } }`)).data!.referral).toEqual({ status: 'SUBMITTED', version: '1' });
  });
});

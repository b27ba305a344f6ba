/**
 * The smaller limits of the one-door issue: a Bundle nested 10,000 levels is refused with 400 (REST and GraphQL)
 * before anything recurses over it; free text longer than MAX_TEXT_LENGTH is refused by every hub mutation, naming
 * the argument, and nothing is written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('input_limits', { MAX_TEXT_LENGTH: '2000' }));
});
afterAll(async () => {
  await hub?.stop();
  await database?.drop();
});

/** A transaction whose one Patient carries an extension nested `levels` deep. */
function deepBundle(levels: number): string {
  const nested = `${'{"url":"https://x.example/e","extension":['.repeat(levels)}${']}'.repeat(levels)}`;
  return `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","extension":[${nested}]},"request":{"method":"POST","url":"Patient"}}]}`;
}

describe('input limits', () => {
  it('refuse a Bundle nested 10,000 levels with 400, over REST and GraphQL, writing nothing', async () => {
    const admin = await token(hub.url, 'consortium-admin');
    const before = await database.connection.db.collection('Patient').countDocuments({});
    const rest = await fetch(`${hub.url}/fhir`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/fhir+json' }, body: deepBundle(10_000) });
    expect(rest.status).toBe(400);
    expect(((await rest.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    const body = `{"query":"mutation($b: JSON!) { importBundle(bundle: $b) { summary { created } } }","variables":{"b":${deepBundle(10_000)}}}`;
    const viaGraphql = await fetch(`${hub.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body });
    expect(viaGraphql.status).toBe(400);
    // Within the body limits but deeper than a Bundle may be: refused by the importer itself.
    const moderate = await graphql(hub.url, 'mutation($b: JSON!) { importBundle(bundle: $b) { summary { created } } }', { b: JSON.parse(deepBundle(90)) }, admin);
    expect(moderate.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await database.connection.db.collection('Patient').countDocuments({})).toBe(before);
  });

  it('refuse free text longer than MAX_TEXT_LENGTH in the workflows, naming the argument, writing nothing', async () => {
    const township = await token(hub.url, 'his-taolin-township');
    const before = await database.connection.db.collection('Task').countDocuments({});
    const long = await graphql(hub.url, 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '胸'.repeat(350_000), consent: true } }, township);
    expect(long.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringContaining('input.reason') });
    const inline = await graphql(hub.url, `mutation { referralSubmit(input: { type: UP, patient: "pat-taolin-township-001", to: "org-donghu-county", reason: "x", impression: "${'印'.repeat(2001)}", consent: true }) { id } }`, undefined, township);
    expect(inline.errors?.[0]?.message).toContain('input.impression');
    expect(await database.connection.db.collection('Task').countDocuments({})).toBe(before);
    const fine = await graphql(hub.url, 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '胸'.repeat(2000), consent: true } }, township);
    expect(fine.errors).toBeUndefined();
  });
});

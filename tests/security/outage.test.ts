/**
 * Every outage is 503, never 500: under a mixed load of GraphQL reads and writes, workflow transitions, FHIR REST
 * reads, writes and Bundles, token requests and the printable form, the embedded PostgreSQL and then FerretDB are
 * stopped and started again. Every answer is counted by status: none may be 500, a REST refusal is an
 * OperationOutcome, and the hub serves again by itself once the database is back.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type Hub } from '../../src/app.ts';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/database/embedded-database.ts';
import { openDatabase } from '../../src/database/connection.ts';
import { seedDemoClients } from '../../src/demo/clients.ts';
import { seedDemoConsortium } from '../../src/demo/seed.ts';
import { ClientRegistry } from '../../src/auth/clients.ts';
import { createHubStore } from '../../src/hub-store.ts';
import { createLogger } from '../../src/log.ts';
import { startupLimit } from '../../src/database/startup-wait.ts';
import { demoSecret } from '../support/auth.ts';
import { testConfig } from '../support/hub.ts';
import { freePort } from '../support/ports.ts';

let embedded: EmbeddedDatabase;
let hub: Hub;

beforeAll(async () => {
  embedded = await startEmbeddedDatabase({ dataDir: mkdtempSync(join(tmpdir(), 'hub-outage-')), ferretdbPort: await freePort(), postgresPort: await freePort() });
  const setup = openDatabase(embedded.uri, 'outage', 5000, undefined, embedded.postgresUrl ? { url: embedded.postgresUrl } : undefined);
  await setup.connect(startupLimit(60_000));
  const { store, maintenance } = createHubStore(setup.db, { listMaxResults: 1000 });
  await maintenance.ensureIndexes();
  await seedDemoConsortium(store);
  await seedDemoClients(new ClientRegistry(setup.db));
  await setup.close();
  hub = await startHub(testConfig({ MONGODB_DB: 'outage', AUTH_REQUIRED: 'true', DB_TIMEOUT_MS: '2000', REQUEST_TIMEOUT_MS: '6000', RATE_LIMIT_PER_MINUTE: '100000', AUDIT_FLUSH_MS: '100' }), embedded.uri, createLogger('silent'), undefined, embedded.postgresUrl);
  await Promise.all([hub.recovered, hub.indexesReady]);
}, 180_000);
afterAll(async () => {
  await hub?.stop();
  await embedded?.remove();
});

type Work = (token: string) => Promise<Response>;

describe('a database outage under a mixed load', () => {
  it('is answered 503 (REST: an OperationOutcome), never 500, by every kind of request, and the hub recovers by itself', async () => {
    const tokenOf = async (client: string): Promise<string> => {
      const answer = await fetch(`${hub.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=${client}&client_secret=${demoSecret(client)}` });
      return ((await answer.json()) as { access_token: string }).access_token;
    };
    const township = await tokenOf('his-taolin-township');
    const county = await tokenOf('his-donghu-county');
    const gql = (query: string, variables?: unknown): Work => (token) => fetch(`${hub.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
    const rest = (method: string, path: string, body?: unknown): Work => (token) => fetch(`${hub.url}/fhir/${path}`, { method, headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${token}` }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const submit = gql('mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '停机测试', consent: true } });
    const works: { name: string; work: Work; as: string }[] = [
      { name: 'graphql read', work: gql('{ Patient(id: "pat-taolin-township-001") { id name { text } } ObservationList(patient: "pat-taolin-township-001", _count: 5) { id } }'), as: township },
      { name: 'graphql search', work: gql('{ ObservationList(code: "http://loinc.org|14749-6", _count: 20) { id } }'), as: county },
      { name: 'graphql history', work: gql('{ patientHistory(identifier: "43062120021114011X", first: 5) { entries { type } } }'), as: county },
      { name: 'graphql create', work: gql('mutation { ObservationCreate(res: { status: "final", code: { text: "停机测试" }, subject: { reference: "Patient/pat-taolin-township-001" }, performer: [{ reference: "Organization/org-taolin-township" }] }) { id } }'), as: township },
      { name: 'referral submit', work: submit, as: township },
      { name: 'referral inbox', work: gql('{ referralInbox(organization: "org-donghu-county", direction: INCOMING, _count: 5) { items { id } } }'), as: county },
      { name: 'rest read', work: rest('GET', 'Patient/pat-donghu-county-001'), as: county },
      { name: 'rest search', work: rest('GET', 'Observation?patient=Patient/pat-donghu-county-001&_count=10'), as: county },
      { name: 'rest create', work: rest('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: '停机测试' }, subject: { reference: 'Patient/pat-taolin-township-001' }, performer: [{ reference: 'Organization/org-taolin-township' }] }), as: township },
      { name: 'rest transaction', work: rest('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { text: '停机测试' }, subject: { reference: 'Patient/pat-taolin-township-001' }, performer: [{ reference: 'Organization/org-taolin-township' }] }, request: { method: 'POST', url: 'Observation' } }] }), as: township },
      { name: 'token', work: () => fetch(`${hub.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=his-donghu-county&client_secret=${demoSecret('his-donghu-county')}` }), as: county },
      { name: 'form', work: (token) => fetch(`${hub.url}/referrals/task-ref-001/form`, { headers: { authorization: `Bearer ${token}` } }), as: county },
    ];
    const counts = new Map<string, number>();
    const bad: string[] = [];
    let running = true;
    const load = Array.from({ length: 6 }, async (_, worker) => {
      for (let i = worker; running; i++) {
        const { name, work, as } = works[i % works.length]!;
        const answer = await work(as).catch(() => undefined);
        if (!answer) continue; // the connection itself was refused: no answer to count
        const status = answer.status;
        counts.set(`${name} ${status}`, (counts.get(`${name} ${status}`) ?? 0) + 1);
        if (status >= 500) {
          const text = await answer.text();
          if (status !== 503) bad.push(`${name}: ${status} ${text.slice(0, 300)}`);
          else if (name.startsWith('rest') && !text.includes('"OperationOutcome"')) bad.push(`${name}: a 503 that is not an OperationOutcome: ${text.slice(0, 200)}`);
        } else await answer.arrayBuffer();
      }
    });
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      await pause(1500);
      await embedded.postgres!.stop();
      await pause(4000);
      await embedded.restart('postgres');
      await pause(4000);
      await embedded.ferretdb.stop();
      await pause(4000);
      await embedded.restart('ferretdb');
      await pause(6000);
    } finally {
      running = false;
      await Promise.all(load);
    }
    console.log('answers while the database went away and came back:', JSON.stringify(Object.fromEntries([...counts].sort())));
    expect(bad).toEqual([]);
    expect([...counts.keys()].some((key) => key.endsWith(' 503'))).toBe(true);
    // Served again by itself.
    await expect.poll(async () => (await works[0]!.work(township)).status, { timeout: 30_000, interval: 500 }).toBe(200);
    await expect.poll(async () => (await works[6]!.work(county)).status, { timeout: 30_000, interval: 500 }).toBe(200);
  }, 180_000);
});

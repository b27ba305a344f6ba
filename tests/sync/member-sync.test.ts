/**
 * Pulling a member's FHIR server into the hub (issue 14, item 2), against the real database on both sides: a
 * second hub instance (its own database and port) is the county hospital's FHIR server, synced into the hub with
 * fhir-kit-client — Chinese text, updates and deletions between syncs, a sync cut off between a page's write and
 * its checkpoint, two instances at once, a member that is down, and one that fails in the middle of a page run.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Observation, Patient } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { seedDemoConsortium } from '../../src/demo/seed.ts';
import { hubId, MEMBER_ID_SYSTEM } from '../../src/sync/mapping.ts';
import { MemberSync, type SyncOptions } from '../../src/sync/member-sync.ts';
import { freshDatabase, graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let hubDb: TestDatabase;
let memberDb: TestDatabase;
let member: Hub;
let hub: Hub;
const ORG = 'org-donghu-county';
const member$ = { organizationId: ORG, baseUrl: '' };

// The members' servers of these tests run beside the hub on loopback: allowed explicitly (endpoint-policy.ts).
const sync = (options: Partial<SyncOptions> = {}) => new MemberSync(hubDb.store, hubDb.collections, { instance: 'test', secret: 'test-secret-test-secret-test-secret-00', pageSize: 5, policy: { httpHosts: [], allowedHosts: ['127.0.0.1'] }, ...options });

/** The member's resources: its own Organization, 王伟's record there (his national ID links him), an encounter and 12 results. */
async function seedMember(): Promise<void> {
  const store = memberDb.store;
  await store.create({ resourceType: 'Organization', name: '东湖县人民医院 HIS' }, { id: 'donghu-his' });
  await store.create(
    {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:oid:2.16.156.10011.1.3', value: '43062120021114011X' }, { system: 'https://his.donghu.example/mrn', value: 'ZY-0001' }],
      name: [{ text: '王伟', family: '王', given: ['伟'] }],
      gender: 'male',
      birthDate: '2002-11-14',
      managingOrganization: { reference: 'Organization/donghu-his' },
    } as Patient,
    { id: 'p1' },
  );
  await store.create({ resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: 'Patient/p1' }, serviceProvider: { reference: 'Organization/donghu-his' } }, { id: 'e1' });
  for (let n = 1; n <= 12; n++) {
    await store.create(
      {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' }], text: `血红蛋白 第${n}次` },
        subject: { reference: 'Patient/p1' },
        encounter: { reference: `${member.url}/fhir/Encounter/e1` },
        performer: [{ reference: 'Organization/donghu-his' }],
        effectiveDateTime: `2026-10-${String(n).padStart(2, '0')}T08:00:00+08:00`,
        valueQuantity: { value: 120 + n, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
      } as Observation,
      { id: `o${n}` },
    );
  }
}

/** The hub's Observations pulled from the member (their meta.source is on the member's base). */
const synced = async (): Promise<Observation[]> =>
  ((await hubDb.store.search('Observation', { subject: `Patient/${hubId(member$, 'Patient', 'p1')}`, _count: 1000 })).resources as Observation[]).filter((observation) => observation.meta?.source?.startsWith(member$.baseUrl));

beforeAll(async () => {
  hubDb = await freshDatabase('sync-hub');
  await seedDemoConsortium(hubDb.store);
  memberDb = await freshDatabase('sync-member');
  member = await startTestHub(memberDb.name);
  member$.baseUrl = `${member.url}/fhir`;
  await seedMember();
  hub = await startTestHub(hubDb.name, { AUTH_REQUIRED: 'false', SYNC_ALLOWED_HOSTS: '127.0.0.1' });
  await sync().ensureIndexes();
});
afterAll(async () => {
  await hub?.stop();
  await member?.stop();
  await hubDb?.drop();
  await memberDb?.drop();
});

describe('member sync', () => {
  it('registers an endpoint (administrators) and pulls everything with hub ids, sources and links', async () => {
    const registered = await graphql(hub.url, `mutation($base: String!) { registerMemberEndpoint(organization: "${ORG}", baseUrl: $base, types: ["Organization", "Patient", "Encounter", "Observation"], memberOrganizationId: "donghu-his", intervalMinutes: 5) { organization baseUrl types state failures } }`, { base: member$.baseUrl });
    expect(registered.errors, JSON.stringify(registered.errors)).toBeUndefined();
    expect(registered.data!.registerMemberEndpoint).toMatchObject({ organization: ORG, baseUrl: member$.baseUrl, state: 'idle', failures: 0 });

    const counts = await sync().sync(ORG);
    expect(counts).toEqual({ written: 14, deleted: 0, invalid: 0 });
    const patient = (await hubDb.store.read('Patient', hubId(member$, 'Patient', 'p1'))) as Patient;
    expect(patient.name![0]!.text).toBe('王伟');
    expect(patient.meta!.source).toBe(`${member$.baseUrl}/Patient/p1`);
    expect(patient.identifier).toEqual(expect.arrayContaining([{ system: MEMBER_ID_SYSTEM(ORG), value: 'Patient/p1' }]));
    expect(patient.managingOrganization!.reference).toBe(`Organization/${ORG}`);
    const observation = (await hubDb.store.read('Observation', hubId(member$, 'Observation', 'o3'))) as Observation;
    expect(observation.code.text).toBe('血红蛋白 第3次');
    expect(observation.subject!.reference).toBe(`Patient/${patient.id}`);
    expect(observation.encounter!.reference).toBe(`Encounter/${hubId(member$, 'Encounter', 'e1')}`);
    // Linked to 王伟's other records by his national ID, as any import does.
    const person = await graphql(hub.url, `{ person(patient: "${patient.id}") { records { id } } }`);
    expect(person.errors, JSON.stringify(person.errors)).toBeUndefined();
    expect(person.data!.person.records.map((record: { id: string }) => record.id)).toEqual(expect.arrayContaining([patient.id, 'pat-donghu-county-001']));

    const status = await graphql(hub.url, `{ memberSyncStatus { organization state lastSuccessAt lastError failures written lagSeconds } }`);
    expect(status.data!.memberSyncStatus[0]).toMatchObject({ organization: ORG, state: 'idle', lastError: null, failures: 0, written: 14 });
    expect(status.data!.memberSyncStatus[0].lagSeconds).toBeLessThan(60);
  });

  it('pulls only what changed: nothing twice, updates and deletions follow', async () => {
    expect(await sync().sync(ORG)).toEqual({ written: 0, deleted: 0, invalid: 0 });
    const o5 = (await memberDb.store.read('Observation', 'o5')) as Observation;
    await memberDb.store.update({ ...o5, code: { ...o5.code, text: '血红蛋白 第5次（复核）' } });
    await memberDb.store.delete('Observation', 'o6');
    await memberDb.store.create({ ...o5, id: undefined, code: { ...o5.code, text: '血红蛋白 新' }, meta: undefined } as unknown as Observation, { id: 'o13' });
    expect(await sync().sync(ORG)).toEqual({ written: 2, deleted: 1, invalid: 0 });
    expect(((await hubDb.store.read('Observation', hubId(member$, 'Observation', 'o5'))) as Observation).code.text).toBe('血红蛋白 第5次（复核）');
    await expect(hubDb.store.read('Observation', hubId(member$, 'Observation', 'o6'))).rejects.toMatchObject({ code: 'GONE' });
    expect((await synced()).length).toBe(12);
  });

  it('resumes a sync cut off after a page was written and before its checkpoint, without loss or duplicates', async () => {
    for (let n = 14; n <= 25; n++) await memberDb.store.create({ resourceType: 'Observation', status: 'final', code: { text: `新结果 ${n}` }, subject: { reference: 'Patient/p1' } } as Observation, { id: `o${n}` });
    let pages = 0;
    const crashing = sync({
      afterPageWritten: () => {
        if (++pages === 2) throw new Error('killed');
      },
    });
    await expect(crashing.sync(ORG)).rejects.toThrow(/killed/);
    const status = (await sync().status())[0]!.status!;
    expect(status).toMatchObject({ state: 'idle', failures: 1 });
    expect(status.lastError).toContain('killed');
    // Retried (the backoff is for the background runner; an explicit run goes now).
    const counts = await sync().sync(ORG);
    expect(counts!.written).toBeLessThanOrEqual(12);
    const mine = await synced();
    const memberCount = (await memberDb.store.search('Observation', { _count: 1000 })).resources.length;
    expect(mine.length).toBe(memberCount);
    expect(new Set(mine.map((observation) => observation.id)).size).toBe(mine.length);
  });

  it('runs due members in the background runner, and syncMemberNow makes one due', async () => {
    const now = await graphql(hub.url, `mutation { syncMemberNow(organization: "${ORG}") { organization nextRunAt } }`);
    expect(now.errors, JSON.stringify(now.errors)).toBeUndefined();
    expect(Date.parse(now.data!.syncMemberNow.nextRunAt)).toBeLessThanOrEqual(Date.now());
    expect(await sync({ instance: 'runner' }).runDue()).toBeGreaterThanOrEqual(1);
    expect((await sync().status()).find((item) => item.organization === ORG)!.status!.nextRunAt.getTime()).toBeGreaterThan(Date.now() + 60_000);
  });

  it('lets one instance sync a member at a time', async () => {
    const [a, b] = await Promise.all([sync({ instance: 'a' }).sync(ORG), sync({ instance: 'b' }).sync(ORG)]);
    expect([a, b].filter((result) => result === null)).toHaveLength(1);
  });

  it('reports a member that is down and writes nothing', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await sync().register({ organization: 'org-xishan-county', baseUrl: `http://127.0.0.1:${port}/fhir`, types: ['Patient'] });
    await expect(sync({ requestTimeoutMs: 2000 }).sync('org-xishan-county')).rejects.toThrow();
    const status = (await sync().status()).find((item) => item.organization === 'org-xishan-county')!.status!;
    expect(status).toMatchObject({ state: 'idle', failures: 1, written: 0 });
    expect(status.nextRunAt.getTime()).toBeGreaterThan(Date.now() + 20_000);
  });

  it('keeps the pages before a 500 and goes on from there once the member is well again; garbage is an error', async () => {
    let failSecondPage = true;
    let garbage = false;
    const patients = Array.from({ length: 4 }, (_, i) => ({ resourceType: 'Patient', id: `x${i}`, name: [{ text: `张${i}` }], meta: { lastUpdated: `2026-11-0${i + 1}T00:00:00Z` } }));
    const server: Server = createServer((request, response) => {
      const url = new URL(request.url!, 'http://x');
      const send = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/fhir+json' });
        response.end(JSON.stringify(body));
      };
      if (url.pathname.endsWith('/_history')) return send(200, { resourceType: 'Bundle', type: 'history', entry: [] });
      if (garbage) return send(200, { hello: 'world' });
      if (url.searchParams.get('page') === '2') return failSecondPage ? send(500, { resourceType: 'OperationOutcome', issue: [] }) : send(200, { resourceType: 'Bundle', type: 'searchset', entry: patients.slice(2).map((resource) => ({ resource })) });
      const since = url.searchParams.get('_lastUpdated')?.slice(2);
      const rest = patients.filter((patient) => !since || patient.meta.lastUpdated >= since);
      if (since) return send(200, { resourceType: 'Bundle', type: 'searchset', entry: rest.map((resource) => ({ resource })) });
      send(200, { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'next', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir/Patient?page=2` }], entry: patients.slice(0, 2).map((resource) => ({ resource })) });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
      await sync().register({ organization: 'org-baiyangtian-township', baseUrl: base, types: ['Patient'] });
      const flaky = { organizationId: 'org-baiyangtian-township', baseUrl: base };
      await expect(sync().sync('org-baiyangtian-township')).rejects.toThrow(/HTTP 500/);
      expect(((await hubDb.store.read('Patient', hubId(flaky, 'Patient', 'x1'))) as Patient).name![0]!.text).toBe('张1');
      await expect(hubDb.store.read('Patient', hubId(flaky, 'Patient', 'x2'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
      failSecondPage = false;
      expect(await sync().sync('org-baiyangtian-township')).toMatchObject({ written: 2, invalid: 0 });
      expect(((await hubDb.store.read('Patient', hubId(flaky, 'Patient', 'x3'))) as Patient).name![0]!.text).toBe('张3');
      garbage = true;
      await expect(sync().sync('org-baiyangtian-township')).rejects.toThrow(/not a Bundle/);
      expect((await sync().status()).find((item) => item.organization === 'org-baiyangtian-township')!.status!.lastError).toContain('not a Bundle');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

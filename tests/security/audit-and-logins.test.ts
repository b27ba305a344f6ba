/**
 * Issue 10, items 4, 6 and 7: what a resident's access log shows, refusals and failed logins in aggregate
 * with throttling, and tokens bound to the registration they were issued under.
 */
import type { AuditEvent, Bundle } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import type { ClientRegistry } from '../../src/auth/clients.ts';
import { authenticatedDemoHub, token, tokenResponse } from '../support/auth.ts';
import { storedResources } from '../support/commands.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let registry: ClientRegistry;
beforeAll(async () => {
  ({ database, hub, registry } = await authenticatedDemoHub('auditlogins'));
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const A = '43062120021114011X'; // 王伟, records pat-taolin-township-001, pat-donghu-county-001, pat-jiangnan-provincial-001
const B = '430621196501180188'; // another resident
const nid = 'urn:oid:2.16.156.10011.1.3';

const storedEvents = async (): Promise<AuditEvent[]> =>
  storedResources<AuditEvent>(database.connection.db, 'AuditEvent');

async function flushed(): Promise<void> {
  await hub.auditTrail.flush();
}

describe('item 4: a resident’s access log', () => {
  it('shows who, when, which organisation, which of its records and the operation name, never another person’s data', async () => {
    const member = await token(hub.url, 'his-donghu-county');
    const read = await graphql(hub.url, `query FindTwo { PatientList(identifier: "${nid}|${A},${nid}|${B}") { id } }`, undefined, member);
    expect(read.data?.PatientList.length).toBeGreaterThanOrEqual(6);
    await flushed();

    const resident = await token(hub.url, 'county-health-app', { patient_identifier: A });
    const log = await graphql(hub.url, `{ AuditEventList(patient: "Patient/pat-donghu-county-001") { json } }`, undefined, resident);
    expect(log.errors).toBeUndefined();
    const events = log.data!.AuditEventList.map((e: { json: AuditEvent }) => e.json) as AuditEvent[];
    const mine = events.find((event) => event.entity?.some((entity) => entity.description?.startsWith('FindTwo')));
    expect(mine).toBeDefined();
    expect(mine!.agent?.[0]?.who?.identifier?.value).toBe('his-donghu-county');
    expect(mine!.agent?.[1]?.who?.reference).toBe('Organization/org-donghu-county');
    expect(mine!.entity?.[0]?.what?.reference).toBe('Patient/pat-donghu-county-001');
    const text = JSON.stringify(events);
    expect(text).not.toContain(B);
    expect(text).not.toContain(Buffer.from(B).toString('base64').slice(0, 16));
    expect(events.every((event) => event.entity?.every((entity) => entity.query === undefined))).toBe(true);

    // Administrators keep the whole query text.
    const admin = await token(hub.url, 'consortium-admin');
    const full = await graphql(hub.url, `{ AuditEventList(patient: "Patient/pat-donghu-county-001") { entity { query description } } }`, undefined, admin);
    const queries = full.data!.AuditEventList.flatMap((e: { entity: { query?: string }[] }) => e.entity.map((entity) => (entity.query ? Buffer.from(entity.query, 'base64').toString('utf8') : '')));
    expect(queries.some((query: string) => query.includes(B))).toBe(true);
  });
});

describe('item 6: refusals and failed logins', () => {
  it('records 300 requests with a bad token as one audit event and a count, not 300 events', async () => {
    const before = (await storedEvents()).filter((event) => event.outcome === '4' && event.outcomeDesc?.startsWith('UNAUTHENTICATED')).length;
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(Array.from({ length: 30 }, () => graphql(hub.url, '{ hubStatus { name } }', undefined, 'x.y.z').then((answer) => expect(answer.status).toBe(401))));
    }
    await flushed();
    const after = (await storedEvents()).filter((event) => event.outcome === '4' && event.outcomeDesc?.startsWith('UNAUTHENTICATED'));
    expect(after.length - before).toBeLessThanOrEqual(1);
    expect(after.at(-1)?.agent?.[0]?.network?.address).toBe('127.0.0.1');
    // ...and an exact count of them, shared by instances.
    const counted = await database.connection.db.collection('refusal_counts').countDocuments({ k: { $regex: '^UNAUTHENTICATED\\|source:127\\.0\\.0\\.1\\|' } });
    expect(counted).toBeGreaterThanOrEqual(300);
  });

  it('throttles a client id after repeated wrong secrets, without slowing another client’s login', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(i / 32) * 20));
        return (await tokenResponse(hub.url, 'his-baiyangtian-township', `wrong-secret-${i}-wrong-secret`)).status;
      }),
    );
    const wrong = attempts.filter((status) => status === 401).length;
    expect(wrong).toBeGreaterThan(0);
    expect(wrong).toBeLessThanOrEqual(10);
    expect(attempts.filter((status) => status === 429)).toHaveLength(200 - wrong);
    // The right secret is refused too for the rest of the window: the client id is throttled, not guessed.
    expect((await tokenResponse(hub.url, 'his-baiyangtian-township', 'demo-secret-his-baiyangtian-township')).status).toBe(429);
    // Another client logs in at once.
    const started = performance.now();
    expect((await tokenResponse(hub.url, 'his-xishan-county', 'demo-secret-his-xishan-county')).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1000);
    await flushed();
    const loginEvents = (await storedEvents()).filter((event) => event.outcomeDesc?.startsWith('TOKEN_REFUSED (client:his-baiyangtian-township)'));
    expect(loginEvents).toHaveLength(1);
  });

  it('names the client in the audit event of a 429', async () => {
    const limited = await (await import('../support/hub.ts')).startTestHub(database.name, { AUTH_REQUIRED: 'true', RATE_LIMIT_PER_MINUTE: '1', AUDIT_FLUSH_MS: '50' });
    try {
      const member = await token(limited.url, 'his-changtang-township');
      const answers = await Promise.all([1, 2, 3].map(() => graphql(limited.url, '{ hubStatus { name } }', undefined, member)));
      expect(answers.some((answer) => answer.status === 429)).toBe(true);
      await limited.auditTrail.flush();
      const event = (await storedEvents()).find((e) => e.outcomeDesc?.startsWith('RATE_LIMITED (client:his-changtang-township)'));
      expect(event?.agent?.[0]?.who?.identifier?.value).toBe('his-changtang-township');
    } finally {
      await limited.stop();
    }
  });
});

describe('item 7: tokens and registrations', () => {
  it('does not bring an old token back when a revoked client id is registered again, and never exceeds current scopes', async () => {
    const { secret } = await registry.register({ id: 'reused-client', name: '旧客户端', kind: 'admin', scopes: 'system/*.rs' });
    const old = (await tokenResponse(hub.url, 'reused-client', secret)).body.access_token as string;
    expect((await graphql(hub.url, '{ PatientList(_count: 1) { id } }', undefined, old)).status).toBe(200);
    await registry.revoke('reused-client');
    expect((await graphql(hub.url, '{ PatientList(_count: 1) { id } }', undefined, old)).status).toBe(401);
    const again = await registry.register({ id: 'reused-client', name: '新客户端', kind: 'admin', scopes: 'system/Organization.rs' });
    const stale = await graphql(hub.url, '{ PatientList(_count: 1) { id } }', undefined, old);
    expect(stale.status).toBe(401);
    expect(stale.errors?.[0]?.message).toMatch(/earlier registration/);
    const fresh = (await tokenResponse(hub.url, 'reused-client', again.secret)).body.access_token as string;
    expect((await graphql(hub.url, '{ OrganizationList(_count: 1) { id } }', undefined, fresh)).status).toBe(200);
    expect((await graphql(hub.url, '{ PatientList(_count: 1) { id } }', undefined, fresh)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

export type { Bundle };

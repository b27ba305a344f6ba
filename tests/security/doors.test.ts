/**
 * One request pipeline for every door (src/request/pipeline.ts): the same hostile inputs sent through GraphQL over
 * HTTP, FHIR REST (and its $graphql), the printable form and GraphQL over WebSocket get the same answers — a
 * revoked client is refused everywhere and its open subscription ends within seconds, the alias, depth, cost and
 * nesting limits hold over the socket as over HTTP, the rate limit counts operations sent over the socket, and
 * every operation over the socket (reads and a mutation) leaves its audit record.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Hub } from '../../src/app.ts';
import type { ClientRegistry } from '../../src/auth/clients.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let registry: ClientRegistry;
const sockets: Client[] = [];

beforeAll(async () => {
  ({ database, hub, registry } = await authenticatedDemoHub('doors', { SOCKET_RECHECK_MS: '300', AUDIT_FLUSH_MS: '50' }));
});
afterAll(async () => {
  for (const socket of sockets) await socket.dispose();
  await hub?.stop();
  await database?.drop();
});

function connect(bearer: string): { client: Client; closed: { code: number; reason: string }[] } {
  const closed: { code: number; reason: string }[] = [];
  const client = createClient({
    url: `${hub.url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${bearer}` },
    retryAttempts: 0,
    lazy: false,
    on: { closed: (event) => closed.push({ code: (event as { code: number }).code, reason: String((event as { reason?: string }).reason ?? '') }) },
  });
  sockets.push(client);
  return { client, closed };
}

/** The first answer of an operation sent over the socket: its data or its errors. */
function overSocket(client: Client, query: string): Promise<{ data?: Record<string, any> | null; errors?: { message: string; extensions?: { code?: string } }[] }> {
  return new Promise((resolve) => {
    let settled = false;
    client.subscribe(
      { query },
      {
        next: (message) => {
          if (settled) return;
          settled = true;
          resolve(message as never);
        },
        error: (error) => {
          if (settled) return;
          settled = true;
          resolve({ errors: Array.isArray(error) ? error : [{ message: String((error as { reason?: string }).reason ?? error) }] });
        },
        complete: () => {},
      },
    );
  });
}

const aliases = (n: number): string => `{ ${Array.from({ length: n }, (_, i) => `a${i}: PatientList(_count: 1000) { id }`).join(' ')} }`;
const deep = (n: number): string => `{ Patient(id: "pat-taolin-township-001") ${'{ managingOrganization { resource { ... on Organization '.repeat(n)}{ id }${' } } }'.repeat(n)} }`;
const nested = (n: number): string => `${'{ a '.repeat(n)}${'}'.repeat(n)}`;
const costly = '{ PatientList(_count: 1000) { EncounterList(_reference: patient, _count: 1000) { ObservationList(_reference: encounter, _count: 1000) { id } } } }';

describe('every door', () => {
  it('refuses the same oversized documents over HTTP, FHIR $graphql and WebSocket, with the same codes', async () => {
    const admin = await token(hub.url, 'consortium-admin');
    const { client } = connect(admin);
    for (const [label, query, reason] of [
      ['200 aliases', aliases(200), 'TOO_MANY_ALIASES'],
      ['too deep', deep(8), 'QUERY_TOO_DEEP'],
      ['too costly', costly, 'QUERY_TOO_COSTLY'],
    ] as const) {
      const http = await graphql(hub.url, query, undefined, admin);
      expect(http.errors?.[0]?.extensions, `${label} over HTTP`).toMatchObject({ code: 'BAD_USER_INPUT', reason });
      const rest = await fetch(`${hub.url}/fhir/$graphql`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
      expect(((await rest.json()) as { errors?: { extensions?: { reason?: string } }[] }).errors?.[0]?.extensions?.reason, `${label} over FHIR $graphql`).toBe(reason);
      const socket = await overSocket(client, query);
      expect(socket.errors?.[0]?.extensions?.code, `${label} over WebSocket: ${JSON.stringify(socket.errors)}`).toBe('BAD_USER_INPUT');
      expect(socket.data ?? null).toBeNull();
    }
    // A document nested 9,000 levels: refused by a limit before anything recurses over it, at every door.
    const http = await graphql(hub.url, nested(9000), undefined, admin);
    expect(http.status).toBe(400);
    expect(http.errors?.[0]?.message).not.toMatch(/call stack/);
    const socket = await overSocket(client, nested(9000));
    expect(socket.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(socket.errors?.[0]?.message).not.toMatch(/call stack/);
  });

  it('audits operations sent over the socket, reads and a mutation alike', async () => {
    const admin = await token(hub.url, 'consortium-admin');
    const { client } = connect(admin);
    const read = await overSocket(client, '{ Patient(id: "pat-taolin-township-001") { id } }');
    expect(read.data?.Patient).toEqual({ id: 'pat-taolin-township-001' });
    const referral = await graphql(hub.url, 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '胸闷', consent: true } }, await token(hub.url, 'his-taolin-township'));
    const cancelled = await overSocket(client, `mutation SocketCancel { referralCancel(id: "${referral.data!.referralSubmit.id}", reason: "患者改期") { status } }`);
    expect(cancelled.data?.referralCancel).toEqual({ status: 'CANCELLED' });
    await hub.auditTrail.flush();
    const events = await graphql(hub.url, '{ AuditEventList(patient: "Patient/pat-taolin-township-001", _count: 1000) { entity { description } agent { who { display } } } }', undefined, admin);
    const descriptions = JSON.stringify(events.data);
    expect(descriptions).toContain('SocketCancel');
  });

  it('counts operations over the socket against the client\'s rate limit', async () => {
    const limited = await authenticatedDemoHub('doors_rate', { RATE_LIMIT_PER_MINUTE: '5' });
    try {
      const bearer = await token(limited.hub.url, 'his-donghu-county');
      const client = createClient({ url: `${limited.hub.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${bearer}` }, retryAttempts: 0, lazy: false });
      const codes: string[] = [];
      for (let i = 0; i < 8; i++) {
        const answer = await overSocket(client, '{ Organization(id: "org-donghu-county") { id } }');
        codes.push(answer.errors?.[0]?.extensions?.code ?? 'OK');
      }
      await client.dispose();
      expect(codes).toContain('RATE_LIMITED');
      expect(codes.filter((code) => code === 'OK').length).toBeLessThanOrEqual(4); // the connection counted as one
      expect((await graphql(limited.hub.url, '{ Organization(id: "org-donghu-county") { id } }', undefined, bearer)).errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    } finally {
      await limited.hub.stop();
      await limited.database.drop();
    }
  });

  it('refuses a revoked client at every door, and ends its open subscription within seconds', async () => {
    await registry.register({ id: 'doors-his', name: '门测试 HIS', kind: 'member', organization: 'org-donghu-county', scopes: 'system/*.cruds', secret: 'doors-secret-doors-secret-doors-secret' });
    const response = await fetch(`${hub.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=doors-his&client_secret=doors-secret-doors-secret-doors-secret' });
    const bearer = ((await response.json()) as { access_token: string }).access_token;
    const referral = await graphql(hub.url, 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '胸闷', consent: true } }, await token(hub.url, 'his-taolin-township'));
    const { client, closed } = connect(bearer);
    const events: unknown[] = [];
    client.subscribe({ query: 'subscription { referralEvents(organization: "org-donghu-county") { referralId status } }' }, { next: (message) => events.push(message), error: () => {}, complete: () => {} });
    expect((await overSocket(client, '{ Organization(id: "org-donghu-county") { id } }')).data?.Organization).toEqual({ id: 'org-donghu-county' });

    await registry.revoke('doors-his');
    const revokedAt = Date.now();
    await expect.poll(() => closed.length, { timeout: 5000, interval: 50 }).toBeGreaterThan(0);
    expect(closed[0]!.code).toBe(4403);
    expect(Date.now() - revokedAt).toBeLessThan(3000);
    expect((await graphql(hub.url, '{ Organization(id: "org-donghu-county") { id } }', undefined, bearer)).status).toBe(401);
    expect((await fetch(`${hub.url}/fhir/Organization/org-donghu-county`, { headers: { authorization: `Bearer ${bearer}` } })).status).toBe(401);
    expect((await fetch(`${hub.url}/referrals/${referral.data!.referralSubmit.id}/form`, { headers: { authorization: `Bearer ${bearer}` } })).status).toBe(401);
    const again = connect(bearer);
    await expect.poll(() => again.closed.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(again.closed[0]!.code).toBe(4403);
  });
});

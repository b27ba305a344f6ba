/**
 * Member endpoints cannot be turned against the hub (src/sync/endpoint-policy.ts): registering loopback, link-local,
 * the hub itself, its embedded databases, `file:` or plain http is refused with a message that echoes nothing; a
 * member's `next` link that leaves its registered server, or a redirect, is not followed, so the member's
 * credentials reach its own server only.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { MemberSync } from '../../src/sync/member-sync.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, postgresUrl, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let admin: string;
const servers: Server[] = [];

/** A loopback HTTP server that answers every request with `answer` and remembers what it was asked. */
async function server(answer: (request: IncomingMessage, port: number) => { status: number; headers?: Record<string, string>; body?: unknown }): Promise<{ port: number; asked: { url: string; authorization?: string }[] }> {
  const asked: { url: string; authorization?: string }[] = [];
  const created = createServer((request, response) => {
    asked.push({ url: request.url ?? '', ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}) });
    const reply = answer(request, port);
    response.writeHead(reply.status, { 'content-type': 'application/fhir+json', ...reply.headers });
    response.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
  });
  servers.push(created);
  await new Promise<void>((resolve) => created.listen(0, '127.0.0.1', () => resolve()));
  const port = (created.address() as { port: number }).port;
  return { port, asked };
}

beforeAll(async () => {
  // his.donghu.example stands for a member's server this offline test cannot resolve: allowed by name.
  ({ database, hub } = await authenticatedDemoHub('endpoint_policy', { SYNC_ALLOWED_HOSTS: 'his.donghu.example' }));
  admin = await token(hub.url, 'consortium-admin');
});
afterAll(async () => {
  for (const created of servers) created.close();
  await hub?.stop();
  await database?.drop();
});

const register = (baseUrl: string, extra = '') =>
  graphql(hub.url, `mutation($base: String!) { registerMemberEndpoint(organization: "org-donghu-county", baseUrl: $base${extra}) { organization } }`, { base: baseUrl }, admin);

describe('member endpoints', () => {
  it('refuse the hub, its databases, loopback, link-local, file: and plain http, echoing nothing', async () => {
    // The embedded PostgreSQL of the run (when the run has one) and FerretDB's default port.
    const postgres = postgresUrl() ? new URL(postgresUrl()!).port : '27019';
    const ferretdb = '27018';
    const hubPort = new URL(hub.url).port;
    for (const url of [
      `https://127.0.0.1:${postgres}/fhir`,
      `https://127.0.0.1:${ferretdb}/`,
      `https://127.0.0.1:${hubPort}/fhir`,
      `https://localhost:${hubPort}/fhir`,
      'https://[::1]/fhir',
      'https://169.254.169.254/latest/meta-data',
      'https://0.0.0.0/fhir',
      `http://127.0.0.1:${hubPort}/fhir`,
      'http://his.xishan.example/fhir',
      'file:///etc/passwd',
      'https://hub:secret@his.donghu.example/fhir',
      'https://his.unresolvable.invalid/fhir',
    ]) {
      const answer = await register(url);
      expect(answer.errors?.[0]?.extensions?.code, url).toBe('BAD_USER_INPUT');
      expect(answer.errors?.[0]?.message, url).not.toMatch(/ECONNREFUSED|EHOSTUNREACH|socket|HTTP\/1/);
    }
    const token = await register('https://his.donghu.example/fhir', `, auth: CLIENT_CREDENTIALS, tokenUrl: "https://127.0.0.1:${hubPort}/oauth/token", clientId: "hub", clientSecret: "s"`);
    expect(token.errors?.[0]?.message).toMatch(/tokenUrl/);
    expect((await graphql(hub.url, '{ memberSyncStatus { organization } }', undefined, admin)).data!.memberSyncStatus).toEqual([]);
  });

  it("do not follow a next link off the member's server, nor a redirect, so its credentials go nowhere else", async () => {
    const trap = await server(() => ({ status: 200, body: { resourceType: 'Bundle', type: 'searchset', entry: [] } }));
    const member = await server((request) =>
      request.url?.startsWith('/fhir/Patient?')
        ? { status: 200, body: { resourceType: 'Bundle', type: 'searchset', entry: [], link: [{ relation: 'next', url: `http://127.0.0.1:${trap.port}/fhir/Patient?page=2` }] } }
        : { status: 302, headers: { location: `http://127.0.0.1:${trap.port}/fhir/Encounter` } },
    );
    // Only the member's own host:port is allowed, as an administrator would for a server beside the hub.
    const sync = new MemberSync(database.store, database.collections, { instance: 'policy-test', secret: 'test-secret-test-secret-test-secret-00', policy: { httpHosts: [], allowedHosts: [`127.0.0.1:${member.port}`] } });
    await sync.ensureIndexes();
    await sync.register({ organization: 'org-xishan-county', baseUrl: `http://127.0.0.1:${member.port}/fhir`, auth: 'BEARER', bearerToken: 'member-only-token', types: ['Patient'] });
    await expect(sync.sync('org-xishan-county')).rejects.toThrow(/leaves the member's registered server/);
    await sync.register({ organization: 'org-xishan-county', baseUrl: `http://127.0.0.1:${member.port}/fhir`, auth: 'BEARER', bearerToken: 'member-only-token', types: ['Encounter'] });
    await expect(sync.sync('org-xishan-county')).rejects.toThrow(/could not be reached/);
    expect(member.asked.every((request) => request.authorization === 'Bearer member-only-token')).toBe(true);
    expect(trap.asked).toEqual([]);
  });
});

/**
 * Hostile input against the real server: operator injection in arguments and inside FHIR JSON, oversized and
 * deeply nested documents and queries, invalid UTF-8 and control characters, very long id lists, malformed,
 * expired, tampered and foreign tokens, and tokens of revoked clients. Each is refused with a clear error,
 * nothing is written, and no error message leaks internals.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import type { ClientRegistry } from '../../src/auth/clients.ts';
import { DEMO_TOKEN_SECRET } from '../../src/config.ts';
import { graphql, startTestHub, type GraphQLResponse, type TestDatabase } from '../support/hub.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';

let database: TestDatabase;
let hub: Hub;
let registry: ClientRegistry;
let admin: string;
const leaks = /mongo|ferret|stack|node_modules|\.ts:\d|secret|TypeError|RangeError|\bat [A-Za-z]+ \(/i;
const counts = async (): Promise<number[]> =>
  Promise.all(['Patient', 'Observation', 'Organization'].map((type) => database.connection.db.collection(type).countDocuments({})));
let before: number[];

beforeAll(async () => {
  ({ database, hub, registry } = await authenticatedDemoHub('hostile', { MAX_BODY_BYTES: '262144', MAX_QUERY_DEPTH: '10', MAX_QUERY_COST: '50000' }));
  admin = await token(hub.url, 'consortium-admin');
  before = await counts();
});
afterAll(async () => {
  expect(await counts()).toEqual(before);
  await hub.stop();
  await database.drop();
});

function refused(result: GraphQLResponse, code = 'BAD_USER_INPUT'): void {
  expect(result.errors?.[0]?.extensions?.code, JSON.stringify(result).slice(0, 300)).toBe(code);
  for (const error of result.errors ?? []) expect(error.message).not.toMatch(leaks);
}
const post = async (body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> => {
  const response = await fetch(`${hub.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, ...headers }, body });
  return { status: response.status, text: await response.text() };
};
const importBundle = (resources: unknown[]) =>
  graphql(hub.url, `mutation($b: JSON!) { importBundle(bundle: $b) { summary { created failed } } }`, {
    b: { resourceType: 'Bundle', type: 'transaction', entry: resources.map((resource, i) => ({ resource, request: { method: 'PUT', url: `Patient/hostile-${i}` } })) },
  }, admin);

describe('operator injection', () => {
  it('treats operators in arguments as text or refuses them', async () => {
    refused(await graphql(hub.url, `query($id: String) { PatientList(identifier: $id) { id } }`, { id: { $gt: '' } }, admin));
    refused(await graphql(hub.url, `query($id: ID!) { Patient(id: $id) { id } }`, { id: { $ne: null } }, admin));
    const asText = await graphql(hub.url, `{ PatientList(identifier: "{\\"$gt\\": \\"\\"}") { id } name: PatientList(name: "{\\"$regex\\": \\".*\\"}") { id } }`, undefined, admin);
    expect(asText.errors).toBeUndefined();
    expect(asText.data).toEqual({ PatientList: [], name: [] });
    refused(await graphql(hub.url, `{ PatientList(_id: "{\\"$ne\\":null}") { id } }`, undefined, admin));
    refused(await graphql(hub.url, `{ PatientList(_and: ["name[$ne]=x"]) { id } }`, undefined, admin));
    refused(await graphql(hub.url, `{ ObservationConnection(_cursor: "${Buffer.from(JSON.stringify({ a: { $where: '1' }, n: 5, w: 'a', o: 0 })).toString('base64url')}") { count } }`, undefined, admin));
  });

  it('refuses operators, dotted and dollar keys inside FHIR JSON, and writes nothing', async () => {
    refused(await graphql(hub.url, `mutation($res: PatientInput!) { PatientCreate(res: $res) { id } }`, { res: { name: [{ text: { $gt: '' } }] } }, admin));
    refused(await importBundle([{ resourceType: 'Patient', id: 'hostile-0', name: [{ text: { $gt: '' } }] }]));
    refused(await importBundle([{ resourceType: 'Patient', id: 'hostile-0', $where: 'sleep(1000)' }]));
    refused(await importBundle([{ resourceType: 'Patient', id: 'hostile-0', 'name.text': '王伟' }]));
    refused(await importBundle([{ resourceType: 'Patient', id: { $gt: '' } }]));
    refused(await importBundle([{ resourceType: { $ne: 'x' } }]));
  });
});

describe('size and shape', () => {
  it('refuses oversized bodies, deep documents, deep and costly queries, huge pages and long id lists', async () => {
    const big = await post(JSON.stringify({ query: `{ hubStatus { name } }`, variables: { pad: 'x'.repeat(300_000) } }));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.text).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');

    let nested: unknown = '王伟';
    for (let i = 0; i < 200; i++) nested = { extension: [{ url: 'http://example.cn/x', extension: [nested] }] };
    refused(await importBundle([{ resourceType: 'Patient', id: 'hostile-0', name: [nested] }]));
    const deepJson = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const deep = await post(`{"query":"mutation($b: JSON!) { importBundle(bundle: $b) { type } }","variables":{"b":${deepJson}}}`);
    expect(deep.status).toBeLessThan(500);
    expect(deep.text).toMatch(/BAD_USER_INPUT/);

    let query = 'id';
    for (let i = 0; i < 12; i++) query = `managingOrganization { resource { ... on Organization { id partOf { resource { ... on Organization { ${query} } } } } } }`;
    const tooDeep = await graphql(hub.url, `{ PatientList(_count: 1) { ${query} } }`, undefined, admin);
    refused(tooDeep);
    expect(tooDeep.errors?.[0]?.extensions?.reason).toBe('QUERY_TOO_DEEP');
    const costly = await graphql(hub.url, `{ PatientList(_count: 1000) { ObservationList(_reference: "patient", _count: 1000) { id } } }`, undefined, admin);
    refused(costly);
    expect(costly.errors?.[0]?.extensions?.reason).toBe('QUERY_TOO_COSTLY');
    refused(await graphql(hub.url, `{ ObservationList(_count: 100000) { id } }`, undefined, admin));
    refused(await graphql(hub.url, `{ ObservationConnection(_count: 100000) { count } }`, undefined, admin));

    const ids = Array.from({ length: 5000 }, (_, i) => `obs-${i}`).join(',');
    refused(await graphql(hub.url, `query($ids: String) { ObservationList(_id: $ids) { id } }`, { ids }, admin));
    refused(await graphql(hub.url, `query($and: [String!]) { ObservationList(_and: $and) { id } }`, { and: Array.from({ length: 1000 }, () => 'status=final') }, admin));
    refused(await graphql(hub.url, `query($v: String) { PatientList(identifier: $v) { id } }`, { v: 'x'.repeat(10_000) }, admin));
    refused(await graphql(hub.url, `query($v: String) { person(identifier: $v) { id } }`, { v: 'x'.repeat(10_000) }, admin));
  });

  it('refuses invalid UTF-8 and control characters, and keeps Chinese intact', async () => {
    const invalid = Buffer.concat([Buffer.from('{"query":"{ PatientList(name: \\"'), Buffer.from([0xe7, 0x8e]), Buffer.from('\\") { id } }"}')]);
    const answer = await post(invalid);
    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/not valid UTF-8/);
    refused(await graphql(hub.url, `mutation($res: PatientInput!) { PatientCreate(res: $res) { id } }`, { res: { name: [{ text: '王\u0000伟' }] } }, admin));
    refused(await importBundle([{ resourceType: 'Patient', id: 'hostile-0', name: [{ text: '王\u001b[31m伟' }] }]));
    const ok = await graphql(hub.url, `{ PatientList(name: "王伟") { name { text } } }`, undefined, admin);
    expect(ok.data!.PatientList[0].name[0].text).toBe('王伟');
  });
});

describe('tokens', () => {
  const hubStatus = (authorization: string) =>
    fetch(`${hub.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify({ query: '{ hubStatus { name } }' }) });
  const sign = (secret: string, claims: Record<string, unknown>, expires: string | number = '5m') =>
    new SignJWT({ scope: 'system/*.cruds', kind: 'admin', ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('consortium-hub')
      .setAudience('consortium-hub/graphql')
      .setSubject('consortium-admin')
      .setIssuedAt()
      .setExpirationTime(expires)
      .sign(new TextEncoder().encode(secret));

  it('refuses malformed, expired, tampered, foreign and unsigned tokens, and tokens of revoked clients', async () => {
    const memberToken = await token(hub.url, 'his-taolin-township');
    const cases: [string, string][] = [
      ['no scheme', admin],
      ['Basic', `Basic ${Buffer.from('consortium-admin:demo-secret-consortium-admin').toString('base64')}`],
      ['garbage', 'Bearer abc.def.ghi'],
      ['expired', `Bearer ${await sign(DEMO_TOKEN_SECRET, {}, Math.floor(Date.now() / 1000) - 60)}`],
      ['other secret', `Bearer ${await sign('another-secret-another-secret-another-secret', {})}`],
      ['tampered', `Bearer ${memberToken.split('.').map((part, i) => (i === 1 ? Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(part, 'base64url').toString()), sub: 'consortium-admin', kind: 'admin' })).toString('base64url') : part)).join('.')}`],
      ['alg none', `Bearer ${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'consortium-admin', scope: 'system/*.cruds', iss: 'consortium-hub', aud: 'consortium-hub/graphql', exp: 9999999999 })).toString('base64url')}.`],
      ['unknown client', `Bearer ${await sign(DEMO_TOKEN_SECRET, {}).then(async () => new SignJWT({ scope: 'system/*.cruds' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('consortium-hub').setAudience('consortium-hub/graphql').setSubject('nobody').setExpirationTime('5m').sign(new TextEncoder().encode(DEMO_TOKEN_SECRET)))}`],
      ['huge', `Bearer ${'a'.repeat(10_000)}`],
    ];
    for (const [label, authorization] of cases) {
      const response = await hubStatus(authorization);
      const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(response.status, label).toBe(401);
      expect(body.errors[0]!.extensions.code, label).toBe('UNAUTHENTICATED');
      expect(body.errors[0]!.message, label).not.toMatch(leaks);
    }
    expect(await (await hubStatus(`Bearer ${await sign(DEMO_TOKEN_SECRET, {}, Math.floor(Date.now() / 1000) - 60)}`)).text()).toMatch(/expired/);
    const member = await token(hub.url, 'his-xishan-county');
    expect((await hubStatus(`Bearer ${member}`)).status).toBe(200);
    await registry.revoke('his-xishan-county');
    expect((await hubStatus(`Bearer ${member}`)).status).toBe(401);
  });
});

describe('limits', () => {
  it('answers RATE_LIMITED past the per-client limit and TIMEOUT past the request time limit', async () => {
    const limited = await startTestHub(database.name, { AUTH_REQUIRED: 'true', RATE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_COST_UNIT: '1000000', REQUEST_TIMEOUT_MS: '100', MAX_RESOURCES_PER_REQUEST: '1000000' });
    try {
      const own = await token(limited.url, 'his-baiyangtian-township');
      const statuses: number[] = [];
      let last: GraphQLResponse | undefined;
      for (let i = 0; i < 4; i++) {
        last = await graphql(limited.url, `{ hubStatus { name } }`, undefined, own);
        statuses.push(last.status);
      }
      // The window may roll over to the next minute during the loop; then the count starts again.
      expect(statuses.filter((status) => status === 429).length).toBeLessThanOrEqual(1);
      if (statuses[3] === 429) expect(last!.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      const other = await token(limited.url, 'his-changtang-township');
      // Twenty whole-collection reads in date order: more than 100 ms of work however fast the database is.
      const slow = await graphql(limited.url, `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: ObservationList(_count: 1000, _sort: "-date") { id valueQuantity { value } }`).join(' ')} }`, undefined, other);
      expect(slow.status).toBe(503);
      expect(slow.errors?.[0]?.extensions?.code).toBe('TIMEOUT');
    } finally {
      await limited.stop();
    }
  });

  it('switches introspection off per environment', async () => {
    const closed = await startTestHub(database.name, { AUTH_REQUIRED: 'true', INTROSPECTION_ENABLED: 'false' });
    try {
      const result = await graphql(closed.url, `{ __schema { types { name } } }`, undefined, await token(closed.url, 'consortium-admin'));
      refused(result);
    } finally {
      await closed.stop();
    }
  });
});

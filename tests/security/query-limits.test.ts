/**
 * Issue 10, items 1 and 2: hostile query documents. Every check before execution is linear in the document
 * (a fragment measured once), a list costs what it can really return, one client's flood of costly queries
 * waits for its own turns, and a request's database work stops when the request ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, mongodbUri, postgresUrl, startTestHub, type TestDatabase } from '../support/hub.ts';
import { freePort } from '../support/ports.ts';
import { spawnHub, waitForOutput } from '../support/process.ts';

let database: TestDatabase;
let hub: Hub;
let resident: string;
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('limits'));
  resident = await token(hub.url, 'county-health-app', { patient_identifier: '43062120021114011X' });
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

/** The reported attack: 25 fragments, each spreading the next twice (1.4 KB). */
const fragmentBomb = (levels = 25): string =>
  `query{...F0} ${Array.from({ length: levels - 1 }, (_, i) => `fragment F${i} on Query{hubStatus{name} ...F${i + 1} ...F${i + 1}}`).join(' ')} fragment F${levels - 1} on Query{hubStatus{name}}`;

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

describe('item 1: a document of nested fragment spreads', () => {
  it('is refused in milliseconds, with /health answering meanwhile', async () => {
    const query = fragmentBomb();
    expect(query.length).toBeGreaterThan(1200);
    expect(query.length).toBeLessThan(1500);
    const [refused, health] = await Promise.all([
      timed(() => graphql(hub.url, query, undefined, resident)),
      timed(() => fetch(`${hub.url}/health`).then((response) => response.status)),
    ]);
    expect(refused.value.status).toBe(400);
    expect(refused.value.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'QUERY_TOO_COSTLY' });
    expect(refused.ms).toBeLessThan(1000);
    expect(health.value).toBe(200);
    expect(health.ms).toBeLessThan(1000);
    // The same shape twice as deep is refused as fast: the checks do not grow with the expansion.
    const deeper = await timed(() => graphql(hub.url, fragmentBomb(50), undefined, resident));
    expect(deeper.value.status).toBe(400);
    expect(deeper.ms).toBeLessThan(1000);
  });

  it('limits tokens, selections, aliases and depth, and never counts the introspection query', async () => {
    const admin = await token(hub.url, 'consortium-admin');
    const tokens = await graphql(hub.url, `{ ${'hubStatus { name } '.repeat(3000)} }`, undefined, admin);
    expect(tokens.status).toBe(400);
    expect(tokens.errors?.[0]?.message).toMatch(/tokens/);
    // 1,600 fields of one name: graphql-js's own complexity budget for comparing fields aborts validation.
    const repeated = await timed(() => graphql(hub.url, `{ hubStatus { ${Array.from({ length: 1600 }, () => 'name').join(' ')} } }`, undefined, admin));
    expect(repeated.value.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(repeated.ms).toBeLessThan(1000);
    const few = await startTestHub(database.name, { AUTH_REQUIRED: 'true', MAX_QUERY_SELECTIONS: '50' });
    try {
      const selections = await graphql(few.url, `{ ${Array.from({ length: 12 }, (_, i) => `a${i}: hubStatus { name version fhirVersion resourceTypes databaseReachable }`).join(' ')} }`, undefined, await token(few.url, 'consortium-admin'));
      expect(selections.errors?.[0]?.extensions?.reason).toBe('TOO_MANY_SELECTIONS');
    } finally {
      await few.stop();
    }
    const aliases = await graphql(hub.url, `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: hubStatus { name }`).join(' ')} }`, undefined, admin);
    expect(aliases.errors?.[0]?.extensions?.reason).toBe('TOO_MANY_ALIASES');
    const nested = (levels: number): string => (levels === 0 ? 'id' : `partOf { resource { ... on Organization { ${nested(levels - 1)} } } }`);
    const deep = await graphql(hub.url, `{ Organization(id: "org-taolin-township") { ${nested(7)} } }`, undefined, admin);
    expect(deep.errors?.[0]?.extensions?.reason).toBe('QUERY_TOO_DEEP');
    // GraphiQL's introspection query is 13 levels deep: it is not counted.
    const introspection = await graphql(hub.url, `query IntrospectionQuery { __schema { queryType { name } types { ...FullType } } }
      fragment FullType on __Type { kind name fields(includeDeprecated: true) { name args { ...InputValue } type { ...TypeRef } } inputFields { ...InputValue } interfaces { ...TypeRef } possibleTypes { ...TypeRef } }
      fragment InputValue on __InputValue { name type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }`, undefined, admin);
    expect(introspection.errors).toBeUndefined();
  });
});

describe('item 2: cost, concurrency and time', () => {
  it('costs a list without _count at what it may return, not at 20', async () => {
    const strict = await startTestHub(database.name, { AUTH_REQUIRED: 'true', MAX_QUERY_COST: '5000' });
    try {
      const admin = await token(strict.url, 'consortium-admin');
      const one = await graphql(strict.url, '{ ObservationList(code: "http://loinc.org|718-7") { id code { text } } }', undefined, admin);
      expect(one.errors).toBeUndefined();
      // Five lists of up to 1,000 each: 5,005, more than allowed. Costed at 20 items each they would have passed.
      const five = await graphql(strict.url, `{ ${[1, 2, 3, 4, 5].map((i) => `a${i}: ObservationList(code: "http://loinc.org|718-7") { id }`).join(' ')} }`, undefined, admin);
      expect(five.status).toBe(400);
      expect(five.errors?.[0]?.extensions?.reason).toBe('QUERY_TOO_COSTLY');
      // With a _count the same five cost what they ask for; a variable counts as the most.
      expect((await graphql(strict.url, `{ ${[1, 2, 3, 4, 5].map((i) => `a${i}: ObservationList(code: "http://loinc.org|718-7", _count: 10) { id }`).join(' ')} }`, undefined, admin)).errors).toBeUndefined();
      const variable = await graphql(strict.url, `query($n: Int) { ${[1, 2, 3, 4, 5].map((i) => `a${i}: ObservationList(_count: $n) { id }`).join(' ')} }`, { n: 10 }, admin);
      expect(variable.errors?.[0]?.extensions?.reason).toBe('QUERY_TOO_COSTLY');
    } finally {
      await strict.stop();
    }
  });

  it('stops a request at MAX_RESOURCES_PER_REQUEST resources read in all, whatever its aliases', async () => {
    const bounded = await startTestHub(database.name, { AUTH_REQUIRED: 'true', MAX_RESOURCES_PER_REQUEST: '50' });
    try {
      const admin = await token(bounded.url, 'consortium-admin');
      const one = await graphql(bounded.url, '{ ObservationList(_count: 30) { id } }', undefined, admin);
      expect(one.errors).toBeUndefined();
      expect((one.data?.ObservationList as unknown[]).length).toBe(30);
      const three = await graphql(bounded.url, `{ ${[1, 2, 3].map((i) => `a${i}: ObservationList(_count: 30) { id }`).join(' ')} }`, undefined, admin);
      expect(three.errors?.[0]?.extensions?.code).toBe('TOO_MANY_RESULTS');
      expect(three.errors?.[0]?.message).toMatch(/more than 50 resources/);
    } finally {
      await bounded.stop();
    }
  });

  it('keeps /health and another client under 1 s while one client floods with costly queries, and stops the flood at its time limit', async () => {
    // The hub runs in its own process, as in production: the test's client must not share its event loop (nor
    // spend it reading the flood's answers).
    const port = await freePort();
    const flooded = spawnHub({
      MONGODB_URI: mongodbUri(),
      FERRETDB_POSTGRESQL_URL: postgresUrl(),
      MONGODB_DB: database.name,
      PORT: String(port),
      SEED_DEMO: 'false',
      AUTH_REQUIRED: 'true',
      REQUEST_TIMEOUT_MS: '1500',
      RATE_LIMIT_PER_MINUTE: '100000',
      MAX_CONCURRENT_REQUESTS_PER_CLIENT: '2',
      CONCURRENCY_WAIT_MS: '60000',
    });
    try {
      await waitForOutput(flooded, /Playground: http/);
      const url = `http://127.0.0.1:${port}`;
      const attacker = await token(url, 'consortium-admin');
      const other = await token(url, 'his-donghu-county');
      const costly = `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: ObservationList(_count: 1000, _sort: "-date") { json }`).join(' ')} }`;
      // Steady state, not a cold start: the other client's read and /health once before the flood.
      expect((await graphql(url, '{ Organization(id: "org-donghu-county") { name } }', undefined, other)).errors).toBeUndefined();
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const flood = Array.from({ length: 16 }, () =>
        fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${attacker}` }, body: JSON.stringify({ query: costly }) })
          .then(async (answer) => (await answer.arrayBuffer(), { status: answer.status }))
          .catch(() => ({ status: 0 })),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const latencies: { health: number; read: number }[] = [];
      for (let i = 0; i < 5; i++) {
        const health = await timed(() => fetch(`${url}/health`));
        const read = await timed(() => graphql(url, '{ Organization(id: "org-donghu-county") { name } }', undefined, other));
        expect(health.value.status).toBe(200);
        expect(read.value.data?.Organization, JSON.stringify(read.value.errors)).toEqual({ name: '东湖县人民医院' });
        latencies.push({ health: health.ms, read: read.ms });
      }
      const statuses = (await Promise.all(flood)).map((answer) => answer.status);
      console.log('while flooding: /health and another client read (ms)', JSON.stringify(latencies.map((l) => [Math.round(l.health), Math.round(l.read)])), 'flood answers', JSON.stringify(statuses));
      for (const { health, read } of latencies) {
        expect(health).toBeLessThan(1000);
        expect(read).toBeLessThan(1000);
      }
      // Each flooding request ended as an answer within its time, or waited for its client's turn.
      expect(statuses.every((status) => status === 200 || status === 503 || status === 429)).toBe(true);
    } finally {
      flooded.child.kill('SIGTERM');
      await flooded.exited;
    }
  });
});

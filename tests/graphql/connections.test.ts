import type { Observation } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { freshDatabase, graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  database = await freshDatabase('connections');
  await database.store.putMany(Array.from({ length: 25 }, (_, n) => observation(`o-${String(n).padStart(2, '0')}`, n)));
  hub = await startTestHub(database.name);
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

function observation(id: string, day: number): Observation {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] },
    subject: { reference: 'Patient/p-1' },
    effectiveDateTime: new Date(Date.UTC(2026, 0, 1 + day, 8)).toISOString(),
  };
}

const pageQuery = `query($cursor: String, $count: Int, $sort: String) {
  ObservationConnection(subject: "Patient/p-1", _count: $count, _sort: $sort, _cursor: $cursor) {
    count offset pagesize first previous next last
    edges { mode resource { id } }
  }
}`;
type Page = { count: number; offset: number | null; pagesize: number; first: string; previous: string | null; next: string | null; last: string; edges: { mode: string; resource: { id: string } }[] };
async function page(variables: Record<string, unknown>): Promise<Page> {
  const result = await graphql<{ ObservationConnection: Page }>(hub.url, pageQuery, variables);
  expect(result.errors).toBeUndefined();
  return result.data!.ObservationConnection;
}
const ids = (p: Page): string[] => p.edges.map((edge) => edge.resource.id);

describe('TConnection', () => {
  it('pages forward and back with count, offset, pagesize and cursors', async () => {
    const one = await page({ count: 10, sort: 'date' });
    expect(one).toMatchObject({ count: 25, offset: 0, pagesize: 10, previous: null });
    expect(ids(one)).toEqual(Array.from({ length: 10 }, (_, n) => `o-${String(n).padStart(2, '0')}`));
    expect(one.edges[0]!.mode).toBe('match');
    const two = await page({ cursor: one.next });
    expect(two.offset).toBe(10);
    expect(ids(two)[0]).toBe('o-10');
    const three = await page({ cursor: two.next });
    expect(ids(three)).toEqual(['o-20', 'o-21', 'o-22', 'o-23', 'o-24']);
    expect(three.next).toBeNull();
    const back = await page({ cursor: three.previous });
    expect(ids(back)).toEqual(ids(two));
    const last = await page({ cursor: one.last });
    expect(ids(last)).toEqual(['o-15', 'o-16', 'o-17', 'o-18', 'o-19', 'o-20', 'o-21', 'o-22', 'o-23', 'o-24']);
    expect(last.next).toBeNull();
    expect(ids(await page({ cursor: last.first }))).toEqual(ids(one));
  });

  it('stays correct when resources are inserted between pages', async () => {
    const seen: string[] = [];
    let current = await page({ count: 7, sort: '-date' });
    seen.push(...ids(current));
    // New results arrive: one newer than everything (before the cursor), one in the middle, one older than all.
    await database.store.putMany([observation('new-newest', 40), observation('new-middle', 12), observation('new-oldest', -5)]);
    while (current.next) {
      current = await page({ cursor: current.next });
      seen.push(...ids(current));
    }
    const original = Array.from({ length: 25 }, (_, n) => `o-${String(24 - n).padStart(2, '0')}`);
    // Every original resource exactly once, in order; the new ones behind the cursor appear where they belong.
    expect(seen.filter((id) => id.startsWith('o-'))).toEqual(original);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toContain('new-middle');
    expect(seen).toContain('new-oldest');
    expect(seen).not.toContain('new-newest');
  });

  it('refuses a forged cursor, a cursor reused with other search arguments, and sorting by a token', async () => {
    const forged = await graphql(hub.url, pageQuery, { cursor: 'eyJhIjoxfQ' });
    expect(forged.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const garbage = await graphql(hub.url, pageQuery, { cursor: '{"$gt":""}' });
    expect(garbage.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const first = await page({ count: 5 });
    const reused = await graphql(hub.url, `query($c: String) { ObservationConnection(subject: "Patient/other", _cursor: $c) { count } }`, { c: first.next });
    expect(reused.errors?.[0]?.message).toMatch(/subject differs/);
    const tokenSort = await graphql(hub.url, pageQuery, { sort: 'code' });
    expect(tokenSort.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

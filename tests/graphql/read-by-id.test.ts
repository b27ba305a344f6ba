/**
 * Reading resources by id asks the database in the one shape it answers without decoding the collection:
 * `{_id: <id>}` (FerretDB's SQLite backend pushes down nothing else; `$in` scans every document).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { findsDuring, pushedDown } from '../support/commands.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let member: string;
let resident: string;
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('reads'));
  member = await token(hub.url, 'his-donghu-county');
  resident = await token(hub.url, 'county-health-app', { patient_identifier: '43062120021114011X' });
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

describe('reads by id', () => {
  it('reads one resource with a plain _id equality that the database answers without a scan', async () => {
    let result;
    const finds = await findsDuring(hub, async () => {
      result = await graphql(hub.url, '{ Observation(id: "obs-00001") { id status } }', undefined, member);
    });
    expect(result!.errors).toBeUndefined();
    const observationFinds = finds.filter((find) => find.collection === 'Observation');
    expect(observationFinds).toEqual([{ collection: 'Observation', filter: { _id: 'obs-00001' } }]);
    for (const find of observationFinds) expect(await pushedDown(database.connection.db, find)).toBe(true);
  });

  it('reads a batch of ids (aliases, references) without a scan per batch', async () => {
    let result: Awaited<ReturnType<typeof graphql>> | undefined;
    const finds = await findsDuring(hub, async () => {
      result = await graphql(
        hub.url,
        `{ a: Observation(id: "obs-00001") { id } b: Observation(id: "obs-00002") { id } c: Observation(id: "obs-00003") { id subject { resource { ... on Patient { id } } } } }`,
        undefined,
        member,
      );
    });
    expect(result!.errors).toBeUndefined();
    expect(finds.filter((find) => find.collection === 'Observation')).toHaveLength(3);
    for (const find of finds.filter((f) => f.collection === 'Observation' || f.collection === 'Patient')) {
      expect(await pushedDown(database.connection.db, find), JSON.stringify(find)).toBe(true);
    }
  });

  it('keeps the access policy on reads by id: a resident reads its own records and not another person’s', async () => {
    const own = await graphql(hub.url, '{ Patient(id: "pat-taolin-township-001") { id } }', undefined, resident);
    expect(own.data?.Patient).toEqual({ id: 'pat-taolin-township-001' });
    const finds = await findsDuring(hub, async () => {
      const other = await graphql(hub.url, '{ Patient(id: "pat-taolin-township-002") { id } }', undefined, resident);
      expect(other.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    });
    const byId = finds.filter((f) => f.collection === 'Patient' && f.filter._id === 'pat-taolin-township-002');
    expect(byId.length).toBeGreaterThan(0);
    for (const find of byId) {
      expect(find.filter).toEqual({ _id: 'pat-taolin-township-002' });
      expect(await pushedDown(database.connection.db, find)).toBe(true);
    }
  });

  it('answers _count: 0 without reading any resource', async () => {
    let result;
    const finds = await findsDuring(hub, async () => {
      result = await graphql(hub.url, '{ ObservationList(code: "http://loinc.org|718-7", _count: 0) { id } }', undefined, member);
    });
    expect(result!.data).toEqual({ ObservationList: [] });
    expect(finds.filter((find) => find.collection === 'Observation')).toEqual([]);
  });
});

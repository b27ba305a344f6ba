/**
 * Reading resources by id asks the database in a shape it answers without decoding the collection: on FerretDB
 * a `{_id: <id>}` find (its SQLite backend pushes down nothing else; `$in` scans every document), or, on its
 * PostgreSQL backend, one statement `_jsonb->'_id' = ANY($1)` on the primary key's table
 * (tests/database/query-plans.test.ts checks its plan).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { idsOfStatement, pushedDown, readsDuring, type SentFind, type SentStatement } from '../support/commands.ts';
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

/** The ids each read by id of a collection asked for, FerretDB finds (checked to be pushed down) and direct statements alike. */
async function idReads(reads: { finds: SentFind[]; statements: SentStatement[] }, collection: string): Promise<string[][]> {
  const asked: string[][] = [];
  for (const find of reads.finds.filter((f) => f.collection === collection)) {
    expect(await pushedDown(database.connection.db, find), JSON.stringify(find)).toBe(true);
    expect(Object.keys(find.filter)).toEqual(['_id']);
    expect(typeof find.filter._id, 'a plain equality, never $in').toBe('string');
    asked.push([find.filter._id as string]);
  }
  for (const statement of reads.statements.filter((s) => s.text.includes(`."${collection.toLowerCase()}_`))) {
    const ids = idsOfStatement(statement);
    if (ids) asked.push(ids);
  }
  return asked;
}

describe('reads by id', () => {
  it('reads one resource with a plain _id equality that the database answers without a scan', async () => {
    let result;
    const reads = await readsDuring(hub, async () => {
      result = await graphql(hub.url, '{ Observation(id: "obs-00001") { id status } }', undefined, member);
    });
    expect(result!.errors).toBeUndefined();
    expect(await idReads(reads, 'Observation')).toEqual([['obs-00001']]);
  });

  it('reads a batch of ids (aliases, references) without a scan per batch', async () => {
    let result: Awaited<ReturnType<typeof graphql>> | undefined;
    const reads = await readsDuring(hub, async () => {
      result = await graphql(
        hub.url,
        `{ a: Observation(id: "obs-00001") { id } b: Observation(id: "obs-00002") { id } c: Observation(id: "obs-00003") { id subject { resource { ... on Patient { id } } } } }`,
        undefined,
        member,
      );
    });
    expect(result!.errors).toBeUndefined();
    expect((await idReads(reads, 'Observation')).flat().sort()).toEqual(['obs-00001', 'obs-00002', 'obs-00003']);
    expect((await idReads(reads, 'Patient')).flat().length).toBeGreaterThan(0);
  });

  it('keeps the access policy on reads by id: a resident reads its own records and not another person’s', async () => {
    const own = await graphql(hub.url, '{ Patient(id: "pat-taolin-township-001") { id } }', undefined, resident);
    expect(own.data?.Patient).toEqual({ id: 'pat-taolin-township-001' });
    const reads = await readsDuring(hub, async () => {
      const other = await graphql(hub.url, '{ Patient(id: "pat-taolin-township-002") { id } }', undefined, resident);
      expect(other.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    });
    const asked = (await idReads(reads, 'Patient')).filter((ids) => ids.includes('pat-taolin-township-002'));
    expect(asked.length).toBeGreaterThan(0);
    for (const ids of asked) expect(ids).toEqual(['pat-taolin-township-002']);
  });

  it('answers _count: 0 without reading any resource', async () => {
    let result;
    const reads = await readsDuring(hub, async () => {
      result = await graphql(hub.url, '{ ObservationList(code: "http://loinc.org|718-7", _count: 0) { id } }', undefined, member);
    });
    expect(result!.data).toEqual({ ObservationList: [] });
    expect(reads.finds.filter((find) => find.collection === 'Observation')).toEqual([]);
    // The one direct statement is the client registry behind the token (read at every request), no resource.
    expect(reads.statements.filter((statement) => !/"clients_[0-9a-f]+"/.test(statement.text))).toEqual([]);
  });
});

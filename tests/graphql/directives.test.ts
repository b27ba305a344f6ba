import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { freshDatabase, graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  database = await freshDatabase('directives');
  await database.store.putMany([
    {
      resourceType: 'Patient',
      id: 'p1',
      name: [
        { use: 'official', family: '张', given: ['三'], text: '张三' },
        { use: 'usual', family: 'Zhang', given: ['San', 'Sam'] },
      ],
      telecom: [{ system: 'phone', value: '13800000000' }],
      managingOrganization: { reference: 'Organization/o1', display: '东湖县人民医院' },
    },
  ]);
  hub = await startTestHub(database.name);
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

describe('FHIR GraphQL directives', () => {
  it('@first and @singleton turn a list into its item', async () => {
    const result = await graphql(hub.url, `{ Patient(id: "p1") { name @first { text } telecom @singleton { value } } }`);
    expect(result.errors).toBeUndefined();
    expect(result.data?.Patient).toEqual({ name: { text: '张三' }, telecom: { value: '13800000000' } });
    const tooMany = await graphql(hub.url, `{ Patient(id: "p1") { name @singleton { text } } }`);
    expect(tooMany.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringContaining('@singleton') });
  });

  it('@flatten puts the children in the parent, lists where the field repeats', async () => {
    const result = await graphql(hub.url, `{ Patient(id: "p1") { id managingOrganization @flatten { display } name @flatten { family given } } }`);
    expect(result.errors).toBeUndefined();
    expect(result.data?.Patient).toEqual({ id: 'p1', display: '东湖县人民医院', family: ['张', 'Zhang'], given: ['三', 'San', 'Sam'] });
  });

  it('@slice spreads list items into properties by a property or by index, also with @flatten', async () => {
    const byUse = await graphql(hub.url, `{ Patient(id: "p1") { name @slice(path: "use") { use family } } }`);
    expect(byUse.data?.Patient).toEqual({ 'name.official': { use: 'official', family: '张' }, 'name.usual': { use: 'usual', family: 'Zhang' } });
    const flattened = await graphql(hub.url, `{ Patient(id: "p1") { name @slice(path: "$index") @flatten { family } } }`);
    expect(flattened.data?.Patient).toEqual({ 'family.0': '张', 'family.1': 'Zhang' });
  });

  it('leaves queries without directives, aliases and fragments alone', async () => {
    const result = await graphql(hub.url, `{ p: Patient(id: "p1") { ...N } } fragment N on Patient { n: name @first { family } }`);
    expect(result.data).toEqual({ p: { n: { family: '张' } } });
  });
});

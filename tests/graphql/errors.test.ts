import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { freshDatabase, graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  database = await freshDatabase('errors');
  hub = await startTestHub(database.name, { MAX_BODY_BYTES: '65536' });
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

async function storedCount(type: string): Promise<number> {
  return (await database.connection.db.collection(type).countDocuments({})) + (await database.connection.db.collection(`${type}_history`).countDocuments({}));
}

describe('bad input', () => {
  it('malformed FHIR: BAD_USER_INPUT with an OperationOutcome naming the element, and nothing written', async () => {
    const result = await graphql(hub.url, `mutation { ObservationCreate(res: { status: "done", code: { text: "血糖" }, effectiveDateTime: "yesterday" }) { id } }`);
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(/Observation\.status/);
    const outcome = result.errors?.[0]?.extensions?.resource;
    expect(outcome?.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(outcome)).toMatch(/Observation\.effective/);
    expect(await storedCount('Observation')).toBe(0);
  });

  it('wrong argument types and unknown fields are refused before anything runs', async () => {
    const wrongType = await graphql(hub.url, `{ ObservationList(_count: "ten") { id } }`);
    expect(wrongType.status).toBe(400);
    expect(wrongType.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const unknownField = await graphql(hub.url, `{ Patient(id: "x") { shoeSize } }`);
    expect(unknownField.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'GRAPHQL_VALIDATION_FAILED' });
    const variableType = await graphql(hub.url, `mutation($res: PatientInput!) { PatientCreate(res: $res) { id } }`, { res: { gender: 'female', birthDate: 19900101 } });
    expect(variableType.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await storedCount('Patient')).toBe(0);
  });

  it('an unknown search parameter or malformed value is named in the error', async () => {
    const unknown = await graphql(hub.url, `{ PatientList(_sort: "shoeSize") { id } }`);
    expect(unknown.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringContaining('shoeSize') });
    const badDate = await graphql(hub.url, `{ ObservationList(date: "ge2024-02-30") { id } }`);
    expect(badDate.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringContaining('date') });
    const badReference = await graphql(hub.url, `{ ObservationList(subject: "Patient/../../etc") { id } }`);
    expect(badReference.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('an unknown id is NOT_FOUND; a mismatched resourceType is refused', async () => {
    const missing = await graphql(hub.url, `{ Encounter(id: "does-not-exist") { id } }`);
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const mismatch = await graphql(hub.url, `mutation { PatientCreate(res: { resourceType: "Organization" }) { id } }`);
    expect(mismatch.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const badId = await graphql(hub.url, `{ Encounter(id: "a b/c") { id } }`);
    expect(badId.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('a body that is not JSON, or larger than the limit, gets a clear HTTP error with a code', async () => {
    const notJson = await fetch(`${hub.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ errors: [{ extensions: { code: 'BAD_USER_INPUT' } }] });
    const huge = await fetch(`${hub.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `{ hubStatus { name } } #${'x'.repeat(70_000)}` }) });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ errors: [{ extensions: { code: 'PAYLOAD_TOO_LARGE' } }] });
    expect((await graphql(hub.url, '{ hubStatus { name } }')).data?.hubStatus.name).toBe('consortium-hub');
  });

  it('an internal failure is reported as INTERNAL without leaking details', async () => {
    // A stored document that is not valid JSON stands for data corrupted outside the hub.
    await database.connection.db.collection('Practitioner').insertOne({ _id: 'broken' as never, v: 1, ts: new Date(), json: '{not json', sp: {} });
    const result = await graphql(hub.url, `{ Practitioner(id: "broken") { id } }`);
    expect(result.errors?.[0]?.extensions?.code).toBe('INTERNAL');
    expect(result.errors?.[0]?.message).toBe('Internal error; it has been logged');
    expect(JSON.stringify(result)).not.toMatch(/JSON|position|stack/i);
  });
});

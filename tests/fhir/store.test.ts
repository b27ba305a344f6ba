import type { Observation, Patient } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubError } from '../../src/errors.ts';
import pg from 'pg';
import { changeStoredValues, storedView } from '../support/commands.ts';
import { freshDatabase, postgresUrl, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await freshDatabase('store');
});
afterAll(async () => database.drop());

const nationalIdSystem = 'urn:oid:2.16.156.10011.1.3';
const patient = (family: string, given: string): Patient => ({
  resourceType: 'Patient',
  name: [{ family, given: [given], text: `${family}${given}` }],
  gender: 'female',
  birthDate: '1962-08-09',
  identifier: [{ system: nationalIdSystem, value: '11010519491231002X' }],
  address: [{ text: '江南省东湖县桃林镇和平村3号' }],
});

async function countDocuments(collection: string): Promise<number> {
  return database.connection.db.collection(collection).countDocuments({});
}

describe('FHIR store', () => {
  it('creates a resource with id, versionId and lastUpdated, and reads it back with Chinese text intact', async () => {
    const created = await database.store.create(patient('欧阳', '秀英'));
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.meta?.versionId).toBe('1');
    expect(Date.parse(created.meta?.lastUpdated ?? '')).toBeGreaterThan(Date.now() - 60_000);
    const read = await database.store.read<Patient>('Patient', created.id!);
    expect(read).toEqual(created);
    expect(read.name?.[0]?.text).toBe('欧阳秀英');
    expect(read.address?.[0]?.text).toBe('江南省东湖县桃林镇和平村3号');
  });

  it('keeps every version on update and delete, and reads each version back', async () => {
    const created = await database.store.create(patient('李', '娜'));
    const updated = await database.store.update({ ...created, gender: 'male' }, { ifMatch: 'W/"1"' });
    expect(updated.meta?.versionId).toBe('2');
    const deletedVersion = await database.store.delete('Patient', created.id!, { ifMatch: '2' });
    expect(deletedVersion).toBe('3');

    await expect(database.store.read('Patient', created.id!)).rejects.toMatchObject({ code: 'GONE' });
    expect((await database.store.readVersion<Patient>('Patient', created.id!, 1)).gender).toBe('female');
    expect((await database.store.readVersion<Patient>('Patient', created.id!, '2')).gender).toBe('male');
    await expect(database.store.readVersion('Patient', created.id!, 3)).rejects.toMatchObject({ code: 'GONE' });
    const history = await database.store.history('Patient', created.id!);
    expect(history.map((entry) => [entry.versionId, entry.deleted])).toEqual([
      ['3', true],
      ['2', false],
      ['1', false],
    ]);
  });

  it('refuses a stale version with CONFLICT and writes nothing', async () => {
    const created = await database.store.create(patient('王', '芳'));
    await database.store.update({ ...created, gender: 'male' });
    const before = await countDocuments('Patient_history');
    await expect(database.store.update({ ...created, gender: 'other' }, { ifMatch: '1' })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await countDocuments('Patient_history')).toBe(before);
    expect((await database.store.read<Patient>('Patient', created.id!)).gender).toBe('male');
  });

  it('lets exactly one of many concurrent updates of one version win; the others get CONFLICT', async () => {
    const created = await database.store.create(patient('赵', '敏'));
    const attempts = ['male', 'other', 'unknown', 'female', 'male', 'other', 'unknown', 'female'].map((gender) =>
      database.store.update({ ...created, gender } as Patient, { ifMatch: '1' }),
    );
    const results = await Promise.allSettled(attempts);
    const winners = results.filter((result) => result.status === 'fulfilled');
    const losers = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    expect(winners).toHaveLength(1);
    expect(losers.map((result) => (result.reason as HubError).code)).toEqual(Array(7).fill('CONFLICT'));
    const history = await database.store.history('Patient', created.id!);
    expect(history.map((entry) => entry.versionId)).toEqual(['2', '1']);
    const winner = (winners[0] as PromiseFulfilledResult<Patient>).value;
    expect((await database.store.read<Patient>('Patient', created.id!)).gender).toBe(winner.gender);
  });

  it('rolls a write cut off between history and current forward, so the version is not lost', async () => {
    const created = await database.store.create(patient('孙', '丽'));
    // Simulate a crash after the history insert of version 2 and before the current document moved.
    const version2 = { ...created, gender: 'male', meta: { versionId: '2', lastUpdated: new Date().toISOString() } };
    await database.connection.db
      .collection('Patient_history')
      .insertOne({ _id: `${created.id}/2` as never, rid: created.id, v: 2, ts: new Date(), json: JSON.stringify(version2), op: 'update' });
    await expect(database.store.update({ ...created, gender: 'other' }, { ifMatch: '1' })).rejects.toMatchObject({ code: 'CONFLICT' });
    const current = await database.store.read<Patient>('Patient', created.id!);
    expect(current.meta?.versionId).toBe('2');
    expect(current.gender).toBe('male');
    const third = await database.store.update({ ...current, gender: 'other' }, { ifMatch: '2' });
    expect(third.meta?.versionId).toBe('3');
  });

  it('refuses an invalid resource with the validator issues and writes nothing', async () => {
    const before = [await countDocuments('Observation'), await countDocuments('Observation_history')];
    const invalid = { resourceType: 'Observation', status: 'finsihed', code: { text: '血红蛋白' }, valueQuantity: { value: 'high' }, colour: 'red' };
    const error = await database.store.create(invalid as unknown as Observation).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).code).toBe('BAD_USER_INPUT');
    const expressions = (error as HubError).outcome?.issue?.flatMap((issue) => issue.expression ?? []);
    expect(expressions).toEqual(expect.arrayContaining(['Observation.status', 'Observation.colour', 'Observation.value[x].value']));
    expect([await countDocuments('Observation'), await countDocuments('Observation_history')]).toEqual(before);
  });

  it('refuses a reference that is not a literal reference, anywhere in the resource, and writes nothing', async () => {
    const before = await countDocuments('Patient');
    for (const [reference, where] of [
      ['not a ref !!', 'Patient.managingOrganization.reference'],
      ['Organization/', 'Patient.managingOrganization.reference'],
      ['patient/123', 'Patient.managingOrganization.reference'],
    ] as const) {
      const error = await database.store.create({ ...patient('赵', '敏'), managingOrganization: { reference } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HubError);
      expect((error as HubError).code).toBe('BAD_USER_INPUT');
      expect((error as HubError).outcome?.issue?.[0]?.expression).toEqual([where]);
    }
    const nested = await database.store
      .create({ ...patient('赵', '敏'), extension: [{ url: 'http://example.org/ext/gp', valueReference: { reference: '医生 张三' } }] })
      .catch((e: unknown) => e);
    expect((nested as HubError).outcome?.issue?.[0]?.expression).toEqual(['Patient.extension[0].valueReference.reference']);
    expect(await countDocuments('Patient')).toBe(before);
    // Relative, versioned, absolute, contained and urn references are literal references.
    const valid = await database.store.create({
      ...patient('赵', '敏'),
      contained: [{ resourceType: 'Practitioner', id: 'gp', name: [{ text: '张医生' }] }],
      managingOrganization: { reference: 'Organization/org-1' },
      generalPractitioner: [{ reference: '#gp' }, { reference: 'https://his.example.cn/fhir/Practitioner/7' }, { reference: 'Practitioner/7/_history/2' }, { reference: 'urn:oid:1.2.156.1' }],
    });
    expect(valid.id).toBeDefined();
  });

  it('refuses a resource of a type the hub does not serve', async () => {
    await expect(database.store.create({ resourceType: 'Claim' } as never)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('extracts search values at write time into indexed fields', async () => {
    const person = await database.store.create(patient('张', '三'));
    const observation = await database.store.create<Observation>({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '718-7' }], text: '血红蛋白' },
      subject: { reference: `Patient/${person.id}` },
      effectiveDateTime: '2026-03-05T10:00:00+08:00',
      performer: [{ reference: 'Organization/org-donghu-county' }],
      valueQuantity: { value: 132, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
    });
    const stored = await storedView(database.connection.db, 'Observation', observation.id!);
    // Equality values at the top level (where an equality on them is answered by an index), ranges under sp.
    expect(stored).toMatchObject({
      t_code: expect.arrayContaining(['http://loinc.org|718-7', '718-7', 'http://loinc.org|']),
      t_subject: [`Patient/${person.id}`],
      t_patient: [`Patient/${person.id}`],
      t_performer: ['Organization/org-donghu-county'],
      t_status: ['final'],
      sp: { date: { lo: new Date('2026-03-05T02:00:00.000Z'), hi: new Date('2026-03-05T02:00:00.999Z') } },
    });
    const postgres = postgresUrl();
    if (postgres) {
      // FerretDB on PostgreSQL: GIN indexes on the top-level fields, in PostgreSQL itself.
      const client = new pg.Client({ connectionString: postgres });
      await client.connect();
      const { rows } = await client.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE 'hub_gin_%'`, [database.name]);
      await client.end();
      const fields = rows.map((row) => /->\s*'([^']+)'/.exec(row.indexdef)?.[1]);
      // Compact documents on FerretDB: `_id` and the anchors `t` of every collection, `rid` of histories.
      expect(fields).toEqual(expect.arrayContaining(['_id', 't', 'rid']));
      const raw = await database.connection.db.collection('Observation').findOne({ _id: observation.id as never });
      expect(Object.keys(raw!).sort()).toEqual(['_id', 'o__when', 'o_date', 'o_ts', 't', 'ts', 'v', 'x']);
      // The order keys: the dates searches and histories sort by, in milliseconds.
      expect(raw!.o_date).toBe(Date.parse('2026-03-05T02:00:00.000Z'));
      expect(raw!.t).toEqual(expect.arrayContaining([`Patient/${person.id}`, 'http://loinc.org|718-7', 'Organization/org-donghu-county']));
    } else if (!(await database.connection.db.admin().command({ buildInfo: 1 })).ferretdbVersion) {
      const indexes = (await database.connection.db.collection('Observation').listIndexes().toArray()).map((index) => index.name);
      expect(indexes).toEqual(expect.arrayContaining(['lastUpdated', 't_code', 't_subject', 't_patient', 'sp_date_lo', 't_performer']));
    }
  });

  it('searches by identifier, reference, token, date and string, and refuses unknown parameters', async () => {
    const person = await database.store.create({ ...patient('周', '杰'), identifier: [{ system: 'https://demo/mrn', value: 'MRN-77' }] });
    const make = (code: string, date: string, status: Observation['status']): Promise<Observation> =>
      database.store.create<Observation>({ resourceType: 'Observation', status, code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: `Patient/${person.id}` }, effectiveDateTime: date });
    const hb2025 = await make('718-7', '2025-06-01T09:00:00+08:00', 'final');
    const hb2026 = await make('718-7', '2026-02-01T09:00:00+08:00', 'final');
    const glucose = await make('14749-6', '2026-02-02T09:00:00+08:00', 'preliminary');
    const ids = async (args: Record<string, string | number>): Promise<string[]> =>
      (await database.store.search('Observation', { subject: `Patient/${person.id}`, ...args })).resources.map((r) => r.id!).sort();

    expect((await database.store.search('Patient', { identifier: 'https://demo/mrn|MRN-77' })).resources.map((r) => r.id)).toEqual([person.id]);
    expect((await database.store.search('Patient', { identifier: 'MRN-77' })).resources.map((r) => r.id)).toEqual([person.id]);
    expect((await database.store.search('Patient', { name: '周杰' })).resources.map((r) => r.id)).toEqual([person.id]);
    expect(await ids({ code: 'http://loinc.org|718-7' })).toEqual([hb2025.id, hb2026.id].sort());
    expect(await ids({ code: '718-7,14749-6' })).toEqual([hb2025.id, hb2026.id, glucose.id].sort());
    expect(await ids({ patient: person.id! })).toHaveLength(3);
    expect(await ids({ date: '2026' })).toEqual([hb2026.id, glucose.id].sort());
    expect(await ids({ date: 'lt2026-01-01' })).toEqual([hb2025.id]);
    expect(await ids({ date: 'ge2026-02-02', code: 'http://loinc.org|' })).toEqual([glucose.id]);
    expect(await ids({ status: 'final' })).toEqual([hb2025.id, hb2026.id].sort());
    expect(await ids({ _id: `${glucose.id},${hb2025.id}` })).toEqual([hb2025.id, glucose.id].sort());
    expect((await database.store.search('Observation', { subject: `Patient/${person.id}`, _count: 2, _sort: '-date' })).resources.map((r) => r.id)).toEqual([glucose.id, hb2026.id]);
    // The parameters every resource has (Resource.meta.*): they found nothing before their expressions named the type.
    const tagged = await database.store.create<Observation>({ resourceType: 'Observation', status: 'final', meta: { tag: [{ system: 'https://hub.example/tags', code: '互认' }], profile: ['http://hl7.org/fhir/StructureDefinition/vitalsigns'], source: 'https://his.example/检验' }, code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] }, subject: { reference: `Patient/${person.id}` } });
    expect(await ids({ _tag: 'https://hub.example/tags|互认' })).toEqual([tagged.id]);
    expect(await ids({ _profile: 'http://hl7.org/fhir/StructureDefinition/vitalsigns' })).toEqual([tagged.id]);
    expect(await ids({ _source: 'https://his.example/检验' })).toEqual([tagged.id]);

    await expect(database.store.search('Observation', { colour: 'red' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('colour') });
    await expect(database.store.search('Observation', { date: 'gt2026-13-45' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('date') });
    await expect(database.store.search('Observation', { _count: -1 })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('refuses a list that would exceed the configured maximum instead of cutting it', async () => {
    const small = await freshDatabase('store_max', { listMaxResults: 3 });
    try {
      for (let i = 0; i < 4; i++) await small.store.create(patient('何', `${i}`));
      await expect(small.store.search('Patient', {})).rejects.toMatchObject({ code: 'TOO_MANY_RESULTS' });
      expect((await small.store.search('Patient', { _count: 2 })).resources).toHaveLength(2);
    } finally {
      await small.drop();
    }
  });

  it('treats operator objects in search values as text, never as database operators', async () => {
    await expect(database.store.search('Patient', { identifier: { $gt: '' } as never })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    expect((await database.store.search('Patient', { name: '.*' })).resources).toEqual([]);
  });

  it('marks an empty database current, reports stale search values, and reindexes them without touching versions', async () => {
    const fresh = await freshDatabase('store_reindex');
    try {
      expect(await fresh.maintenance.searchIndexStatus()).toBe('current');
      const created = await fresh.store.create(patient('司马', '相如'));
      // Simulate values extracted by an older hub that did not know `family` and had another fingerprint.
      await changeStoredValues(fresh.connection.db, 'Patient', created.id!, (sp) => delete sp.family);
      await fresh.connection.db.collection('hub_meta').updateOne({ _id: 'search-index' as never }, { $set: { fingerprint: 'older' } });
      expect(await fresh.maintenance.searchIndexStatus()).toBe('stale');
      expect((await fresh.store.search('Patient', { family: '司马' })).resources).toHaveLength(0);

      const summary = await fresh.maintenance.reindex();
      expect(summary).toEqual({ documents: 1, changed: 1 });
      expect(await fresh.maintenance.searchIndexStatus()).toBe('current');
      const found = (await fresh.store.search('Patient', { family: '司马' })).resources;
      expect(found.map((p) => [p.id, p.meta?.versionId])).toEqual([[created.id, '1']]);
      expect(await fresh.maintenance.reindex()).toEqual({ documents: 1, changed: 0 });
    } finally {
      await fresh.drop();
    }
  });

  it('stops a request that ran out of time from reaching the database again', async () => {
    const deadline = new AbortController();
    const scoped = database.store.forRequest(undefined, { signal: deadline.signal, at: Date.now() + 60_000 });
    expect((await scoped.search('Patient', { _count: 1 })).resources.length).toBeLessThanOrEqual(1);
    deadline.abort();
    const before = database.connection.commandsSent();
    await expect(scoped.search('Patient', { _count: 1 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(scoped.create(patient('超', '时'))).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(database.connection.commandsSent()).toBe(before);
  });
});

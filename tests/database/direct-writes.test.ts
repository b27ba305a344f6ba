import { readFileSync } from 'node:fs';
import type { Bundle, Patient, Resource } from '@medplum/fhirtypes';
import type { CommandStartedEvent } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ferretDbStorageOf } from '../../src/database/ferretdb-storage.ts';
import { BundleImporter } from '../../src/fhir/bundles.ts';
import { freshDatabase, postgresUrl, type TestDatabase } from '../support/hub.ts';
import { syntheaFiles } from '../support/sample-data.ts';

/**
 * On FerretDB's PostgreSQL the store inserts new documents straight into FerretDB's tables
 * (database/ferretdb-storage.ts `insertDocuments`, database/ferretdb-sjson.ts). What it writes must be exactly what
 * FerretDB writes: every document of a Synthea import, read back through FerretDB and inserted again through
 * FerretDB, must be the same `_jsonb` to the byte-for-byte equality of PostgreSQL's jsonb.
 */
const postgres = postgresUrl();

describe.skipIf(!postgres)('direct inserts on FerretDB’s PostgreSQL', () => {
  let database: TestDatabase;
  let client: pg.Client;
  const tableOf = async (collection: string): Promise<string> =>
    (await client.query<{ table: string }>(`SELECT _jsonb->>'table' AS table FROM "${database.name}"._ferretdb_database_metadata WHERE _jsonb->>'_id' = $1`, [collection])).rows[0]!.table;
  const rows = async (collection: string): Promise<number> => Number((await client.query(`SELECT count(*) AS n FROM "${database.name}"."${await tableOf(collection)}"`)).rows[0].n);

  beforeAll(async () => {
    database = await freshDatabase('direct_writes');
    client = new pg.Client({ connectionString: postgres });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await database.drop();
  });

  it('writes a Synthea import as FerretDB would: each document, read back and written again through FerretDB, is the same jsonb', async () => {
    const { providers, patients } = syntheaFiles();
    const inserts: string[] = [];
    const listener = (event: CommandStartedEvent): void => {
      if (event.commandName === 'insert') inserts.push(String(event.command.insert));
    };
    database.connection.client.on('commandStarted', listener);
    let entries = 0;
    for (const file of [...providers, ...patients]) {
      const bundle = JSON.parse(readFileSync(file, 'utf8')) as Bundle;
      entries += bundle.entry?.length ?? 0;
      const result = await new BundleImporter(database.store).import(bundle);
      expect(result.summary.failed).toBe(0);
    }
    database.connection.client.off('commandStarted', listener);
    expect(entries).toBeGreaterThan(500);
    // FerretDB was asked to insert only the write intents (and the one-time check's probe): every resource
    // document went in directly.
    expect(inserts).toContain('write_intents');
    expect(inserts.filter((name) => /^[A-Z]/.test(name))).toEqual([]);

    const collections = (await database.connection.db.listCollections({}, { nameOnly: true }).toArray())
      .map((collection) => collection.name)
      .filter((name) => /^[A-Z]/.test(name));
    expect(collections).toEqual(expect.arrayContaining(['Patient', 'Patient_history', 'Observation', 'Observation_history', 'Claim', 'Encounter']));
    let compared = 0;
    for (const name of collections) {
      const documents = await database.connection.db.collection(name).find({}).toArray();
      if (documents.length === 0) continue;
      await database.connection.db.collection(`copy_${name}`).insertMany(documents);
      const [original, copy] = [await tableOf(name), await tableOf(`copy_${name}`)];
      const differing = await client.query(
        `SELECT a._jsonb->>'_id' AS id FROM "${database.name}"."${original}" a FULL JOIN "${database.name}"."${copy}" b ON a._jsonb->'_id' = b._jsonb->'_id' WHERE a._jsonb IS DISTINCT FROM b._jsonb`,
      );
      expect(differing.rows, name).toEqual([]);
      compared += documents.length;
    }
    expect(compared).toBeGreaterThan(2 * 500);
  });

  it('keeps Chinese text, reports taken ids as the driver does, and writes nothing twice', async () => {
    const patient = (id: string, name: string): Patient => ({ resourceType: 'Patient', id, name: [{ text: name, family: name.slice(0, 1) }], gender: 'female' });
    const first = await database.store.writeMany([{ resource: patient('zh-1', '张三丰'), mode: 'create' }, { resource: patient('zh-2', '李四 "引号" \\ 换行\n'), mode: 'create' }]);
    expect(first.map((outcome) => outcome.outcome)).toEqual(['created', 'created']);
    const before = await rows('Patient');
    const historyBefore = await rows('Patient_history');
    // One id already stored, one new, and the new one twice in the same batch.
    const second = await database.store.writeMany(
      [{ resource: patient('zh-1', '张三丰'), mode: 'create' }, { resource: patient('zh-3', '王五'), mode: 'create' }, { resource: patient('zh-3', '王五'), mode: 'create' }],
      { atomic: false },
    );
    expect(second.map((outcome) => outcome.outcome)).toEqual(['unchanged', 'created', 'unchanged']);
    expect(await rows('Patient')).toBe(before + 1);
    expect(await rows('Patient_history')).toBe(historyBefore + 1);
    const read = (await database.store.readMany('Patient', ['zh-2'])).get('zh-2') as Patient;
    expect(read.name?.[0]?.text).toBe('李四 "引号" \\ 换行\n');
    const found = await database.store.search('Patient', { name: '张三丰' });
    expect(found.resources.map((resource: Resource) => resource.id)).toEqual(['zh-1']);
  });

  it('leaves to FerretDB what it cannot write as FerretDB would, and writes nothing itself', async () => {
    const storage = ferretDbStorageOf(database.connection.db)!;
    const before = await rows('Patient');
    // A bigint is not a value the store writes: not written directly, the caller goes through FerretDB.
    expect(await storage.insertDocuments(database.connection.db, 'Patient', [{ _id: 'odd-1', v: 1n }])).toBeUndefined();
    // Nor a document whose _id does not come first (FerretDB would move it), nor a collection not created yet.
    expect(await storage.insertDocuments(database.connection.db, 'Patient', [{ v: 1, _id: 'odd-2' }])).toBeUndefined();
    expect(await storage.insertDocuments(database.connection.db, 'NotYetACollection', [{ _id: 'odd-3', v: 1 }])).toBeUndefined();
    expect(await rows('Patient')).toBe(before);
  });
});

import type { Observation, Patient } from '@medplum/fhirtypes';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/database/connection.ts';
import { holdsSqliteData, startEmbeddedDatabase } from '../../src/database/embedded-database.ts';
import { EmbeddedFerretDb } from '../../src/database/embedded-ferretdb.ts';
import { migrateSqliteToPostgres } from '../../src/database/migrate.ts';
import { createHubStore } from '../../src/hub-store.ts';
import { freePort } from '../support/ports.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const storeFor = (db: Parameters<typeof createHubStore>[0]) => createHubStore(db, { listMaxResults: 1000 }).store;
const maintenanceFor = (db: Parameters<typeof createHubStore>[0]) => createHubStore(db, { listMaxResults: 1000 }).maintenance;

describe('npm run migrate (SQLite layout to PostgreSQL)', () => {
  it('copies every database and collection, re-encodes the resources, keeps the SQLite data aside, and the next start uses PostgreSQL', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hub-migrate-'));
    chmodSync(dataDir, 0o755);
    dirs.push(dataDir);

    // A data folder of the earlier layout: FerretDB on SQLite, with a hub database and another one.
    const sqlite = new EmbeddedFerretDb({ dataDir: join(dataDir, 'ferretdb'), port: await freePort() });
    await sqlite.start();
    const before = openDatabase(sqlite.uri, 'hub', 5000);
    const store = storeFor(before.db);
    await maintenanceFor(before.db).ensureIndexes();
    const patient = await store.create<Patient>({ resourceType: 'Patient', name: [{ text: '欧阳秀英' }], identifier: [{ system: 'urn:oid:2.16.156.10011.1.3', value: '11010519491231002X' }] });
    const observations: Observation[] = [];
    for (let i = 0; i < 5; i++) {
      observations.push(
        await store.create<Observation>({
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '718-7', display: '血红蛋白' }] },
          subject: { reference: `Patient/${patient.id}` },
          effectiveDateTime: `2026-0${i + 1}-15`,
          valueQuantity: { value: 120 + i, unit: 'g/L' },
        }),
      );
    }
    await store.update<Patient>({ ...patient, gender: 'female' });
    await before.db.collection('notes').insertOne({ _id: 'n1' as never, text: '转诊中心值班表', at: new Date('2026-11-01T08:00:00Z') });
    await before.db.collection('notes').createIndex({ text: 1 }, { name: 'by_text' });
    await before.client.db('other').collection('things').insertMany([{ n: 1 }, { n: 2 }]);
    await before.close();
    await sqlite.stop();

    const lines: string[] = [];
    const report = await migrateSqliteToPostgres({ dataDir, maintenanceFor, log: (line) => lines.push(line) });
    expect(report.databases.map((d) => d.name).sort()).toEqual(['hub', 'other']);
    expect(report.databases.find((d) => d.name === 'other')).toMatchObject({ collections: 1, documents: 2 });
    expect(lines).toContain('hub.Observation: 5 documents');
    expect(holdsSqliteData(report.backup)).toBe(true);
    expect(holdsSqliteData(join(dataDir, 'ferretdb'))).toBe(false);
    expect(readdirSync(dataDir).some((name) => name.endsWith('.migrating'))).toBe(false);

    // Migrating again finds nothing to move and changes nothing.
    await expect(migrateSqliteToPostgres({ dataDir, maintenanceFor })).rejects.toThrow(/nothing to migrate/);

    const embedded = await startEmbeddedDatabase({ dataDir, ferretdbPort: await freePort(), postgresPort: await freePort(), backend: 'auto' });
    try {
      expect(embedded.backend).toBe('postgresql');
      const after = openDatabase(embedded.uri, 'hub', 5000, undefined, { url: embedded.postgresUrl! });
      try {
        const migrated = storeFor(after.db);
        const read = await migrated.read<Patient>('Patient', patient.id!);
        expect(read.name?.[0]?.text).toBe('欧阳秀英');
        expect(read.meta?.versionId).toBe('2');
        expect((await migrated.history('Patient', patient.id!)).map((entry) => entry.versionId)).toEqual(['2', '1']);
        const found = await migrated.search('Observation', { subject: `Patient/${patient.id}`, code: 'http://loinc.org|718-7', _sort: '-date', _count: 3 });
        expect(found.resources.map((resource) => (resource as Observation).effectiveDateTime)).toEqual(['2026-05-15', '2026-04-15', '2026-03-15']);
        expect((found.resources[0] as Observation).code.coding?.[0]?.display).toBe('血红蛋白');
        expect(await after.db.collection('notes').findOne({ _id: 'n1' as never })).toEqual({ _id: 'n1', text: '转诊中心值班表', at: new Date('2026-11-01T08:00:00Z') });
        expect((await after.db.collection('notes').listIndexes().toArray()).map((index) => index.name)).toContain('by_text');
        expect(await after.client.db('other').collection('things').countDocuments({})).toBe(2);
      } finally {
        await after.close();
      }
    } finally {
      await embedded.stop();
    }
    expect(existsSync(join(dataDir, 'postgres', 'cluster', 'PG_VERSION'))).toBe(true);
  });
});

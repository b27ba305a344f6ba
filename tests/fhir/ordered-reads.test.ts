import type { Observation, Patient } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ferretDbStorageOf } from '../../src/database/ferretdb-storage.ts';
import { searchConnection } from '../../src/fhir/connection.ts';
import { freshDatabase, type TestDatabase } from '../support/hub.ts';

/**
 * Pages sorted by a date: on the embedded database the store reads them from PostgreSQL in that order, a batch
 * at a time, and stops once the page is full (fhir/store.ts orderedPage). Whatever the path, a page must be
 * exactly the slice MongoDB would return: ties broken by id, resources without the date first ascending and
 * last descending, the filter applied before paging.
 */
let database: TestDatabase;
let patientId: string;
const observations: Observation[] = [];

beforeAll(async () => {
  database = await freshDatabase('ordered');
  const patient: Patient = { resourceType: 'Patient', id: 'ordered-pat', name: [{ text: '顺序测试' }], gender: 'male', birthDate: '1970-01-01' };
  patientId = patient.id!;
  for (let i = 0; i < 160; i++) {
    // 20 distinct instants (many ties), every 16th without a date, every 7th preliminary.
    const day = String(1 + (i % 20)).padStart(2, '0');
    observations.push({
      resourceType: 'Observation',
      id: `ord-${String((i * 37) % 160).padStart(3, '0')}`,
      status: i % 7 === 0 ? 'preliminary' : 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '718-7' }], text: '血红蛋白' },
      subject: { reference: `Patient/${patientId}` },
      ...(i % 16 === 5 ? {} : { effectiveDateTime: `2025-03-${day}T08:00:00Z` }),
      valueQuantity: { value: 100 + i, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
    });
  }
  await database.store.putMany([patient, ...observations]);
});
afterAll(async () => database.drop());

/** The ids MongoDB would return: by the date's start (missing lowest), then id ascending. */
function expected(direction: 1 | -1, statuses: string[]): string[] {
  const when = (o: Observation): number => (o.effectiveDateTime ? Date.parse(o.effectiveDateTime) : -Infinity);
  return observations
    .filter((o) => statuses.includes(o.status))
    .sort((a, b) => (when(a) - when(b)) * direction || (a.id! < b.id! ? -1 : a.id! > b.id! ? 1 : 0))
    .map((o) => o.id!);
}

describe('pages sorted by a date', () => {
  for (const direction of [-1, 1] as const) {
    it(`${direction === -1 ? 'newest' : 'oldest'} first: every page is the exact slice, across batches and ties`, async () => {
      const all = expected(direction, ['final', 'preliminary']);
      for (const offset of [0, 17, 90, 140, 155]) {
        const page = await database.store.search('Observation', { subject: `Patient/${patientId}`, _sort: direction === -1 ? '-date' : 'date', _count: 25, _offset: offset });
        expect(page.resources.map((r) => r.id)).toEqual(all.slice(offset, offset + 25));
      }
    });
  }

  it('applies the filter before paging (only the matching ones fill the page)', async () => {
    const finals = expected(-1, ['final']);
    const page = await database.store.search('Observation', { subject: `Patient/${patientId}`, status: 'final', _sort: '-date', _count: 70, _offset: 60 });
    expect(page.resources.map((r) => r.id)).toEqual(finals.slice(60, 130));
    // A rare filter: the page fills only after several batches (64 documents each), read after one another.
    for (const direction of [-1, 1] as const) {
      const rare = await database.store.search('Observation', { subject: `Patient/${patientId}`, status: 'preliminary', _sort: direction === -1 ? '-date' : 'date', _count: 20 });
      expect(rare.resources.map((r) => r.id)).toEqual(expected(direction, ['preliminary']).slice(0, 20));
    }
    const ranged = await database.store.search('Observation', { subject: `Patient/${patientId}`, date: 'ge2025-03-15', _sort: 'date', _count: 200 });
    const inRange = observations.filter((o) => o.effectiveDateTime && o.effectiveDateTime >= '2025-03-15').length;
    expect(ranged.resources).toHaveLength(inRange);
    expect((ranged.resources as Observation[]).map((r) => r.effectiveDateTime)).toEqual([...(ranged.resources as Observation[]).map((r) => r.effectiveDateTime)].sort());
  });

  it('sees a date changed by an update at its new place', async () => {
    const moved = observations.find((o) => o.effectiveDateTime)!;
    await database.store.update({ ...moved, effectiveDateTime: '2030-01-01T00:00:00Z' });
    const newest = await database.store.search('Observation', { subject: `Patient/${patientId}`, _sort: '-date', _count: 1 });
    expect(newest.resources.map((r) => r.id)).toEqual([moved.id]);
    const oldest = await database.store.search('Observation', { subject: `Patient/${patientId}`, _sort: 'date', _count: 200 });
    expect(oldest.resources.at(-1)?.id).toBe(moved.id);
  });

  it('reads each keyset page by _lastUpdated from its cursor on, not from the first resource again', async () => {
    const everything = await database.store.search('Observation', { _sort: '_lastUpdated', _count: 500 });
    expect(everything.resources.length).toBe(160);
    const storage = ferretDbStorageOf(database.connection.db);
    const sent: unknown[][] = [];
    const stop = storage?.onStatement((_text, values) => sent.push(values));
    const seen: string[] = [];
    let cursor: string | null = null;
    let lastOfPage: string | undefined;
    do {
      sent.length = 0;
      const page = await searchConnection(database.store, 'Observation', { _sort: '_lastUpdated', _count: 25, ...(cursor ? { _cursor: cursor } : {}) }, { defaultCount: 25, maxCount: 100 });
      const ids = page.edges.map((edge) => edge.resource.id!);
      // On the embedded database a later page's ordered read starts after the previous page's last resource.
      if (storage && lastOfPage) expect(sent.some((values) => values.includes(JSON.stringify(lastOfPage)))).toBe(true);
      seen.push(...ids);
      lastOfPage = ids.at(-1);
      cursor = page.next;
    } while (cursor);
    stop?.();
    expect(seen).toEqual(everything.resources.map((r) => r.id));
  });
});

/**
 * Identity rules of docs/consortium.md against the real database: national IDs validated on every
 * write, automatic links only on an exact valid ID (in any order of arrival), weak matches only reported,
 * manual link and unlink with a reason, source records never changed.
 */
import { readFileSync } from 'node:fs';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleImporter } from '../../src/fhir/bundles.ts';
import { PersonDirectory } from '../../src/identity/linking.ts';
import { makeNationalId, nationalIdCheckCharacter } from '../../src/identity/national-id.ts';
import { PatientHistory } from '../../src/identity/patient-history.ts';
import { DEFAULT_NATIONAL_ID_SYSTEM } from '../../src/identity/patient-identity.ts';
import { freshDatabase, type TestDatabase } from '../support/hub.ts';
import { syntheaFiles } from '../support/sample-data.ts';
import { importFiles } from '../../src/fhir/import-files.ts';

let database: TestDatabase;
let directory: PersonDirectory;
beforeAll(async () => {
  database = await freshDatabase('identity');
  directory = new PersonDirectory(database.store, database.collections, DEFAULT_NATIONAL_ID_SYSTEM);
  await directory.ensureIndexes();
});
afterAll(async () => database.drop());

const nid = DEFAULT_NATIONAL_ID_SYSTEM;
let sequence = 100;
function record(member: string, name: string, birthDate: string, gender: 'male' | 'female', nationalId?: string): Patient {
  sequence += 1;
  return {
    resourceType: 'Patient',
    id: `${member}-${sequence}`,
    identifier: [
      { system: `https://example.cn/sid/${member}/mrn`, value: `MRN${sequence}` },
      ...(nationalId ? [{ system: nid, value: nationalId }] : []),
    ],
    name: [{ use: 'official', text: name }],
    gender,
    birthDate,
    managingOrganization: { reference: `Organization/${member}` },
  };
}
const recordIds = async (selector: Parameters<PersonDirectory['person']>[0]): Promise<string[]> =>
  (await directory.person(selector)).records.map((patient) => patient.id!).sort();
async function patientCount(): Promise<number> {
  return database.connection.db.collection('Patient').countDocuments({});
}

describe('national ID validation', () => {
  it('refuses a Patient with an invalid national ID on create, update and import, naming it, and writes nothing', async () => {
    const valid = makeNationalId('430621', '1980-05-06', 12, 'female');
    const wrongCheck = valid.slice(0, 17) + (valid[17] === '0' ? '1' : '0');
    const before = await patientCount();
    await expect(database.store.create(record('m1', '李娜', '1980-05-06', 'female', wrongCheck))).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      message: expect.stringMatching(/Patient\.identifier\[1\].*check character/),
    });
    await expect(database.store.create(record('m1', '李娜', '1980-05-06', 'female', '43062119801340012X'))).rejects.toThrow(/birth date/);
    await expect(database.store.create(record('m1', '李娜', '1980-05-06', 'female', '4306211980'))).rejects.toThrow(/17 digits/);
    const twoIds = record('m1', '李娜', '1980-05-06', 'female', valid);
    twoIds.identifier!.push({ system: nid, value: makeNationalId('430621', '1981-05-06', 12, 'female') });
    await expect(database.store.create(twoIds)).rejects.toThrow(/one national ID/);
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: record('m1', '周芳', '1990-01-01', 'female'), request: { method: 'PUT', url: 'Patient/ok-1' } },
        { resource: { ...record('m2', '周芳', '1990-01-01', 'female', wrongCheck), id: 'bad-1' }, request: { method: 'PUT', url: 'Patient/bad-1' } },
      ],
    };
    bundle.entry![0]!.resource!.id = 'ok-1';
    await expect(new BundleImporter(database.store).import(bundle)).rejects.toThrow(/entry 1 .*national ID/i);
    expect(await patientCount()).toBe(before);

    const stored = await database.store.create(record('m1', '李娜', '1980-05-06', 'female', valid));
    await expect(database.store.update({ ...stored, identifier: [{ system: nid, value: wrongCheck }] })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    expect((await database.store.read('Patient', stored.id!)).meta?.versionId).toBe('1');
  });
});

describe('automatic links', () => {
  it('links records with the same valid national ID whatever the order of arrival, and only those', async () => {
    const orders = [
      [0, 1, 2],
      [2, 1, 0],
      [1, 2, 0],
    ];
    for (const [run, order] of orders.entries()) {
      const id = makeNationalId('430626', `196${run}-02-03`, 41, 'male');
      const records = [
        record('township', '黄德胜', `196${run}-02-03`, 'male', id),
        record('county', '黄德胜', `196${run}-02-03`, 'male', id),
        // The provincial record arrives without the ID and gets it in a later version.
        record('provincial', '黄德胜', `196${run}-02-03`, 'male'),
      ];
      for (const index of order) {
        const created = await database.store.create(records[index]!, { id: records[index]!.id });
        if (index === 2) {
          expect(await recordIds({ patient: created.id })).toEqual([created.id]);
          await database.store.update({ ...created, identifier: [...created.identifier!, { system: nid, value: id }] });
        }
      }
      const expected = records.map((r) => r.id!).sort();
      expect(await recordIds({ identifier: id })).toEqual(expected);
      expect(await recordIds({ identifier: `${nid}|${id}` })).toEqual(expected);
      expect(await recordIds({ identifier: `https://example.cn/sid/county/mrn|${records[1]!.identifier![0]!.value}` })).toEqual(expected);
      expect(await recordIds({ patient: records[2]!.id })).toEqual(expected);
    }
  });

  it('a national ID written with a lower-case x joins the person and is found in either case, kept as written', async () => {
    let sequenceWithX = 0;
    while (!makeNationalId('430621', '1988-03-08', sequenceWithX, 'female').endsWith('X')) sequenceWithX++;
    const withX = `${makeNationalId('430621', '1988-03-08', sequenceWithX, 'female').slice(0, 17)}x`;
    const lower = record('clinic-x', '刘小红', '1988-03-08', 'female', withX);
    const upper = record('county-x', '刘小红', '1988-03-08', 'female', withX.toUpperCase());
    await database.store.putMany([lower, upper]);
    expect(await recordIds({ identifier: withX })).toEqual([lower.id, upper.id].sort());
    for (const value of [withX, withX.toUpperCase()]) {
      const found = await database.store.search('Patient', { identifier: `${nid}|${value}` });
      expect(found.resources.map((p) => p.id).sort()).toEqual([lower.id, upper.id].sort());
      const bare = await database.store.search('Patient', { identifier: value });
      expect(bare.resources.map((p) => p.id).sort()).toEqual([lower.id, upper.id].sort());
    }
    const stored = await database.store.read<Patient>('Patient', lower.id!);
    expect(stored.identifier?.find((i) => i.system === nid)?.value).toBe(withX);
  });

  it('never links weak matches, and reports them as possible duplicates', async () => {
    const a = await database.store.create(record('township', '赵桂兰', '1956-03-12', 'female'), { id: 'weak-a' });
    const b = await database.store.create(record('county', '赵桂兰', '1956-03-12', 'female'), { id: 'weak-b' });
    const right = makeNationalId('430621', '1971-10-08', 356, 'male');
    const typo = makeNationalId('430621', '1974-10-08', 356, 'male');
    expect(typo.slice(0, 17).split('').filter((digit, i) => digit !== right[i]).length).toBe(1);
    const c = await database.store.create(record('township', '孙立新', '1971-10-08', 'male', right), { id: 'typo-c' });
    const d = await database.store.create(record('county', '孙立新', '1974-10-08', 'male', typo), { id: 'typo-d' });
    expect(await recordIds({ patient: a.id })).toEqual(['weak-a']);
    expect(await recordIds({ patient: b.id })).toEqual(['weak-b']);
    expect(await recordIds({ patient: c.id })).toEqual(['typo-c']);
    expect(await recordIds({ patient: d.id })).toEqual(['typo-d']);

    const duplicates = await directory.possibleDuplicates(100);
    const pairs = duplicates.map((pair) => `${pair.reason}:${pair.records.map((p) => p.id).join('+')}`);
    expect(pairs).toContain('SAME_NAME_BIRTH_DATE_SEX:weak-a+weak-b');
    expect(pairs).toContain('NATIONAL_ID_ONE_DIGIT_APART:typo-c+typo-d');
    // Records already one person (same ID) are not reported.
    expect(duplicates.every((pair) => pair.persons[0] !== pair.persons[1])).toBe(true);
    // A valid ID with one wrong digit and its check character unchanged is refused, not stored.
    const oneDigit = right.slice(0, 5) + String((Number(right[5]) + 1) % 10) + right.slice(6);
    expect(nationalIdCheckCharacter(oneDigit.slice(0, 17))).not.toBe(oneDigit[17]);
    await expect(database.store.create(record('county', '孙立新', '1971-10-08', 'male', oneDigit))).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});

describe('manual links', () => {
  it('links with a reason without changing the records, and unlink restores the state before', async () => {
    const a = await database.store.create(record('township', '陈秀英', '1948-07-30', 'female'), { id: 'manual-a' });
    const b = await database.store.create(record('county', '陈秀英', '1948-07-30', 'female'), { id: 'manual-b' });
    const before = await directory.person({ patient: 'manual-b' });
    await expect(directory.link('manual-b', { patient: 'manual-a' }, ' ', 'admin-1')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });

    const linked = await directory.link('manual-b', { patient: 'manual-a' }, '电话核实为同一人', 'admin-1');
    expect(linked.records.map((p) => p.id).sort()).toEqual(['manual-a', 'manual-b']);
    expect(await recordIds({ patient: 'manual-a' })).toEqual(['manual-a', 'manual-b']);
    await expect(directory.link('manual-b', { patient: 'manual-a' }, 'again', 'admin-1')).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await database.store.read<Patient>('Patient', 'manual-b')).meta?.versionId).toBe(b.meta?.versionId);
    expect((await database.store.read<Patient>('Patient', 'manual-a')).meta?.versionId).toBe(a.meta?.versionId);
    expect((await directory.possibleDuplicates(100)).some((pair) => pair.records.some((p) => p.id === 'manual-b'))).toBe(false);

    const unlinked = await directory.unlink('manual-b', '核实有误', 'admin-2');
    expect(unlinked).toEqual(before);
    expect(await recordIds({ patient: 'manual-a' })).toEqual(['manual-a']);
    const events = await directory.linkEvents(['manual-b']);
    expect(events.map((event) => [event.action, event.reason, event.by])).toEqual([
      ['unlink', '核实有误', 'admin-2'],
      ['link', '电话核实为同一人', 'admin-1'],
    ]);
    await expect(directory.unlink('manual-b', 'nothing to undo', 'admin-2')).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('detaches a record linked by a national ID, and a later unlink restores the automatic link', async () => {
    const id = makeNationalId('430102', '1975-12-01', 77, 'female');
    await database.store.create(record('township', '杨玉梅', '1975-12-01', 'female', id), { id: 'auto-a' });
    await database.store.create(record('county', '杨玉梅', '1975-12-01', 'female', id), { id: 'auto-b' });
    expect(await recordIds({ identifier: id })).toEqual(['auto-a', 'auto-b']);
    const detached = await directory.unlink('auto-b', '身份证号录入错误', 'admin-1');
    expect(detached.records.map((p) => p.id)).toEqual(['auto-b']);
    expect(await recordIds({ patient: 'auto-a' })).toEqual(['auto-a']);
    // The ID now names records of two persons: a bare ID is ambiguous.
    await expect(directory.person({ identifier: id })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await directory.unlink('auto-b', '核实无误，恢复', 'admin-1');
    expect(await recordIds({ identifier: id })).toEqual(['auto-a', 'auto-b']);
  });

  it('refuses unknown records and malformed selectors', async () => {
    await expect(directory.person({ patient: 'no-such' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(directory.person({ identifier: '43062119800506001X' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(directory.person({ identifier: 'x', patient: 'y' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(directory.person({ person: '{"$gt":""}' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(directory.link('no-such', { patient: 'manual-a' }, 'reason', 'admin')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('Synthea records', () => {
  it('stay single-record persons without a national ID and still have a history', async () => {
    const { providers, patients } = syntheaFiles();
    await importFiles(database.store, providers);
    const bundle = JSON.parse(readFileSync(patients[0]!, 'utf8')) as Bundle;
    await new BundleImporter(database.store).import(bundle);
    const patient = bundle.entry!.find((entry) => entry.resource?.resourceType === 'Patient')!.resource as Patient;
    const stored = (await database.store.search('Patient', { _id: patient.id! })).resources;
    expect(stored).toHaveLength(1);
    const person = await directory.person({ patient: patient.id });
    expect(person.records.map((p) => p.id)).toEqual([patient.id]);
    const encounters = bundle.entry!.filter((entry) => entry.resource?.resourceType === 'Encounter').length;
    const history = await new PatientHistory(database.store, directory).page({ patient: patient.id }, { types: ['Encounter'] }, 200);
    expect(history.entries.length).toBe(Math.min(encounters, 200));
    expect(encounters).toBeGreaterThan(0);
  });
});

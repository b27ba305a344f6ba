/**
 * Search semantics on HL7's official R4 examples (npm hl7.fhir.r4.examples@4.0.1). Every expected list below
 * was derived by reading the example files, not by running the hub.
 */
import { readFileSync } from 'node:fs';
import type { Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SearchArguments } from '../../src/fhir/search-query.ts';
import { freshDatabase, type TestDatabase } from '../support/hub.ts';
import { hl7ExampleFiles } from '../support/sample-data.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await freshDatabase('hl7_examples');
  const resources = hl7ExampleFiles(['Observation', 'Patient']).map((file) => JSON.parse(readFileSync(file, 'utf8')) as Resource);
  const outcomes = await database.store.putMany(resources);
  expect(outcomes.every((outcome) => outcome.outcome === 'created')).toBe(true);
  await database.store.create({ resourceType: 'Patient', id: undefined, name: [{ family: 'Müller', given: ['Zoë'] }] } as Resource);
});
afterAll(async () => database.drop());

async function ids(type: string, args: SearchArguments): Promise<string[]> {
  return (await database.store.search(type, args)).resources.map((resource) => resource.id as string).sort();
}

describe('search on the HL7 R4 examples', () => {
  it('token: system|code, code, :not', async () => {
    expect(await ids('Observation', { code: 'http://loinc.org|8302-2' })).toEqual(['body-height', 'body-length']);
    expect(await ids('Observation', { code: '8306-3' })).toEqual(['body-length']);
    expect(await ids('Observation', { status: 'cancelled' })).toEqual(['blood-pressure-cancel', 'unsat']);
    expect(await ids('Observation', { subject: 'Patient/f001', code_not: 'http://loinc.org|15074-8' })).toEqual(['ekg', 'f002', 'f003', 'f004', 'f005']);
    expect(await ids('Patient', { gender: 'female' })).toEqual(['animal', 'genetics-example1', 'infant-mom', 'infant-twin-1', 'mom', 'pat4', 'proband']);
  });

  it('reference: Type/id, id, and :missing', async () => {
    expect(await ids('Observation', { subject: 'Patient/infant' })).toEqual(['bgpanel', 'bloodgroup', 'rhstatus', 'secondsmoke', 'trachcare', 'vomiting']);
    expect(await ids('Observation', { patient: 'pat2' })).toEqual(['bmd', 'date-lastmp']);
    expect(await ids('Observation', { subject_missing: true })).toEqual(['decimal', 'vp-oyster']);
  });

  it('date: a day, periods, prefixes, and time zones', async () => {
    expect(await ids('Observation', { date: '2016-05-18' })).toEqual([
      '10minute-apgar-score', '1minute-apgar-score', '20minute-apgar-score', '2minute-apgar-score', '5minute-apgar-score', 'eye-color', 'secondsmoke', 'vomiting',
    ]);
    // Patient f001's observations are Periods from 2 April 2013 (f001 without an end) to 5 April; ekg is 2015.
    expect(await ids('Observation', { subject: 'Patient/f001', date: 'eq2013-04-05' })).toEqual(['f005']);
    expect(await ids('Observation', { subject: 'Patient/f001', date: 'lt2013-04-03' })).toEqual(['f001', 'f002', 'f003', 'f004', 'unsat']);
    expect(await ids('Observation', { subject: 'Patient/f001', date: 'sa2013-04-03' })).toEqual(['ekg', 'f005']);
    expect(await ids('Observation', { subject: 'Patient/f001', date: 'ge2013-04-04' })).toEqual(['ekg', 'f001', 'f002', 'f003', 'f004', 'f005', 'unsat']);
    expect(await ids('Patient', { birthdate: 'lt1940' })).toEqual(['glossy', 'xcda']);
    expect(await ids('Patient', { birthdate: 'ge2017' })).toEqual(['infant-twin-1', 'infant-twin-2', 'newborn']);
    expect(await ids('Patient', { birthdate: '1974-12-25' })).toEqual(['ch-example', 'example']);
    expect(await ids('Patient', { birthdate: 'eq1982-01' })).toEqual(['pat3']);
    expect(await ids('Patient', { birthdate: 'ne1974-12-25', family: 'chalmers' })).toEqual([]);
  });

  it('string: starts-with, case- and accent-insensitive, :exact, :contains, Chinese', async () => {
    expect(await ids('Patient', { name: 'sol' })).toEqual(['infant-mom', 'infant-twin-1', 'infant-twin-2']);
    expect(await ids('Patient', { name: 'BROOK' })).toEqual(['ihe-pcd']);
    expect(await ids('Patient', { family: 'everywoman' })).toEqual(['genetics-example1', 'mom']);
    expect(await ids('Patient', { name_exact: 'Solo' })).toEqual(['infant-mom', 'infant-twin-1', 'infant-twin-2']);
    expect(await ids('Patient', { name_exact: 'solo' })).toEqual([]);
    expect(await ids('Patient', { name_contains: 'heuv' })).toEqual(['f001']);
    expect(await ids('Patient', { name: '张' })).toEqual(['ch-example']);
    expect(await ids('Patient', { name: '张无忌' })).toEqual(['ch-example']);
    expect((await database.store.search('Patient', { name: 'zoe' })).resources).toHaveLength(1);
    expect((await database.store.search('Patient', { family: 'MULLER' })).resources).toHaveLength(1);
  });

  it('quantity: prefixes, precision and units', async () => {
    expect(await ids('Observation', { value_quantity: 'gt100' })).toEqual(['656', 'example', 'f204']);
    expect(await ids('Observation', { value_quantity: '6.3|http://unitsofmeasure.org|mmol/L' })).toEqual(['f001']);
    expect(await ids('Observation', { value_quantity: '6.2' })).toEqual(['f003']);
    expect(await ids('Observation', { value_quantity: 'ge36.5||Cel' })).toEqual(['body-temperature', 'f202']);
    expect(await ids('Observation', { value_quantity: 'lt1|http://unitsofmeasure.org|g/cm-2' })).toEqual(['bmd']);
  });

  it('comma is OR, several parameters are AND, and _sort takes several keys', async () => {
    expect(await ids('Observation', { code: 'http://loinc.org|8310-5,http://loinc.org|8867-4' })).toEqual(['body-temperature', 'f202', 'heart-rate']);
    expect(await ids('Observation', { code: 'http://loinc.org|8310-5', status: 'final' })).toEqual(['body-temperature']);
    const sorted = await database.store.search('Patient', { family: 'solo,everywoman', _sort: '-birthdate,_id' });
    expect(sorted.resources.map((resource) => resource.id)).toEqual(['infant-twin-1', 'infant-twin-2', 'infant-mom', 'genetics-example1', 'mom']);
  });

  it('composite: both parts must come from the same element', async () => {
    // blood-pressure has systolic (8480-6) 107 mm[Hg] and diastolic (8462-4) 60; blood-pressure-dar has systolic 107 only
    // (its diastolic has no value); blood-pressure-cancel has no values.
    expect(await ids('Observation', { component_code_value_quantity: 'http://loinc.org|8480-6$gt100' })).toEqual(['blood-pressure', 'blood-pressure-dar']);
    expect(await ids('Observation', { component_code_value_quantity: '8462-4$lt100' })).toEqual(['blood-pressure']);
    // 60 belongs to the diastolic component, so a systolic below 100 matches nothing.
    expect(await ids('Observation', { component_code_value_quantity: 'http://loinc.org|8480-6$lt100' })).toEqual([]);
    expect(await ids('Observation', { component_code_value_quantity: '8480-6$107|http://unitsofmeasure.org|mm[Hg]' })).toEqual(['blood-pressure', 'blood-pressure-dar']);
    // bloodgroup and rhstatus both carry code 883-9 with value SNOMED 112144000 (Blood group A).
    expect(await ids('Observation', { code_value_concept: 'http://loinc.org|883-9$http://snomed.info/sct|112144000' })).toEqual(['bloodgroup', 'rhstatus']);
    expect(await ids('Observation', { code_value_concept: 'http://loinc.org|883-9$http://snomed.info/sct|165743006' })).toEqual([]);
    expect(await ids('Observation', { combo_code_value_quantity: '8462-4$60' })).toEqual(['blood-pressure']);
    // combo-code is code | component.code, searched through both (its values are not stored twice).
    expect(await ids('Observation', { combo_code: 'http://loinc.org|8480-6' })).toEqual(['blood-pressure', 'blood-pressure-cancel', 'blood-pressure-dar']);
    expect(await ids('Observation', { subject: 'Patient/example', code: 'http://loinc.org|85354-9', combo_code_not: 'http://loinc.org|8480-6' })).toEqual([]);
    expect(await ids('Observation', { combo_code: 'http://loinc.org|85354-9', combo_value_quantity_missing: true })).toEqual(['blood-pressure-cancel']);
    await expect(ids('Observation', { code_value_concept: 'http://loinc.org|883-9' })).rejects.toThrow(/joined by \$/);
  });

  it('_and repeats a parameter (AND) in FHIR REST syntax, modifiers included', async () => {
    // Patient f001's observations: f001 (from 2 April 2013, no end), f002-f004 and unsat (2-3 April), f005 (5 April), ekg (2015);
    // f001 and unsat are glucose (LOINC 15074-8).
    expect(await ids('Observation', { subject: 'Patient/f001', _and: ['date=ge2013-04-03', 'date=lt2013-04-05'] })).toEqual(['f001', 'f002', 'f003', 'f004', 'unsat']);
    expect(await ids('Observation', { _and: ['subject=Patient/f001', 'date=ge2013-04-03', 'date=lt2013-04-05', 'code:not=http://loinc.org|15074-8'] })).toEqual(['f002', 'f003', 'f004']);
    expect(await ids('Patient', { _and: ['name=sol', 'name:exact=Solo', 'birthdate=ge2017'] })).toEqual(['infant-twin-1', 'infant-twin-2']);
    expect(await ids('Observation', { _and: ['component-code-value-quantity=http://loinc.org|8480-6$gt100', 'status=final', 'patient:missing=false'] })).toEqual(['blood-pressure', 'blood-pressure-dar']);
    await expect(ids('Patient', { _and: ['name'] })).rejects.toThrow(/name=value/);
    await expect(ids('Patient', { _and: ['_count=5'] })).rejects.toThrow(/_count/);
    await expect(ids('Patient', { _and: ['shoe-size=42'] })).rejects.toThrow(/shoe_size/);
    await expect(ids('Patient', { _and: Array.from({ length: 21 }, () => 'name=a') })).rejects.toThrow(/at most 20/);
  });

  it('names an unknown parameter, modifier or malformed value', async () => {
    await expect(ids('Patient', { shoe_size: '42' })).rejects.toThrow(/shoe_size/);
    await expect(ids('Patient', { birthdate_not: '1974' })).rejects.toThrow(/birthdate_not/);
    await expect(ids('Observation', { value_quantity: 'gtabc' })).rejects.toThrow(/value_quantity/);
    await expect(ids('Observation', { subject_missing: 'maybe' })).rejects.toThrow(/true or false/);
  });
});

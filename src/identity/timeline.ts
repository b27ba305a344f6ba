/**
 * Which resources make up a person's history, and the two values stored with each of them so that the
 * history can be read newest first, a page at a time, with a few queries:
 *
 * - `_when`: the date the entry stands at (start of the encounter, time of the observation or report, when the
 *   referral or prescription was written, onset of the condition), falling back to when the hub received it;
 * - `_org`: the organisations the resource itself names as its source (service provider, performer,
 *   requester). When it names none, the source is the organisation that holds the patient record.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { DateRange } from '../fhir/search-index.ts';
import { parameterValue } from '../fhir/search-parameters.ts';

export interface TimelineType {
  /** date search parameters (codes) in order of preference */
  dates: string[];
  /** reference search parameters (codes) naming the source organisation */
  sources: string[];
  /** the token parameter the `code` filter matches */
  code: string;
}

/** The derived keys of a history entry: its date (the order of a person's history) and its source organisations. */
export const WHEN_KEY = '_when';
export const SOURCE_KEY = '_org';

export const timelineTypes = {
  Encounter: { dates: ['date'], sources: ['service-provider'], code: 'type' },
  Observation: { dates: ['date', 'value-date'], sources: ['performer'], code: 'code' },
  DiagnosticReport: { dates: ['date', 'issued'], sources: ['performer'], code: 'code' },
  ServiceRequest: { dates: ['authored', 'occurrence'], sources: ['requester'], code: 'code' },
  Condition: { dates: ['onset-date', 'recorded-date'], sources: [], code: 'code' },
  MedicationRequest: { dates: ['authoredon', 'date'], sources: ['requester'], code: 'code' },
} satisfies Record<string, TimelineType>;

export type TimelineResourceType = keyof typeof timelineTypes;
export const timelineResourceTypes = Object.keys(timelineTypes) as TimelineResourceType[];

export function isTimelineType(type: string): type is TimelineResourceType {
  return type in timelineTypes;
}

/** `_when` and `_org` for a resource of a timeline type, computed from its extracted search values. */
export function timelineValues(resource: Resource, searchValues: Record<string, unknown>): Record<string, unknown> {
  if (!isTimelineType(resource.resourceType)) return {};
  const spec: TimelineType = timelineTypes[resource.resourceType];
  const value = (code: string): unknown => parameterValue(resource.resourceType, code, searchValues);
  const date = spec.dates.map((code) => (value(code) as DateRange | undefined)?.lo).find((found) => found instanceof Date);
  const lastUpdated = resource.meta?.lastUpdated ? new Date(resource.meta.lastUpdated) : new Date();
  const organizations = spec.sources.flatMap((code) => ((value(code) as string[] | undefined) ?? []).filter((ref) => ref.startsWith('Organization/')));
  return { [WHEN_KEY]: date ?? lastUpdated, ...(organizations.length > 0 ? { [SOURCE_KEY]: [...new Set(organizations)] } : {}) };
}

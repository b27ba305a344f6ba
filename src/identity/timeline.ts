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

export interface TimelineType {
  /** date search parameters (keys) in order of preference */
  dates: string[];
  /** reference search parameters (keys) naming the source organisation */
  sources: string[];
  /** the token parameter the `code` filter matches */
  code: string;
}

export const timelineTypes = {
  Encounter: { dates: ['date'], sources: ['service_provider'], code: 'type' },
  Observation: { dates: ['date', 'value_date'], sources: ['performer'], code: 'code' },
  DiagnosticReport: { dates: ['date', 'issued'], sources: ['performer'], code: 'code' },
  ServiceRequest: { dates: ['authored', 'occurrence'], sources: ['requester'], code: 'code' },
  Condition: { dates: ['onset_date', 'recorded_date'], sources: [], code: 'code' },
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
  const date = spec.dates.map((key) => (searchValues[key] as DateRange | undefined)?.lo).find((value) => value instanceof Date);
  const lastUpdated = resource.meta?.lastUpdated ? new Date(resource.meta.lastUpdated) : new Date();
  const organizations = spec.sources.flatMap((key) => ((searchValues[key] as string[] | undefined) ?? []).filter((ref) => ref.startsWith('Organization/')));
  return { _when: date ?? lastUpdated, ...(organizations.length > 0 ? { _org: [...new Set(organizations)] } : {}) };
}

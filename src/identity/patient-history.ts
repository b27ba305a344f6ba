/**
 * A person's history: one newest-first timeline over every linked Patient record of encounters,
 * observations, diagnostic reports, referrals (ServiceRequest with its Task), conditions and medication
 * requests, each entry saying which institution produced it.
 *
 * One page costs a fixed number of queries whatever the person's record count: the person (two), its
 * records (three), one per entry type (at most six, sent together), the referrals' Tasks (one) and the
 * source organisations (one). Paging is by key (date, type, id of the last entry), so records that arrive
 * between pages move no entry to another page; the cursor is bound to the person and the filters.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { CodeableConcept, DiagnosticReport, Encounter, MedicationRequest, Observation, Organization, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import { badInput } from '../errors.ts';
import { dateRange, normalizeReference } from '../fhir/search-index.ts';
import type { Condition } from '../fhir/indexed-query.ts';
import type { FhirRepository } from '../fhir/repository.ts';
import type { Person, PersonDirectory, PersonSelector } from './linking.ts';
import { isTimelineType, SOURCE_KEY, timelineResourceTypes, timelineTypes, WHEN_KEY, type TimelineResourceType } from './timeline.ts';
import { decodeCursor, encodeCursor } from '../fhir/cursor.ts';

export interface HistoryFilters {
  types?: string[] | null;
  /** a FHIR date: entries on or after its start */
  from?: string | null;
  /** a FHIR date: entries on or before its end */
  to?: string | null;
  /** `Organization/<id>` or `<id>`: entries produced there */
  organization?: string | null;
  /** a token (`system|code` or `code`) on the entry's code (Encounter: type) */
  code?: string | null;
}

export interface HistorySource {
  reference: string;
  name?: string;
  alias?: string;
  /** the member level code (provincial, county, township, community, village) */
  level?: string;
}

export interface HistoryEntry {
  date: string;
  type: TimelineResourceType;
  source?: HistorySource;
  display: string;
  status?: string;
  /** for a referral (ServiceRequest): the status of its Task, and its business status */
  referralStatus?: string;
  resource: Resource;
}

export interface HistoryPage {
  person: Person;
  entries: HistoryEntry[];
  /** the cursor of the next page; null at the end */
  next: string | null;
}

export const MAX_HISTORY_PAGE = 200;
const DEFAULT_HISTORY_PAGE = 20;
const memberLevelSystem = /\/CodeSystem\/member-level$/;

const cursorSchema = z.object({ p: z.string(), f: z.string(), w: z.string(), t: z.number().int().min(0), i: z.string() }).strict();
type HistoryCursor = z.infer<typeof cursorSchema>;

const text = (concept: CodeableConcept | undefined): string | undefined => concept?.text ?? concept?.coding?.find((coding) => coding.display)?.display ?? concept?.coding?.[0]?.code;

function displayOf(resource: Resource): string {
  switch (resource.resourceType) {
    case 'Encounter': {
      const encounter = resource as Encounter;
      return [text(encounter.type?.[0]) ?? encounter.class?.display, text(encounter.reasonCode?.[0])].filter(Boolean).join(' · ');
    }
    case 'Observation': {
      const observation = resource as Observation;
      const quantity = observation.valueQuantity;
      const value = quantity ? `${quantity.value ?? ''} ${quantity.unit ?? quantity.code ?? ''}`.trim() : (observation.valueString ?? text(observation.valueCodeableConcept));
      return [text(observation.code), value].filter(Boolean).join(' ');
    }
    case 'DiagnosticReport': {
      const report = resource as DiagnosticReport;
      return [text(report.code), report.conclusion].filter(Boolean).join(': ');
    }
    case 'ServiceRequest': {
      const request = resource as ServiceRequest;
      return [text(request.code), text(request.reasonCode?.[0])].filter(Boolean).join(': ');
    }
    case 'MedicationRequest': {
      const request = resource as MedicationRequest;
      return [text(request.medicationCodeableConcept) ?? request.medicationReference?.display, request.dosageInstruction?.[0]?.text].filter(Boolean).join(' ');
    }
    default:
      return text((resource as { code?: CodeableConcept }).code) ?? resource.resourceType;
  }
}

export class PatientHistory {
  constructor(
    private readonly store: FhirRepository,
    private readonly directory: PersonDirectory,
  ) {}

  async page(selector: PersonSelector, filters: HistoryFilters, first?: number | null, after?: string | null): Promise<HistoryPage> {
    const pageSize = first ?? DEFAULT_HISTORY_PAGE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_HISTORY_PAGE) throw badInput(`first must be 1 to ${MAX_HISTORY_PAGE}`, ['first']);
    const types = this.types(filters.types);
    const typeFilters = this.filterConditions(filters);
    const filterKey = createHash('sha256').update(JSON.stringify([types, filters.from ?? null, filters.to ?? null, filters.organization ?? null, filters.code ?? null])).digest('base64url').slice(0, 16);
    const cursor = after ? decodeCursor(after, 'after', (value): HistoryCursor => cursorSchema.parse(value)) : undefined;

    const personId = await this.directory.resolve(selector);
    if (cursor && (cursor.p !== personId || cursor.f !== filterKey)) throw badInput('after belongs to another person or other filters', ['after']);
    const records = await this.directory.members(personId);
    const person: Person = { id: personId, records };
    if (records.length === 0) return { person, entries: [], next: null };
    const patientRefs = records.map((record) => `Patient/${record.id}`);
    const organization = filters.organization ? this.organizationReference(filters.organization) : undefined;
    const heldThere = organization ? records.filter((record) => record.managingOrganization && normalizeReference(record.managingOrganization.reference ?? '') === organization).map((record) => `Patient/${record.id}`) : [];

    const perType = await Promise.all(
      types.map(async (type) => {
        const rank = timelineResourceTypes.indexOf(type);
        const conditions: Condition[] = [{ key: 'patient', in: patientRefs }, ...typeFilters(type)];
        if (organization) {
          conditions.push({ anyOf: [[{ key: SOURCE_KEY, eq: organization }], [{ key: SOURCE_KEY, exists: false }, { key: 'patient', in: heldThere }]] });
        }
        // After the cursor's entry in the merged order (date newest first, then type, then id).
        const when = cursor ? new Date(cursor.w) : undefined;
        if (cursor && rank < cursor.t) conditions.push({ key: WHEN_KEY, lt: when! });
        else if (cursor && rank > cursor.t) conditions.push({ key: WHEN_KEY, lte: when! });
        const after = cursor && rank === cursor.t ? { value: when, id: cursor.i } : undefined;
        const found = await this.store.find(type, { where: conditions, order: { key: WHEN_KEY, descending: true, ...(after ? { after } : {}) }, limit: pageSize + 1, values: [WHEN_KEY, SOURCE_KEY, 'patient'] });
        return found.map((item) => ({ ...item, type, rank, when: item.values[WHEN_KEY] as Date }));
      }),
    );
    const merged = perType
      .flat()
      .sort((a, b) => b.when.getTime() - a.when.getTime() || a.rank - b.rank || (a.resource.id! < b.resource.id! ? -1 : a.resource.id! > b.resource.id! ? 1 : 0));
    const pageItems = merged.slice(0, pageSize);
    const last = pageItems[pageItems.length - 1];
    const next = merged.length > pageSize && last ? encodeCursor({ p: personId, f: filterKey, w: last.when.toISOString(), t: last.rank, i: last.resource.id! }) : null;

    const recordsById = new Map(records.map((record) => [`Patient/${record.id}`, record]));
    const sourceOf = (item: (typeof pageItems)[number]): string | undefined => {
      const named = (item.values[SOURCE_KEY] as string[] | undefined)?.[0];
      if (named) return named;
      const patient = ((item.values.patient as string[] | undefined) ?? []).map((ref) => recordsById.get(ref)).find(Boolean);
      return patient?.managingOrganization?.reference ? normalizeReference(patient.managingOrganization.reference) : undefined;
    };
    const sources = pageItems.map(sourceOf);
    const referralIds = pageItems.filter((item) => item.type === 'ServiceRequest').map((item) => `ServiceRequest/${item.resource.id}`);
    const [organizations, tasks] = await Promise.all([
      this.store.readMany('Organization', [...new Set(sources.filter((ref): ref is string => ref?.startsWith('Organization/') ?? false))].map((ref) => ref.slice('Organization/'.length))),
      referralIds.length > 0 ? this.store.find('Task', { where: [{ key: 'focus', in: referralIds }], values: ['focus'] }) : Promise.resolve([]),
    ]);
    const taskOf = new Map<string, Task>();
    for (const task of tasks) for (const focus of (task.values.focus as string[] | undefined) ?? []) taskOf.set(focus, task.resource as Task);

    const entries = pageItems.map((item, index): HistoryEntry => {
      const sourceRef = sources[index];
      const organizationResource = sourceRef ? (organizations.get(sourceRef.slice('Organization/'.length)) as Organization | undefined) : undefined;
      const task = item.type === 'ServiceRequest' ? taskOf.get(`ServiceRequest/${item.resource.id}`) : undefined;
      return {
        date: item.when.toISOString(),
        type: item.type,
        ...(sourceRef
          ? {
              source: {
                reference: sourceRef,
                name: organizationResource?.name,
                alias: organizationResource?.alias?.[0],
                level: organizationResource?.type?.flatMap((type) => type.coding ?? []).find((coding) => memberLevelSystem.test(coding.system ?? ''))?.code,
              },
            }
          : {}),
        display: displayOf(item.resource),
        status: (item.resource as { status?: string }).status,
        ...(task ? { referralStatus: [task.status, task.businessStatus?.text ?? task.businessStatus?.coding?.[0]?.code].filter(Boolean).join(' / ') } : {}),
        resource: item.resource,
      };
    });
    return { person, entries, next };
  }

  private types(requested: string[] | null | undefined): TimelineResourceType[] {
    if (!requested || requested.length === 0) return timelineResourceTypes;
    for (const type of requested) {
      if (!isTimelineType(type)) throw badInput(`${type} is not a history entry type; use ${timelineResourceTypes.join(', ')}`, ['types']);
    }
    return timelineResourceTypes.filter((type) => requested.includes(type));
  }

  private organizationReference(value: string): string {
    const reference = normalizeReference(value.includes('/') ? value : `Organization/${value}`);
    if (!reference?.startsWith('Organization/')) throw badInput(`organization: "${value.slice(0, 80)}" is not an Organization id or reference`, ['organization']);
    return reference;
  }

  /** Date and code conditions, per type (the code parameter differs). */
  private filterConditions(filters: HistoryFilters): (type: TimelineResourceType) => Condition[] {
    const conditions: Condition[] = [];
    for (const [name, value] of [['from', filters.from], ['to', filters.to]] as const) {
      if (!value) continue;
      const range = dateRange(value);
      if (!range) throw badInput(`${name}: "${value.slice(0, 40)}" is not a date (e.g. 2024, 2024-03, 2024-03-05)`, [name]);
      conditions.push(name === 'from' ? { key: WHEN_KEY, gte: range.lo } : { key: WHEN_KEY, lte: range.hi });
    }
    const code = filters.code?.trim();
    if (code !== undefined && (code.length === 0 || code.length > 256)) throw badInput('code must be 1 to 256 characters', ['code']);
    return (type) => (code ? [...conditions, { key: timelineTypes[type].code, eq: code }] : conditions);
  }
}

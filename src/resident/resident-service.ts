/**
 * The county health app's view (issue 15, item 4): a resident token is bound to one person, and everything here
 * is read through that token's store, whose access policy lets only the person's own records through. A field
 * reads only when asked for: one search per list, over all of the person's records at once.
 */
import type { AuditEvent, Observation, Patient, Resource, Task } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import type { FhirRepository } from '../fhir/repository.ts';
import { normalisedValueOf, RECOGNITION_MARK_SYSTEM } from '../recognition/normalise.ts';
import type { RecognitionData } from '../recognition/recognition-service.ts';
import { itemFor } from '../recognition/rules.ts';
import { READING_SYSTEM } from '../reading/reading-task.ts';
import { referralOf } from '../referral/referral-task.ts';

export const MAX_LIST = 500;

export function listSize(count: number | null | undefined, fallback = 100): number {
  const size = count ?? fallback;
  if (!Number.isInteger(size) || size < 1 || size > MAX_LIST) throw new HubError('BAD_USER_INPUT', `_count must be between 1 and ${MAX_LIST}`);
  return size;
}

export class ResidentView {
  private taskList: Promise<Task[]> | undefined;

  constructor(
    /** the store bound to the resident's token */
    private readonly store: FhirRepository,
    readonly records: Patient[],
  ) {}

  private get patients(): string {
    return this.records.map((record) => `Patient/${record.id}`).join(',');
  }

  async list(type: string, count: number, sort?: string): Promise<Resource[]> {
    return (await this.store.search(type, { patient: this.patients, _count: count, ...(sort ? { _sort: sort } : {}) })).resources;
  }

  /** Lab results with their plain name (the catalog's), value, normalised value and recognition mark. */
  async labResults(count: number, terminology: RecognitionData) {
    const observations = (await this.store.search('Observation', { patient: this.patients, category: 'laboratory', _count: count, _sort: '-date' })).resources as Observation[];
    return observations.map((observation) => {
      const codes = (observation.code?.coding ?? []).map((coding) => `${coding.system}|${coding.code}`);
      const item = itemFor(codes, terminology.catalog, new Date());
      const normal = normalisedValueOf(observation);
      return {
        observation,
        name: item?.nameZh ?? observation.code?.text ?? observation.code?.coding?.[0]?.display ?? observation.code?.coding?.[0]?.code ?? '',
        value: observation.valueQuantity?.value ?? null,
        unit: observation.valueQuantity?.unit ?? observation.valueQuantity?.code ?? null,
        normalizedValue: normal?.value ?? null,
        normalizedUnit: normal?.code ?? null,
        mark: observation.meta?.tag?.find((tag) => tag.system === RECOGNITION_MARK_SYSTEM)?.display ?? null,
        issuer: observation.performer?.find((performer) => performer.reference?.startsWith('Organization/'))?.reference,
        date: observation.effectiveDateTime ?? observation.issued ?? null,
      };
    });
  }

  /** The Tasks of my records, split by kind: referrals, follow-ups. */
  tasks(): Promise<Task[]> {
    // Read once for the request: referrals and follow-ups are two views of the same Tasks.
    this.taskList ??= this.store.search('Task', { patient: this.patients, _count: MAX_LIST }).then((found) => found.resources as Task[]);
    return this.taskList;
  }

  async referrals() {
    return (await this.tasks()).filter((task) => referralOf(task)).map((task) => ({ id: task.id!, task, facts: referralOf(task)! }));
  }

  async followUps(): Promise<Task[]> {
    return (await this.tasks()).filter((task) => !referralOf(task) && !task.code?.coding?.some((coding) => coding.system === READING_SYSTEM) && task.partOf?.length);
  }

  /** Reports that answer a remote reading (based on a reading request) of my studies. */
  async readingReports(): Promise<Resource[]> {
    const requests = new Set(
      ((await this.store.search('ServiceRequest', { patient: this.patients, _count: MAX_LIST })).resources as { id?: string; category?: { coding?: { system?: string }[] }[] }[])
        .filter((request) => request.category?.some((concept) => concept.coding?.some((coding) => coding.system === READING_SYSTEM)))
        .map((request) => `ServiceRequest/${request.id}`),
    );
    if (requests.size === 0) return [];
    const reports = (await this.store.search('DiagnosticReport', { patient: this.patients, _count: MAX_LIST })).resources as { basedOn?: { reference?: string }[] }[];
    return reports.filter((report) => report.basedOn?.some((basis) => basis.reference && requests.has(basis.reference))) as Resource[];
  }

  /** Who touched my records, from the audit events about them, newest first. */
  async accessLog(count: number) {
    const events = (await this.store.search('AuditEvent', { patient: this.patients, _count: count, _sort: '-date' })).resources as AuditEvent[];
    return events.map((event) => {
      const client = event.agent?.find((agent) => agent.requestor)?.who?.identifier?.value ?? null;
      const organization = event.agent?.find((agent) => agent.who?.reference?.startsWith('Organization/'))?.who?.reference;
      return {
        at: event.recorded,
        action: event.action ?? 'E',
        client,
        organization,
        records: (event.entity ?? []).map((entity) => entity.what?.reference).filter((reference): reference is string => Boolean(reference)),
        outcome: event.outcome === '0' ? 'success' : event.outcome === '4' ? 'refused' : 'failed',
      };
    });
  }
}
